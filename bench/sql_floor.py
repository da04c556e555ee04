"""Where a request's CPU goes: its own SQL on the bare driver, and the Python around it.

    .venv/bin/python bench/sql_floor.py [--requests 200] [--only approve|dashboard|post]

For the three requests whose targets `make bench` does not meet (the approve POST and the
dashboard's first page at 100,000 pending, the guest comment POST), in this process:

1. The forum serves `--requests` of them through the test client (CSRF on, as in
   production), on a copy of the database, and every statement each request sends to
   SQLite is recorded with its parameters as the driver received them.
2. The same statements go again straight to `sqlite3` (BEGIN, the statements, COMMIT: no
   Flask, no SQLAlchemy) on a second fresh copy, in the same order, so each finds the rows
   its original found; a few aggregates of both copies must then be equal (the replay did
   what the forum did).
3. The bare page `make bench` compares the request with (bench/baseline_app.py: the bare
   page of the same bytes, or the bare POST), through Flask in this process.
4. A cProfile of the forum's requests, its own time summed by package.

Median CPU (time.process_time) per request of each. The statements alone are the floor
of the design: what SQLite does for everything a request reads and writes in its
transaction (counters, spam lessons, flags, notifications, page versions). Everything else
is the Python around them. Databases: bench/out/profile-queue-100000.sqlite3
(bench/profile_queue.py builds it) and bench/out/post_cpu-pristine.sqlite3
(bench/post_cpu.py --build).
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import os
import pstats
import re
import shutil
import sqlite3
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))

import inprocess  # noqa: E402
import profile_queue  # noqa: E402

OUT = HERE / "out"
QUEUE_DB = OUT / "profile-queue-100000.sqlite3"
POST_DB = OUT / "post_cpu-pristine.sqlite3"

Statements = list[tuple[str, object, bool]]

# What must come out the same on both copies.
CHECKS = (
    "SELECT status, count(*), sum(visible) FROM comment GROUP BY status ORDER BY status",
    "SELECT count(*), sum(step) FROM spam_lesson",
    "SELECT count(*), sum(weight), sum(spam), sum(ham) FROM spam_feature",
    "SELECT count(*) FROM moderation_action",
    "SELECT name, sum(n) FROM queue_counter GROUP BY name ORDER BY name",
)


def copy_db(source: Path, target: Path) -> None:
    """A copy of the file as it is on disk (its WAL checkpointed first)."""
    with sqlite3.connect(source) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    drop(target)
    shutil.copyfile(source, target)


def drop(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", ".writelock"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def state(path: Path) -> list[list[tuple]]:
    with sqlite3.connect(path) as conn:
        return [conn.execute(sql).fetchall() for sql in CHECKS]


def forum_app(path: Path):
    logging.disable(logging.INFO)
    return inprocess.forum_app(
        f"sqlite:///{path}", BASE_URL="http://localhost", WTF_CSRF_ENABLED=True
    )


def capture(app, calls: list[Callable[[], object]]) -> tuple[list[Statements], list[float]]:
    """Run each call (one request); its statements and CPU ms."""
    from sqlalchemy import event

    from forum.extensions import db

    recorded: Statements = []

    def record(_conn, _cursor, statement, parameters, _context, executemany) -> None:
        recorded.append((statement, parameters, executemany))

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    per_request: list[Statements] = []
    cpu: list[float] = []
    try:
        for call in calls:
            recorded.clear()
            start = time.process_time()
            call()
            cpu.append((time.process_time() - start) * 1000)
            per_request.append(list(recorded))
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return per_request, cpu


def replay(path: Path, requests: list[Statements], write: bool) -> list[float]:
    """The same statements straight to the driver, one transaction per request."""
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in ("foreign_keys=ON", "journal_mode=WAL", "synchronous=NORMAL"):
        conn.execute(f"PRAGMA {pragma}")
    cpu: list[float] = []
    for statements in requests:
        start = time.process_time()
        conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        for sql, params, many in statements:
            # SQLAlchemy's "insertmanyvalues" batches say executemany but send one
            # parameter tuple for a statement with one or more VALUES groups.
            if many and isinstance(params, list):
                conn.executemany(sql, params)
            else:
                conn.execute(sql, params).fetchall()
        conn.execute("COMMIT")
        cpu.append((time.process_time() - start) * 1000)
    conn.close()
    return cpu


def split(calls: list[Callable[[], object]]) -> list[tuple[str, float]]:
    """Profiled own time of these calls by package, as shares of the whole."""
    profiler = cProfile.Profile()
    profiler.enable()
    for call in calls:
        call()
    profiler.disable()
    shares: Counter[str] = Counter()
    for (filename, _line, name), (_cc, _nc, own, _cum, _callers) in pstats.Stats(
        profiler
    ).stats.items():
        if "site-packages/" in filename:
            key = filename.split("site-packages/")[1].split("/")[0].removesuffix(".py")
        elif "/forum/" in filename:
            key = "forum"
        elif "/templates/" in filename:
            key = "templates (compiled Jinja)"
        elif filename == "~" and ("sqlite3" in name or "_sqlite3" in name):
            key = "sqlite3 (the driver and SQLite)"
        elif filename == "~":
            key = "builtins"
        else:
            key = "Python's library"
        shares[key] += own
    total = sum(shares.values())
    return [(key, own / total) for key, own in shares.most_common(9)]


def bare_calls(path: Path, urls: list[tuple[str, str, dict | None]]) -> list[float]:
    """CPU ms of the bare app's requests (bench/baseline_app.py) on this database."""
    os.environ["BENCH_DATABASE_URL"] = f"sqlite:///{path}"
    import baseline_app

    client = baseline_app.create_app().test_client()
    for method, url, data in urls[:3]:  # warm-up
        client.open(url, method=method, data=data)
    cpu = []
    for method, url, data in urls:
        start = time.process_time()
        client.open(url, method=method, data=data)
        cpu.append((time.process_time() - start) * 1000)
    return cpu


