"""Where a request's CPU goes: its own SQL on the bare driver, and the Python around it.

    .venv/bin/python bench/sql_floor.py [--requests 200] [--only approve|dashboard|post]
        [--postgresql]

For the three requests whose targets `make bench` does not meet (the approve POST and the
dashboard's first page at 100,000 pending, the guest comment POST), in this process:

1. The forum serves `--requests` of them through the test client (CSRF on, as in
   production), on a copy of the database, and every statement each request sends to
   the driver is recorded with its parameters as the driver received them.
2. The same statements go again straight to the driver (`sqlite3`, or psycopg: BEGIN,
   the statements, COMMIT; no Flask, no SQLAlchemy) on a second fresh copy, in the same
   order, so each finds the rows its original found; a few aggregates of both copies
   must then be equal (the replay did what the forum did).
3. The bare page `make bench` compares the request with (bench/baseline_app.py: the bare
   page of the same bytes, or the bare POST), through Flask in this process.
4. A cProfile of the forum's requests, its own time summed by package.

Median CPU (time.process_time) per request of each. The statements alone are the floor
of the design: what the database and its driver do for everything a request reads and writes in its
transaction (counters, spam lessons, flags, notifications, page versions). Everything else
is the Python around them. Databases: bench/out/profile-queue-100000.sqlite3
(bench/profile_queue.py builds it) and bench/out/post_cpu-pristine.sqlite3
(bench/post_cpu.py --build); with --postgresql the approve and the dashboard on copies
(CREATE DATABASE ... TEMPLATE) of the database bench/profile_queue.py --postgresql builds.
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import os
import pstats
import re
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

import datagen  # noqa: E402
import inprocess  # noqa: E402
import post_cpu  # noqa: E402
import profile_queue  # noqa: E402

OUT = HERE / "out"
QUEUE_DB = OUT / "profile-queue-100000.sqlite3"
POST_DB = OUT / "post_cpu-pristine.sqlite3"
PG_SOURCE = profile_queue.PG_DATABASE  # bench/profile_queue.py --postgresql builds it

Statements = list[tuple[str, object, bool]]

# What must come out the same on both copies.
CHECKS = (
    "SELECT status, count(*), sum(CASE WHEN visible THEN 1 ELSE 0 END) FROM comment"
    " GROUP BY status ORDER BY status",
    "SELECT count(*), round(sum(step) * 1000000) FROM spam_lesson",
    "SELECT count(*), round(sum(weight) * 1000000), sum(spam), sum(ham) FROM spam_feature",
    "SELECT count(*) FROM moderation_action",
    "SELECT name, sum(n) FROM queue_counter GROUP BY name ORDER BY name",
)


class SqliteCopy:
    """A copy of a SQLite database (SQLite's online backup, its WAL included)."""

    def __init__(self, source: Path, name: str) -> None:
        self.path = OUT / f"floor-{name}.sqlite3"
        datagen.copy_sqlite(source, self.path)
        self.url = f"sqlite:///{self.path}"

    def drop(self) -> None:
        for suffix in ("", "-wal", "-shm", ".writelock"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    def state(self) -> list[list[tuple]]:
        with sqlite3.connect(self.path) as conn:
            return [conn.execute(sql).fetchall() for sql in CHECKS]

    def replay(self, requests: list[Statements], write: bool) -> list[float]:
        """The statements straight to sqlite3, one transaction per request."""
        conn = sqlite3.connect(self.path, isolation_level=None)
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


class PgCopy:
    """A copy of a PostgreSQL database (CREATE DATABASE ... TEMPLATE)."""

    def __init__(self, source: str, name: str) -> None:
        self.name = f"floor_{name}"
        self.drop()
        profile_queue.pg_admin(f'CREATE DATABASE "{self.name}" TEMPLATE "{source}"')
        self.url = f"{datagen.PG_SERVER}/{self.name}"

    def drop(self) -> None:
        profile_queue.pg_admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def _connect(self):
        import psycopg

        return psycopg.connect(self.url.replace("postgresql+psycopg://", "postgresql://"))

    def state(self) -> list[list[tuple]]:
        with self._connect() as conn:
            return [[tuple(row) for row in conn.execute(sql).fetchall()] for sql in CHECKS]

    def replay(self, requests: list[Statements], write: bool) -> list[float]:
        """The statements straight to psycopg, one transaction per request."""
        conn = self._connect()
        cpu: list[float] = []
        for statements in requests:
            start = time.process_time()
            with conn.cursor() as cursor:
                for sql, params, many in statements:
                    if many and isinstance(params, list):
                        cursor.executemany(sql, params)
                    else:
                        cursor.execute(sql, params)
                        if cursor.description is not None:
                            cursor.fetchall()
            conn.commit()
            cpu.append((time.process_time() - start) * 1000)
        conn.close()
        return cpu


def forum_app(url: str):
    logging.disable(logging.INFO)
    return inprocess.forum_app(url, BASE_URL="http://localhost", WTF_CSRF_ENABLED=True)


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


def bare_calls(url: str, urls: list[tuple[str, str, dict | None]]) -> list[float]:
    """CPU ms of the bare app's requests (bench/baseline_app.py) on this database."""
    os.environ["BENCH_DATABASE_URL"] = url
    import baseline_app

    client = baseline_app.create_app().test_client()
    for method, path, data in urls[:3]:  # warm-up
        client.open(path, method=method, data=data)
    cpu = []
    for method, path, data in urls:
        start = time.process_time()
        client.open(path, method=method, data=data)
        cpu.append((time.process_time() - start) * 1000)
    return cpu


# The three requests ----------------------------------------------------------------


def moderator(app):
    client = profile_queue.signed_in(app)
    page = client.get("/moderation/")
    assert page.status_code == 200, page.status_code
    token = re.search(r'data-csrf="([^"]+)"', page.text).group(1)
    return client, token, len(page.data)


def approve(copy: Callable[[str], SqliteCopy | PgCopy], post: int, n: int) -> dict:
    work, again = copy("forum"), copy("replay")
    try:
        app = forum_app(work.url)
        client, token, _ = moderator(app)
        ids = profile_queue.pending_ids(app, 2 * n + 20)

        def call(comment_id: int) -> Callable[[], None]:
            def go() -> None:
                resp = client.post(
                    f"/moderation/comments/{comment_id}/approve",
                    data={"csrf_token": token},
                    headers={"Accept": "application/json"},
                )
                assert resp.status_code == 200, resp.status_code

            return go

        statements, cpu = capture(app, [call(i) for i in ids[:n]])
        raw = again.replay(statements, write=True)
        if work.state() != again.state():
            sys.exit("approve: the replay did not leave the database as the forum did")
        size = len(
            client.post(
                f"/moderation/comments/{ids[n]}/approve",
                data={"csrf_token": token},
                headers={"Accept": "application/json"},
            ).data
        )
        shares = split([call(i) for i in ids[n + 1 :]])
        bare = bare_calls(again.url, [("GET", f"/rows?post={post}&n=1&size={size}", None)] * n)
        with app.app_context():
            from forum.extensions import db

            db.engine.dispose()
    finally:
        work.drop()
        again.drop()
    return {
        "forum": cpu,
        "sql": raw,
        "bare": bare,
        "statements": statements,
        "split": shares,
        "bare_label": "bare one-row page of the same bytes",
    }


def dashboard(copy: Callable[[str], SqliteCopy | PgCopy], post: int, n: int) -> dict:
    work = copy("forum")
    try:
        app = forum_app(work.url)
        client, _, size = moderator(app)
        client.get("/moderation/")

        def go() -> None:
            resp = client.get("/moderation/")
            assert resp.status_code == 200, resp.status_code

        statements, cpu = capture(app, [go] * n)
        raw = work.replay(statements, write=False)
        shares = split([go] * n)
        bare = bare_calls(work.url, [("GET", f"/rows?post={post}&n=25&size={size}", None)] * n)
        with app.app_context():
            from forum.extensions import db

            db.engine.dispose()
    finally:
        work.drop()
    return {
        "forum": cpu,
        "sql": raw,
        "bare": bare,
        "statements": statements,
        "split": shares,
        "bare_label": "bare 25-row page of the same bytes",
    }


def guest_post(n: int) -> dict:
    if not POST_DB.exists():
        sys.exit(f"{POST_DB} is missing: run bench/post_cpu.py --build")
    post_id, slug = POST_DB.with_suffix(".post").read_text().split()
    work, again = SqliteCopy(POST_DB, "forum"), SqliteCopy(POST_DB, "replay")
    try:
        app = forum_app(work.url)
        client = app.test_client(use_cookies=False)
        cookie, form = post_cpu.guest_forms(client, post_id, slug)

        def call(i: int) -> Callable[[], None]:
            def go() -> None:
                resp = client.post(
                    f"/posts/{post_id}/comments", data=form(i), headers={"Cookie": cookie}
                )
                assert resp.status_code == 302, resp.status_code

            return go

        # The first five are a warm-up: recorded and replayed (the replay must start
        # where the forum did) but not counted.
        statements, cpu = capture(app, [call(i) for i in range(5 + n)])
        raw = again.replay(statements, write=True)[5:]
        if work.state() != again.state():
            sys.exit("post: the replay did not leave the database as the forum did")
        statements, cpu = statements[5:], cpu[5:]
        shares = split([call(i) for i in range(5 + n, 5 + 2 * n)])
        bare_form = {k: v for k, v in form(0).items() if k not in ("csrf_token", "rendered_at")}
        bare = bare_calls(again.url, [("POST", f"/posts/{post_id}/comments", bare_form)] * n)
    finally:
        work.drop()
        again.drop()
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
    parser.add_argument(
        "--postgresql",
        action="store_true",
        help=f"the approve and the dashboard on copies of the database {PG_SOURCE}",
    )
    args = parser.parse_args()
    if args.postgresql:
        marker = OUT / "profile-queue-pg-100000.post"
        if not marker.exists():
            sys.exit("run bench/profile_queue.py --postgresql --pending 100000 first")
        database = "PostgreSQL"

        def copy(name: str) -> PgCopy:
            return PgCopy(PG_SOURCE, name)

    else:
        marker = QUEUE_DB.with_suffix(".sqlite3.post")
        if not QUEUE_DB.exists() or not marker.exists():
            sys.exit(f"{QUEUE_DB} is missing: run bench/profile_queue.py --pending 100000")
        database = "SQLite"

        def copy(name: str) -> SqliteCopy:
            return SqliteCopy(QUEUE_DB, name)

    post = int(marker.read_text())
    kinds: dict[str, Callable[[], dict]] = {
        "approve": lambda: approve(copy, post, args.requests),
        "dashboard": lambda: dashboard(copy, post, args.requests),
    }
    if not args.postgresql:
        kinds["post"] = lambda: guest_post(args.requests)
    for name, measure in kinds.items():
        if args.only and name != args.only:
            continue
        got = measure()
        forum, sql, bare = (statistics.median(got[k]) for k in ("forum", "sql", "bare"))
        counts = sorted({len(s) for s in got["statements"]})
        print(f"\n{name}: {args.requests} requests, {database}, median CPU ms per request")
        print(f"  forum, in-process (test client, CSRF on) {forum:7.3f}")
        print(f"  its statements on the driver alone        {sql:7.3f}  ({counts} statements)")
        print(f"  {got['bare_label']:41} {bare:7.3f}")
        print(f"  forum / bare {forum / bare:.2f}; statements alone / bare {sql / bare:.2f}")
        shares = ", ".join(f"{key} {share:.0%}" for key, share in got["split"])
        print(f"  the forum's profiled own time by package: {shares}")


if __name__ == "__main__":
    main()
