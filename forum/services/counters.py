"""Maintained queue counts: comments per status, in all and per post, and flagged comments;
and each author's comments per status with their first comment's time.

The dashboard's tabs, the header badge and each post's pending count read these rows
(`QueueCounter`) instead of counting the queue, and each item's author history reads one
`AuthorCounter` row instead of counting the author's comments (a spam wave of 20,000
comments from one address made that count 50 ms of every dashboard page). They change in
the transaction of every change to a comment's status, author or existence:

- Whatever goes through the ORM (a new comment, `comment.status = ...`, a deleted
  comment with the replies the database deletes with it, a new flag) is seen by the
  session hooks installed here, whoever the writer is.
- Bulk statements bypass those hooks, so their writers say what they did, one line each:
  `inserted(rows)` (importers, undoing a delete), `removed(rows)` (deleting subtrees),
  `moved(...)` and `unflagged(ids)` (resolving flags).
The authors' rows are services/author_counts.py's; their changes are collected here.

A transaction's changes are summed in `session.info` and written once, just before it
commits (or before a counter is read in it), as `n = n + delta` upserts in one order, so
two concurrent transactions neither lose an update nor deadlock on the counter rows. A
savepoint rolled back takes its changes with it. `rebuild()` recounts everything
(`flask --app wsgi forum rebuild-counters`), the authors' rows too.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import delete, event, func, inspect, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, SessionTransaction

from forum.extensions import Session as ForumSession
from forum.extensions import db, read
from forum.models import AuthorCounter, Comment, Flag, QueueCounter, Status
from forum.services import author_counts, tree, versions
from forum.services.author_counts import AuthorDeltas, AuthorRow, author_of

ALL = 0  # the post_id of the counts over all posts
FLAGGED = "flagged"  # comments with an unresolved flag; counted over all posts only
PENDING_KEY = "queue_counters"  # session.info: (post_id, name) -> delta, not yet written
FLUSH_KEY = "queue_counters_flush"  # deltas of the flush under way
SAVEPOINTS_KEY = "queue_counters_savepoints"  # savepoint -> the deltas when it began
AUTHORS_KEY = "author_counters"  # session.info: AuthorDeltas, not yet written
FLUSH_AUTHORS_KEY = "author_counters_flush"
CHUNK = 500
Key = tuple[int, str]
# What writers call ----------------------------------------------------------------


def add(post_id: int, name: str, delta: int, session: Session | None = None) -> None:
    """Count `delta` more comments of one post in one status (or flagged comments)."""
    if not delta:
        return
    pending = _pending(session or db.session)
    if name != FLAGGED:
        pending[(post_id, name)] += delta
    pending[(ALL, name)] += delta


def moved(post_id: int, old: Status, new: Status, author: str, n: int = 1) -> None:
    """A bulk update moved n comments of a post and an author (`author_of`) from one
    status to another."""
    if old is not new:
        add(post_id, old, -n)
        add(post_id, new, n)
        authors = _authors(db.session)
        authors.add(author, Status(old).value, -n)
        authors.add(author, Status(new).value, n)


def inserted(rows: Iterable[Mapping[str, Any]]) -> None:
    """Comments a bulk insert added (dicts with post_id, status, user_id, author_email and
    created_at; the last three default to a guest without address, of unknown time)."""
    authors = _authors(db.session)
    counts: Counter = Counter()
    for r in rows:
        status = Status(r["status"])
        counts[(r["post_id"], status)] += 1
        authors.add(
            author_of(r.get("user_id"), r.get("author_email")), status.value, 1, r.get("created_at")
        )
    for (post_id, status), n in counts.items():
        add(post_id, status, n)


def removed(rows: Iterable[Mapping[str, Any]]) -> None:
    """Comments a bulk delete is about to remove (dicts with id, post_id, status, user_id
    and author_email), with their flags (the database deletes them along): call it before
    the delete."""
    rows = list(rows)
    authors = _authors(db.session)
    for r in rows:
        author = author_of(r.get("user_id"), r.get("author_email"))
        authors.add(author, Status(r["status"]).value, -1)
        authors.recount.add(author)
    for (post_id, status), n in Counter((r["post_id"], Status(r["status"])) for r in rows).items():
        add(post_id, status, -n)
    add(ALL, FLAGGED, -len(flagged_among([r["id"] for r in rows])))


def unflagged(comment_ids: Iterable[int]) -> None:
    """Every open flag of these comments was resolved (ids as the update returned them)."""
    add(ALL, FLAGGED, -len(set(comment_ids)))


def flagged_among(comment_ids: list[int], session: Session | None = None) -> set[int]:
    """Which of these comments have an unresolved flag now."""
    session = session or db.session
    found: set[int] = set()
    for start in range(0, len(comment_ids), CHUNK):
        found.update(
            session.scalars(
                select(Flag.comment_id)
                .where(Flag.comment_id.in_(comment_ids[start : start + CHUNK]))
                .where(Flag.resolved.is_(False))
                .distinct()
            )
        )
    return found


# What readers call ----------------------------------------------------------------


TOTALS = select(QueueCounter.name, QueueCounter.n).where(QueueCounter.post_id == ALL)


def totals() -> dict[str, int]:
    """Counts over all posts, by status and "flagged" (one query)."""
    apply(db.session)
    counts = {status.value: 0 for status in Status} | {FLAGGED: 0}
    counts.update(read(TOTALS).all())
    return counts


def total(name: str) -> int:
    apply(db.session)
    return (
        db.session.scalar(
            select(QueueCounter.n).where(QueueCounter.post_id == ALL, QueueCounter.name == name)
        )
        or 0
    )


def stored() -> dict[Key, int]:
    """Every counter that is not zero."""
    apply(db.session)
    rows = db.session.execute(select(QueueCounter.post_id, QueueCounter.name, QueueCounter.n))
    return {(post_id, name): n for post_id, name, n in rows if n}


def authors(keys: Iterable[str]) -> dict[str, AuthorRow]:
    """These authors' rows (`author_of` keys; one query by primary key). An author without
    a row has no comment."""
    keys = sorted(set(keys))
    if not keys:
        return {}
    apply(db.session)
    return {
        author: tuple(values)
        for author, *values in read(author_counts.AUTHOR_ROWS, {"authors": keys})
    }


def stored_authors() -> dict[str, AuthorRow]:
    """Every author's row that counts a comment."""
    apply(db.session)
    rows = db.session.execute(select(AuthorCounter.author, *author_counts.AUTHOR_COLUMNS))
    return {author: tuple(values) for author, *values in rows if any(values[:4])}