# The three requests ----------------------------------------------------------------


def moderator(app):
    client = profile_queue.signed_in(app)
    page = client.get("/moderation/")
    assert page.status_code == 200, page.status_code
    token = re.search(r'data-csrf="([^"]+)"', page.text).group(1)
    return client, token, len(page.data)


def approve(n: int) -> dict:
    post = int(QUEUE_DB.with_suffix(".sqlite3.post").read_text())
    work, again = OUT / "floor-forum.sqlite3", OUT / "floor-replay.sqlite3"
    copy_db(QUEUE_DB, work)
    copy_db(QUEUE_DB, again)
    app = forum_app(work)
    client, token, _ = moderator(app)
    ids = profile_queue.pending_ids(app, 2 * n + 20)
    measured, profiled = ids[:n], ids[n:]

    def call(comment_id: int) -> Callable[[], None]:
        def go() -> None:
            resp = client.post(
                f"/moderation/comments/{comment_id}/approve",
                data={"csrf_token": token},
                headers={"Accept": "application/json"},
            )
            assert resp.status_code == 200, resp.status_code

        return go

    statements, cpu = capture(app, [call(i) for i in measured])
    raw = replay(again, statements, write=True)
    if state(work) != state(again):
        sys.exit("approve: the replay did not leave the database as the forum did")
    size = len(
        client.post(
            f"/moderation/comments/{profiled[0]}/approve",
            data={"csrf_token": token},
            headers={"Accept": "application/json"},
        ).data
    )
    shares = split([call(i) for i in profiled[1:]])
    bare = bare_calls(again, [("GET", f"/rows?post={post}&n=1&size={size}", None)] * n)
    drop(work)
    drop(again)
    return {
        "forum": cpu,
        "sql": raw,
        "bare": bare,
        "statements": statements,
        "split": shares,
        "bare_label": "bare one-row page of the same bytes",
    }


