"""Writing comments: submission, replies, edits, deletion and thread visibility."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from forum.extensions import db
from forum.models import (
    PATH_SEGMENT_WIDTH,
    BodyFormat,
    Comment,
    HoldReason,
    Post,
    Status,
    User,
    utcnow,
)
from forum.services import markdown, moderation_rules, sanitize
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
    body, result = checked_body(data.body, settings, data.body_format)

    if user is not None:
        name, email, url = user.username, user.email_key, ""
    else:
        name = sanitize.normalize_text(data.author_name).strip()
        if sanitize.is_blank(name):
            raise CommentError("Give a name to comment under.")
        email = data.author_email.strip().casefold()
        url = data.author_url.strip()
    fingerprint = sanitize.body_fingerprint(body)
    duplicate = find_duplicate(post, parent, user, email, fingerprint, settings, now)
    if duplicate is not None:
        raise DuplicateComment(duplicate)

    decision = moderation_rules.evaluate(
        moderation_rules.Submission(
            body=body,
            link_count=sanitize.count_links(result.html),
            removed=result.removed,
            author_name=name,
            author_email=email,
            author_url=url,
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
    domains = sanitize.link_domains(result.html)
    comment = Comment(
        post_id=post.id,
        parent=parent,
        user=user,
        author_name=name[:100],
        author_email=email[:254],
        author_url=url[:500],
        ip=data.ip[:45],
        user_agent=data.user_agent[:500],
        body_source=data.body,
        body_format=data.body_format,
        body_html=result.html,
        body_hash=fingerprint,
        link_domain=domains[0] if domains else "",
        sanitizer_report=list(result.removed),
        status=decision.status,
        created_at=now,
        notify_on_decision=data.notify_on_decision,
        notify_on_reply=data.notify_on_reply,
        reasons=[HoldReason(rule=r.rule, detail=r.detail[:500]) for r in decision.reasons],
    )
    if decision.status is not Status.PENDING:
        comment.moderated_at = now
    place_in_thread(comment, parent)
    return comment


def checked_body(
    body: str, settings: Settings, body_format: BodyFormat = BodyFormat.HTML
) -> tuple[str, sanitize.SanitizeResult]:
    """The normalized body and its sanitized HTML, or a CommentError when a reader would
    see nothing (only invisible characters, or markup that renders nothing) or it is too
    long."""
    text = sanitize.normalize_text(body).strip()
    if sanitize.is_blank(text):
        raise CommentError(EMPTY_BODY)
    if len(text) > settings.comment_max_length:
        raise CommentError(f"Comments are limited to {settings.comment_max_length} characters.")
    result = markdown.render(text, body_format, markdown.Kind.COMMENT)
    if sanitize.is_blank_html(result.html):
        raise CommentError(EMPTY_BODY)
    return text, result


def place_in_thread(comment: Comment, parent: Comment | None) -> None:
    """Give a new comment its parent, id, depth, path and visibility (flushes)."""
    comment.parent = parent
    db.session.add(comment)
    db.session.flush()
    segment = f"{comment.id:0{PATH_SEGMENT_WIDTH}d}"
    comment.depth = parent.depth + 1 if parent else 0
    comment.path = f"{parent.path}/{segment}" if parent else segment
    comment.visible = comment.status is Status.APPROVED and (parent is None or parent.visible)


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
    since = now - timedelta(seconds=settings.duplicate_window_seconds)
    stmt = select(Comment).where(
        Comment.post_id == post.id,
        Comment.body_hash == fingerprint,
        Comment.created_at >= since,
        Comment.parent_id.is_(None) if parent is None else Comment.parent_id == parent.id,
    )
    if user is not None:
        stmt = stmt.where(Comment.user_id == user.id)
    else:
        stmt = stmt.where(Comment.user_id.is_(None), Comment.author_email == email)
    return db.session.scalars(stmt.limit(1)).first()


def refresh_visibility(comment: Comment) -> None:
    """Recompute `visible` for a comment and its whole subtree after a status change."""
    parent_visible = True
    if comment.parent_id is not None:
        parent_visible = bool(
            db.session.scalar(select(Comment.visible).where(Comment.id == comment.parent_id))
        )
    db.session.flush()
    rows = db.session.execute(
        select(Comment.id, Comment.parent_id, Comment.status, Comment.visible)
        .where(
            Comment.post_id == comment.post_id,
            (Comment.path == comment.path) | Comment.path.startswith(comment.path + "/"),
        )
        .order_by(Comment.path)
    ).all()
    visible: dict[int, bool] = {}
    show, hide = [], []
    for row in rows:
        above = parent_visible if row.id == comment.id else visible.get(row.parent_id, False)
        now_visible = above and row.status is Status.APPROVED
        visible[row.id] = now_visible
        if now_visible != row.visible:
            (show if now_visible else hide).append(row.id)
    for ids, value in ((show, True), (hide, False)):
        if ids:
            db.session.execute(
                update(Comment)
                .where(Comment.id.in_(ids))
                .values(visible=value)
                .execution_options(synchronize_session="fetch")
            )


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
    text, result = checked_body(body, settings, comment.body_format)
    decision = moderation_rules.evaluate(
        moderation_rules.Submission(
            body=text,
            link_count=sanitize.count_links(result.html),
            removed=result.removed,
            author_name=comment.author_name,
            author_email=comment.author_email,
            ip=comment.ip,
            user_agent=comment.user_agent,
            user_id=user.id,
            role=user.role,
        ),
        settings,
    )
    was = comment.status
    comment.body_source = body
    comment.body_html = result.html
    comment.body_hash = sanitize.body_fingerprint(text)
    comment.sanitizer_report = list(result.removed)
    comment.edited_at = utcnow()
    # An edit never promotes a held comment; it may send an approved one back.
    if was is Status.APPROVED and decision.status is not Status.APPROVED:
        comment.status = decision.status
        comment.reasons = [HoldReason(rule="edited", detail="changed after approval")] + [
            HoldReason(rule=r.rule, detail=r.detail[:500]) for r in decision.reasons
        ]
        refresh_visibility(comment)
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
