"""More of `make bench`: the signed-in member's thread pages, the front page, a tag page,
the three Atom feeds, and the queue at 100,000 pending on PostgreSQL.

Each function takes the running `run.Bench` (its servers, data and results) and records
its forum runs next to a bare-page baseline of the same bytes, measured right after.
"""

from __future__ import annotations

import random
import time

import datagen
import inprocess
import loadgen
from server import APP_ROOT, Server

MEMBER_SIZES = [10, 100, 1000]
PG_QUEUE = 100_000
APPROVALS_LARGEST = 1_000  # approve POSTs at 100,000 pending, here and on SQLite (run.py)


def once_seconds(seconds: float, requests: int) -> float:
    """wrk's limit for a run that sends each of `requests` once: twice a run's length, and
    at least 20 ms a request (an approval takes under 10 ms with two connections)."""
    return max(seconds * 2, requests / 50)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- the signed-in member -------------------------------------------------------------------


def member_threads(bench, app) -> None:
    """Thread pages as member0, who has comments awaiting moderation on every thread."""
    from run import thread_paths

    member_id = 2  # datagen: the moderator is 1, member0 is 2
    for size in MEMBER_SIZES:
        paths = thread_paths(bench.threads[size])
        bench.results["queries"][f"thread_member_{size}"] = [
            inprocess.queries_for(app, "GET", p, user_id=member_id) for p in paths
        ]
    cookie, _ = bench.login(datagen.MEMBER)
    last = thread_paths(bench.threads[MEMBER_SIZES[0]])[-1]
    page = loadgen.request(bench.forum.port, "GET", last, cookie)
    own = page.body.count("member0")
    if page.status != 200 or own < datagen.OWN_PENDING:
        raise RuntimeError(f"the member's page does not show their pending comments: {own}")
    bench.thread_pages("thread_member", MEMBER_SIZES, cookie)


# --- front page, tag page, feeds --------------------------------------------------------------


def listing_paths(bench) -> dict[str, tuple[str, str]]:
    """name -> (measured path, what counts one row of it in the page)."""
    post = bench.threads[100].post_id
    return {
        "front_page": ("/", 'class="post-item"'),
        "tag_page": ("/tags/topic-1", 'class="post-item"'),
        "feed_posts": ("/feed.atom", "<entry>"),
        "feed_comments": ("/comments/feed.atom", "<entry>"),
        "feed_post_comments": (f"/posts/{post}/feed.atom", "<entry>"),
    }


