"""`make bench-spike`: a popular post under a traffic spike, on SQLite and on PostgreSQL.

Two gunicorn workers (the project's gunicorn.conf.py). For SECONDS, READERS anonymous
readers fetch one 200-comment post as fast as they can, POSTERS guests post comments to it
through the real form, and a moderator approves one of those comments every
APPROVE_EVERY seconds through the dashboard's JSON POST. Reported: reader req/s, p50 and
p99; writer p99 (posting and approving); errors (anything but 200 for a page, 302 for a
comment, `ok` for an approval: must be 0); and freshness. Readers look for each approved
comment's `id="comment-N"` in every page they get. The lag of one approval is the time from
its response to the moderator to the end of the first reader page that shows it (must be
under 1 s). After that page, any page a reader started that misses the comment is stale
(must be 0). Pages started after the approval's response but before that first showing
page are counted too (not a target: they are the lag's cost).

Writes bench/out/spike.json and bench/spike-results.md, which bench/report.py appends to
bench/RESULTS.md; this section of RESULTS.md is also updated in place.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = Path(os.environ.get("BENCH_APP_ROOT") or HERE.parent).resolve()
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(ROOT))

import corpus  # noqa: E402
import datagen  # noqa: E402
import loadgen  # noqa: E402
from server import Server  # noqa: E402

SECONDS = 60
READERS = 64
POSTERS = 4
APPROVE_EVERY = 2.0
THREAD = 200
QUEUE = 1_000  # pending comments elsewhere, so the queue is not empty
MAX_LAG = 1.0
OUT = HERE / "out"
MARK = "<!-- spike -->"
END = "<!-- end spike -->"
COMMENT_ID = re.compile(rb'id="comment-(\d+)"')


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


@dataclass
class Page:
    started: float
    ended: float
    status: int
    shown: frozenset[int]  # ids of comments posted during the spike that the page shows


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    pages: list[Page] = field(default_factory=list)
    reader_errors: list[str] = field(default_factory=list)
    posts: list[float] = field(default_factory=list)  # seconds per comment POST
    post_errors: list[str] = field(default_factory=list)
    posted: queue.Queue = field(default_factory=queue.Queue)  # ids waiting for approval
    approvals: list[tuple[int, float, float]] = field(default_factory=list)  # id, sent, answered
    approve_errors: list[str] = field(default_factory=list)
    skipped_approvals: int = 0  # no comment posted yet to approve


def get_bytes(port: int, path: str, cookie: str = "") -> tuple[int, bytes]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", path, headers={"Cookie": cookie} if cookie else {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def reader(port: int, path: str, first_new: int, stop: threading.Event, tally: Tally) -> None:
    while not stop.is_set():
        started = time.monotonic()
        try:
            status, body = get_bytes(port, path)
        except OSError as error:
            with tally.lock:
                tally.reader_errors.append(repr(error))
            continue
        ended = time.monotonic()
        shown = frozenset(n for m in COMMENT_ID.findall(body) if (n := int(m)) >= first_new)
        with tally.lock:
            tally.pages.append(Page(started, ended, status, shown))
            if status != 200:
                tally.reader_errors.append(f"GET {path}: {status}")


def poster_session(port: int, page: str) -> tuple[str, str, str]:
    """A guest's cookie, CSRF token and signed rendered_at, from one page load."""
    first = loadgen.request(port, "GET", page)
    cookie = loadgen.cookie_header(first.cookies)
    return (
        cookie,
        loadgen.hidden_value(first.body, "csrf_token"),
        loadgen.hidden_value(first.body, "rendered_at"),
    )


def poster(
    port: int,
    form_path: str,
    index: int,
    session: tuple[str, str, str],
    stop: threading.Event,
    tally: Tally,
) -> None:
    bodies = corpus.corpus(50, 4321 + index)
    cookie, token, rendered = session
    n = 0
    while not stop.is_set():
        n += 1
        form = {
            "csrf_token": token,
            "rendered_at": rendered,
            "parent_id": "",
            "body": f"{bodies[n % len(bodies)]}\n\nSpike poster {index}, comment {n}.",
            "author_name": f"Spike {index}-{n}",
            "author_email": f"spike{index}.{n}.{time.time_ns()}@example.org",
            "author_url": "",
            "homepage": "",
        }
        started = time.monotonic()
        try:
            resp = loadgen.request(port, "POST", form_path, cookie, form)
        except OSError as error:
            with tally.lock:
                tally.post_errors.append(repr(error))
            continue
        took = time.monotonic() - started
        found = re.search(r"comment-(\d+)", resp.headers.get("location", ""))
        with tally.lock:
            tally.posts.append(took)
            if resp.status != 302 or not found:
                tally.post_errors.append(f"POST: {resp.status} {resp.body[:200]!r}")
        if found:
            tally.posted.put(int(found.group(1)))


