"""Undoing a batch of the moderation log, newest entry first."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select

from forum.extensions import db
from forum.models import Ban, Comment, ModerationAction, Status, User, utcnow
from forum.services import notifications, spam_filter, tree
from forum.services.audit import log
from forum.services.moderation import TARGET, ModerationError, Outcome, load_comments, set_status
from forum.services.snapshots import restore_rows

UNDO_PREFIX = "u-"


def undo(batch: str, by: User, now: datetime | None = None) -> Outcome:
    """Revert one batch, newest first; comments changed since by someone else are left."""
    now = now or utcnow()
    outcome = Outcome("undo", UNDO_PREFIX + batch)
    if not batch or batch.startswith(UNDO_PREFIX):
        raise ModerationError("That cannot be undone.")
    entries = db.session.scalars(
        select(ModerationAction)
        .where(ModerationAction.batch == batch)
        .order_by(ModerationAction.id.desc())
    ).all()
    if not entries:
        raise ModerationError("There is nothing to undo.")
    done = db.session.scalar(
        select(ModerationAction.id).where(ModerationAction.batch == outcome.batch).limit(1)
    )
    if done is not None:
        outcome.unchanged = sorted({e.comment_id for e in entries if e.comment_id})
        return outcome
    restored_status: list[Comment] = []
    relearn: list[tuple[Comment, str | None]] = []
    comments = {c.id: c for c in load_comments(e.comment_id for e in entries if e.comment_id)}
    for entry in entries:
        comment = comments.get(entry.comment_id) if entry.comment_id else None
        if entry.action in TARGET:
            if comment is None or comment.status.value != entry.to_status:
                if entry.comment_id:
                    outcome.refused.append(entry.comment_id)
                continue
            was = comment.status
            set_status(comment, Status(entry.from_status), by, now)
            if was is Status.APPROVED:
                notifications.decision_withdrawn(comment.id)
            log(comment.id, by, "undo", was, comment.status, outcome.batch, entry.action, now=now)
            restored_status.append(comment)
            if "spam_lesson" in (entry.data or {}):
                relearn.append((comment, entry.data["spam_lesson"]))
            outcome.changed.append(comment.id)
        elif entry.action == "edit" and comment is not None:
            if comment.body_hash != entry.data.get("after_hash"):
                outcome.refused.append(comment.id)
                continue
            for key, value in entry.data["before"].items():
                setattr(comment, key, value)
            log(comment.id, by, "undo", None, None, outcome.batch, "edit", now=now)
            outcome.changed.append(comment.id)
        elif entry.action == "reply" and comment is not None:
            log(comment.id, by, "undo", comment.status, None, outcome.batch, "reply", now=now)
            notifications.decision_withdrawn(comment.id)
            db.session.delete(comment)
            comments.pop(comment.id)
            outcome.changed.append(entry.comment_id)
        elif entry.action == "ban":
            undo_ban(entry, by, outcome, now)
        elif entry.action == "delete" and entry.data.get("rows"):
            back = restore_rows(entry.data["rows"])
            if not back:
                outcome.refused.append(entry.comment_id)
                continue
            log(
                entry.comment_id,
                by,
                "undo",
                None,
                Status(entry.from_status),
                outcome.batch,
                "delete",
                now=now,
            )
            outcome.changed.extend(back)
    db.session.flush()
    spam_filter.restore_lessons(relearn)
    tree.refresh_many([c for c in restored_status if c.id in comments])
    return outcome


def undo_ban(entry: ModerationAction, by: User, outcome: Outcome, now: datetime) -> None:
    ban_ids = entry.data.get("ban_ids") or []
    if ban_ids:
        db.session.execute(delete(Ban).where(Ban.id.in_(ban_ids)))
    user_id = entry.data.get("user_banned_id")
    if user_id:
        user = db.session.get(User, user_id)
        if user is not None:
            user.is_banned = False
    log(entry.comment_id, by, "undo", None, None, outcome.batch, "ban", now=now)
    outcome.extra["unbanned"] = len(ban_ids)