def dashboard(n: int) -> dict:
    post = int(QUEUE_DB.with_suffix(".sqlite3.post").read_text())
    work = OUT / "floor-forum.sqlite3"
    copy_db(QUEUE_DB, work)
    app = forum_app(work)
    client, _, size = moderator(app)
    client.get("/moderation/")

    def go() -> None:
        resp = client.get("/moderation/")
        assert resp.status_code == 200, resp.status_code

    statements, cpu = capture(app, [go] * n)
    raw = replay(work, statements, write=False)
    shares = split([go] * n)
    bare = bare_calls(work, [("GET", f"/rows?post={post}&n=25&size={size}", None)] * n)
    drop(work)
    return {
        "forum": cpu,
        "sql": raw,
        "bare": bare,
        "statements": statements,
        "split": shares,
        "bare_label": "bare 25-row page of the same bytes",
    }


def guest_post(n: int) -> dict:
    import corpus

    if not POST_DB.exists():
        sys.exit(f"{POST_DB} is missing: run bench/post_cpu.py --build")
    post_id, slug = POST_DB.with_suffix(".post").read_text().split()
    work, again = OUT / "floor-forum.sqlite3", OUT / "floor-replay.sqlite3"
    copy_db(POST_DB, work)
    copy_db(POST_DB, again)
    app = forum_app(work)
    client = app.test_client(use_cookies=False)
    first = client.get(f"/posts/{post_id}/{slug}")
    cookie = "; ".join(v.split(";", 1)[0] for v in first.headers.getlist("Set-Cookie"))

    def hidden(name: str) -> str:
        return re.search(rf'name="{name}"[^>]*value="([^"]*)"', first.text).group(1)

    token, rendered = hidden("csrf_token"), hidden("rendered_at")
    bodies = corpus.corpus(200, 1234)

    def form(i: int) -> dict:
        return {
            "csrf_token": token,
            "rendered_at": rendered,
            "parent_id": "",
            "body": f"{bodies[(i * 7919) % len(bodies)]}\n\nClient 0 #{i}.",
            "author_name": f"Poster 0-{i}",
            "author_email": f"poster0.{i}@example.org",
            "author_url": "",
            "homepage": "",
        }

    def call(i: int) -> Callable[[], None]:
        def go() -> None:
            resp = client.post(
                f"/posts/{post_id}/comments", data=form(i), headers={"Cookie": cookie}
            )
            assert resp.status_code == 302, resp.status_code

        return go

    # The first five are a warm-up: recorded and replayed (the replay must start where
    # the forum did) but not counted.
    statements, cpu = capture(app, [call(i) for i in range(5 + n)])
    raw = replay(again, statements, write=True)[5:]
    if state(work) != state(again):
        sys.exit("post: the replay did not leave the database as the forum did")
    statements, cpu = statements[5:], cpu[5:]
    shares = split([call(i) for i in range(5 + n, 5 + 2 * n)])
    bare_form = {k: v for k, v in form(0).items() if k not in ("csrf_token", "rendered_at")}
    bare = bare_calls(again, [("POST", f"/posts/{post_id}/comments", bare_form)] * n)
    drop(work)
    drop(again)
    return {
        "forum": cpu,
        "sql": raw,
        "bare": bare,
        "statements": statements,
        "split": shares,
        "bare_label": "bare POST (one INSERT, one UPDATE, a commit)",
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--only", choices=("approve", "dashboard", "post"))
    args = parser.parse_args()
    if not QUEUE_DB.exists():
        sys.exit(f"{QUEUE_DB} is missing: run bench/profile_queue.py --pending 100000")
    kinds = {"approve": approve, "dashboard": dashboard, "post": guest_post}
    for name, measure in kinds.items():
        if args.only and name != args.only:
            continue
        got = measure(args.requests)
        forum, sql, bare = (statistics.median(got[k]) for k in ("forum", "sql", "bare"))
        counts = sorted({len(s) for s in got["statements"]})
        print(f"\n{name}: {args.requests} requests, SQLite, median CPU ms per request")
        print(f"  forum, in-process (test client, CSRF on) {forum:7.3f}")
        print(f"  its statements on sqlite3 alone           {sql:7.3f}  ({counts} statements)")
        print(f"  {got['bare_label']:41} {bare:7.3f}")
        print(f"  forum / bare {forum / bare:.2f}; statements alone / bare {sql / bare:.2f}")
        print(
            "  the forum's profiled own time by package: "
            + ", ".join(f"{key} {share:.0%}" for key, share in got["split"])
        )


if __name__ == "__main__":
    main()
