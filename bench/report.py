"""bench/RESULTS.md and bench/latency.png from the figures of one run."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
from pathlib import Path

PACKAGES = [
    "flask",
    "werkzeug",
    "jinja2",
    "markupsafe",
    "sqlalchemy",
    "flask-sqlalchemy",
    "flask-wtf",
    "flask-login",
    "gunicorn",
    "bleach",
]


def machine() -> list[tuple[str, str]]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    distro = "unknown"
    if Path("/etc/os-release").exists():
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                distro = line.split("=", 1)[1].strip('"')
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    wrk_version = (wrk.stdout + wrk.stderr).splitlines()[0].split(" Copyright")[0]
    versions = ", ".join(f"{p} {importlib.metadata.version(p)}" for p in PACKAGES)
    return [
        ("CPU", f"{cpu}, {os.cpu_count()} cores"),
        ("Memory", f"{int(mem) / 1024 / 1024:.1f} GiB"),
        ("System", f"{distro}, Linux {platform.release()}"),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("SQLite", sqlite3.sqlite_version),
        ("Packages", versions),
        ("Load generator", wrk_version),
    ]


def ms(value: float) -> str:
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def cpu(run: dict) -> str:
    value = run.get("cpu_ms_per_request")
    return ms(value) if value is not None else ""


def cpu_ratio(run: dict, base: dict) -> str:
    a, b = run.get("cpu_ms_per_request"), base.get("cpu_ms_per_request")
    return f"{b / a:.2f}" if a and b else ""


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if a and b else "n/a"


def _approvals(data: dict) -> str:
    """How many approvals each queue size had: "300 (at 1,000 and 10,000 pending) ..."."""
    approvals = data.get("approvals", 300)
    if not isinstance(approvals, dict):
        return f"{approvals:,}"
    by_count: dict[int, list[int]] = {}
    for size, count in approvals.items():
        by_count.setdefault(int(count), []).append(int(size))
    return " and ".join(
        f"{count:,} (at {' and '.join(f'{size:,}' for size in sorted(sizes))} pending)"
        for count, sizes in by_count.items()
    )


def write(results: dict, here: Path) -> None:
    runs = results["runs"]
    lines = report_lines(results, runs)
    notes = here / "NOTES.md"
    if notes.exists():
        lines += ["", notes.read_text().rstrip()]
    spike = here / "spike-results.md"  # written by bench/spike.py (make bench-spike)
    if spike.exists():
        lines += ["", spike.read_text().rstrip()]
    spam = here / "spam-results.md"  # written by bench/spam.py (make bench-spam)
    if spam.exists():
        lines += ["", spam.read_text().rstrip()]
    (here / "RESULTS.md").write_text("\n".join(lines) + "\n")
    try:
        from plot import plot

        plot(results, here / "latency.png")
    except ImportError:
        print(
            "matplotlib is not installed (pip install -e '.[bench]'): no latency.png",
            file=sys.stderr,
        )


LISTINGS = ("front_page", "tag_page", "feed_posts", "feed_comments", "feed_post_comments")


def baseline_of(key: str) -> str | None:
    if key.startswith("thread_") or key in LISTINGS:
        return "baseline_" + key
    if key.startswith("round"):  # round2_thread_1000: its own (see own_baseline)
        return "baseline_" + key
    if key.startswith("dashboard_"):
        return "baseline_dashboard_pg" if "_pg_" in key else "baseline_dashboard"
    if key.startswith("approve_pg"):
        return "baseline_small_pg"
    if key.startswith("post_comment"):
        return "baseline_post"
    if key.startswith("approve_"):
        return "baseline_small"
    return None


def own_baseline(runs: dict, key: str) -> dict | None:
    """A run's baseline; a round of results before session 12 reused its size's."""
    base = baseline_of(key) or ""
    if base not in runs and key.startswith("round"):
        base = "baseline_" + key.split("_", 1)[1]
    return runs.get(base)


def targets(results: dict, runs: dict) -> list[tuple[str, str, str, str]]:
    """The issue's targets, each a ratio to a baseline measured in the same run; every
    timing target also in CPU time per request, which other load on the machine moves far
    less than req/s and latency."""
    rows = []

    def row(figure: str, value: float | None, target: str, ok) -> None:
        if value is None:
            rows.append((figure, "not measured", target, "n/a"))
        else:
            rows.append((figure, f"{value:.2f}", target, "yes" if ok(value) else "**no**"))

    def div(a: float | None, b: float | None) -> float | None:
        return a / b if a and b else None

    def get(key: str, field: str) -> float | None:
        return (runs.get(key) or {}).get(field)

    def at_least(limit: float):
        return f">= {limit}", lambda r: r >= limit

    def at_most(limit: float):
        return f"<= {limit}", lambda r: r <= limit

    def page_rows(label: str, key: str, limit: float) -> None:
        """req/s and CPU against the bare page of the same bytes (higher is better)."""
        base = baseline_of(key)
        row(
            f"{label}: req/s / baseline req/s",
            div(get(key, "rps"), get(base, "rps")),
            *at_least(limit),
        )
        row(
            f"{label}: baseline CPU / forum CPU per request",
            div(get(base, "cpu_ms_per_request"), get(key, "cpu_ms_per_request")),
            *at_least(limit),
        )

    def cost_rows(label: str, key: str, limit: float, p99: bool = True) -> None:
        """p99 and CPU over the baseline's (lower is better)."""
        base = baseline_of(key)
        if p99:
            row(
                f"{label}: p99 / baseline p99",
                div(get(key, "p99_ms"), get(base, "p99_ms")),
                *at_most(limit),
            )
        row(
            f"{label}: forum CPU / baseline CPU per request",
            div(get(key, "cpu_ms_per_request"), get(base, "cpu_ms_per_request")),
            *at_most(limit),
        )

    ip = results.get("inprocess_cpu", {})

    def ipget(size: int, who: str) -> float | None:
        return (ip.get(f"thread_{size}") or {}).get(who)

    for size in (10, 100, 1000):
        page_rows(f"Thread page, anonymous, {size:,} comments", f"thread_{size}", 0.7)
        row(
            f"Thread page, anonymous, {size:,} comments: in-process CPU, baseline ms / forum ms",
            div(ipget(size, "baseline_ms"), ipget(size, "forum_ms")),
            *at_least(0.7),
        )
    for size in (10, 100, 1000):
        page_rows(f"Thread page, signed-in member, {size:,} comments", f"thread_member_{size}", 0.5)

    # Each forum run is first divided by its size's baseline; each round's pair ran back
    # to back, and the figure is the median over the rounds (bench/run.py thread_rounds).
    def round_ratios(field: str, base_field: str | None) -> list[float]:
        found = []
        for prefix in ["", *(f"round{n}_" for n in range(2, 10))]:
            one, five = get(f"{prefix}thread_1000", field), get(f"{prefix}thread_5000", field)
            if not one or not five:
                continue
            if base_field:  # req/s: higher is better
                found.append(
                    div(
                        div(
                            five, (own_baseline(runs, f"{prefix}thread_5000") or {}).get(base_field)
                        ),
                        div(
                            one, (own_baseline(runs, f"{prefix}thread_1000") or {}).get(base_field)
                        ),
                    )
                )
            else:  # CPU ms: lower is better
                found.append(one / five)
        return [r for r in found if r]

    def median_of(values: list[float]) -> float | None:
        return statistics.median(values) if values else None

    by_rps, by_cpu = round_ratios("rps", "rps"), round_ratios("cpu_ms_per_request", None)
    rounds = f"median of {len(by_rps)} rounds: " + ", ".join(f"{r:.2f}" for r in by_rps)
    row(
        "5,000 comments, all 5 pages in turn, vs 1,000: (req/s / baseline req/s) over "
        f"the same for 1,000 ({rounds})",
        median_of(by_rps),
        ">= 0.9 (no slower, within noise)",
        lambda r: r >= 0.9,
    )
    row(
        "... in CPU time: 1,000-comment CPU ms / 5,000-comment CPU ms (rounds: "
        + ", ".join(f"{r:.2f}" for r in by_cpu)
        + ")",
        median_of(by_cpu),
        *at_least(0.9),
    )
    for key, label in (
        ("front_page", "Front page"),
        ("tag_page", "Tag page"),
        ("feed_posts", "Atom feed, posts"),
        ("feed_comments", "Atom feed, comments"),
        ("feed_post_comments", "Atom feed, one post's comments"),
    ):
        page_rows(label, key, 0.7)
    cost_rows("Guest comment POST (form, rules, sanitizer, insert)", "post_comment", 3, p99=False)
    before = div(
        get("post_comment", "cpu_ms_per_request"), get("baseline_small", "cpu_ms_per_request")
    )
    rows.append(
        (
            "... the same over the bare one-row GET page (the yardstick before this round)",
            "not measured" if before is None else f"{before:.2f}",
            "information",
            "n/a",
        )
    )
    s = results.get("sanitize") or {}
    row(
        "Sanitizer alone: comments/s / bare bleach.clean + linkify comments/s",
        s.get("ratio_to_bleach"),
        *at_least(0.9),
    )
    last = 100_000
    cost_rows("Dashboard first page, 100,000 pending, SQLite", f"dashboard_first_{last}", 3)
    cost_rows("Dashboard first page, 100,000 pending, PostgreSQL", f"dashboard_first_pg_{last}", 3)
    row(
        "Deep page (90% into the queue) / first page, 100,000 pending: CPU",
        div(
            get(f"dashboard_deep_{last}", "cpu_ms_per_request"),
            get(f"dashboard_first_{last}", "cpu_ms_per_request"),
        ),
        *at_most(1.5),
    )
    cold = div(
        get(f"dashboard_cold_{last}", "cpu_ms_per_request"),
        get("baseline_dashboard", "cpu_ms_per_request"),
    )
    rows.append(
        (
            "Dashboard, 100,000 pending, SQLite, pages no worker showed before (every item "
            "rendered): forum CPU / baseline CPU per request",
            "not measured" if cold is None else f"{cold:.2f}",
            "information",
            "n/a",
        )
    )
    cost_rows("Approve POST, 100,000 pending, SQLite", f"approve_{last}", 3)
    cost_rows("Approve POST, 100,000 pending, PostgreSQL", f"approve_pg_{last}", 3)
    # Against the bare approval (one UPDATE and a commit, bench/baseline_app.py): a write
    # against a write, so SQLite's one writer at a time is in both. Information only.
    for db_label, key, base in (
        ("SQLite", f"approve_{last}", "baseline_approve"),
        ("PostgreSQL", f"approve_pg_{last}", "baseline_approve_pg"),
    ):
        for what, field in (("p99", "p99_ms"), ("CPU", "cpu_ms_per_request")):
            value = div(get(key, field), get(base, field))
            rows.append(
                (
                    f"Approve POST, 100,000 pending, {db_label}: {what} / the bare "
                    f"approval's (one UPDATE, a commit)",
                    "not measured" if value is None else f"{value:.2f}",
                    "information",
                    "n/a",
                )
            )

    q = results["queries"]
    for label, keys in (
        (
            "thread page, anonymous, every size and page",
            lambda k: k.startswith("thread_") and not k.startswith("thread_member"),
        ),
        ("thread page, member, every size and page", lambda k: k.startswith("thread_member")),
        (
            "approve POST (of a top-level comment), every queue size",
            lambda k: k.startswith("approve_"),
        ),
        ("dashboard page (first and deep), every queue size", lambda k: k.startswith("dashboard_")),
        ("front page (first, second and last page)", lambda k: k == "front_page"),
        ("tag page (two tags, a second page)", lambda k: k == "tag_page"),
        ("one post's Atom feed (10 and 1,000 comments)", lambda k: k == "feed_post_comments"),
    ):
        counts = sorted(
            {c for k, v in q.items() if keys(k) for c in (v if isinstance(v, list) else [v])}
        )
        if counts:
            rows.append(
                (
                    f"SQL queries per {label}",
                    ", ".join(map(str, counts)),
                    "constant",
                    "yes" if len(counts) == 1 else "**no**",
                )
            )
    mem = results.get("memory")
    if mem:
        peak = max(w["VmHWM"] for w in mem["forum"]) / 1024
        rows.append(
            (
                "Worker peak RSS after the largest thread",
                f"{peak:.0f} MB",
                "< 150 MB",
                "yes" if peak < 150 else "**no**",
            )
        )
    return rows


