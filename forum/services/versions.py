"""Page versions: a counter per post, one for the whole site and one for everything,
bumped in the same transaction as every change a reader could see.

No writer calls this module: it watches the session. Every flush that adds, changes or
deletes a comment bumps its post; a post, its own; a setting, a tag or a shown name
(username, display name, a deleted account) bumps GLOBAL; and every bump bumps SITE (the
front page, tag pages and feeds show every post). An INSERT, UPDATE or DELETE statement on
those tables bumps GLOBAL unless it names the posts it touches with the execution option
`page_scopes=(post_id, ...)`; SQL typed out as text() that writes and names one of the
watched tables bumps GLOBAL and QUEUE. The bumps run as the last statement before COMMIT,
so the hot SITE row is locked only for the commit itself. A writer added later is covered
the day it lands; only SQL sent around the session (a raw DBAPI cursor, a connection of
its own) is not, and none of the tables above is written that way.

QUEUE versions what the moderation dashboard shows: every change above, the tables only
moderators see (hold reasons, flags, the queue's and the authors' counters) and an
account's ban or role. A change only the dashboard shows (a reader's flag) bumps QUEUE
alone; a rebuild of the counters on a connection of its own bumps it itself.

Readers read the versions first and key what they render with them: a page rendered from
data older than a change is stored under the old version, which nobody asks for once the
change is committed.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import chain
from typing import Any

from sqlalchemy import bindparam, event, inspect, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import TextClause

from forum.extensions import db, driver_read
from forum.models import (
    AuthorCounter,
    Comment,
    Flag,
    HoldReason,
    PageVersion,
    Post,
    QueueCounter,
    Setting,
    Tag,
    User,
)

QUEUE = -2
SITE = -1
GLOBAL = 0
SCOPES_KEY = "page_scopes"
# Tables whose rows a page shows: a statement on one of them without page_scopes bumps GLOBAL.
SHOWN_TABLES = frozenset({"comment", "post", "post_tag", "tag", "user", "setting"})
USER_SHOWN = ("username", "display_name")
# What the dashboard shows beyond those: a statement on any of these tables bumps QUEUE.
QUEUE_TABLES = SHOWN_TABLES | {"hold_reason", "flag", "queue_counter", "author_counter"}
QUEUE_MODELS = (Comment, Post, Setting, Tag, HoldReason, Flag, QueueCounter, AuthorCounter)
USER_QUEUE_SHOWN = (*USER_SHOWN, "is_banned", "role")
# Typed-out SQL that writes nothing (a lock only waits: what follows it is watched), and
# the watched tables' names in typed-out SQL.
_READS = re.compile(r"\s*(?:SELECT|PRAGMA|EXPLAIN|SHOW|LOCK)\b", re.IGNORECASE)
_NAMES_WATCHED = re.compile(rf"\b(?:{'|'.join(sorted(QUEUE_TABLES))})\b", re.IGNORECASE)


@dataclass(frozen=True)
class Versions:
    post: tuple[int, float]  # (version, Unix time of its latest bump; 0.0: never)
    global_: tuple[int, float]
    site: tuple[int, float]

    # Keys carry the bump times too: a database restored from a backup counts the same
    # version numbers again, for other contents, but never at the same moments.
    @property
    def thread_key(self) -> str:
        return f"{self.post[0]}.{self.post[1]!r}.{self.global_[0]}.{self.global_[1]!r}"

    @property
    def site_key(self) -> str:
        return f"{self.site[0]}.{self.site[1]!r}"

    @property
    def thread_changed_at(self) -> float:
        return max(self.post[1], self.global_[1])

    @property
    def site_changed_at(self) -> float:
        return self.site[1]


def current(post_id: int | None = None) -> Versions:
    """The versions a page of `post_id` (or a site-wide page) depends on: one query.

    When the request's session has begun its transaction on a connection, on that
    connection: what the page then renders comes from the same snapshot. Otherwise (a
    cached page: nothing else has read the database; a member's user was read on the
    driver too, extensions.driver_load) on a pooled connection's own cursor, without
    opening the session's connection at all:
    the session's begin, close and rollback cost more than the query (bench/NOTES.md, "An
    honest yardstick, then thread pages again"), and a SQLAlchemy Connection four times
    it (extensions.driver_read). A page rendered after it reads data at
    least as new as these versions, so it is never kept under a newer version than its own.
    """
    if post_id is None:
        stmt, params = _SITE_WIDE, {"site": SITE, "global": GLOBAL}
    else:
        stmt, params = _OF_POST, {"site": SITE, "global": GLOBAL, "post": post_id}
    if db.session.registry.has() and db.session().holds_connection():
        rows = db.session.connection().execute(stmt, params).all()
    else:
        rows = driver_read(stmt, params)
    found = {scope: (version, changed_at) for scope, version, changed_at in rows}
    never = (0, 0.0)
    return Versions(
        found.get(post_id, never) if post_id is not None else never,
        found.get(GLOBAL, never),
        found.get(SITE, never),
    )


def _versions_of(*names: str) -> Any:
    """The read, built once: building it (IN of a list) cost as much as running it."""
    table = PageVersion.__table__
    columns = (table.c.scope, table.c.version, table.c.changed_at)
    return select(*columns).where(table.c.scope.in_([bindparam(name) for name in names]))


_SITE_WIDE = _versions_of("site", "global")
_OF_POST = _versions_of("site", "global", "post")
_OF_QUEUE = _versions_of("queue")


def queue_key() -> str:
    """The dashboard's version as a key (one query, in the session's transaction: what the
    page then reads is at least as new)."""
    row = db.session.connection().execute(_OF_QUEUE, {"queue": QUEUE}).first()
    return f"{row.version}.{row.changed_at!r}" if row else "0"


def bump(session: Session, scopes: Iterable[int]) -> None:
    """Add one to each scope's version (and to SITE's for a change readers see), creating
    rows as needed."""
    bump_on(session.connection(), scopes)


def bump_on(connection: Any, scopes: Iterable[int]) -> None:
    """bump() on a connection of one's own (bulk loads and rebuilds around the session)."""
    wanted = set(scopes)
    if wanted - {QUEUE}:
        wanted |= {SITE, QUEUE}
    now = time.time()
    connection.execute(
        _bump_statement(connection.dialect.name),
        # Always in the same order: no deadlock.
        [{"scope": scope, "version": 1, "changed_at": now} for scope in sorted(wanted)],
    )


