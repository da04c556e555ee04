"""Readers flag approved comments; enough open flags send a comment back to the queue."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from forum.extensions import db
from forum.models import Comment, Flag, HoldReason, Rule, Status, User, utcnow
from forum.services import audit, moderation, notifications, tree
from forum.services.settings import Settings

REASONS = {
    "spam": "Spam or advertising",
    "abuse": "Abusive or harassing",
    "off-topic": "Off-topic",
    "other": "Something else",
}


class FlagError(Exception):
    """A flag that cannot be taken; the message is shown to the reader."""


class AlreadyFlagged(FlagError):
    pass


def can_flag(comment: Comment, user: User | None) -> bool:
    """Signed-in, not banned, not their own comment, and one readers can see."""
    if user is None or not user.is_authenticated or user.is_banned:
        return False
    return comment.visible and comment.user_id != user.id


def has_flagged(comment: Comment, user: User) -> bool:
    return (
        db.session.scalar(
            select(Flag.id).where(Flag.comment_id == comment.id, Flag.user_id == user.id)
        )
        is not None
    )


def flag_comment(
    comment: Comment,
    user: User,
    reason: str,
    note: str,
    settings: Settings,
    now: datetime | None = None,
) -> Flag:
    """Record one reader's flag; at the threshold the comment goes back to the queue."""
    now = now or utcnow()
    if not can_flag(comment, user):
        raise FlagError("You cannot flag this comment.")
    if reason not in REASONS:
        raise FlagError("Choose a reason.")
    if has_flagged(comment, user):
        raise AlreadyFlagged("You already flagged this comment.")
    flag = Flag(
        comment_id=comment.id,
        user_id=user.id,
        reason=reason,
        note=note.strip()[:500],
        created_at=now,
    )
    try:
        with db.session.begin_nested():  # two clicks at once: the unique constraint decides
            db.session.add(flag)
    except IntegrityError as error:
        raise AlreadyFlagged("You already flagged this comment.") from error
    threshold = settings.flags_to_requeue
    if threshold and comment.status is Status.APPROVED:
        open_flags = list(
            db.session.scalars(
                select(Flag)
                .where(Flag.comment_id == comment.id, Flag.resolved.is_(False))
                .order_by(Flag.id)
            )
        )
        if len(open_flags) >= threshold:
            requeue(comment, open_flags, now)
    return flag


def requeue(comment: Comment, flags: list[Flag], now: datetime) -> None:
    """Back to pending, with the readers' flags as the reasons it is held."""
    batch = audit.new_batch()
    audit.log(
        comment.id,
        None,
        "requeue",
        comment.status,
        Status.PENDING,
        batch,
        f"{len(flags)} reader flags",
        now=now,
    )
    moderation.set_status(comment, Status.PENDING, None, now)
    comment.reasons = [
        HoldReason(rule=Rule.FLAG, detail=(f"{f.reason}: {f.note}" if f.note else f.reason)[:500])
        for f in flags
    ]
    notifications.decision_withdrawn(comment.id)
    tree.refresh_many([comment])


def open_flag_count(comment_id: int) -> int:
    return (
        db.session.scalar(
            select(func.count(Flag.id)).where(
                Flag.comment_id == comment_id, Flag.resolved.is_(False)
            )
        )
        or 0
    )