def full_count(conn: Any = None) -> dict[Key, int]:
    """What the counters must say, counted from the comments and flags (reads them all);
    `conn`: a Connection or Session (by default the app's session)."""
    conn = conn if conn is not None else db.session
    counts: dict[Key, int] = Counter()
    for post_id, status, n in conn.execute(
        select(Comment.post_id, Comment.status, func.count()).group_by(
            Comment.post_id, Comment.status
        )
    ):
        counts[(post_id, status.value)] += n
        counts[(ALL, status.value)] += n
    counts[(ALL, FLAGGED)] = (
        conn.scalar(
            select(func.count(func.distinct(Flag.comment_id))).where(Flag.resolved.is_(False))
        )
        or 0
    )
    return {key: n for key, n in counts.items() if n}


def rebuild() -> dict[Key, int]:
    """Replace every counter by a full count; concurrent writers wait on PostgreSQL."""
    session = db.session
    session.flush()
    _pending(session).clear()  # the full count below sees this transaction's changes
    session.info.pop(AUTHORS_KEY, None)
    return rebuild_on(session)


def rebuild_on(conn: Any) -> dict[Key, int]:
    """rebuild() in a Connection or Session of one's own (bench/datagen.py's bulk loads)."""
    dialect = conn.get_bind().dialect if hasattr(conn, "get_bind") else conn.dialect
    if dialect.name == "postgresql":
        conn.execute(text("LOCK TABLE queue_counter IN EXCLUSIVE MODE"))
        conn.execute(text("LOCK TABLE author_counter IN EXCLUSIVE MODE"))
    counts = full_count(conn)
    conn.execute(delete(QueueCounter))
    if counts:
        conn.execute(
            QueueCounter.__table__.insert(),
            [{"post_id": p, "name": name, "n": n} for (p, name), n in sorted(counts.items())],
        )
    author_counts.rebuild_on(conn)
    # On a connection of its own no listener sees this: the dashboard's pages are stale.
    versions.bump_on(conn.connection() if hasattr(conn, "get_bind") else conn, [versions.QUEUE])
    return counts


# Writing the deltas -----------------------------------------------------------------


def apply(session: Session) -> None:
    """Write this transaction's deltas now: `n = n + delta`, in (post_id, name) order, then
    the authors' in author order."""
    session.flush()
    pending = _pending(session)
    deltas = sorted((key, d) for key, d in pending.items() if d)
    pending.clear()
    if deltas:
        session.execute(
            _upsert_statement(session.get_bind().dialect.name),
            [{"post_id": p, "name": name, "n": d} for (p, name), d in deltas],
        )
    authors = session.info.get(AUTHORS_KEY)
    if authors is not None and (authors.counts or authors.first or authors.recount):
        session.info[AUTHORS_KEY] = AuthorDeltas()
        author_counts.write(session, authors)


@functools.cache
def _upsert_statement(dialect_name: str) -> Any:
    """`n = n + delta`, built once per dialect (it runs on most commits)."""
    table = QueueCounter.__table__
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    stmt = dialect.insert(table)
    return stmt.on_conflict_do_update(
        index_elements=[table.c.post_id, table.c.name], set_={"n": table.c.n + stmt.excluded.n}
    )