def listing_query_paths(bench, app) -> dict[str, list[str]]:
    """Pages whose query counts must be equal: first, later and last pages (fewer rows),
    another tag, the feed of a short thread and of a long one."""
    from forum.extensions import db
    from forum.models import Post

    with app.app_context():
        posts = db.session.query(Post).count()
    per_page = app.config["POSTS_PER_PAGE"]
    last = -(-posts // per_page)
    tag_pages = [
        "/tags/topic-1",
        "/tags/topic-2",
        "/tags/topic-1?page=2",
    ]
    return {
        "front_page": ["/", "/?page=2", f"/?page={last}"],
        "tag_page": tag_pages,
        "feed_posts": ["/feed.atom"],
        "feed_comments": ["/comments/feed.atom"],
        "feed_post_comments": [f"/posts/{bench.threads[s].post_id}/feed.atom" for s in (10, 1000)],
    }


def listings(bench, app) -> None:
    for name, paths in listing_query_paths(bench, app).items():
        bench.results["queries"][name] = [inprocess.queries_for(app, "GET", p) for p in paths]
    post = bench.threads[1000].post_id
    for name, (path, marker) in listing_paths(bench).items():
        started = time.perf_counter()
        resp = loadgen.request(bench.forum.port, "GET", path)
        took = time.perf_counter() - started
        if resp.status != 200:
            raise RuntimeError(f"GET {path}: {resp.status}")
        rows = max(1, resp.body.count(marker))
        size = len(resp.body.encode())
        bench.results["pages"][name] = {"path": path, "rows": rows, "bytes": size}
        seconds = bench.duration(took)
        bench.record(name, bench.wrk(name.replace("_", " "), bench.forum.port, [path], seconds))
        bench.record(
            f"baseline_{name}",
            bench.wrk(
                f"baseline {name}",
                bench.base.port,
                [f"/rows?post={post}&n={rows}&size={size}"],
                seconds,
            ),
        )


# --- the queue on PostgreSQL ------------------------------------------------------------------


def postgresql_queue(bench) -> None:
    """The dashboard's first page and 1,000 approvals at 100,000 pending on PostgreSQL, with
    a baseline app reading the same PostgreSQL database."""
    started = time.perf_counter()
    with datagen.postgres_database("queue") as url:
        gen = datagen.Generator(datagen.make_engine(url))
        gen.create_schema()
        gen.bodies = bench.gen.bodies
        gen.make_people()
        gen.make_filler()
        gen.add_pending(PG_QUEUE, [])
        gen.settle()
        log(f"PostgreSQL: {PG_QUEUE:,} pending written in {time.perf_counter() - started:.0f} s")
        env = {**bench.env(), "FORUM_DATABASE_URL": url, "BENCH_DATABASE_URL": url}
        log_file = bench.log_file.with_name(bench.log_file.stem + "-pg.log")
        with (
            Server("wsgi:app", env, log_file, root=APP_ROOT) as forum,
            Server("baseline_app:create_app()", env, log_file, pythonpath=str(bench.here)) as base,
        ):
            _queue_runs(bench, gen, forum, base)
            crashes = log_file.read_text().count("was sent SIG")
            bench.results["worker_crashes"] = bench.results.get("worker_crashes", 0) + crashes
        gen.engine.dispose()


def _queue_runs(bench, gen, forum: Server, base: Server) -> None:
    from sqlalchemy import select

    from forum.models import Comment, Status

    cookie, token = loadgen.login(forum.port, *datagen.MODERATOR, landing="/moderation/")
    with gen.engine.connect() as conn:
        ids = list(conn.scalars(select(Comment.id).where(Comment.status == Status.PENDING)))
    sample = random.Random(PG_QUEUE).sample(ids, APPROVALS_LARGEST + 1)
    filler = gen.filler_posts[0]

    def wrk(server: Server, name: str, paths, seconds, **kw) -> loadgen.Run:
        return loadgen.wrk(name, server.port, paths, seconds, cpu=server.cpu_seconds, **kw)

    first = loadgen.request(forum.port, "GET", "/moderation/", cookie)
    if first.status != 200:
        raise RuntimeError(f"GET /moderation/ on PostgreSQL: {first.status}")
    key = f"dashboard_first_pg_{PG_QUEUE}"
    bench.results["pages"][key] = {"bytes": len(first.body.encode())}
    bench.record(
        key, wrk(forum, "dashboard first pg", ["/moderation/"], bench.seconds, cookie=cookie)
    )
    bench.record(
        "baseline_dashboard_pg",
        wrk(
            base,
            "baseline dashboard pg",
            [f"/rows?post={filler}&n=25&size={len(first.body.encode())}"],
            bench.seconds,
        ),
    )
    headers = {"Accept": "application/json", "X-CSRFToken": token}
    paths = [f"/moderation/comments/{i}/approve" for i in sample]
    probe = loadgen.request(forum.port, "POST", paths[0], cookie, {}, headers=headers)
    if probe.status != 200 or '"ok":true' not in probe.body.replace(" ", ""):
        raise RuntimeError(f"approve on PostgreSQL: {probe.status} {probe.body[:200]}")
    size = len(probe.body.encode())
    key = f"approve_pg_{PG_QUEUE}"
    run = bench.record(
        key,
        wrk(
            forum,
            "approve pg",
            paths[1:],
            once_seconds(bench.seconds, len(sample)),
            method="POST",
            cookie=cookie,
            headers=headers,
            once=True,
        ),
    )
    run.extra["approved"] = len(paths)
    bench.results["runs"][key]["extra"]["approved"] = len(paths)
    # The bare approval (information): as many other pending comments, one UPDATE each.
    taken = set(sample)
    others = [i for i in random.Random(PG_QUEUE + 1).sample(ids, 2 * len(sample)) if i not in taken]
    bench.record(
        "baseline_approve_pg",
        wrk(
            base,
            "baseline approve pg",
            [f"/comments/{i}/approve?size={size}" for i in others[: len(sample) - 1]],
            once_seconds(bench.seconds, len(sample)),
            method="POST",
            once=True,
        ),
    )
    bench.record(
        "baseline_small_pg",
        wrk(base, "baseline small pg", [f"/rows?post={filler}&n=1&size={size}"], bench.seconds),
    )


def pg_available() -> bool:
    """Whether BENCH_PG_SERVER answers (the PostgreSQL rows are skipped, and say so, if not)."""
    from sqlalchemy import create_engine

    try:
        engine = create_engine(f"{datagen.PG_SERVER}/postgres")
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:  # noqa: BLE001 - any failure means "not here"
        return False