def approve(port: int, comment: int, cookie: str, token: str, tally: Tally) -> None:
    headers = {"Accept": "application/json", "X-CSRFToken": token}
    sent = time.monotonic()
    try:
        resp = loadgen.request(
            port, "POST", f"/moderation/comments/{comment}/approve", cookie, {}, headers
        )
    except OSError as error:
        with tally.lock:
            tally.approve_errors.append(repr(error))
        return
    answered = time.monotonic()
    ok = resp.status == 200 and '"ok":true' in resp.body.replace(" ", "")
    with tally.lock:
        if ok:
            tally.approvals.append((comment, sent, answered))
        else:
            tally.approve_errors.append(f"approve {comment}: {resp.status} {resp.body[:200]}")


def moderator(
    port: int, login: tuple[str, str], stop: threading.Event, tally: Tally
) -> list[threading.Thread]:
    """Every APPROVE_EVERY seconds, approve the oldest comment posted so far, on schedule
    (each approval in its own thread, however long the previous one takes)."""
    sent: list[threading.Thread] = []
    next_at = time.monotonic() + APPROVE_EVERY
    while not stop.wait(max(0.0, next_at - time.monotonic())):
        next_at += APPROVE_EVERY
        try:
            comment = tally.posted.get_nowait()
        except queue.Empty:
            with tally.lock:
                tally.skipped_approvals += 1
            continue
        t = threading.Thread(target=approve, args=(port, comment, *login, tally))
        t.start()
        sent.append(t)
    return sent


def pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, max(0, int(p * len(values) + 0.5) - 1))]


def freshness(tally: Tally, end: float) -> dict:
    """Per approval: the lag to the first page that shows it, and the stale pages."""
    pages = sorted((p for p in tally.pages if p.status == 200), key=lambda p: p.ended)
    lags, unseen, stale, before_first = [], [], 0, 0
    for comment, _sent, answered in tally.approvals:
        first = next((p for p in pages if comment in p.shown and p.ended >= answered), None)
        shown_early = any(comment in p.shown and p.ended < answered for p in pages)
        if first is None and not shown_early:
            if answered < end - MAX_LAG:  # the spike went on long enough to see it
                unseen.append(comment)
            continue
        seen_at = first.ended if first else answered
        lags.append(max(0.0, seen_at - answered))
        stale += sum(1 for p in pages if p.started > seen_at and comment not in p.shown)
        before_first += sum(
            1
            for p in pages
            if answered < p.started and p.ended <= seen_at and comment not in p.shown
        )
    return {
        "approvals": len(tally.approvals),
        "lag_p50_s": round(pct(lags, 0.5), 3),
        "lag_max_s": round(max(lags), 3) if lags else None,
        "never_shown": unseen,
        "stale_pages": stale,
        "pages_missing_it_before_the_first_showing_page": before_first,
    }


