"""The dashboard's queries: tabs, filters, search, keyset pages, counts, author history.

A page is a constant number of queries whatever its size or the queue's: the items
with their posts, parents and accounts as plain values (one range scan of
ix_comment_status_created, keyset on created_at and id, joined by primary key;
services/queue_items.py), their hold reasons (one select-in), the history of every
author on the page (their maintained rows, services/counters.py), open flags (one, when
the items' query found an item with any), and the tab counts (one read of the maintained
counters).
"""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Float, Integer, Select, String, bindparam, exists, func, or_, select, tuple_
from sqlalchemy.orm import selectinload

from forum.extensions import db, read
from forum.ids import parse_id
from forum.models import (
    SCORE_ORDER,
    UNSCORED,
    Ban,
    Comment,
    Flag,
    ModerationAction,
    Post,
    QueueCounter,
    Role,
    Status,
    User,
)
from forum.services import counters
from forum.services.queue_items import ITEM_COLUMNS, PARENT, ItemView, hold_reasons, item_view

TABS = ("pending", "approved", "spam", "rejected", "flagged")
ORDERS = ("newest", "oldest", "score")  # score: highest spam score first
MAX_SEARCH = 200

GROUP_KINDS = {
    "ip": Comment.ip,
    "email": Comment.author_email,
    "domain": Comment.link_domain,
    "text": Comment.body_hash,
}


class BadCursor(ValueError):
    """A page cursor that was not made by us."""


@dataclass(frozen=True)
class QueueFilter:
    tab: str = "pending"
    post_id: int | None = None
    author: str = ""  # an email address, "user:<id>", or an author name
    q: str = ""  # searched in body, name and email
    order: str = "newest"
    group: str = ""  # a key of GROUP_KINDS ...
    value: str = ""  # ... and its value: one group of the queue

    def __post_init__(self) -> None:
        if self.tab not in TABS or self.order not in ORDERS:
            raise ValueError("unknown tab or order")
        if self.group and self.group not in GROUP_KINDS:
            raise ValueError("unknown group")


@dataclass(frozen=True)
class Cursor:
    """Where a page ends: (created_at, id), or (spam score, id) in the score order."""

    created_at: datetime | None
    id: int
    score: float | None = None

    def encode(self) -> str:
        if self.created_at is None:
            return f"s{self.score!r}~{self.id}"
        return f"{self.created_at.isoformat()}~{self.id}"

    @classmethod
    def decode(cls, raw: str) -> Cursor:
        try:
            when, _, ident = raw.partition("~")
            number = parse_id(ident, low=0)
            if number is None:
                raise ValueError(raw)
            if when.startswith("s"):
                score = float(when[1:])
                if not -1.0 <= score <= 1.0:  # also refuses nan
                    raise ValueError(raw)
                return cls(None, number, score)
            created = datetime.fromisoformat(when)
            if created.tzinfo is None:
                raise ValueError(raw)
            return cls(created, number)
        except ValueError as error:
            raise BadCursor(raw) from error

    @classmethod
    def of(cls, comment: Comment | ItemView, by_score: bool = False) -> Cursor:
        if by_score:
            score = comment.spam_score if comment.spam_score is not None else UNSCORED
            return cls(None, comment.id, score)
        return cls(comment.created_at, comment.id)


@dataclass(frozen=True)
class History:
    """What an author did before: counts by status and their first comment's time."""

    approved: int = 0
    pending: int = 0
    spam: int = 0
    rejected: int = 0
    first_seen: datetime | None = None


@dataclass
class QueuePage:
    items: list[ItemView]
    next_cursor: str | None  # after the last item, when there is more
    prev_cursor: str | None  # before the first item, when this is not the first page
    histories: dict[str, History] = field(default_factory=dict)
    flags: dict[int, list[Flag]] = field(default_factory=dict)


def status_of(tab: str) -> Status | None:
    return None if tab == "flagged" else Status(tab)


OPEN_FLAGGED = select(Flag.comment_id).where(Flag.resolved.is_(False))


def open_flag_exists():
    return exists().where(Flag.comment_id == Comment.id, Flag.resolved.is_(False))


def like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@dataclass(frozen=True)
class _Shape:
    """What decides the items' statement; the values go in as bind parameters."""

    flagged: bool
    post: bool
    author: str  # "user", "email", "name" or ""
    search: bool
    group: str
    order: str
    cursor: str  # "after", "before" or ""


def _filter_values(f: QueueFilter) -> tuple[str, dict[str, Any]]:
    """The author filter's kind and every filter's bind parameters."""
    params: dict[str, Any] = {"status": status_of(f.tab), "post": f.post_id, "value": f.value}
    author, kind = f.author.strip(), ""
    if author.startswith("user:") and parse_id(author[5:]) is not None:
        kind, params["author"] = "user", parse_id(author[5:])
    elif "@" in author:
        kind, params["author"] = "email", author.casefold()
    elif author:
        kind, params["author"] = "name", author
    q = f.q.strip()[:MAX_SEARCH]
    params["pattern"] = like_pattern(q) if q else None
    return kind, params


