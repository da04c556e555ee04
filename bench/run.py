"""`make bench`: how fast the forum is and how its cost grows, against a bare-Flask baseline.

Builds its own SQLite database under bench/out/, starts the forum and the baseline app
(bench/baseline_app.py) under the project's gunicorn.conf.py with 2 sync workers on
127.0.0.1, measures with wrk (and a small Python client for the comment form), and writes
bench/RESULTS.md, bench/latency.png and the raw figures in bench/out/results.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from pathlib import Path
from urllib.parse import quote

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
# BENCH_APP_ROOT: measure another checkout of the forum (a "before" for a change).
from server import APP_ROOT as ROOT  # noqa: E402

sys.path.insert(1, str(ROOT))

import corpus  # noqa: E402
import datagen  # noqa: E402
import inprocess  # noqa: E402
import loadgen  # noqa: E402
import pages  # noqa: E402
import report  # noqa: E402
from pages import APPROVALS_LARGEST, once_seconds  # noqa: E402
from server import Server  # noqa: E402

THREAD_SIZES = [10, 100, 1000, 5000]
# Of the 1,000- and 5,000-comment threads: their ratio is a median. Five, not three: on a
# noisier machine one run's CPU rounds read 1.07, 0.89 and 0.86 (bench/NOTES.md, session 12).
ROUNDS = 5
QUEUE_SIZES = [1_000, 10_000, 100_000]
PER_PAGE = 50  # COMMENT_THREADS_PER_PAGE
APPROVALS = 300  # approve POSTs per queue size (each a different comment)
OUT = HERE / "out"


def approvals_at(size: int) -> int:
    """Approve POSTs at a queue size. At the largest, 1% of the queue: there the p99 is the
    tenth slowest of 1,000 rather than the third of 300, which moved the ratio between 10x
    and 22x from run to run (bench/NOTES.md, session 11)."""
    return APPROVALS_LARGEST if size == QUEUE_SIZES[-1] else APPROVALS


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def thread_paths(info: datagen.ThreadInfo) -> list[str]:
    base = f"/posts/{info.post_id}/{info.slug}"
    return [base if page == 1 else f"{base}?page={page}" for page in range(1, info.pages + 1)]


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.seconds = args.seconds
        self.label = args.label
        self.here = HERE
        self.db_path = OUT / (f"bench-{self.label}.sqlite3" if self.label else "bench.sqlite3")
        self.url = f"sqlite:///{self.db_path}"
        self.results: dict = {"runs": {}, "queries": {}, "pages": {}, "notes": []}
        self.base_paths: dict[str, list[str]] = {}  # each thread run's bare pages

    # --- data ---------------------------------------------------------------------------

    def build(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.db_path}{suffix}").unlink(missing_ok=True)
        start = time.perf_counter()
        gen = self.gen = datagen.Generator(datagen.make_engine(self.url))
        gen.create_schema()
        gen.make_bodies()
        gen.make_people()
        self.threads = gen.make_threads(THREAD_SIZES, PER_PAGE)
        self.posting = gen.make_threads([10], PER_PAGE)[10]
        gen.add_own_pending(self.threads)
        gen.make_filler()
        self.results["data"] = {
            "thread_sizes": THREAD_SIZES,
            "threads": {
                str(s): {"post_id": t.post_id, "roots": t.roots, "pages": t.pages}
                for s, t in self.threads.items()
            },
            "filler_posts": datagen.FILLER_POSTS,
            "filler_comments_per_post": datagen.FILLER_COMMENTS,
            "members": datagen.MEMBERS,
            "guests": datagen.GUESTS,
            "body_pool": datagen.BODY_POOL,
            "approvals": {size: approvals_at(size) for size in QUEUE_SIZES},
            "build_seconds": round(time.perf_counter() - start, 1),
        }
        log(f"threads and filler written in {self.results['data']['build_seconds']} s")

    def top_up(self, target: int) -> float:
        start = time.perf_counter()
        self.gen.sync_ids()
        missing = target - self.gen.pending_count()
        if missing > 0:
            extra = [t.post_id for t in self.threads.values()]
            self.gen.add_pending(missing, extra)
        self.gen.settle()
        return time.perf_counter() - start

    def inprocess_cpu(self, app) -> dict:
        """Each thread page and its same-size bare page, best CPU time of 9 in this process."""
        os.environ["BENCH_DATABASE_URL"] = self.url
        import baseline_app

        forum, base = app.test_client(), baseline_app.create_app().test_client()
        out = {}
        post = self.threads[1000].post_id
        for size in THREAD_SIZES:
            forum_ms, base_ms = [], []
            for path in thread_paths(self.threads[size]):
                body = forum.get(path).data
                forum_ms.append(inprocess.best_cpu_ms(forum, path))
                n = body.count(b'class="comment depth-')
                base_ms.append(
                    inprocess.best_cpu_ms(base, f"/rows?post={post}&n={n}&size={len(body)}")
                )
            out[f"thread_{size}"] = {
                "forum_ms": round(sum(forum_ms) / len(forum_ms), 2),
                "baseline_ms": round(sum(base_ms) / len(base_ms), 2),
            }
        return out

    # --- servers --------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        return {
            "FORUM_DATABASE_URL": self.url,
            "FORUM_SECRET_KEY": "bench-secret-key",
            "FORUM_BASE_URL": "http://127.0.0.1:5000",
            "FORUM_RATELIMIT_ENABLED": "false",
            "FORUM_MODERATION_MIN_SUBMIT_SECONDS": "0",
            "FORUM_MAIL_SUPPRESS_SEND": "true",
            "BENCH_DATABASE_URL": self.url,
        }

    def record(self, key: str, run: loadgen.Run) -> loadgen.Run:
        self.results["runs"][key] = run.as_dict()
        log(
            f"{key:<28} {run.rps:>8.1f} req/s  p50 {run.p50_ms:>8.1f} ms  "
            f"p99 {run.p99_ms:>8.1f} ms  cpu {run.cpu_ms_per_request or 0:>7.1f} ms  "
            f"{run.bytes_per_request:>9} B  errors {run.errors}"
        )
        if run.errors:
            self.results["notes"].append(f"{key}: {run.errors} errors")
        return run

    def duration(self, one_request: float, seconds: float | None = None) -> float:
        """Long enough for about 20 answers from 2 connections, within 4x the usual."""
        seconds = seconds or self.seconds
        return math.ceil(min(max(seconds, one_request * 10), seconds * 4))  # wrk: whole seconds

    def wrk(self, name: str, port: int, *args, **kwargs) -> loadgen.Run:
        server = self.forum if port == self.forum.port else self.base
        return loadgen.wrk(name, port, *args, cpu=server.cpu_seconds, **kwargs)

    def baseline(self, key: str, n: int, size: int, seconds: float) -> loadgen.Run:
        """The bare page: one query for `n` rows of the 1,000-comment thread, `size` bytes."""
        post = self.threads[1000].post_id
        path = f"/rows?post={post}&n={n}&size={size}"
        return self.record(key, self.wrk(key, self.base.port, [path], seconds))

    # --- scenarios ------------------------------------------------------------------------

    def thread_pages(self, key: str = "thread", sizes=THREAD_SIZES, cookie: str = "") -> None:
        """Every page of each thread in turn, then the bare pages of the same sizes."""
        for size in sizes:
            info = self.threads[size]
            paths = thread_paths(info)
            started = time.perf_counter()
            pages = [loadgen.request(self.forum.port, "GET", p, cookie) for p in paths]
            took = (time.perf_counter() - started) / len(paths)
            for p, resp in zip(paths, pages, strict=True):
                if resp.status != 200:
                    raise RuntimeError(f"GET {p}: {resp.status}")
            shown = [r.body.count('class="comment depth-') for r in pages]
            sizes_ = [len(r.body.encode()) for r in pages]
            self.results["pages"][f"{key}_{size}"] = {"comments": shown, "bytes": sizes_}
            seconds = self.duration(took, self.seconds * (2 if size >= 1000 else 1))
            name = key.replace("_", " ")
            # Several pages in turn (5,000 comments): 3 s of warm-up, so every worker has
            # each page cached before the measured run (with 1 s the "5,000 vs 1,000" row
            # read 0.82 in one run and 0.98 in the next; bench/NOTES.md).
            warmup = 3 if len(paths) > 1 else 1
            self.record(
                f"{key}_{size}",
                self.wrk(
                    f"{name} {size}", self.forum.port, paths, seconds, warmup=warmup, cookie=cookie
                ),
            )
            post = self.threads[1000].post_id
            base_paths = self.base_paths[f"{key}_{size}"] = [
                f"/rows?post={post}&n={n}&size={b}" for n, b in zip(shown, sizes_, strict=True)
            ]
            self.record(
                f"baseline_{key}_{size}",
                self.wrk(f"baseline {name} {size}", self.base.port, base_paths, seconds),
            )

    def thread_rounds(self, rounds: int = ROUNDS) -> None:
        """The 1,000- and 5,000-comment threads again, alternating, each followed by its own
        bare page: the "5,000 vs 1,000" rows are the median of the rounds (with
        thread_pages' own), as one pair of runs a minute apart moved by 0.3 either way on
        this machine (drift, not the code: bench/NOTES.md, session 8). A round measures its
        baselines again: the two bare pages, the same work, once ran at 136.8 and 151.9
        req/s, and a round that reused them carried that 10% into every ratio (session 12)."""
        for n in range(2, rounds + 1):
            for size in (1000, 5000):
                paths = thread_paths(self.threads[size])
                seconds = self.seconds * 2
                warmup = 3 if len(paths) > 1 else 1
                self.record(
                    f"round{n}_thread_{size}",
                    self.wrk(
                        f"thread {size}, round {n}", self.forum.port, paths, seconds, warmup=warmup
                    ),
                )
                self.record(
                    f"baseline_round{n}_thread_{size}",
                    self.wrk(
                        f"baseline thread {size}, round {n}",
                        self.base.port,
                        self.base_paths[f"thread_{size}"],
                        seconds,
                    ),
                )

    def memory(self) -> None:
        """Peak RSS of the workers once every page of the largest thread has been served."""
        self.results["memory"] = {
            "forum": self.forum.memory(),
            "baseline": self.base.memory(),
            "after": f"thread_{THREAD_SIZES[-1]} (all {self.threads[THREAD_SIZES[-1]].pages} "
            "pages, every worker) and every smaller thread",
        }
        peak = max(w["VmHWM"] for w in self.results["memory"]["forum"]) / 1024
        log(f"forum worker peak RSS (VmHWM): {peak:.1f} MB")

    def post_comments(self) -> None:
        info = self.posting
        page = f"/posts/{info.post_id}/{info.slug}"
        bodies = corpus.corpus(200, 1234)
        run = loadgen.post_comments(
            self.forum.port,
            page,
            f"/posts/{info.post_id}/comments",
            bodies,
            self.seconds,
            cpu=self.forum.cpu_seconds,
        )
        self.record("post_comment", run)
        # Its yardstick: the bare POST (bench/baseline_app.py), the same form and clients,
        # one INSERT and its path, a commit, a redirect. The bare one-row page of the same
        # bytes, the yardstick before, is kept as information.
        self.record(
            "baseline_post",
            loadgen.post_comments(
                self.base.port,
                None,
                f"/posts/{info.post_id}/comments",
                bodies,
                self.seconds,
                cpu=self.base.cpu_seconds,
            ),
        )
        self.baseline("baseline_small", 1, run.bytes_per_request, self.seconds)
        # The posted comments joined the queue: take them out again (hold reasons cascade).
        from sqlalchemy import delete, func, select

        from forum.models import Comment

        with self.gen.engine.begin() as conn:
            posted = conn.scalar(
                select(func.count())
                .select_from(Comment)
                .where(Comment.post_id == info.post_id, Comment.author_name.like("Poster %"))
            )
            conn.execute(
                delete(Comment).where(
                    Comment.post_id == info.post_id, Comment.author_name.like("Poster %")
                )
            )
        self.results["runs"]["post_comment"]["extra"]["stored"] = posted

    # --- the moderation dashboard -----------------------------------------------------------

    def login(self, who: tuple[str, str] = datagen.MODERATOR) -> tuple[str, str]:
        """Sign in through /auth/login; returns (cookie, csrf token)."""
        landing = "/moderation/" if who == datagen.MODERATOR else "/"
        return loadgen.login(self.forum.port, *who, landing=landing)

    def deep_cursor(self, app, depth: int) -> str:
        from sqlalchemy import select

        from forum.extensions import db
        from forum.models import Comment, Status
        from forum.services.queue import Cursor

        with app.app_context():
            c = db.session.scalars(
                select(Comment)
                .where(Comment.status == Status.PENDING)
                .order_by(Comment.created_at.desc(), Comment.id.desc())
                .offset(depth)
                .limit(1)
            ).one()
            return Cursor.of(c).encode()

    def page_cursors(self, app, n: int, per_page: int = 25) -> list[str]:
        """The cursors after each of the queue's first `n` pages, newest first."""
        from sqlalchemy import select

        from forum.extensions import db
        from forum.models import Comment, Status
        from forum.services.queue import Cursor

        with app.app_context():
            rows = db.session.execute(
                select(Comment.created_at, Comment.id)
                .where(Comment.status == Status.PENDING)
                .order_by(Comment.created_at.desc(), Comment.id.desc())
                .limit(n * per_page)
            ).all()
        return [Cursor(r.created_at, r.id).encode() for r in rows[per_page - 1 :: per_page]]

    def pending_sample(self, n: int, seed: int, top_level: bool = False) -> list[int]:
        """`n` pending comments picked at random; `top_level`: only comments that answer no
        other (approving a reply also reads its parent's visibility, its pending ancestors and
        whether its parent's author asked to be told: three statements more, whatever the
        queue's size)."""
        from sqlalchemy import select

        from forum.models import Comment, Status

        query = select(Comment.id).where(Comment.status == Status.PENDING)
        if top_level:
            query = query.where(Comment.parent_id.is_(None))
        with self.gen.engine.connect() as conn:
            ids = list(conn.scalars(query))
        return random.Random(seed).sample(ids, min(n, len(ids)))

    def reset(self, ids: list[int]) -> None:
        """Put approved comments back in the queue, so each size is measured at its size.

        Through a session, so the page versions see the change (a cached thread would
        otherwise go on showing them approved), then the queue counters are recounted."""
        from sqlalchemy import update
        from sqlalchemy.orm import Session

        from forum.models import Comment, Status
        from forum.services import counters

        with Session(self.gen.engine) as session, session.begin():
            for start in range(0, len(ids), 500):
                session.execute(
                    update(Comment)
                    .where(Comment.id.in_(ids[start : start + 500]))
                    .values(
                        status=Status.PENDING,
                        visible=False,
                        moderated_at=None,
                        moderated_by_id=None,
                    )
                )
            counters.rebuild_on(session)

    def queue(self, app) -> None:
        cookie, token = self.login()
        json_headers = {"Accept": "application/json", "X-CSRFToken": token}
        for size in QUEUE_SIZES:
            took = self.top_up(size)
            log(f"queue topped up to {size:,} pending in {took:.1f} s")
            deep = f"/moderation/?after={quote(self.deep_cursor(app, int(size * 0.9)))}"
            first = "/moderation/"
            # Query counts, in-process: both pages and one approval (then undone), of a
            # top-level comment at every size, so that the counts compare the same work.
            one = self.pending_sample(1, size, top_level=True)
            self.results["queries"][f"dashboard_first_{size}"] = inprocess.queries_for(
                app, "GET", first, user_id=1
            )
            self.results["queries"][f"dashboard_deep_{size}"] = inprocess.queries_for(
                app, "GET", deep, user_id=1
            )
            self.results["queries"][f"approve_{size}"] = inprocess.queries_for(
                app,
                "POST",
                f"/moderation/comments/{one[0]}/approve",
                user_id=1,
                headers={"Accept": "application/json"},
            )
            self.reset(one)
            pages = {}
            for name, path in (("first", first), ("deep", deep)):
                started = time.perf_counter()
                resp = loadgen.request(self.forum.port, "GET", path, cookie)
                took = time.perf_counter() - started
                if resp.status != 200:
                    raise RuntimeError(f"GET {path}: {resp.status}")
                pages[name] = {
                    "bytes": len(resp.body.encode()),
                    "items": resp.body.count('class="queue-item '),
                }
                self.record(
                    f"dashboard_{name}_{size}",
                    self.wrk(
                        f"dashboard {name} {size}",
                        self.forum.port,
                        [path],
                        self.duration(took),
                        cookie=cookie,
                    ),
                )
            self.results["pages"][f"dashboard_{size}"] = pages
            if size == QUEUE_SIZES[-1]:
                # Information: pages no worker showed before, each request a page further
                # into the queue, so every item is rendered (the runs above reuse them).
                cold = [f"/moderation/?after={quote(c)}" for c in self.page_cursors(app, 2000)]
                self.record(
                    f"dashboard_cold_{size}",
                    self.wrk(
                        f"dashboard cold {size}",
                        self.forum.port,
                        cold,
                        self.seconds,
                        cookie=cookie,
                        once=True,
                    ),
                )
            ids = self.pending_sample(approvals_at(size), size + 1)
            paths = [f"/moderation/comments/{i}/approve" for i in ids]
            probe = loadgen.request(
                self.forum.port, "POST", paths[0], cookie, {}, headers=json_headers
            )
            if probe.status != 200 or '"ok":true' not in probe.body.replace(" ", ""):
                raise RuntimeError(f"approve: {probe.status} {probe.body[:200]}")
            self.results["pages"][f"approve_{size}"] = {"bytes": len(probe.body.encode())}
            run = self.record(
                f"approve_{size}",
                self.wrk(
                    f"approve {size}",
                    self.forum.port,
                    paths[1:],
                    once_seconds(self.seconds, len(ids)),
                    method="POST",
                    cookie=cookie,
                    headers=json_headers,
                    once=True,
                ),
            )
            if size == QUEUE_SIZES[-1]:
                # The same comments again, by the bare approval (they are still pending
                # there: the forum's approvals are undone first). Information only.
                self.reset(ids)
                self.record(
                    "baseline_approve",
                    self.wrk(
                        "baseline approve",
                        self.base.port,
                        [f"/comments/{i}/approve?size={len(probe.body.encode())}" for i in ids],
                        once_seconds(self.seconds, len(ids)),
                        method="POST",
                        once=True,
                    ),
                )
            self.reset(ids)
            run.extra["approved"] = len(ids)
        last = QUEUE_SIZES[-1]
        dash = self.results["pages"][f"dashboard_{last}"]["first"]
        self.baseline("baseline_dashboard", 25, dash["bytes"], self.seconds)

    def measure_inprocess(self, app) -> None:
        log("sanitizer alone (one process, one core)")
        self.results["sanitize"] = inprocess.sanitizer_throughput(self.seconds * 0.6)
        log(f"sanitizer: {self.results['sanitize']}")

        for size in THREAD_SIZES:
            paths = thread_paths(self.threads[size])
            counts = [inprocess.queries_for(app, "GET", p) for p in paths]
            self.results["queries"][f"thread_{size}"] = counts
        log(f"queries per thread page: {self.results['queries']}")
        self.results["inprocess_cpu"] = self.inprocess_cpu(app)
        log(f"in-process CPU ms per page (best of 9): {self.results['inprocess_cpu']}")

    # --- the whole run ----------------------------------------------------------------------

    def run(self) -> None:
        started = time.time()
        self.results["started"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
        self.results["app_root"] = str(ROOT)
        self.results["loadavg_start"] = os.getloadavg()
        OUT.mkdir(exist_ok=True)
        log("building the database")
        self.build()
        took = self.top_up(QUEUE_SIZES[0])
        log(f"queue of {QUEUE_SIZES[0]:,} written in {took:.1f} s")

        app = inprocess.forum_app(self.url)
        if not self.args.only_queue:
            self.measure_inprocess(app)

        env = self.env()
        log_file = self.log_file = OUT / f"gunicorn{'-' + self.label if self.label else ''}.log"
        log_file.unlink(missing_ok=True)
        log_file.with_name(log_file.stem + "-pg.log").unlink(missing_ok=True)
        with (
            Server("wsgi:app", env, log_file, root=ROOT) as self.forum,
            Server("baseline_app:create_app()", env, log_file, pythonpath=str(HERE)) as self.base,
        ):
            self.results["gunicorn"] = {"forum": self.forum.command, "baseline": self.base.command}
            log(f"forum on :{self.forum.port}, baseline on :{self.base.port}")
            if not self.args.only_queue:
                self.thread_pages()
                self.thread_rounds()
                self.memory()
                pages.member_threads(self, app)
                pages.listings(self, app)
            self.post_comments()
            if self.args.skip_queue:
                self.results["notes"].append("queue scenarios skipped (--skip-queue)")
            else:
                self.queue(app)
            crashes = log_file.read_text().count("was sent SIG")
            self.results["worker_crashes"] = crashes
        if self.args.skip_queue or self.args.skip_postgresql:
            self.results["notes"].append("PostgreSQL queue skipped")
        elif not pages.pg_available():
            self.results["notes"].append(
                f"PostgreSQL queue skipped: no server at {datagen.PG_SERVER}"
            )
        else:
            pages.postgresql_queue(self)
        self.results["loadavg_end"] = os.getloadavg()
        self.results["seconds"] = round(time.time() - started)
        if self.label:
            out = OUT / f"results-{self.label}.json"
            out.write_text(json.dumps(self.results, indent=2))
            log(f"done in {self.results['seconds']} s: {out}")
            return
        (OUT / "results.json").write_text(json.dumps(self.results, indent=2))
        report.write(self.results, HERE)
        log(f"done in {self.results['seconds']} s: bench/RESULTS.md, bench/latency.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5, help="length of each wrk run")
    parser.add_argument("--skip-queue", action="store_true", help="no dashboard scenarios")
    parser.add_argument(
        "--only-queue", action="store_true", help="posting and the queue only (before/after)"
    )
    parser.add_argument("--skip-postgresql", action="store_true", help="the queue on SQLite only")
    parser.add_argument(
        "--label", help="write out/results-LABEL.json only (e.g. a BENCH_APP_ROOT 'before')"
    )
    args = parser.parse_args()
    Bench(args).run()


if __name__ == "__main__":
    main()