def run_one(name: str, url: str, seconds: float) -> dict:
    log(f"{name}: building the data")
    gen = datagen.Generator(datagen.make_engine(url))
    gen.create_schema()
    gen.make_bodies()
    gen.make_people()
    info = gen.make_threads([THREAD], 50)[THREAD]
    gen.make_filler()
    gen.add_pending(QUEUE, [])
    gen.settle()
    first_new = gen.next_comment_id
    gen.engine.dispose()
    page = f"/posts/{info.post_id}/{info.slug}"
    env = {
        "FORUM_DATABASE_URL": url,
        "FORUM_SECRET_KEY": "bench-secret-key",
        "FORUM_BASE_URL": "http://127.0.0.1:5000",
        "FORUM_RATELIMIT_ENABLED": "false",
        "FORUM_MODERATION_MIN_SUBMIT_SECONDS": "0",
        "FORUM_MAIL_SUPPRESS_SEND": "true",
    }
    log_file = OUT / f"gunicorn-spike-{name}.log"
    log_file.unlink(missing_ok=True)
    tally = Tally()
    with Server("wsgi:app", env, log_file, root=ROOT) as forum:
        status, body = get_bytes(forum.port, page)
        if status != 200:
            raise RuntimeError(f"GET {page}: {status}")
        login = loadgen.login(forum.port, *datagen.MODERATOR, landing="/moderation/")
        sessions = [poster_session(forum.port, page) for _ in range(POSTERS)]
        stop = threading.Event()
        threads = [
            threading.Thread(target=reader, args=(forum.port, page, first_new, stop, tally))
            for _ in range(READERS)
        ]
        threads += [
            threading.Thread(
                target=poster,
                args=(forum.port, f"/posts/{info.post_id}/comments", i, sessions[i], stop, tally),
            )
            for i in range(POSTERS)
        ]
        approvals: list[threading.Thread] = []
        threads.append(
            threading.Thread(
                target=lambda: approvals.extend(moderator(forum.port, login, stop, tally))
            )
        )
        log(f"{name}: {READERS} readers, {POSTERS} posters, 1 moderator for {seconds:g} s")
        cpu_before = forum.cpu_seconds()
        started = time.monotonic()
        for t in threads:
            t.start()
        time.sleep(seconds)
        stop.set()
        end = time.monotonic()
        for t in threads:
            t.join(timeout=120)
        for t in approvals:
            t.join(timeout=120)
        elapsed = time.monotonic() - started
        cpu = forum.cpu_seconds() - cpu_before
        memory = forum.memory()
    crashes = log_file.read_text().count("was sent SIG")
    in_time = [p for p in tally.pages if p.ended <= end]
    latencies = [p.ended - p.started for p in tally.pages]
    approve_times = [answered - sent for _c, sent, answered in tally.approvals]
    result = {
        "database": name,
        "seconds": round(elapsed, 1),
        "page": page,
        "page_bytes": len(body),
        "readers": READERS,
        "posters": POSTERS,
        "reader_pages": len(tally.pages),
        "reader_rps": round(len(in_time) / seconds, 1),
        "reader_p50_ms": round(pct(latencies, 0.5) * 1000, 1),
        "reader_p99_ms": round(pct(latencies, 0.99) * 1000, 1),
        "comments_posted": len(tally.posts),
        "post_p50_ms": round(pct(tally.posts, 0.5) * 1000, 1),
        "post_p99_ms": round(pct(tally.posts, 0.99) * 1000, 1),
        "approve_p50_ms": round(pct(approve_times, 0.5) * 1000, 1),
        "approve_p99_ms": round(pct(approve_times, 0.99) * 1000, 1),
        "writer_p99_ms": round(pct(tally.posts + approve_times, 0.99) * 1000, 1),
        "approvals_skipped_nothing_to_approve": tally.skipped_approvals,
        "errors": len(tally.reader_errors) + len(tally.post_errors) + len(tally.approve_errors),
        "error_samples": (tally.reader_errors + tally.post_errors + tally.approve_errors)[:5],
        "worker_cpu_ms_per_request": round(
            cpu * 1000 / max(1, len(tally.pages) + len(tally.posts) + len(approve_times)), 1
        ),
        "worker_peak_rss_mb": round(max(w["VmHWM"] for w in memory) / 1024, 1),
        "worker_crashes": crashes,
        "freshness": freshness(tally, end),
    }
    log(f"{name}: {json.dumps(result)}")
    return result


