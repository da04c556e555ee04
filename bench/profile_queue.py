"""Profile the dashboard's first page and the approve POST at a large queue, in-process.

    .venv/bin/python bench/profile_queue.py [--pending 100000] [--rebuild] [--top 25]
        [--postgresql [--drop]]

Builds (once; --rebuild to start again) bench/out/profile-queue-N.sqlite3 the way
`make bench` builds its queue (bench/datagen.py: the threads of 10 to 5,000 comments,
the filler posts, then N pending comments), then, in this process with the test client:
best-of-N CPU time of the dashboard's first page (kept whole, and after a change to the
queue: what a moderator's first load after an action costs), of the approve POST (each on a
different pending comment) and of the bare pages `make bench` compares them with
(bench/baseline_app.py: /rows of the dashboard's bytes, and of one row), the statements
each runs (an approval: of a top-level comment and of a reply), and a cProfile of each
(cumulative, the top lines). BENCH_APP_ROOT measures another checkout (a "before").

--postgresql builds the same queue in the database `bench_profile` on BENCH_PG_SERVER
(bench/datagen.py; never the tests' database), kept between runs like the SQLite file
(--rebuild makes it again, --drop drops it after the run). The bare pages then read it
too, so both sides pay for a PostgreSQL round trip.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = Path(os.environ.get("BENCH_APP_ROOT") or HERE.parent).resolve()
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(ROOT))

import inprocess  # noqa: E402

OUT = HERE / "out"
SORT = os.environ.get("PROFILE_SORT", "cumulative")


PG_DATABASE = "bench_profile"


def pg_admin(statement: str) -> None:
    import datagen
    from sqlalchemy import create_engine

    admin = create_engine(f"{datagen.PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(statement)
    admin.dispose()


def build(url: str, pending: int) -> int:
    import datagen  # this checkout's, whatever BENCH_APP_ROOT says

    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    else:
        pg_admin(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
        pg_admin(f'CREATE DATABASE "{PG_DATABASE}"')
    gen = datagen.Generator(datagen.make_engine(url))
    gen.create_schema()
    gen.make_bodies()
    gen.make_people()
    threads = gen.make_threads([10, 100, 1000, 5000], 50)  # bench/run.py's THREAD_SIZES
    gen.make_threads([10], 50)
    gen.make_filler()
    gen.sync_ids()
    gen.add_pending(pending, [t.post_id for t in threads.values()])
    gen.settle()
    gen.engine.dispose()
    return threads[1000].post_id


def pending_ids(app, n: int, replies: bool | None = None) -> list[int]:
    """Pending comments to approve; replies=True/False: only replies / top-level ones."""
    from sqlalchemy import select

    from forum.extensions import db
    from forum.models import Comment, Status

    stmt = select(Comment.id).where(Comment.status == Status.PENDING)
    if replies is not None:
        kind = Comment.parent_id.is_not(None) if replies else Comment.parent_id.is_(None)
        stmt = stmt.where(kind)
    with app.app_context():
        return list(db.session.scalars(stmt.limit(n * 7)))[::7][:n]


def signed_in(app):
    client = app.test_client()
    with client.session_transaction() as sess:
        sess["_user_id"] = "1:"
        sess["_fresh"] = True
    return client


def cpu_ms(call, n: int) -> float:
    best = float("inf")
    for _ in range(n):
        start = time.process_time()
        call()
        best = min(best, time.process_time() - start)
    return round(best * 1000, 2)


def cpu_ms_after(prepare, call, n: int) -> float:
    """cpu_ms of `call`, each time after `prepare` (not timed)."""
    best = float("inf")
    for _ in range(n):
        prepare()
        start = time.process_time()
        call()
        best = min(best, time.process_time() - start)
    return round(best * 1000, 2)


def queue_changed(app) -> None:
    """A change only the dashboard shows, committed: the next page is not the kept one
    (what a moderator's first load after an action costs: the frame and items kept)."""
    from forum.extensions import db
    from forum.services import versions

    with app.app_context(), db.engine.begin() as connection:
        versions.bump_on(connection, [versions.QUEUE])


def profile(call, n: int, top: int) -> str:
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(n):
        call()
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats(SORT).print_stats(top)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pending", type=int, default=100_000)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--postgresql", action="store_true", help=f"in database {PG_DATABASE}")
    parser.add_argument("--drop", action="store_true", help="drop that database at the end")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    if args.postgresql:
        import datagen

        url = f"{datagen.PG_SERVER}/{PG_DATABASE}"
        marker = OUT / f"profile-queue-pg-{args.pending}.post"
    else:
        url = f"sqlite:///{OUT / f'profile-queue-{args.pending}.sqlite3'}"
        marker = OUT / f"profile-queue-{args.pending}.sqlite3.post"
    if args.rebuild or not marker.exists():
        marker.unlink(missing_ok=True)
        started = time.perf_counter()
        post = build(url, args.pending)
        marker.write_text(str(post))
        print(f"built {url} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    try:
        run(args, url, int(marker.read_text()))
    finally:
        if args.postgresql and args.drop:
            marker.unlink(missing_ok=True)
            pg_admin(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')


def run(args: argparse.Namespace, url: str, post: int) -> None:
    os.environ["BENCH_DATABASE_URL"] = url
    import baseline_app

    from forum.services import versions

    app = inprocess.forum_app(url, BASE_URL="http://localhost")
    mod = signed_in(app)
    base = baseline_app.create_app().test_client()
    page = mod.get("/moderation/")
    assert page.status_code == 200, page.status_code
    size = len(page.data)
    ids = pending_ids(app, 4 * args.runs + 8)

    def approve() -> None:
        resp = mod.post(
            f"/moderation/comments/{ids.pop()}/approve", headers={"Accept": "application/json"}
        )
        assert resp.status_code == 200, resp.status_code

    approve_bytes = len(
        mod.post(
            f"/moderation/comments/{ids.pop()}/approve", headers={"Accept": "application/json"}
        ).data
    )
    bare_dash = f"/rows?post={post}&n=25&size={size}"
    bare_small = f"/rows?post={post}&n=1&size={approve_bytes}"
    for _ in range(2):
        base.get(bare_dash)
        base.get(bare_small)
    figures = {
        "dashboard_ms": cpu_ms(lambda: mod.get("/moderation/"), args.runs),
        # A checkout from before the dashboard's version: every page is like this one.
        "dashboard_after_change_ms": (
            cpu_ms_after(lambda: queue_changed(app), lambda: mod.get("/moderation/"), args.runs)
            if hasattr(versions, "QUEUE")
            else None
        ),
        "bare_dashboard_ms": cpu_ms(lambda: base.get(bare_dash), args.runs),
        "approve_ms": cpu_ms(approve, args.runs),
        "bare_small_ms": cpu_ms(lambda: base.get(bare_small), args.runs),
        "dashboard_queries": inprocess.queries_for(app, "GET", "/moderation/", user_id=1),
    }
    # The statements depend on the kind of comment (a reply's parent and notifications).
    for kind, replies in (("top_level", False), ("reply", True)):
        figures[f"approve_queries_{kind}"] = inprocess.queries_for(
            app,
            "POST",
            f"/moderation/comments/{pending_ids(app, 1, replies)[0]}/approve",
            user_id=1,
            headers={"Accept": "application/json"},
        )
    figures["dashboard_ratio"] = round(figures["dashboard_ms"] / figures["bare_dashboard_ms"], 2)
    figures["approve_ratio"] = round(figures["approve_ms"] / figures["bare_small_ms"], 2)
    for key, value in figures.items():
        print(f"{key:>26}: {value}")
    if not args.no_profile:
        print("\n=== dashboard first page ===")
        print(profile(lambda: mod.get("/moderation/"), 5, args.top))
        print("\n=== approve POST ===")
        print(profile(approve, 5, args.top))


if __name__ == "__main__":
    main()
