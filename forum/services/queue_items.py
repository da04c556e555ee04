"""What the queue shows of a comment, as plain values: its columns, its parent's, its
account's and post's, and why it was held, read for a whole page by one query and one
select-in (services/queue.py `queue_page`), not as ORM objects.

The values are named tuples under the names the item macro reads
(templates/moderation/_macros.html), so a page's items are also the keys of the
rendered items' cache (moderation/fragments.py): a tuple's hash and equality are C's.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, select
from sqlalchemy.orm import aliased

from forum.extensions import read
from forum.models import Comment, HoldReason, Post, Status, User


class Account(NamedTuple):
    username: str
    is_banned: bool = False


class Parent(NamedTuple):
    author_name: str
    status: Status
    body_html: str


class PostView(NamedTuple):
    id: int
    slug: str
    title: str


class Reason(NamedTuple):
    rule: str
    detail: str


class ItemView(NamedTuple):
    """A comment as the queue shows it: its columns, parent, account, post and hold
    reasons, as plain values under the names the item macro reads them by. Named tuples:
    a page's items are keys of the rendered items' cache (moderation/fragments.py), and a
    tuple's hash and equality are C's."""

    id: int
    status: Status
    user_id: int | None
    author_name: str
    author_email: str
    author_url: str
    ip: str
    created_at: datetime
    body_html: str
    body_source: str
    spam_score: float | None
    spam_reasons: tuple[tuple[Any, ...], ...]
    sanitizer_report: tuple[str, ...]
    reasons: tuple[Reason, ...]
    parent: Parent | None
    user: Account | None
    post: PostView

    @property
    def size(self) -> int:
        """The bytes of its texts."""
        parent = len(self.parent.body_html) if self.parent else 0
        return len(self.body_html) + len(self.body_source) + parent


PARENT = aliased(Comment, name="parent")
ITEM_COLUMNS = (
    Comment.id,
    Comment.status,
    Comment.user_id,
    Comment.author_name,
    Comment.author_email,
    Comment.author_url,
    Comment.ip,
    Comment.created_at,
    Comment.body_html,
    Comment.body_source,
    Comment.spam_score,
    Comment.spam_reasons,
    Comment.sanitizer_report,
    PARENT.author_name.label("parent_name"),
    PARENT.status.label("parent_status"),
    PARENT.body_html.label("parent_html"),
    User.username,
    User.is_banned,
    Post.id.label("post_id"),
    Post.slug,
    Post.title,
)
HOLD_REASONS = (
    select(HoldReason.comment_id, HoldReason.rule, HoldReason.detail)
    .where(HoldReason.comment_id.in_(bindparam("ids", expanding=True)))
    .order_by(HoldReason.id)
)


def hold_reasons(ids: list[int]) -> dict[int, tuple[Reason, ...]]:
    """Why each of these comments was held, in the order the rules fired (one query)."""
    if not ids:
        return {}
    found: dict[int, list[Reason]] = defaultdict(list)
    for comment_id, rule, detail in read(HOLD_REASONS, {"ids": ids}):
        found[comment_id].append(Reason(rule, detail))
    return {comment_id: tuple(reasons) for comment_id, reasons in found.items()}


def item_view(row: Any, reasons: tuple[Reason, ...]) -> ItemView:
    """One row of the items' query as the queue shows it."""
    return ItemView(
        row.id,
        row.status,
        row.user_id,
        row.author_name,
        row.author_email,
        row.author_url,
        row.ip,
        row.created_at,
        row.body_html,
        row.body_source,
        row.spam_score,
        tuple(tuple(pair) for pair in row.spam_reasons or ()),
        tuple(row.sanitizer_report or ()),
        reasons,
        Parent(row.parent_name, row.parent_status, row.parent_html)
        if row.parent_status is not None
        else None,
        Account(row.username, row.is_banned) if row.username is not None else None,
        PostView(row.post_id, row.slug, row.title),
    )