def _pending(session: Session) -> Counter:
    return session.info.setdefault(PENDING_KEY, Counter())


def _authors(session: Session) -> AuthorDeltas:
    return session.info.setdefault(AUTHORS_KEY, AuthorDeltas())


# The session hooks ------------------------------------------------------------------


def install() -> None:
    """Hook the forum's sessions (once per process, whatever the number of apps)."""
    for name, hook in HOOKS.items():
        if not event.contains(ForumSession, name, hook):
            event.listen(ForumSession, name, hook)


def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
    """Status changes and deletions, read before the rows change."""
    flush: Counter = Counter()
    session.info[FLUSH_KEY] = flush
    authors = session.info[FLUSH_AUTHORS_KEY] = AuthorDeltas()
    for obj in session.dirty:
        if isinstance(obj, Comment):
            old = _old_status(session, obj)
            if old is not None and old is not obj.status:
                flush[(obj.post_id, old.value)] -= 1
                flush[(obj.post_id, obj.status.value)] += 1
            author_counts.changed(session, obj, old, authors)
    for obj in session.deleted:
        if isinstance(obj, Comment):
            _count_subtree(session, obj, flush, authors)
    new_flags = {f.comment_id for f in session.new if isinstance(f, Flag) and not f.resolved}
    if new_flags:
        already = flagged_among(sorted(new_flags), session)
        flush[(ALL, FLAGGED)] += len(new_flags - already)


def _after_flush(session: Session, _context: Any) -> None:
    """New comments (their ids and defaults are known now); the flush's deltas count."""
    flush = session.info.pop(FLUSH_KEY, Counter())
    authors = session.info.pop(FLUSH_AUTHORS_KEY, None) or AuthorDeltas()
    for obj in session.new:
        if isinstance(obj, Comment):
            flush[(obj.post_id, Status(obj.status).value)] += 1
            author = author_of(obj.user_id, obj.author_email)
            authors.add(author, Status(obj.status).value, 1, obj.created_at)
    _authors(session).merge(authors)
    pending = _pending(session)
    for (post_id, name), d in flush.items():
        if d:
            if post_id != ALL:
                pending[(post_id, name)] += d
            pending[(ALL, name)] += d


def _old_status(session: Session, comment: Comment) -> Status | None:
    history = inspect(comment).attrs.status.history
    if not history.added:
        return None
    if history.deleted:
        return history.deleted[0]
    return session.scalar(select(Comment.status).where(Comment.id == comment.id))


def _count_subtree(
    session: Session, comment: Comment, flush: Counter, authors: AuthorDeltas
) -> None:
    """A deleted comment goes with its replies (ON DELETE CASCADE) and their flags."""
    rows = session.execute(_SUBTREE_AUTHORS, {"subtree_root": comment.id}).all()
    for _id, status, user_id, email in rows:
        flush[(comment.post_id, status.value)] -= 1
        author = author_of(user_id, email)
        authors.add(author, status.value, -1)
        authors.recount.add(author)
    flush[(ALL, FLAGGED)] -= len(flagged_among([r.id for r in rows], session))


_deleted = tree.subtree("id", "status", "user_id", "author_email")
_SUBTREE_AUTHORS = select(
    _deleted.c.id, _deleted.c.status, _deleted.c.user_id, _deleted.c.author_email
)


def _before_commit(session: Session) -> None:
    if not session.in_nested_transaction():
        apply(session)


def _after_transaction_create(session: Session, transaction: SessionTransaction) -> None:
    if transaction.nested:
        saved = (Counter(_pending(session)), _authors(session).copy())
        session.info.setdefault(SAVEPOINTS_KEY, {})[transaction] = saved


def _after_soft_rollback(session: Session, previous: SessionTransaction) -> None:
    savepoints = session.info.get(SAVEPOINTS_KEY, {})
    if previous.nested and previous in savepoints:
        session.info[PENDING_KEY], session.info[AUTHORS_KEY] = savepoints.pop(previous)
    elif previous.parent is None:
        _forget(session)


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    # (A savepoint's copy stays until the transaction ends: this runs before
    # after_soft_rollback, which needs it.)
    if transaction.parent is None and not transaction.nested:
        _forget(session)  # committed (already written) or rolled back


def _forget(session: Session) -> None:
    for key in (PENDING_KEY, FLUSH_KEY, SAVEPOINTS_KEY, AUTHORS_KEY, FLUSH_AUTHORS_KEY):
        session.info.pop(key, None)


HOOKS = {
    "before_flush": _before_flush,
    "after_flush": _after_flush,
    "before_commit": _before_commit,
    "after_transaction_create": _after_transaction_create,
    "after_soft_rollback": _after_soft_rollback,
    "after_transaction_end": _after_transaction_end,
}
