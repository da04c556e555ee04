"""Writing comments: submission, replies, edits, deletion and thread visibility."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, bindparam, insert, inspect, select
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from forum.extensions import db
from forum.models import (
    BodyFormat,
    Comment,
    HoldReason,
    Post,
    Rule,
    SpamLabel,
    Status,
    User,
    utcnow,
)
from forum.services import counters, markdown, moderation_rules, sanitize, spam_filter, tree
from forum.services.settings import Settings

EMPTY_BODY = "Write something first."


class CommentError(Exception):
    """A comment that cannot be accepted; the message is shown to the person."""


class CommentsClosed(CommentError):
    pass


class InvalidParent(CommentError):
    pass


class NotAllowed(CommentError):
    pass


class EditWindowClosed(CommentError):
    pass


class DuplicateComment(CommentError):
    def __init__(self, existing: Comment) -> None:
        super().__init__("You already posted this comment.")
        self.existing = existing


@dataclass(frozen=True)
class CommentInput:
    body: str
    parent_id: int | None = None
    author_name: str = ""
    author_email: str = ""
    author_url: str = ""
    ip: str = ""
    user_agent: str = ""
    honeypot: str = ""
    seconds_to_submit: float | None = None
    timestamp_missing: bool = False
    notify_on_decision: bool = False
    notify_on_reply: bool = False
    body_format: BodyFormat = BodyFormat.HTML


def comments_closed(post: Post, settings: Settings, now: datetime | None = None) -> bool:
    """Closed by hand, or automatically after `close_after_days` (0 = never)."""
    if not post.comments_open:
        return True
    if settings.close_after_days:
        now = now or utcnow()
        return now - post.created_at > timedelta(days=settings.close_after_days)
    return False


def resolve_parent(
    post: Post,
    parent_id: int | None,
    settings: Settings,
    user: User | None,
    own_pending_ids: frozenset[int] = frozenset(),
) -> Comment | None:
    """The comment a reply attaches to, after the depth limit; raises InvalidParent."""
    if parent_id is None:
        return None
    parent = db.session.get(Comment, parent_id)
    if parent is None or parent.post_id != post.id:
        raise InvalidParent("The comment you replied to does not exist on this post.")
    if parent.status is Status.PENDING:
        own = parent.id in own_pending_ids or (
            user is not None and parent.user_id is not None and parent.user_id == user.id
        )
        if not own:
            raise InvalidParent("The comment you replied to is awaiting moderation.")
    elif parent.status is not Status.APPROVED:
        raise InvalidParent("The comment you replied to is no longer available.")
    # Beyond the deepest level a reply joins its parent's siblings, like WordPress.
    max_level = max(settings.max_depth, 1) - 1
    while parent.depth > max_level - 1 and parent.parent_id is not None:
        parent = parent.parent
    if parent.depth > max_level - 1:
        return None if max_level == 0 else parent
    return parent


def submit_comment(
    post: Post,
    data: CommentInput,
    settings: Settings,
    user: User | None = None,
    own_pending_ids: frozenset[int] = frozenset(),
    now: datetime | None = None,
) -> Comment:
    """Sanitize, decide by the rules, store. Raises a CommentError subclass."""
    now = now or utcnow()
    if comments_closed(post, settings, now):
        raise CommentsClosed("Comments are closed on this post.")
    if user is not None and user.is_banned:
        raise NotAllowed("Your account may not comment.")
    parent = resolve_parent(post, data.parent_id, settings, user, own_pending_ids)
    body = checked_body(data.body, settings, data.body_format)

    if user is not None:
        name, email, url = user.username, user.email_key, ""
    else:
        name = sanitize.normalize_text(data.author_name).strip()
        if sanitize.is_blank(name):
            raise CommentError("Give a name to comment under.")
        email = data.author_email.strip().casefold()
        url = data.author_url.strip()
    duplicate = find_duplicate(post, parent, user, email, body.fingerprint, settings, now)
    if duplicate is not None:
        raise DuplicateComment(duplicate)

    features = features_of(body, name, email, url)
    verdict = spam_filter.score(features, settings.spam_min_decisions)
    decision = moderation_rules.evaluate(
        moderation_rules.Submission(
            body=body.text,
            link_count=body.link_count,
            removed=body.removed,
            author_name=name,
            author_email=email,
            author_url=url,
            spam_score=verdict.score,
            spam_ready=verdict.ready,
            ip=data.ip,
            user_agent=data.user_agent,
            user_id=user.id if user else None,
            role=user.role if user else None,
            honeypot=data.honeypot,
            seconds_to_submit=data.seconds_to_submit,
            timestamp_missing=data.timestamp_missing,
        ),
        settings,
    )
    comment = Comment(
        post_id=post.id,
        user_id=user.id if user else None,
        author_name=name[:100],
        author_email=email[:254],
        author_url=url[:500],
        ip=data.ip[:45],
        user_agent=data.user_agent[:500],
        spam_score=verdict.score,
        spam_reasons=verdict.reasons,
        status=decision.status,
        created_at=now,
        notify_on_decision=data.notify_on_decision,
        notify_on_reply=data.notify_on_reply,
    )
    apply_body(comment, body)
    if decision.status is not Status.PENDING:
        comment.moderated_at = now
    store_new(comment, parent, [(r.rule, r.detail[:500]) for r in decision.reasons])
    if decision.status is Status.SPAM and spam_filter.decided_spam(verdict, settings):
        # The filter's own decision is a lesson until a moderator corrects it.
        spam_filter.teach([(comment.id, SpamLabel.SPAM, features)])
    return comment


def store_new(
    comment: Comment, parent: Comment | None, reasons: Sequence[tuple[str, str]] = ()
) -> None:
    """Store a new comment under `parent` with its hold reasons (rule, detail): its place in
    the thread given (tree.py), the queue's counters told, and the object put in the session
    as if loaded from the row it became (its relationships load when read).

    Core statements, not the unit of work: flushing one new comment cost four times its
    three statements (bench/NOTES.md, session 10). Each statement goes through the session,
    so the page versions see it (services/versions.py); the counters are told as by any bulk
    insert. The comment must not be in the session yet, and must name its author by
    `user_id` (a `user=` would put it in the account's comments, to be flushed again).
    """
    tree.place_in_thread(comment, parent)
    state = inspect(comment)
    values = {key: state.dict.get(key, default()) for key, default in _COLUMN_DEFAULTS}
    post_id = values["post_id"]
    new_id = db.session.execute(
        _INSERT, values, execution_options={"page_scopes": (post_id,)}
    ).scalar_one()
    path = tree.give_path(new_id, post_id, parent)
    if reasons:
        db.session.execute(
            _INSERT_REASONS,
            [{"comment_id": new_id, "rule": rule, "detail": detail} for rule, detail in reasons],
        )
    counters.inserted([values])
    for key, value in values.items():
        set_committed_value(comment, key, value)
    set_committed_value(comment, "id", new_id)
    set_committed_value(comment, "path", path)
    make_transient_to_detached(comment)
    db.session.add(comment)


def _column_defaults() -> tuple[tuple[str, Callable[[], object]], ...]:
    """Each column but the id, with what a new comment holds when nothing set it: the
    column's default (computed here, so the object holds it too), else None."""
    found: list[tuple[str, Callable[[], object]]] = []
    for column in Comment.__table__.columns:
        default = column.default
        if column.primary_key:
            continue
        if default is None:
            found.append((column.key, lambda: None))
        elif default.is_callable:
            found.append((column.key, functools.partial(default.arg, None)))
        else:
            found.append((column.key, functools.partial(lambda value: value, default.arg)))
    return tuple(found)


_COLUMN_DEFAULTS = _column_defaults()
_INSERT = insert(Comment.__table__).returning(Comment.__table__.c.id)
_INSERT_REASONS = insert(HoldReason.__table__)


@dataclass(frozen=True)
class Body:
    """A comment's text ready to store: the normalized source and all that derives from it."""

    text: str
    format: BodyFormat
    html: str
    removed: tuple[str, ...]
    domains: tuple[str, ...]
    link_count: int
    fingerprint: str
    blank: bool = False  # renders no visible text


def body_of(text: str, body_format: BodyFormat = BodyFormat.HTML) -> Body:
    """Normalize, render in its format and sanitize, with no checks (importers and the demo
    keep what they get)."""
    text = sanitize.normalize_text(text).strip()
    result = markdown.render(text, body_format, markdown.Kind.COMMENT)
    facts = sanitize.html_facts(result.html)
    return Body(
        text,
        body_format,
        result.html,
        result.removed,
        tuple(facts.domains),
        len(facts.hrefs),
        sanitize.body_fingerprint(text),
        facts.blank,
    )


def checked_body(body: str, settings: Settings, body_format: BodyFormat = BodyFormat.HTML) -> Body:
    """The body as `body_of` makes it, or a CommentError when a reader would see nothing
    (only invisible characters, or markup that renders nothing) or it is too long."""
    text = sanitize.normalize_text(body).strip()
    if sanitize.is_blank(text):
        raise CommentError(EMPTY_BODY)
    if len(text) > settings.comment_max_length:
        raise CommentError(f"Comments are limited to {settings.comment_max_length} characters.")
    prepared = body_of(text, body_format)
    if prepared.blank:
        raise CommentError(EMPTY_BODY)
    return prepared


BODY_COLUMNS = (
    "body_source",
    "body_format",
    "body_html",
    "body_hash",
    "link_domain",
    "sanitizer_report",
)


def body_columns(body: Body) -> dict[str, object]:
    """The comment columns a body sets (for bulk inserts; `apply_body` for one comment)."""
    return {
        "body_source": body.text,
        "body_format": body.format,
        "body_html": body.html,
        "body_hash": body.fingerprint,
        "link_domain": body.domains[0][:255] if body.domains else "",
        "sanitizer_report": list(body.removed),
    }


def apply_body(comment: Comment, body: Body) -> bool:
    """The one writer of a comment's text and what derives from it (HTML, fingerprint,
    link domain, sanitizer report). True when the text changed, compared as normalized,
    so sending back untouched text (or text stored before normalizing) is no edit."""
    before = comment.body_source
    changed = before is None or sanitize.normalize_text(before).strip() != body.text
    for key, value in body_columns(body).items():
        setattr(comment, key, value)
    return changed


def features_of(body: Body, name: str, email: str, url: str) -> spam_filter.FeatureInput:
    return spam_filter.FeatureInput(
        body.text, name, email, url, body.domains, body.link_count, body.removed
    )


def find_duplicate(
    post: Post,
    parent: Comment | None,
    user: User | None,
    email: str,
    fingerprint: str,
    settings: Settings,
    now: datetime,
) -> Comment | None:
    """The same author, body and parent within the duplicate window."""
    params = {
        "post_id": post.id,
        "body_hash": fingerprint,
        "since": now - timedelta(seconds=settings.duplicate_window_seconds),
    }
    if parent is not None:
        params["parent_id"] = parent.id
    if user is not None:
        params["user_id"] = user.id
    else:
        params["email"] = email
    stmt = _duplicate_query(parent is not None, user is not None)
    found = db.session.scalars(stmt, params).first()
    return db.session.get(Comment, found) if found is not None else None


@functools.cache
def _duplicate_query(reply: bool, member: bool) -> Select:
    """Built once per shape, so that a POST only binds its values (building the statement
    and its cache key cost more than running it). Answered by (post_id, body_hash): the
    parent's test, `parent_id + 0`, is no index's, or SQLite, without statistics, may read
    every reply to the parent instead, by chance of the schema (tests/test_query_plans.py).
    It reads the id only, on the table: almost every POST finds nothing, and the ORM's
    layer for an entity cost more than the query."""
    table = Comment.__table__
    parent = table.c.parent_id + 0
    stmt = select(table.c.id).where(
        table.c.post_id == bindparam("post_id"),
        table.c.body_hash == bindparam("body_hash"),
        table.c.created_at >= bindparam("since"),
        parent == bindparam("parent_id") if reply else parent.is_(None),
    )
    if member:
        stmt = stmt.where(table.c.user_id == bindparam("user_id"))
    else:
        stmt = stmt.where(table.c.user_id.is_(None), table.c.author_email == bindparam("email"))
    return stmt.limit(1)


def can_edit(comment: Comment, user: User | None, settings: Settings, now: datetime | None = None):
    """Own comment, not banned, still inside the edit window."""
    if user is None or not user.is_authenticated or comment.user_id != user.id:
        return False
    if user.is_banned or comment.status in (Status.SPAM, Status.REJECTED):
        return False
    now = now or utcnow()
    return now - comment.created_at <= timedelta(minutes=settings.edit_window_minutes)


def edit_comment(comment: Comment, body: str, user: User, settings: Settings) -> Comment:
    """A member edits their own comment; the rules run again and may hold it."""
    if not can_edit(comment, user, settings):
        raise EditWindowClosed("This comment can no longer be edited.")
    prepared = checked_body(body, settings, comment.body_format)
    features = features_of(prepared, comment.author_name, comment.author_email, comment.author_url)
    verdict = spam_filter.score(features, settings.spam_min_decisions)
    decision = moderation_rules.evaluate(
        moderation_rules.Submission(
            body=prepared.text,
            link_count=prepared.link_count,
            removed=prepared.removed,
            author_name=comment.author_name,
            author_email=comment.author_email,
            author_url=comment.author_url,
            spam_score=verdict.score,
            spam_ready=verdict.ready,
            ip=comment.ip,
            user_agent=comment.user_agent,
            user_id=user.id,
            role=user.role,
        ),
        settings,
    )
    was = comment.status
    apply_body(comment, prepared)
    comment.spam_score = verdict.score
    comment.spam_reasons = verdict.reasons
    comment.edited_at = utcnow()
    # An edit never promotes a held comment; it may send an approved one back.
    if was is Status.APPROVED and decision.status is not Status.APPROVED:
        comment.status = decision.status
        comment.reasons = [HoldReason(rule=Rule.EDITED, detail="changed after approval")] + [
            HoldReason(rule=r.rule, detail=r.detail[:500]) for r in decision.reasons
        ]
        tree.refresh_visibility(comment)
    return comment


def delete_own_comment(comment: Comment, user: User, settings: Settings) -> None:
    """A member deletes their own comment within the edit window, unless others replied."""
    if not can_edit(comment, user, settings):
        raise EditWindowClosed("This comment can no longer be deleted.")
    has_replies = db.session.scalar(
        select(Comment.id).where(Comment.parent_id == comment.id).limit(1)
    )
    if has_replies is not None:
        raise NotAllowed("This comment has replies; edit it instead of deleting it.")
    db.session.delete(comment)