AUTHOR_FILTERS = {
    "user": Comment.user_id,
    "email": Comment.author_email,
    "name": Comment.author_name,
}


@functools.lru_cache(maxsize=512)
def _items_statement(shape: _Shape) -> Select:
    """The items' query of one shape of filter, order and cursor, built once: building it
    cost more than SQLite takes to answer it (bench/NOTES.md).

    The page's ids are picked first, from the comment's own columns, and only they are
    joined to their parent, account and post and read whole: where the order needs a sort
    (the flagged tab, one author's spam wave) the sort carries two columns, not the page's
    texts."""
    by_score = shape.order == "score"
    newest = shape.order != "oldest"
    first = SCORE_ORDER if by_score else Comment.created_at
    # The flagged tab starts from the open flags (few), not from every comment.
    ids = select(Comment.id).where(
        Comment.id.in_(OPEN_FLAGGED) if shape.flagged else Comment.status == bindparam("status")
    )
    if shape.post:
        ids = ids.where(Comment.post_id == bindparam("post"))
    if shape.author:
        ids = ids.where(AUTHOR_FILTERS[shape.author] == bindparam("author"))
    if shape.search:
        pattern = bindparam("pattern", type_=String())
        ids = ids.where(
            or_(
                Comment.body_source.ilike(pattern, escape="\\"),
                Comment.author_name.ilike(pattern, escape="\\"),
                Comment.author_email.ilike(pattern, escape="\\"),
            )
        )
    if shape.group:
        ids = ids.where(GROUP_KINDS[shape.group] == bindparam("value"))
    key = tuple_(first, Comment.id)
    mark = tuple_(
        bindparam("mark", type_=Float() if by_score else Comment.created_at.type),
        bindparam("mark_id", type_=Integer()),
    )
    if shape.cursor == "after":
        ids = ids.where(key < mark if newest else key > mark)
    elif shape.cursor == "before":
        ids = ids.where(key > mark if newest else key < mark)
    descending = newest != (shape.cursor == "before")
    order = (first.desc(), Comment.id.desc()) if descending else (first.asc(), Comment.id.asc())
    page = ids.order_by(*order).limit(bindparam("limit", type_=Integer()))
    # Whether each item has an open flag: the flags' query then runs only when one has.
    # Outer joins by primary key, for the page's ids only.
    return (
        select(*ITEM_COLUMNS, open_flag_exists().label("flagged"))
        .select_from(Comment)
        .outerjoin(PARENT, PARENT.id == Comment.parent_id)
        .outerjoin(User, User.id == Comment.user_id)
        .outerjoin(Post, Post.id == Comment.post_id)
        .where(Comment.id.in_(page.scalar_subquery()))
        .order_by(*order)
    )


def queue_page(
    f: QueueFilter,
    per_page: int,
    after: Cursor | None = None,
    before: Cursor | None = None,
) -> QueuePage:
    """One page of a tab, keyset-paginated on (created_at, id) in the chosen order.

    The score order pages on (spam score, id), highest first; raises BadCursor for a
    cursor of the other kind.
    """
    by_score = f.order == "score"
    for cursor in (after, before):
        if cursor is not None and (cursor.created_at is None) != by_score:
            raise BadCursor(cursor.encode())
    backwards = before is not None and after is None
    cursor = after if after is not None else before
    author, params = _filter_values(f)
    if cursor is not None:
        params["mark"] = cursor.score if by_score else cursor.created_at
        params["mark_id"] = cursor.id
    params["limit"] = per_page + 1
    shape = _Shape(
        flagged=status_of(f.tab) is None,
        post=f.post_id is not None,
        author=author,
        search=params["pattern"] is not None,
        group=f.group,
        order=f.order,
        cursor="" if cursor is None else "before" if backwards else "after",
    )
    found = read(_items_statement(shape), params).all()
    more = len(found) > per_page
    found = found[:per_page]
    if backwards:
        found.reverse()
    reasons = hold_reasons([row.id for row in found])
    rows = [item_view(row, reasons.get(row.id, ())) for row in found]
    flagged = [item for item, row in zip(rows, found, strict=True) if row.flagged]
    next_cursor = prev_cursor = None
    if rows:
        if more or backwards:
            next_cursor = Cursor.of(rows[-1], by_score).encode()
        if (more and backwards) or (after is not None):
            prev_cursor = Cursor.of(rows[0], by_score).encode()
    return QueuePage(rows, next_cursor, prev_cursor, author_histories(rows), open_flags(flagged))


def tab_counts() -> dict[str, int]:
    """Comments per tab, from the maintained counters (one query; services/counters.py)."""
    totals = counters.totals()
    return {tab: totals.get(tab, 0) for tab in TABS}


def pending_count() -> int:
    """Comments awaiting moderation, from the maintained counters (one query)."""
    return counters.total(Status.PENDING)


