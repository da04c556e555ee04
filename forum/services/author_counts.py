"""Each author's history for the queue, maintained: their comments by status and their
first comment's time (`AuthorCounter`), one row per account or guest email address.

services/counters.py collects the changes with the queue's counters (its session hooks and
bulk writers call in here) and writes them before each commit; this module holds what is
the authors' own: the deltas, the statements that write them, the full count, the rebuild.
An author's first comment's time only moves back as comments are added; when one of their
comments goes, it is read again from their comments at the commit (deletions are rare).
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, inspect, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from forum.extensions import db
from forum.models import AuthorCounter, Comment, Status

CHUNK = 5000

# AuthorCounter's count columns, in the order of its rows here and of queue.History.
STATUSES = ("approved", "pending", "spam", "rejected")


def author_of(user_id: int | None, email: str | None) -> str:
    """Authors are their account, or for guests their email address."""
    return f"user:{user_id}" if user_id is not None else f"email:{email or ''}"


def _utc(value: Any) -> datetime | None:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


@dataclass
class AuthorDeltas:
    """One transaction's changes to the authors' rows, not yet written."""

    counts: Counter = field(default_factory=Counter)  # (author, status value) -> delta
    first: dict[str, datetime] = field(default_factory=dict)  # the earliest comment added
    recount: set[str] = field(default_factory=set)  # lost a comment: first_seen read again

    def add(self, author: str, status: str, delta: int, created_at: Any = None) -> None:
        """`delta` comments of an author in one status; a comment added with its time."""
        self.counts[(author, status)] += delta
        when = _utc(created_at)
        if when is not None and (author not in self.first or when < self.first[author]):
            self.first[author] = when

    def merge(self, other: AuthorDeltas) -> None:
        self.counts.update(other.counts)
        for author, when in other.first.items():
            self.add(author, STATUSES[0], 0, when)
        self.recount |= other.recount

    def copy(self) -> AuthorDeltas:
        return AuthorDeltas(Counter(self.counts), dict(self.first), set(self.recount))


AuthorRow = tuple[int, int, int, int, datetime | None]  # approved, pending, spam, rejected, first
AUTHOR_COLUMNS = (
    AuthorCounter.approved,
    AuthorCounter.pending,
    AuthorCounter.spam,
    AuthorCounter.rejected,
    AuthorCounter.first_seen,
)
AUTHOR_ROWS = select(AuthorCounter.author, *AUTHOR_COLUMNS).where(
    AuthorCounter.author.in_(bindparam("authors", expanding=True))
)


def full_count(conn: Any = None) -> dict[str, AuthorRow]:
    """What the authors' rows must say, counted from the comments (reads them all)."""
    conn = conn if conn is not None else db.session
    found: dict[str, list] = {}
    for user_id, email, status, n, earliest in conn.execute(
        select(
            Comment.user_id,
            Comment.author_email,
            Comment.status,
            func.count(),
            func.min(Comment.created_at),
        ).group_by(Comment.user_id, Comment.author_email, Comment.status)
    ):
        row = found.setdefault(author_of(user_id, email), [0, 0, 0, 0, None])
        row[STATUSES.index(Status(status).value)] += n
        earliest = _utc(earliest)
        if earliest is not None and (row[4] is None or earliest < row[4]):
            row[4] = earliest
    return {author: tuple(row) for author, row in found.items()}


def rebuild_on(conn: Any) -> int:
    """Replace every author's row by a full count (in the caller's transaction and lock);
    the number of authors."""
    conn.execute(delete(AuthorCounter))
    rows = [
        {"author": author, **dict(zip(STATUSES, row[:4], strict=True)), "first_seen": row[4]}
        for author, row in sorted(full_count(conn).items())
    ]
    for start in range(0, len(rows), CHUNK):
        conn.execute(AuthorCounter.__table__.insert(), rows[start : start + CHUNK])
    return len(rows)


