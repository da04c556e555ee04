"""Synthetic forum data, written with bulk Core inserts into a database of its own.

Threads and queue are built the way the forum builds them one comment at a time
(forum/services/comments.py place_in_thread): ids assigned in creation order, `path` the
zero-padded ids from the root joined by "/", `depth` the number of ancestors, and
`visible` approved with every ancestor approved. Bodies come from a pool sanitized by the
forum's own sanitizer, so body_html is exactly what the forum would have stored.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import random
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import corpus
from sqlalchemy import Engine, create_engine, event, func, insert, select
from werkzeug.security import generate_password_hash

from forum.extensions import db
from forum.models import (
    PATH_SEGMENT_WIDTH,
    Comment,
    CommentKind,
    HoldReason,
    Post,
    Role,
    Status,
    Tag,
    User,
    post_tag,
)
from forum.services import counters, sanitize
from forum.services.posts import slugify

ROOT = Path(__file__).resolve().parents[1]

MAX_DEPTH = 5  # COMMENT_MAX_DEPTH: depths 0..4
COMMENTS_PER_ROOT = 20  # a thread of N comments has N/20 top-level comments
FILLER_POSTS = 200
FILLER_COMMENTS = 10
MEMBERS = 500
GUESTS = 30_000
BODY_POOL = 400
BATCH = 5_000
PG_SERVER = os.environ.get("BENCH_PG_SERVER", "postgresql+psycopg://postgres@127.0.0.1:5432")
MODERATOR = ("benchmod", "bench-password-2026")
MEMBER = ("member0", "bench-password-2026")  # signs in for the member's thread pages
OWN_PENDING = 3  # member0's comments awaiting moderation on each thread
FIRST = [
    "Ann",
    "Bob",
    "Chen",
    "Dana",
    "Emil",
    "Fatima",
    "Goran",
    "Hana",
    "Ivo",
    "Jun",
    "Kofi",
    "Lena",
    "Mateo",
    "Nia",
    "Omar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sven",
    "Tariq",
]
LAST = [
    "Smith",
    "Novak",
    "Okafor",
    "Larsen",
    "García",
    "Kowalski",
    "Tanaka",
    "Müller",
    "Silva",
    "Haddad",
    "Ivanova",
    "Byrne",
    "Rossi",
    "Kim",
    "Dubois",
    "Nakamura",
]


@contextlib.contextmanager
def postgres_database(label: str, server: str = PG_SERVER) -> Iterator[str]:
    """A fresh PostgreSQL database for one run, dropped afterwards; yields its URL."""
    name = f"bench_{label}_{os.getpid()}"
    admin = create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield f"{server}/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def copy_sqlite(source: Path, target: Path) -> None:
    """Copy a SQLite database with SQLite's online backup, its WAL included.

    Copying the file alone loses what is still in `-wal`: the forum's checkpoint thread
    (forum/sqlite_checkpoint.py) keeps a connection open in the process that built it, so
    closing the builder's own connections no longer folds the log into the file."""
    for suffix in ("", "-wal", "-shm", ".writelock"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    with (
        contextlib.closing(sqlite3.connect(source)) as src,
        contextlib.closing(sqlite3.connect(target)) as dst,
    ):
        src.backup(dst)


def make_engine(url: str) -> Engine:
    engine = create_engine(url)
    if url.startswith("sqlite"):

        @event.listens_for(engine, "connect")
        def _fast_load(dbapi_connection: Any, _record: Any) -> None:
            # The bulk load only: the database is thrown away if the machine crashes.
            dbapi_connection.execute("PRAGMA synchronous=OFF")

    return engine


@dataclass
class Body:
    source: str
    html: str
    report: list[str]
    domain: str
    links: int
    fingerprint: str


@dataclass
class Guest:
    name: str
    email: str
    url: str
    ip: str


@dataclass
class ThreadInfo:
    size: int
    post_id: int
    slug: str
    roots: int
    pages: int


@dataclass
class Generator:
    """Keeps ids and pools between calls, so the queue can grow in steps during a run."""

    engine: Engine
    seed: int = 7
    rng: random.Random = field(init=False)
    bodies: list[Body] = field(default_factory=list)
    guests: list[Guest] = field(default_factory=list)
    members: list[tuple[int, str, str]] = field(default_factory=list)  # id, name, email
    next_comment_id: int = 1
    next_reason_id: int = 1
    clock: datetime = field(default_factory=lambda: datetime.now(UTC) - timedelta(days=400))
    filler_targets: list[tuple[int, int, int, str]] = field(default_factory=list)
    filler_posts: list[int] = field(default_factory=list)
    moderator_id: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    # --- set-up -----------------------------------------------------------------------

    def create_schema(self) -> None:
        """The schema an installed forum has, made by its migrations (`flask db upgrade`):
        SQLite's planner breaks ties between indexes by their order in the schema, which
        `create_all` takes from a set, differently in every run (tests/test_query_plans.py)."""
        from flask_migrate import upgrade

        from forum import create_app

        db.metadata.drop_all(self.engine)
        with self.engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
        url = self.engine.url.render_as_string(hide_password=False)
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench"})
        # migrations/env.py configures logging from alembic.ini, which gives the root
        # logger a handler: every log line of the forum's after it printed twice (Flask's
        # handler, then the root's). `flask db upgrade` runs in a process of its own.
        root = logging.getLogger()
        handlers, level = root.handlers[:], root.level
        try:
            with app.app_context():
                upgrade(directory=str(ROOT / "migrations"))
                db.engine.dispose()
        finally:
            root.handlers[:] = handlers
            root.setLevel(level)

    def make_bodies(self) -> float:
        """Sanitize the body pool with the forum's sanitizer; returns the seconds it took."""
        import time

        start = time.perf_counter()
        for text in corpus.corpus(BODY_POOL, self.seed):
            result = sanitize.sanitize_comment(text)
            domains = sanitize.link_domains(result.html)
            self.bodies.append(
                Body(
                    text,
                    result.html,
                    list(result.removed),
                    domains[0] if domains else "",
                    sanitize.count_links(result.html),
                    sanitize.body_fingerprint(text),
                )
            )
        return time.perf_counter() - start

    def make_people(self) -> None:
        rng = self.rng
        for i in range(GUESTS):
            name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
            email = f"{name.split()[0].lower()}.{i}@example.org"
            url = f"https://{name.split()[0].lower()}{i}.example.net/" if rng.random() < 0.2 else ""
            ip = f"203.0.{113 + i % 3}.{i % 250 + 1}" if i % 7 else f"198.51.100.{i % 250 + 1}"
            self.guests.append(Guest(name, email, url, ip))
        pw = generate_password_hash(MODERATOR[1])
        users = [
            {
                "id": 1,
                "username": MODERATOR[0],
                "username_key": MODERATOR[0],
                "email": "benchmod@example.org",
                "email_key": "benchmod@example.org",
                "password_hash": pw,
                "role": Role.MODERATOR,
                "created_at": self.clock,
            }
        ]
        self.moderator_id = 1
        for i in range(MEMBERS):
            name = f"member{i}"
            email = f"member{i}@example.org"
            users.append(
                {
                    "id": i + 2,
                    "username": name,
                    "username_key": name,
                    "email": email,
                    "email_key": email,
                    "password_hash": pw if name == MEMBER[0] else None,
                    "role": Role.MEMBER,
                    "created_at": self.clock,
                }
            )
            self.members.append((i + 2, name, email))
        with self.engine.begin() as conn:
            conn.execute(insert(User), users)

    def make_posts(self, titles: list[str]) -> list[tuple[int, str]]:
        rng = self.rng
        with self.engine.begin() as conn:
            first = (conn.scalar(select(func.max(Post.id))) or 0) + 1
            tag_ids = list(range(1, 6))
            if first == 1:
                conn.execute(
                    insert(Tag),
                    [{"id": i, "name": f"Topic {i}", "slug": f"topic-{i}"} for i in tag_ids],
                )
            rows, links = [], []
            for n, title in enumerate(titles):
                body = "\n\n".join(corpus.corpus(3, rng.randrange(1 << 30), 300, 800))
                html = sanitize.sanitize_post(body).html
                self.clock += timedelta(minutes=1)
                rows.append(
                    {
                        "id": first + n,
                        "author_id": self.moderator_id,
                        "title": title,
                        "slug": slugify(title),
                        "body_source": body,
                        "body_html": html,
                        "created_at": self.clock,
                        "updated_at": self.clock,
                    }
                )
                for tag_id in rng.sample(tag_ids, 2):
                    links.append({"post_id": first + n, "tag_id": tag_id})
            conn.execute(insert(Post), rows)
            conn.execute(insert(post_tag), links)
        return [(r["id"], r["slug"]) for r in rows]

    # --- comments -----------------------------------------------------------------------

    def _author(self, member_share: float) -> dict[str, Any]:
        rng = self.rng
        if rng.random() < member_share:
            uid, name, email = rng.choice(self.members)
            return {
                "user_id": uid,
                "author_name": name,
                "author_email": email,
                "author_url": "",
                "ip": f"192.0.2.{uid % 250 + 1}",
            }
        g = rng.choice(self.guests)
        return {
            "user_id": None,
            "author_name": g.name,
            "author_email": g.email,
            "author_url": g.url,
            "ip": g.ip,
        }

    def _row(
        self,
        post_id: int,
        parent: tuple[int, int, str] | None,  # id, depth, path
        status: Status,
        visible: bool,
        author: dict[str, Any],
        body: Body,
        created_at: datetime | None = None,
        unique_hash: bool = True,
    ) -> dict[str, Any]:
        cid = self.next_comment_id
        self.next_comment_id += 1
        if created_at is None:
            self.clock += timedelta(seconds=self.rng.randint(5, 120))
            created_at = self.clock
        segment = f"{cid:0{PATH_SEGMENT_WIDTH}d}"
        return {
            "id": cid,
            "post_id": post_id,
            "parent_id": parent[0] if parent else None,
            "kind": CommentKind.COMMENT,
            "depth": parent[1] + 1 if parent else 0,
            "path": f"{parent[2]}/{segment}" if parent else segment,
            **author,
            "user_agent": "Mozilla/5.0 (X11; Linux x86_64) bench",
            "body_source": body.source,
            "body_html": body.html,
            # Distinct texts in real life: the pool repeats, so the fingerprint is per row.
            "body_hash": hashlib.sha256(f"{cid}".encode()).hexdigest()
            if unique_hash
            else body.fingerprint,
            "link_domain": body.domain,
            "status": status,
            "visible": visible,
            "sanitizer_report": body.report,
            "created_at": created_at,
            "moderated_at": created_at if status is not Status.PENDING else None,
            "moderated_by_id": None,
            "notify_on_decision": False,
            "notify_on_reply": False,
        }

    def thread(self, post_id: int, size: int) -> list[dict[str, Any]]:
        """`size` approved comments: size/20 top-level ones, replies nested to depth 4."""
        rng = self.rng
        roots = max(1, size // COMMENTS_PER_ROOT)
        # Every reply picks its top-level comment at random, so pages come out about equal.
        replies = [0] * roots
        for _ in range(size - roots):
            replies[rng.randrange(roots)] += 1
        rows = []
        for n in replies:
            root = self._row(
                post_id, None, Status.APPROVED, True, self._author(0.25), rng.choice(self.bodies)
            )
            rows.append(root)
            open_nodes = [(root["id"], 0, root["path"])]  # comments that can take replies
            for _ in range(n):
                # Conversations deepen: half the replies answer the latest open comment.
                parent = open_nodes[-1] if rng.random() < 0.5 else rng.choice(open_nodes)
                row = self._row(
                    post_id,
                    parent,
                    Status.APPROVED,
                    True,
                    self._author(0.25),
                    rng.choice(self.bodies),
                )
                if row["depth"] < MAX_DEPTH - 1:
                    open_nodes.append((row["id"], row["depth"], row["path"]))
                rows.append(row)
        return rows

    def write_comments(
        self, rows: list[dict[str, Any]], reasons: list[dict[str, Any]] | tuple = ()
    ) -> None:
        with self.engine.begin() as conn:
            for start in range(0, len(rows), BATCH):
                conn.execute(insert(Comment), rows[start : start + BATCH])
            for start in range(0, len(reasons), BATCH):
                conn.execute(insert(HoldReason), reasons[start : start + BATCH])

    def make_threads(self, sizes: list[int], per_page: int) -> dict[int, ThreadInfo]:
        posts = self.make_posts([f"A discussion with {n:,} comments" for n in sizes])
        out = {}
        for (post_id, slug), size in zip(posts, sizes, strict=True):
            rows = self.thread(post_id, size)
            self.write_comments(rows)
            roots = sum(1 for r in rows if r["parent_id"] is None)
            out[size] = ThreadInfo(size, post_id, slug, roots, max(1, -(-roots // per_page)))
        return out

    def add_own_pending(self, threads: dict[int, ThreadInfo]) -> None:
        """MEMBER's own comments awaiting moderation on each thread: the signed-in member's
        page shows them (and their edit links) to that member only."""
        uid, name, email = next(m for m in self.members if m[1] == MEMBER[0])
        author = {
            "user_id": uid,
            "author_name": name,
            "author_email": email,
            "author_url": "",
            "ip": "192.0.2.1",
        }
        rows, reasons = [], []
        now = datetime.now(UTC) - timedelta(minutes=1)
        for info in threads.values():
            for n in range(OWN_PENDING):
                row = self._row(
                    info.post_id,
                    None,
                    Status.PENDING,
                    False,
                    author,
                    self.bodies[n],
                    created_at=now - timedelta(seconds=n),
                )
                rows.append(row)
                reasons.append(
                    {
                        "id": self.next_reason_id,
                        "comment_id": row["id"],
                        "rule": "hold-word",
                        "detail": "bench",
                    }
                )
                self.next_reason_id += 1
        self.write_comments(rows, reasons)

    def make_filler(self) -> None:
        """Posts with a few approved comments: where most of the queue's comments go."""
        posts = self.make_posts([f"Filler post number {i}" for i in range(FILLER_POSTS)])
        rows = []
        for post_id, _slug in posts:
            rows.extend(self.thread(post_id, FILLER_COMMENTS))
            self.filler_posts.append(post_id)
        self.write_comments(rows)
        self.filler_targets = [(r["post_id"], r["id"], r["depth"], r["path"]) for r in rows]

    def add_pending(self, count: int, extra_posts: list[int] = ()) -> None:
        """`count` comments held for moderation, with their hold reasons."""
        rng = self.rng
        # The queue is recent: the new comments are spread over the last 30 days.
        end = datetime.now(UTC) - timedelta(minutes=5)
        span = timedelta(days=30).total_seconds()
        times = sorted(end - timedelta(seconds=rng.random() * span) for _ in range(count))
        campaigns = self.bodies[:10]
        rows, reasons = [], []
        for when in times:
            roll = rng.random()
            parent = None
            if roll < 0.25:
                post_id, pid, depth, path = rng.choice(self.filler_targets)
                if depth < MAX_DEPTH - 1:
                    parent = (pid, depth, path)
            elif roll < 0.30 and extra_posts:
                post_id = rng.choice(list(extra_posts))
            else:
                post_id = rng.choice(self.filler_posts)
            campaign = rng.random() < 0.03
            body = rng.choice(campaigns) if campaign else rng.choice(self.bodies)
            row = self._row(
                post_id,
                parent,
                Status.PENDING,
                False,
                self._author(0.15),
                body,
                created_at=when,
                unique_hash=not campaign,
            )
            rows.append(row)
            why = []
            if rng.random() < 0.7:
                why.append(("new comment", "first comment from this author"))
            if body.links >= 2:
                why.append(("links", f"{body.links} links"))
            if body.report:
                why.append(("sanitized", "removed " + ", ".join(body.report)))
            if not why:
                why.append(("hold-word", rng.choice(corpus.WORDS)))
            for rule, detail in why:
                reasons.append(
                    {
                        "id": self.next_reason_id,
                        "comment_id": row["id"],
                        "rule": rule,
                        "detail": detail[:500],
                    }
                )
                self.next_reason_id += 1
        self.write_comments(rows, reasons)

    def settle(self) -> None:
        """Recount the queue's counters the bulk inserts bypassed (and what the run's own
        bulk resets did); checkpoint the WAL and flush the file: the load ran with
        synchronous=OFF, and the server's first fsync must not pay for writing back the
        whole load."""
        with self.engine.begin() as conn:
            counters.rebuild_on(conn)
        if self.engine.dialect.name != "sqlite":
            # The rows were written with their ids: move each id sequence past them.
            with self.engine.begin() as conn:
                for table in db.metadata.sorted_tables:
                    if "id" in table.c:
                        conn.exec_driver_sql(
                            f"SELECT setval(pg_get_serial_sequence('\"{table.name}\"', 'id'), "
                            f'coalesce(max(id), 0) + 1, false) FROM "{table.name}"'
                        )
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")
            return
        with self.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            path = conn.exec_driver_sql("PRAGMA database_list").fetchone()[2]
        if path:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def pending_count(self) -> int:
        with self.engine.connect() as conn:
            return conn.scalar(
                select(func.count()).select_from(Comment).where(Comment.status == Status.PENDING)
            )

    def sync_ids(self) -> None:
        """Continue after rows the server wrote (posted comments, moderation actions)."""
        with self.engine.connect() as conn:
            self.next_comment_id = max(
                self.next_comment_id, (conn.scalar(select(func.max(Comment.id))) or 0) + 1
            )
            self.next_reason_id = max(
                self.next_reason_id, (conn.scalar(select(func.max(HoldReason.id))) or 0) + 1
            )