def report_lines(results: dict, runs: dict) -> list[str]:
    lines = [
        "# Benchmark results",
        "",
        f"Written by `make bench` (`bench/run.py`) on {results['started']}; the whole run took "
        f"{results['seconds'] // 60} min {results['seconds'] % 60} s. Load average (1, 5, 15 "
        f"min) {fmt_load(results['loadavg_start'])} at the start, "
        f"{fmt_load(results['loadavg_end'])} at the end: other work on the machine moves the "
        "absolute numbers, which is why every target is a ratio to a baseline measured in the "
        "same run. Gunicorn workers that died during the run: "
        f"{results.get('worker_crashes', 0)}.",
        "",
        "## Targets",
        "",
        "| Figure | Measured | Target | Met |",
        "| --- | --- | --- | --- |",
    ]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in targets(results, runs)]
    lines += [
        "",
        "## Every run",
        "",
        "Each forum run is followed by its baseline: the bare Flask page of the same size "
        "(`bench/baseline_app.py`). Ratios: forum req/s over baseline req/s (higher is "
        "better) and forum p99 over baseline p99 (lower is better).",
        "",
        "| Run | req/s | p50 ms | p99 ms | CPU ms/req | bytes/resp | baseline req/s "
        "| baseline p99 ms | baseline CPU ms/req | req/s ratio | p99 ratio | CPU ratio |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for key, run in runs.items():
        if key.startswith("baseline_"):
            continue
        base = own_baseline(runs, key)
        lines.append(
            f"| {key} | {run['rps']:,.1f} | {ms(run['p50_ms'])} | {ms(run['p99_ms'])} | "
            f"{cpu(run)} | {run['bytes_per_request']:,} | "
            + (
                f"{base['rps']:,.1f} | {ms(base['p99_ms'])} | {cpu(base)} | "
                f"{ratio(run['rps'], base['rps'])} | {ratio(run['p99_ms'], base['p99_ms'])} | "
                f"{cpu_ratio(run, base)} |"
                if base
                else " | | | | | |"
            )
        )
    lines += [
        "",
        "CPU ratio: baseline CPU per request over the forum's (like req/s, higher is "
        "better); it barely moves with other load on the machine, unlike req/s and "
        "latency.",
        "",
        "Baselines:",
        "",
        "| Baseline | req/s | p50 ms | p99 ms | CPU ms/req | bytes/resp |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for key, run in runs.items():
        if key.startswith("baseline_"):
            lines.append(
                f"| {key} | {run['rps']:,.1f} | {ms(run['p50_ms'])} | "
                f"{ms(run['p99_ms'])} | {cpu(run)} | {run['bytes_per_request']:,} |"
            )
    ip = results.get("inprocess_cpu")
    if ip:
        lines += [
            "",
            "## Thread pages in-process",
            "",
            "CPU time of one request through the Flask test client (forum) and of the "
            "same-size bare page (baseline app), the best of 9 after 2 warm-ups, mean "
            "over the thread's pages: the steadiest figure on a busy machine.",
            "",
            "| Thread | forum ms | baseline ms | baseline / forum |",
            "| --- | ---: | ---: | ---: |",
        ]
        for key, v in ip.items():
            lines.append(
                f"| {key} | {v['forum_ms']:.1f} | {v['baseline_ms']:.1f} | "
                f"{v['baseline_ms'] / v['forum_ms']:.2f} |"
            )
    lines += ["", "## Pages", ""]
    for key, page in results["pages"].items():
        lines.append(f"- `{key}`: {page}")
    lines += [
        "",
        "## SQL queries per request",
        "",
        "Counted in-process (Flask test client, `before_cursor_execute` on the same "
        "database, BEGIN/PRAGMA/SAVEPOINT left out, as `tests/conftest.py` counts them), "
        "after one warm-up request for the GETs.",
        "",
    ]
    for key, count in results["queries"].items():
        lines.append(f"- `{key}`: {count}")
    s = results.get("sanitize")
    if s:
        lines += [
            "",
            "## Sanitizing alone",
            "",
            f"`forum.services.sanitize.sanitize_comment` over {s['comments']} synthetic comments "
            f"(mean {s['mean_chars']} characters, {s['with_removals']} with something to "
            f"remove), one process: **{s['forum_per_second']:,} comments/s**. A bare "
            f"`bleach.linkify(bleach.clean(...))` with the same allowlist on the same corpus: "
            f"{s['bleach_per_second']:,} comments/s, so the forum's sanitizer runs at "
            f"{s['ratio_to_bleach']} of bare bleach (it parses twice: its own html5lib filter, "
            "then bleach as a second check, then the linkifier).",
        ]
    mem = results.get("memory")
    if mem:
        lines += [
            "",
            "## Worker memory",
            "",
            f"After {mem['after']}, from `/proc/<pid>/status` of each gunicorn worker "
            "(VmHWM is the peak resident set since the worker started):",
            "",
        ]
        for name in ("forum", "baseline"):
            for w in mem[name]:
                lines.append(
                    f"- {name} worker {w['pid']}: VmHWM {w['VmHWM'] / 1024:.1f} MB, "
                    f"VmRSS {w['VmRSS'] / 1024:.1f} MB"
                )
    d = results["data"]
    lines += [
        "",
        "## Data",
        "",
        f"One SQLite file (`bench/out/bench.sqlite3`, WAL), written with SQLAlchemy Core "
        f"`insert()` executemany in batches of 5,000 rows with `synchronous=OFF` during the "
        f"load; `path`, `depth` and `visible` computed as `place_in_thread` does. "
        f"Threads of {', '.join(f'{n:,}' for n in d['thread_sizes'])} approved comments, "
        "one top-level comment per 20, replies nested to depth 4 (5 levels: "
        "COMMENT_MAX_DEPTH), half of them answering the latest comment of their thread; "
        f"{d['filler_posts']} more posts with {d['filler_comments_per_post']} comments each; "
        f"{d['members']} members and {d['guests']:,} guest identities. Bodies: "
        f"{d['body_pool']} synthetic comments of 200-2,000 characters (prose, paragraphs, "
        "about half with one or two links, some inline markup, 3% with something the "
        "sanitizer removes), sanitized by the forum's own sanitizer and reused; each row has "
        "its own body hash. The queue: pending comments over the last 30 days, a quarter of "
        "them replies, 3% repeating one of 10 texts, 15% from members, with 1-3 hold reasons "
        f"each; it is grown to {', '.join(f'{n:,}' for n in (1000, 10000, 100000))} in turn. "
        f"Threads and filler took {d['build_seconds']} s to write.",
        "",
        "## How each figure was measured",
        "",
        "- Servers: the project's `gunicorn.conf.py` with `GUNICORN_WORKERS=2` (sync workers), "
        "`GUNICORN_MAX_REQUESTS=0` (no recycling mid-run), bound to 127.0.0.1; the forum with "
        "`FORUM_RATELIMIT_ENABLED=false`, `FORUM_MODERATION_MIN_SUBMIT_SECONDS=0`, "
        "`FORUM_MAIL_SUPPRESS_SEND=true`. Both servers run the whole time; every forum run "
        "is followed by its baseline run, so both see the same machine.",
        f"- Commands: `{results['gunicorn']['forum']}` and `{results['gunicorn']['baseline']}`.",
        "- Pages and the approve POST: wrk, 1 thread, 2 connections, a 1 s warm-up run "
        "discarded, then the measured run (`bench/wrk/scenario.lua` cycles through the given "
        "paths and prints wrk's own latency percentiles). Sync workers close every "
        "connection, so each request includes a TCP connect, for the forum and the baseline "
        "alike.",
        "- Thread pages: every page of the thread in turn (the 5,000-comment thread has 5 "
        "pages of 50 top-level comments), as an anonymous reader. Baseline: the same number "
        "of comment rows of the 1,000-comment thread, read by one query and rendered by "
        "`bench/templates/rows.html`, padded to the forum page's byte size.",
        "- Dashboard: the moderator signs in through `/auth/login` (CSRF token scraped from the "
        "form); the first page is `/moderation/`, the deep page `/moderation/?after=<cursor>` "
        "with the keyset cursor of the comment 90% of the way down the queue. Baseline: 25 "
        "rows padded to the size of the first page at 100,000 pending.",
        f"- Approve: {_approvals(results['data'])} different pending comments "
        "chosen at random, each approved once the way the dashboard's script does it "
        "(`POST /moderation/comments/<id>/approve`, `Accept: application/json`, "
        "`X-CSRFToken` from the page); wrk stops when all are answered. The approved comments "
        "are put back in the queue afterwards, so each size is measured at that size. "
        "Baseline: the same bare page with 1 row, padded to the size of the JSON answer. "
        "As information, at 100,000 pending: the bare approval "
        "(`POST /comments/<id>/approve` of `bench/baseline_app.py`: one UPDATE of the "
        "comment's status, visibility and time, a commit, JSON of the same size) of the same "
        "comments on SQLite, once they are back in the queue, and of as many other pending "
        "comments on PostgreSQL.",
        "- Thread pages of a signed-in member: the same pages (10, 100 and 1,000 comments) "
        "as `member0`, signed in through `/auth/login`, who has 3 comments awaiting "
        "moderation on every thread (shown to them only, with their edit links); their own "
        "baseline runs, padded to the member's page sizes.",
        "- Front page (`/`), tag page (`/tags/topic-1`) and the three Atom feeds "
        "(`/feed.atom`, `/comments/feed.atom`, `/posts/<id>/feed.atom` of the 100-comment "
        "thread), anonymous; baseline: as many bare rows as the page has posts or entries, "
        "padded to its bytes. Query counts are compared over the first, second and last "
        "front page, two tags and a tag's second page, and the comment feeds of the 10- and "
        "1,000-comment threads.",
        "- The queue on PostgreSQL: a database of its own on `BENCH_PG_SERVER` (default "
        "`postgresql+psycopg://postgres@127.0.0.1:5432`) with the same generator's people, "
        "filler posts and 100,000 pending comments (then `VACUUM ANALYZE`), its own forum "
        "and baseline servers (the baseline reads the same PostgreSQL database); the "
        "dashboard's first page and the approvals as on SQLite; the database is dropped "
        "afterwards.",
        "- Posting a comment: `bench/loadgen.py` (wrk cannot scrape a form): 2 threads, "
        "each loads the post page once (session cookie, `csrf_token`, signed `rendered_at`), "
        "then POSTs distinct comments as new guests through `/posts/<id>/comments` with "
        "http.client; only the POSTs are timed (the answer is a 302). Every comment is "
        "sanitized, checked by the rules, held as a first comment and stored. They are "
        "deleted afterwards.",
        "- Queries: see above. Memory: see above.",
    ]
    notes = results.get("notes")
    if notes:
        lines += ["", "Run notes: " + "; ".join(notes) + "."]
    lines += ["", "## Machine", ""]
    lines += [f"- {k}: {v}" for k, v in machine()]
    return lines


def fmt_load(load) -> str:
    return ", ".join(f"{x:.2f}" for x in load)


if __name__ == "__main__":
    import json

    here = Path(__file__).resolve().parent
    write(json.loads((here / "out" / "results.json").read_text()), here)