@functools.cache
def _bump_statement(dialect_name: str) -> Any:
    """The upsert, built once per dialect (it runs on every commit; building it each time
    cost more than running it)."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    table = PageVersion.__table__
    stmt = dialect.insert(table)
    return stmt.on_conflict_do_update(
        index_elements=[table.c.scope],
        set_={"version": table.c.version + 1, "changed_at": stmt.excluded.changed_at},
    )


def init_app(_app: Any) -> None:
    """Watch every session (listeners are per class, so this runs once per process)."""
    for name, listener in (
        ("after_flush", _after_flush),
        ("do_orm_execute", _on_execute),
        ("before_commit", _before_commit),
        ("after_transaction_end", _after_transaction_end),
    ):
        if not event.contains(Session, name, listener):
            event.listen(Session, name, listener)


COMMITTING_KEY = "page_scopes_committing"


def _pending(session: Session) -> set[int]:
    return session.info.setdefault(SCOPES_KEY, set())


def _bump_now_if_committing(session: Session) -> None:
    """A change made after the commit's own bump (another before_commit listener) is
    bumped at once, still inside the transaction."""
    if session.info.get(COMMITTING_KEY) and session.info.get(SCOPES_KEY):
        bump(session, session.info.pop(SCOPES_KEY))


def _after_flush(session: Session, _context: Any) -> None:
    scopes = _pending(session)
    deleted = session.deleted
    # Only objects with a net change: setting an attribute to the value it had is no change.
    changed = (obj for obj in session.dirty if session.is_modified(obj))
    for obj in chain(session.new, changed, deleted):
        if isinstance(obj, Comment):
            post_id = inspect(obj).dict.get("post_id")
            scopes.add(post_id if post_id is not None else GLOBAL)
        elif isinstance(obj, Post):
            scopes.add(inspect(obj).dict.get("id") or GLOBAL)
        elif isinstance(obj, Setting | Tag) or (
            isinstance(obj, User) and _changed(obj, deleted, USER_SHOWN)
        ):
            scopes.add(GLOBAL)
        if isinstance(obj, QUEUE_MODELS) or (
            isinstance(obj, User) and _changed(obj, deleted, USER_QUEUE_SHOWN)
        ):
            scopes.add(QUEUE)
    _bump_now_if_committing(session)


def _changed(user: User, deleted: Any, shown: tuple[str, ...]) -> bool:
    """A shown column changed (a name: bylines; a ban or a role: the dashboard), or the
    account went (its comments lose their link)."""
    state = inspect(user)
    return user in deleted or any(state.attrs[n].history.has_changes() for n in shown)


def _on_execute(state: Any) -> None:
    if isinstance(state.statement, TextClause):
        # SQL typed out (a maintenance script's, a test's): which rows it writes is not
        # known, so a write that names a watched table makes every page and the dashboard
        # stale.
        sql = state.statement.text
        if not _READS.match(sql) and _NAMES_WATCHED.search(sql):
            _pending(state.session).update((GLOBAL, QUEUE))
            _bump_now_if_committing(state.session)
        return
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    table = getattr(getattr(state.statement, "table", None), "name", None)
    if table in QUEUE_TABLES:
        pending = _pending(state.session)
        pending.add(QUEUE)
        if table in SHOWN_TABLES:
            pending.update(state.execution_options.get(SCOPES_KEY, (GLOBAL,)))
        _bump_now_if_committing(state.session)


def _before_commit(session: Session) -> None:
    session.flush()
    session.info[COMMITTING_KEY] = True
    scopes = session.info.pop(SCOPES_KEY, None)
    if scopes:
        bump(session, scopes)


def _after_transaction_end(session: Session, transaction: Any) -> None:
    if transaction.parent is None:
        session.info.pop(COMMITTING_KEY, None)
        session.info.pop(SCOPES_KEY, None)  # committed (bumped) or rolled back with it