def pending_by_post(post_ids: list[int]) -> dict[int, int]:
    """Each of these posts' pending comments, from the maintained counters (one query)."""
    counters.apply(db.session)
    return dict(
        db.session.execute(
            select(QueueCounter.post_id, QueueCounter.n).where(
                QueueCounter.post_id.in_(post_ids), QueueCounter.name == Status.PENDING.value
            )
        ).all()
    )


def author_key(comment: Comment | ItemView) -> str:
    """Authors are their account, or for guests their email address."""
    return counters.author_of(comment.user_id, comment.author_email)


def author_histories(comments: list[Comment] | list[ItemView]) -> dict[str, History]:
    """History of every author of these comments: their maintained rows, one query by
    primary key, whatever the number of their comments (services/counters.py)."""
    rows = counters.authors(author_key(c) for c in comments)
    return {
        key: History(approved, pending, spam, rejected, first_seen)
        for key, (approved, pending, spam, rejected, first_seen) in rows.items()
    }


def open_flags(comments: list[Comment] | list[ItemView]) -> dict[int, list[Flag]]:
    """Unresolved flags of these comments with their readers (one query each)."""
    ids = [c.id for c in comments]
    if not ids:
        return {}
    flags: dict[int, list[Flag]] = defaultdict(list)
    for flag in db.session.scalars(
        select(Flag)
        .where(Flag.comment_id.in_(ids), Flag.resolved.is_(False))
        .options(selectinload(Flag.user))
        .order_by(Flag.id)
    ):
        flags[flag.comment_id].append(flag)
    return dict(flags)


@dataclass(frozen=True)
class Group:
    kind: str
    value: str
    count: int
    sample: Comment | None


def groups(kind: str, status: Status = Status.PENDING, limit: int = 50) -> list[Group]:
    """The largest groups of comments in one status by IP, email, link domain or text."""
    column = GROUP_KINDS[kind]
    rows = db.session.execute(
        select(column, func.count(Comment.id), func.min(Comment.id))
        .where(Comment.status == status, column != "")
        .group_by(column)
        .order_by(func.count(Comment.id).desc(), column)
        .limit(limit)
    ).all()
    samples = {
        c.id: c
        for c in db.session.scalars(
            select(Comment)
            .where(Comment.id.in_([r[2] for r in rows]))
            .options(selectinload(Comment.post))
        )
    }
    return [Group(kind, value, count, samples.get(sample)) for value, count, sample in rows]


def group_members(kind: str, value: str, status: Status) -> list[int]:
    """Ids of one group's comments in one status."""
    return list(
        db.session.scalars(
            select(Comment.id).where(Comment.status == status, GROUP_KINDS[kind] == value)
        )
    )


POSTS_FOR_FILTER = (
    select(Post.id, Post.title, func.coalesce(QueueCounter.n, 0))
    .outerjoin(
        QueueCounter,
        (QueueCounter.post_id == Post.id) & (QueueCounter.name == Status.PENDING.value),
    )
    .order_by(Post.created_at.desc(), Post.id.desc())
    .limit(bindparam("limit", type_=Integer()))
)


def posts_for_filter(limit: int = 100) -> list:
    """The newest posts with their pending counts, for the post filter: one indexed query
    whatever the queue's size (the counts are the maintained counters, not a count)."""
    counters.apply(db.session)
    return read(POSTS_FOR_FILTER, {"limit": limit}).all()


def comment_log(comment_id: int, limit: int = 50) -> list[ModerationAction]:
    """What was done to one comment, newest first."""
    return list(
        db.session.scalars(
            select(ModerationAction)
            .where(ModerationAction.comment_id == comment_id)
            .options(selectinload(ModerationAction.moderator))
            .order_by(ModerationAction.id.desc())
            .limit(limit)
        )
    )


def log_entries(
    moderator: str, action: str, comment_id: int | None, before: int | None, limit: int
) -> list[ModerationAction]:
    """One page of the audit log, newest first, by moderator, action and comment."""
    stmt = select(ModerationAction).options(selectinload(ModerationAction.moderator))
    if moderator:
        stmt = stmt.join(User, User.id == ModerationAction.moderator_id).where(
            User.username_key == moderator.casefold()
        )
    if action:
        stmt = stmt.where(ModerationAction.action == action)
    if comment_id is not None:
        stmt = stmt.where(ModerationAction.comment_id == comment_id)
    if before is not None:
        stmt = stmt.where(ModerationAction.id < before)
    return list(db.session.scalars(stmt.order_by(ModerationAction.id.desc()).limit(limit)))


def staff() -> list[User]:
    """Moderators and admins, by name (the log's filter)."""
    return list(
        db.session.scalars(
            select(User).where(User.role.in_([Role.MODERATOR, Role.ADMIN])).order_by(User.username)
        )
    )


def recent_bans(limit: int) -> list[Ban]:
    return list(db.session.scalars(select(Ban).order_by(Ban.id.desc()).limit(limit)))