def section(results: list[dict], seconds: float) -> str:
    lines = [
        MARK,
        "## Traffic spike (`make bench-spike`)",
        "",
        f"Two gunicorn workers; for {seconds:g} s, {READERS} anonymous readers fetch one "
        f"{THREAD}-comment post as fast as they can, {POSTERS} guests post comments to it "
        "through the form, and a moderator approves one of those comments every "
        f"{APPROVE_EVERY:g} s (`bench/spike.py`, written {time.strftime('%Y-%m-%d %H:%M UTC')}). "
        'Readers look for each approved comment\'s `id="comment-N"` in every page. Lag: from '
        "the approval's response to the end of the first reader page that shows the comment. "
        "Stale: a page started after that first showing page that misses the comment. A "
        "comment approved in the last second is not counted as never shown. While the "
        "workers are saturated (reader p50 of seconds), every request, the approval too, "
        "waits in gunicorn's listen queue, and pages queued before the approval's commit "
        "are served after it: a small lag then says little, the readers' latency says more.",
        "",
        "| Figure | " + " | ".join(r["database"] for r in results) + " | Target |",
        "| --- | " + " | ".join("---:" for _ in results) + " | --- |",
    ]

    def line(label: str, values: list[str], target: str = "") -> None:
        lines.append(f"| {label} | " + " | ".join(values) + f" | {target} |")

    def met(ok: bool) -> str:
        return "" if ok else " **(not met)**"

    line("Reader pages/s", [f"{r['reader_rps']:,.1f}" for r in results])
    line(
        "Reader p50 / p99 ms",
        [f"{r['reader_p50_ms']:,.0f} / {r['reader_p99_ms']:,.0f}" for r in results],
    )
    line("Page bytes", [f"{r['page_bytes']:,}" for r in results])
    line(
        "Comments posted; POST p50 / p99 ms",
        [
            f"{r['comments_posted']}; {r['post_p50_ms']:,.0f} / {r['post_p99_ms']:,.0f}"
            for r in results
        ],
    )
    line(
        "Approvals; approve p50 / p99 ms",
        [
            f"{r['freshness']['approvals']}; "
            f"{r['approve_p50_ms']:,.0f} / {r['approve_p99_ms']:,.0f}"
            for r in results
        ],
    )
    line(
        "Approvals due with nothing posted yet to approve",
        [str(r["approvals_skipped_nothing_to_approve"]) for r in results],
    )
    line("Writer p99 ms (posts and approvals)", [f"{r['writer_p99_ms']:,.0f}" for r in results])
    line("Errors", [f"{r['errors']}{met(r['errors'] == 0)}" for r in results], "0")
    for r in results:
        f = r["freshness"]
        r["_lag_ok"] = (
            f["lag_max_s"] is not None and f["lag_max_s"] < MAX_LAG and not f["never_shown"]
        )
    line(
        "Freshness lag p50 / max s",
        [
            f"{r['freshness']['lag_p50_s']:.3f} / "
            f"{r['freshness']['lag_max_s'] if r['freshness']['lag_max_s'] is not None else 'n/a'}"
            f"{met(r['_lag_ok'])}"
            for r in results
        ],
        f"max < {MAX_LAG:g} s",
    )
    line(
        "Approved comments never shown",
        [
            f"{len(r['freshness']['never_shown'])}{met(not r['freshness']['never_shown'])}"
            for r in results
        ],
        "0",
    )
    line(
        "Stale pages after the first showing page",
        [
            f"{r['freshness']['stale_pages']}{met(r['freshness']['stale_pages'] == 0)}"
            for r in results
        ],
        "0",
    )
    line(
        "Pages started after the approval's response, before the first showing one",
        [str(r["freshness"]["pages_missing_it_before_the_first_showing_page"]) for r in results],
    )
    line("Worker CPU ms per request", [f"{r['worker_cpu_ms_per_request']:.1f}" for r in results])
    line("Worker peak RSS MB", [f"{r['worker_peak_rss_mb']:.0f}" for r in results], "< 150")
    line("Workers that died", [str(r["worker_crashes"]) for r in results], "0")
    for r in results:
        if r["error_samples"]:
            lines += ["", f"Errors on {r['database']}, first few: {r['error_samples']}"]
        r.pop("_lag_ok", None)
    lines.append(END)
    return "\n".join(lines) + "\n"


def write(results: list[dict], seconds: float) -> None:
    text = section(results, seconds)
    (OUT / "spike.json").write_text(json.dumps(results, indent=2))
    (HERE / "spike-results.md").write_text(text)
    results_md = HERE / "RESULTS.md"
    current = results_md.read_text() if results_md.exists() else ""
    if MARK in current and END in current:
        head, _, rest = current.partition(MARK)
        _, _, tail = rest.partition(END + "\n")
        current = head + text + tail
    else:
        current = current.rstrip() + "\n\n" + text
    results_md.write_text(current)
    sys.stdout.write(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=SECONDS)
    parser.add_argument(
        "--rewrite", action="store_true", help="only rewrite the section from out/spike.json"
    )
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    if args.rewrite:
        results = json.loads((OUT / "spike.json").read_text())
        write(results, args.seconds)
        return
    results = []
    if args.db in ("sqlite", "both"):
        path = OUT / "spike.sqlite3"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        results.append(run_one("SQLite", f"sqlite:///{path}", args.seconds))
    if args.db in ("postgresql", "both"):
        with datagen.postgres_database("spike") as url:
            results.append(run_one("PostgreSQL", url, args.seconds))
    write(results, args.seconds)


if __name__ == "__main__":
    main()