def write(session: Session, deltas: AuthorDeltas) -> None:
    """Write one transaction's changes: each status `n = n + delta` and first_seen the
    earlier, in author order; then first_seen read again for authors who lost a comment."""
    rows: dict[str, dict[str, Any]] = {}
    for (author, status), d in deltas.counts.items():
        if d:
            row = rows.setdefault(author, dict.fromkeys(STATUSES, 0))
            row[status] += d
    for author, when in deltas.first.items():
        rows.setdefault(author, dict.fromkeys(STATUSES, 0))["first_seen"] = when
    if rows:
        session.execute(
            _upsert_statement(session.get_bind().dialect.name),
            [{"author": author, "first_seen": None} | row for author, row in sorted(rows.items())],
        )
    if deltas.recount:
        # Their first comment may be gone: read it again; a row that counts nothing goes.
        recount = sorted(deltas.recount)
        users = [{"a": a, "user_id": int(a[5:])} for a in recount if a.startswith("user:")]
        guests = [{"a": a, "email": a[6:]} for a in recount if a.startswith("email:")]
        if users:
            session.execute(RECOUNT_USER, users)
        if guests:
            session.execute(RECOUNT_GUEST, guests)
        session.execute(
            delete(AuthorCounter).where(
                AuthorCounter.author.in_(recount),
                *(column == 0 for column in AUTHOR_COLUMNS[:4]),
            )
        )


def _recount(where: Any) -> Any:
    earliest = select(func.min(Comment.created_at)).where(where).scalar_subquery()
    table = AuthorCounter.__table__  # a Core executemany, not the ORM's bulk update by key
    return update(table).where(table.c.author == bindparam("a")).values(first_seen=earliest)


RECOUNT_USER = _recount(Comment.user_id == bindparam("user_id"))
# coalesce() keeps the planner off the user_id index: "user_id IS NULL" on it walks every
# guest comment (160 ms with 100,000 pending) instead of the emails'.
RECOUNT_GUEST = _recount(
    and_(Comment.author_email == bindparam("email"), func.coalesce(Comment.user_id, 0) == 0)
)


@functools.cache
def _upsert_statement(dialect_name: str) -> Any:
    """Each status `n = n + delta`; first_seen the earlier of the two (built once)."""
    table = AuthorCounter.__table__
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    stmt = dialect.insert(table)
    new = stmt.excluded
    if dialect_name == "postgresql":
        first = func.least(table.c.first_seen, new.first_seen)  # NULLs ignored
    else:  # SQLite's two-argument min() is NULL when either is
        first = func.min(
            func.coalesce(table.c.first_seen, new.first_seen),
            func.coalesce(new.first_seen, table.c.first_seen),
        )
    changes = {status: table.c[status] + new[status] for status in STATUSES}
    return stmt.on_conflict_do_update(
        index_elements=[table.c.author], set_={**changes, "first_seen": first}
    )


def changed(
    session: Session, comment: Comment, old_status: Status | None, deltas: AuthorDeltas
) -> None:
    """Before a flush: a comment's status (old_status: what it was, if it changed) or its
    author's columns (user_id, author_email) changed: it moves between the authors' counts.
    (Nothing in the forum gives a comment to another author today; an import or a script
    that does so through these columns is counted.)"""
    state = inspect(comment).attrs
    history = [state[name].history for name in ("user_id", "author_email")]
    if old_status is None and not any(h.added for h in history):
        return
    old = [h.deleted[0] if h.deleted else None for h in history]
    if any(h.added and not h.deleted for h in history):  # not loaded before the change
        old = list(
            session.execute(
                select(Comment.user_id, Comment.author_email).where(Comment.id == comment.id)
            ).one()
        )
    old_user = old[0] if history[0].added else comment.user_id
    old_email = old[1] if history[1].added else comment.author_email
    was = author_of(old_user, old_email)
    now = author_of(comment.user_id, comment.author_email)
    deltas.add(was, (old_status or comment.status).value, -1)
    deltas.add(now, Status(comment.status).value, 1, comment.created_at if was != now else None)
    if was != now:
        deltas.recount.add(was)
