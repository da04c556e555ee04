"""bench/latency.png: the cost curve (latency and CPU per request against comments per
thread and pending comments), each beside its bare-page baseline."""

from __future__ import annotations

from pathlib import Path


def curve(ax, runs: dict, field: str, key: str, xs: list[int], label: str, color: str) -> None:
    """One series of runs `key.format(x)`: p50 and p99 on the latency row, `field` on the
    CPU row."""
    xs = [x for x in xs if key.format(x) in runs]
    if field != "latency":
        ax.plot(xs, [runs[key.format(x)][field] or 0 for x in xs], "o-", color=color, label=label)
        return
    for name, style in (("p50", "o-"), ("p99", "s--")):
        values = [runs[key.format(x)][f"{name}_ms"] for x in xs]
        ax.plot(xs, values, style, color=color, label=f"{label} {name}")


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = results["runs"]
    fig, axes = plt.subplots(2, 2, figsize=(12, 9))
    all_sizes = [s for s in results["data"]["thread_sizes"] if f"thread_{s}" in runs]
    all_queues = [q for q in (1000, 10000, 100000) if f"dashboard_first_{q}" in runs]
    thread_series = (
        ("thread_{}", "forum, anonymous", "tab:blue"),
        ("baseline_thread_{}", "bare Flask, same bytes", "tab:gray"),
        ("thread_member_{}", "forum, signed-in member", "tab:orange"),
    )
    queue_series = (
        ("dashboard_first_{}", "dashboard, first page", "tab:blue"),
        ("dashboard_deep_{}", "dashboard, deep page", "tab:green"),
        ("approve_{}", "approve POST", "tab:red"),
        ("dashboard_first_pg_{}", "dashboard, first page, PostgreSQL", "tab:purple"),
        ("approve_pg_{}", "approve POST, PostgreSQL", "tab:brown"),
    )
    baselines = (
        ("baseline_dashboard", "bare page, dashboard bytes", ":"),
        ("baseline_small", "bare page, small", "-."),
        ("baseline_small_pg", "bare page, small, PostgreSQL", "--"),
    )
    for row, field, unit in (
        (0, "latency", "latency (ms)"),
        (1, "cpu_ms_per_request", "worker CPU per request (ms)"),
    ):
        left, right = axes[row]

        for key, label, color in thread_series:
            curve(left, runs, field, key, all_sizes, label, color)
        left.set_xlabel("comments in the thread (5,000: 5 pages of ~1,000, all measured)")
        left.set_title("Post page with its thread")
        for key, label, color in queue_series if all_queues else ():
            curve(right, runs, field, key, all_queues, label, color)
        for key, label, style in baselines:
            if key in runs and all_queues:
                value = runs[key]["p99_ms"] if field == "latency" else runs[key][field] or 0
                right.axhline(
                    value,
                    color="tab:gray",
                    linestyle=style,
                    label=f"{label}{' p99' if field == 'latency' else ''}",
                )
        right.set_xlabel("pending comments in the queue")
        right.set_title("Moderation queue")
        for ax in (left, right):
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_ylabel(unit)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7)
    fig.suptitle(
        "The cost curve: forum under gunicorn (2 sync workers), wrk with 2 connections, "
        "against the bare page of the same bytes;\nlatency moves with other load, "
        "CPU per request (bottom) much less"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
