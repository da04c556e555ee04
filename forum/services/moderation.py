"""Moderators' decisions: logged, idempotent, and undoable by the batch they share.

Every action takes the moderator and the comments explicitly, records one
ModerationAction per comment it changed, and changes nothing (logging nothing) for a
comment already in the wanted state. Nothing here commits or reads the request.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, delete, func, insert, or_, select, update
from sqlalchemy.orm import selectinload

from forum.extensions import db
from forum.models import (
    Ban,
    BanKind,
    BodyFormat,
    Comment,
    Flag,
    HoldReason,
    ModerationAction,
    Status,
    User,
    utcnow,
)
from forum.services import comments as comment_service
from forum.services import moderation_rules, notifications, sanitize
from forum.services.settings import Settings

TARGET = {
    "approve": Status.APPROVED,
    "reject": Status.REJECTED,
    "spam": Status.SPAM,
    "restore": Status.PENDING,
}
# The statuses each action starts from; already being at the target is a no-op.
ALLOWED_FROM = {
    "approve": {Status.PENDING, Status.SPAM, Status.REJECTED},
    "reject": {Status.PENDING, Status.APPROVED, Status.SPAM},
    "spam": {Status.PENDING, Status.APPROVED, Status.REJECTED},
    "restore": {Status.APPROVED, Status.SPAM, Status.REJECTED},
    "delete": {Status.SPAM, Status.REJECTED},
}
ACTIONS = ("approve", "reject", "spam", "restore", "delete")
# What an action did, said of "{n}" comments ("Marked 1 comment as spam.").
PAST = {
    "approve": "Approved {n}.",
    "reject": "Rejected {n}.",
    "spam": "Marked {n} as spam.",
    "restore": "Restored {n} to pending.",
    "delete": "Deleted {n} for good.",
    "undo": "Undid the action on {n}.",
    "unban": "Lifted the ban on {n}.",
}
GROUP_KINDS = {
    "ip": Comment.ip,
    "email": Comment.author_email,
    "domain": Comment.link_domain,
    "text": Comment.body_hash,
}
UNDO_PREFIX = "u-"
CHUNK = 500


class ModerationError(Exception):
    """An action that cannot be taken; the message is shown to the moderator."""


@dataclass
class Outcome:
    """What an action did: comment ids by effect, the batch to undo, and what to offer next."""

    action: str
    batch: str
    changed: list[int] = field(default_factory=list)
    unchanged: list[int] = field(default_factory=list)
    refused: list[int] = field(default_factory=list)
    # Pending ancestors of comments just approved: the dashboard offers to approve them.
    pending_parents: list[int] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def merge(self, other: Outcome) -> Outcome:
        for name in ("changed", "unchanged", "refused", "pending_parents"):
            mine = getattr(self, name)
            mine.extend(i for i in getattr(other, name) if i not in mine)
        self.extra.update(other.extra)
        return self

    @property
    def message(self) -> str:
        n = len(self.changed)
        noun = f"{n} comment{'' if n == 1 else 's'}"
        if self.action == "ban":
            bans = ", ".join(self.extra.get("bans", [])) or "nothing new"
            text = f"Banned {bans}; {noun} marked as spam."
        elif self.action == "reply":
            text = "Approved, and your reply is published." if n else "Nothing changed."
        elif self.action == "edit":
            text = "Edited and approved." if n else "Nothing changed."
        else:
            text = PAST.get(self.action, self.action.capitalize() + " {n}.").format(n=noun)
        if self.unchanged:
            text += f" {len(self.unchanged)} already done."
        if self.refused:
            text += f" {len(self.refused)} skipped: {refusal(self.action)}"
        return text


def refusal(action: str) -> str:
    if action == "delete":
        return "only spam or rejected comments can be deleted."
    return "that action does not apply to them."


def new_batch() -> str:
    return secrets.token_hex(15)


def load_comments(ids: Iterable[int]) -> list[Comment]:
    """The comments with these ids, locked for the action, in path order."""
    wanted = sorted(set(ids))
    found: list[Comment] = []
    for start in range(0, len(wanted), CHUNK):
        found.extend(
            db.session.scalars(
                select(Comment)
                .where(Comment.id.in_(wanted[start : start + CHUNK]))
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        )
    return sorted(found, key=lambda c: c.path)


def decide(
    action: str,
    comments: Sequence[Comment],
    by: User,
    note: str = "",
    batch: str | None = None,
    now: datetime | None = None,
) -> Outcome:
    """Approve, reject, spam, restore or delete comments; repeating it changes nothing."""
    if action not in ACTIONS:
        raise ModerationError(f"Unknown action {action!r}.")
    if action == "delete":
        return delete_comments(comments, by, note, batch, now)
    now = now or utcnow()
    outcome = Outcome(action, batch or new_batch())
    target = TARGET[action]
    changed: list[Comment] = []
    for comment in comments:
        if comment.status is target:
            outcome.unchanged.append(comment.id)
            continue
        if comment.status not in ALLOWED_FROM[action]:
            outcome.refused.append(comment.id)
            continue
        log(comment.id, by, action, comment.status, target, outcome.batch, note, now=now)
        set_status(comment, target, by, now)
        changed.append(comment)
        outcome.changed.append(comment.id)
    if action == "approve" and outcome.unchanged:
        dismiss_flags(outcome, by, note, now)
    if not changed:
        return outcome
    became_visible = refresh_many(changed)
    if action != "restore":
        resolve_flags([c.id for c in changed])
    if action == "approve":
        outcome.pending_parents = pending_ancestors(changed)
    notifications.decisions_withdrawn([c.id for c in changed])
    if action in ("approve", "reject"):
        for comment in changed:
            notifications.decision_made(comment, target, note, now)
    notifications.replies_visible(became_visible, now)
    return outcome


def set_status(comment: Comment, status: Status, by: User | None, now: datetime) -> None:
    comment.status = status
    comment.moderated_at = now
    comment.moderated_by_id = by.id if by is not None else None


def log(
    comment_id: int | None,
    by: User | None,
    action: str,
    from_status: Status | None,
    to_status: Status | None,
    batch: str,
    note: str = "",
    data: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> ModerationAction:
    """One row of the audit log."""
    entry = ModerationAction(
        comment_id=comment_id,
        moderator_id=by.id if by is not None else None,
        action=action,
        from_status=from_status.value if from_status else None,
        to_status=to_status.value if to_status else None,
        note=(note or "")[:1000],
        batch=batch,
        data=data or {},
        created_at=now or utcnow(),
    )
    db.session.add(entry)
    return entry


def refresh_many(comments: Sequence[Comment]) -> list[int]:
    """Recompute visibility after status changes; returns the ids that became visible.

    A comment without replies needs only its parent's visibility (one query for all of
    them); a comment with replies has its subtree recomputed by refresh_visibility.
    """
    if not comments:
        return []
    db.session.flush()
    ids = [c.id for c in comments]
    with_replies = set()
    for start in range(0, len(ids), CHUNK):
        with_replies.update(
            db.session.scalars(
                select(Comment.parent_id)
                .where(Comment.parent_id.in_(ids[start : start + CHUNK]))
                .distinct()
            )
        )
    refreshed: set[int] = set()
    leaves: list[Comment] = []
    subtrees: list[Comment] = []
    for comment in sorted(comments, key=lambda c: c.path):
        ancestors = {int(seg) for seg in comment.path.split("/")[:-1]}
        if ancestors & refreshed:
            continue  # inside a subtree recomputed already
        if comment.id in with_replies:
            comment_service.refresh_visibility(comment)
            refreshed.add(comment.id)
            subtrees.append(comment)
        else:
            leaves.append(comment)
    parent_ids = sorted({c.parent_id for c in leaves if c.parent_id is not None})
    parent_visible: dict[int, bool] = {}
    for start in range(0, len(parent_ids), CHUNK):
        rows = db.session.execute(
            select(Comment.id, Comment.visible).where(
                Comment.id.in_(parent_ids[start : start + CHUNK])
            )
        )
        parent_visible.update((row.id, row.visible) for row in rows)
    became: list[int] = []
    for comment in leaves:
        above = comment.parent_id is None or parent_visible.get(comment.parent_id, False)
        visible = above and comment.status is Status.APPROVED
        if visible and not comment.visible:
            became.append(comment.id)
        comment.visible = visible
    for comment in subtrees:
        # refresh_visibility synchronized `visible` on the objects in the session.
        if comment.status is Status.APPROVED and comment.visible:
            # It was not approved before, so nothing under it was visible either.
            became.extend(
                db.session.scalars(
                    select(Comment.id).where(
                        Comment.post_id == comment.post_id,
                        Comment.visible.is_(True),
                        or_(Comment.id == comment.id, Comment.path.startswith(comment.path + "/")),
                    )
                )
            )
    db.session.flush()
    return became


def pending_ancestors(comments: Sequence[Comment]) -> list[int]:
    """Ancestors still pending of these comments (one query)."""
    wanted = {int(seg) for c in comments for seg in c.path.split("/")[:-1]}
    wanted -= {c.id for c in comments}
    if not wanted:
        return []
    return sorted(
        db.session.scalars(
            select(Comment.id).where(
                Comment.id.in_(sorted(wanted)[:CHUNK]), Comment.status == Status.PENDING
            )
        )
    )


def dismiss_flags(outcome: Outcome, by: User, note: str, now: datetime) -> None:
    """Approving an approved comment that readers flagged keeps it and closes the flags."""
    flagged = sorted(
        db.session.scalars(
            select(Flag.comment_id)
            .where(Flag.comment_id.in_(outcome.unchanged[:CHUNK]), Flag.resolved.is_(False))
            .distinct()
        )
    )
    if not flagged:
        return
    resolve_flags(flagged)
    for comment_id in flagged:
        log(
            comment_id,
            by,
            "dismiss-flags",
            Status.APPROVED,
            Status.APPROVED,
            outcome.batch,
            note,
            now=now,
        )
        outcome.unchanged.remove(comment_id)
        outcome.changed.append(comment_id)


def resolve_flags(comment_ids: Sequence[int]) -> None:
    """A moderator's decision answers the readers' flags on these comments."""
    for start in range(0, len(comment_ids), CHUNK):
        db.session.execute(
            update(Flag)
            .where(
                Flag.comment_id.in_(comment_ids[start : start + CHUNK]), Flag.resolved.is_(False)
            )
            .values(resolved=True)
            .execution_options(synchronize_session=False)
        )


# Deleting for good --------------------------------------------------------------


def delete_comments(
    comments: Sequence[Comment],
    by: User,
    note: str = "",
    batch: str | None = None,
    now: datetime | None = None,
) -> Outcome:
    """Delete spam or rejected comments with their replies; the log keeps a copy for undo."""
    now = now or utcnow()
    outcome = Outcome("delete", batch or new_batch())
    roots: list[Comment] = []
    root_ids: set[int] = set()
    for comment in sorted(comments, key=lambda c: c.path):
        if comment.status not in ALLOWED_FROM["delete"]:
            outcome.refused.append(comment.id)
            continue
        if {int(seg) for seg in comment.path.split("/")[:-1]} & root_ids:
            outcome.changed.append(comment.id)  # goes with its deleted ancestor
            continue
        roots.append(comment)
        root_ids.add(comment.id)
        outcome.changed.append(comment.id)
    for root in roots:
        rows = snapshot_subtree(root)
        for row in rows:
            is_root = row["id"] == root.id
            log(
                row["id"],
                by,
                "delete",
                Status(row["status"]),
                None,
                outcome.batch,
                note if is_root else f"reply to deleted comment {root.id}",
                # The root's entry carries the whole subtree so undo can put it back.
                data={"rows": rows} if is_root else {},
                now=now,
            )
        notifications.decision_withdrawn(root.id)
    deleted = [r.id for r in roots]
    db.session.flush()
    for start in range(0, len(deleted), CHUNK):
        # The database removes the replies, hold reasons and flags with them (ON DELETE).
        db.session.execute(
            delete(Comment)
            .where(Comment.id.in_(deleted[start : start + CHUNK]))
            .execution_options(synchronize_session=False)
        )
    for root in roots:
        db.session.expunge(root)
    return outcome


DATETIME_COLUMNS = ("created_at", "edited_at", "moderated_at")


def snapshot_subtree(root: Comment) -> list[dict[str, Any]]:
    """Every column of a comment and its replies (and their hold reasons), JSON-ready."""
    comments = db.session.scalars(
        select(Comment)
        .where(
            Comment.post_id == root.post_id,
            or_(Comment.id == root.id, Comment.path.startswith(root.path + "/")),
        )
        .options(selectinload(Comment.reasons))
        .order_by(Comment.path)
    ).all()
    rows = []
    for c in comments:
        row: dict[str, Any] = {}
        for column in Comment.__table__.columns:
            value = getattr(c, column.key)
            if isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, Status) or hasattr(value, "value"):
                value = value.value
            row[column.key] = value
        row["_reasons"] = [[r.rule, r.detail] for r in c.reasons]
        rows.append(row)
    return rows


def restore_rows(rows: list[dict[str, Any]]) -> list[int]:
    """Insert deleted comments back with their ids (parents first); skips ids in use."""
    ids = [r["id"] for r in rows]
    taken = set(db.session.scalars(select(Comment.id).where(Comment.id.in_(ids))))
    if rows and rows[0]["id"] in taken:
        return []
    restored = []
    for row in rows:
        if row["id"] in taken:
            continue
        values = {k: v for k, v in row.items() if not k.startswith("_")}
        for key in DATETIME_COLUMNS:
            if values.get(key):
                values[key] = datetime.fromisoformat(values[key])
        db.session.execute(insert(Comment).values(**values))
        if row["_reasons"]:
            db.session.execute(
                insert(HoldReason),
                [{"comment_id": row["id"], "rule": r, "detail": d} for r, d in row["_reasons"]],
            )
        restored.append(row["id"])
    return restored


# Editing and replying -------------------------------------------------------------


def edit_and_approve(
    comment: Comment,
    body: str,
    by: User,
    settings: Settings,
    note: str = "",
    batch: str | None = None,
    now: datetime | None = None,
) -> Outcome:
    """Replace the text (sanitized again), then approve; undo restores both."""
    now = now or utcnow()
    try:
        text, result = comment_service.checked_body(body, settings, comment.body_format)
    except comment_service.CommentError as error:
        raise ModerationError(str(error)) from error
    outcome = Outcome("edit", batch or new_batch())
    if comment.status not in ALLOWED_FROM["approve"] | {Status.APPROVED}:
        outcome.refused.append(comment.id)
        return outcome
    if text != comment.body_source:
        domains = sanitize.link_domains(result.html)
        before = {
            "body_source": comment.body_source,
            "body_html": comment.body_html,
            "body_hash": comment.body_hash,
            "link_domain": comment.link_domain,
            "sanitizer_report": list(comment.sanitizer_report or []),
        }
        comment.body_source = text
        comment.body_html = result.html
        comment.body_hash = sanitize.body_fingerprint(text)
        comment.link_domain = domains[0] if domains else ""
        comment.sanitizer_report = list(result.removed)
        comment.edited_at = now
        log(
            comment.id,
            by,
            "edit",
            comment.status,
            comment.status,
            outcome.batch,
            note,
            data={"before": before, "after_hash": comment.body_hash},
            now=now,
        )
        outcome.changed.append(comment.id)
    approved = decide("approve", [comment], by, note, outcome.batch, now)
    outcome.merge(approved)
    outcome.unchanged = [i for i in outcome.unchanged if i not in outcome.changed]
    return outcome


def approve_and_reply(
    comment: Comment,
    body: str,
    by: User,
    settings: Settings,
    batch: str | None = None,
    now: datetime | None = None,
) -> Outcome:
    """Approve a comment and post the moderator's reply under it (approved too).

    Raises comments.CommentError when the reply cannot be posted (closed post, empty).
    Sending the same reply twice is a no-op.
    """
    now = now or utcnow()
    if comment.status not in ALLOWED_FROM["approve"] | {Status.APPROVED}:
        raise ModerationError("Only a pending, spam or rejected comment can be approved.")
    outcome = decide("approve", [comment], by, "", batch, now)
    outcome.action = "reply"
    try:
        reply = comment_service.submit_comment(
            comment.post,
            comment_service.CommentInput(
                body=body, parent_id=comment.id, body_format=BodyFormat.MARKDOWN
            ),
            settings,
            user=by,
            now=now,
        )
    except comment_service.DuplicateComment as dup:
        outcome.unchanged.append(dup.existing.id)
        outcome.extra["reply_id"] = dup.existing.id
        return outcome
    log(reply.id, by, "reply", None, reply.status, outcome.batch, f"reply to {comment.id}", now=now)
    outcome.changed.append(reply.id)
    outcome.extra["reply_id"] = reply.id
    if reply.visible:
        notifications.replies_visible([reply.id], now)
    return outcome


# Bans ---------------------------------------------------------------------------


def ban_values(comment: Comment, kinds: Iterable[BanKind]) -> list[tuple[BanKind, str]]:
    """The account, email and IP address of a comment's author, for the kinds asked."""
    values = []
    for kind in kinds:
        if kind is BanKind.ACCOUNT and comment.user_id is not None:
            values.append((kind, str(comment.user_id)))
        elif kind is BanKind.EMAIL and comment.author_email.strip():
            values.append((kind, comment.author_email.strip().casefold()))
        elif kind is BanKind.IP and comment.ip.strip():
            values.append((kind, comment.ip.strip()))
    return values


def ban_author(
    comment: Comment,
    kinds: Iterable[BanKind],
    by: User,
    reason: str = "",
    remove_everything: bool = False,
    batch: str | None = None,
    now: datetime | None = None,
) -> Outcome:
    """Ban a comment's author by account, email and/or IP, then spam their comments.

    Pending comments are swept; with `remove_everything`, approved ones too. Call
    `sweep_banned` again after committing to catch comments that arrived meanwhile.
    """
    now = now or utcnow()
    author = comment.user
    if author is not None and author.is_moderator:
        raise ModerationError("Moderators and admins cannot be banned from the queue.")
    values = ban_values(comment, kinds)
    if not values:
        raise ModerationError("Choose an account, email or IP address to ban.")
    outcome = Outcome("ban", batch or new_batch())
    existing = {
        (b.kind, b.value)
        for b in db.session.scalars(
            select(Ban).where(or_(*(and_(Ban.kind == k, Ban.value == v) for k, v in values)))
        )
    }
    made = []
    for kind, value in values:
        if (kind, value) in existing:
            continue
        ban = Ban(kind=kind, value=value, reason=reason[:500], created_by_id=by.id, created_at=now)
        db.session.add(ban)
        made.append(ban)
    user_banned = False
    if author is not None and BanKind.ACCOUNT in {k for k, _ in values} and not author.is_banned:
        author.is_banned = True
        user_banned = True
    if made or user_banned:
        db.session.flush()
        log(
            comment.id,
            by,
            "ban",
            None,
            None,
            outcome.batch,
            "; ".join([f"{b.kind.value} {b.value}" for b in made] + ([reason] if reason else [])),
            data={
                "ban_ids": [b.id for b in made],
                "user_banned_id": author.id if user_banned else None,
            },
            now=now,
        )
    outcome.extra["bans"] = [f"{k.value} {v}" for k, v in values if (k, v) not in existing]
    outcome.extra["ban_values"] = [[k.value, v] for k, v in values]
    swept = sweep_banned(values, by, remove_everything, outcome.batch, now)
    return outcome.merge(swept)


def sweep_banned(
    values: Iterable[tuple[BanKind, str]],
    by: User,
    remove_everything: bool = False,
    batch: str | None = None,
    now: datetime | None = None,
) -> Outcome:
    """Spam every pending (or also approved) comment matching these bans."""
    stmt = banned_comments(values, remove_everything)
    if stmt is None:
        return Outcome("spam", batch or new_batch())
    ids = list(db.session.scalars(stmt))
    return decide("spam", load_comments(ids), by, "ban sweep", batch, now)


def banned_comments(
    values: Iterable[tuple[BanKind, str]], remove_everything: bool = False
) -> Select | None:
    conditions = []
    for kind, value in values:
        kind = BanKind(kind)
        if kind is BanKind.ACCOUNT and value.isdigit():
            conditions.append(Comment.user_id == int(value))
        elif kind is BanKind.EMAIL:
            conditions.append(Comment.author_email == value)
        elif kind is BanKind.IP:
            conditions.append(Comment.ip == value)
    if not conditions:
        return None
    statuses = [Status.PENDING, Status.APPROVED] if remove_everything else [Status.PENDING]
    return select(Comment.id).where(Comment.status.in_(statuses), or_(*conditions))


def lift_ban(ban: Ban, by: User, now: datetime | None = None) -> Outcome:
    """Remove a ban (and the account's banned mark)."""
    outcome = Outcome("unban", new_batch())
    if ban.kind is BanKind.ACCOUNT and ban.value.isdigit():
        user = db.session.get(User, int(ban.value))
        if user is not None:
            user.is_banned = False
    log(None, by, "unban", None, None, outcome.batch, f"{ban.kind.value} {ban.value}", now=now)
    db.session.delete(ban)
    return outcome


# Undo ---------------------------------------------------------------------------


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
    refresh_many([c for c in restored_status if c.id in comments])
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


# Groups and statistics -----------------------------------------------------------


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


def group_members(kind: str, value: str, status: Status) -> Select:
    """Ids of one group's comments in one status."""
    return select(Comment.id).where(Comment.status == status, GROUP_KINDS[kind] == value)


@dataclass(frozen=True)
class RuleStat:
    rule: str
    label: str
    held: int = 0
    pending: int = 0
    approved: int = 0  # approved by a moderator after the rule held it
    removed: int = 0  # spam or rejected by a moderator
    automatic: int = 0  # spam or rejected by the rules alone, never reviewed

    @property
    def decided(self) -> int:
        return self.approved + self.removed

    @property
    def approval_rate(self) -> float | None:
        """Share of reviewed comments moderators let through: high means the rule is noise."""
        return self.approved / self.decided if self.decided else None


def rule_statistics() -> list[RuleStat]:
    """For every rule: comments it fired on, and what became of them (one query)."""
    reviewed = Comment.moderated_by_id.is_not(None)
    rows = db.session.execute(
        select(
            HoldReason.rule,
            Comment.status,
            reviewed,
            func.count(func.distinct(Comment.id)),
        )
        .join(Comment, Comment.id == HoldReason.comment_id)
        .group_by(HoldReason.rule, Comment.status, reviewed)
    ).all()
    counts: dict[str, dict[str, int]] = {}
    for rule, status, was_reviewed, n in rows:
        c = counts.setdefault(
            rule, {"held": 0, "pending": 0, "approved": 0, "removed": 0, "auto": 0}
        )
        c["held"] += n
        if status is Status.PENDING:
            c["pending"] += n
        elif status is Status.APPROVED:
            c["approved"] += n
        elif was_reviewed:
            c["removed"] += n
        else:
            c["auto"] += n
    names = list(moderation_rules.RULE_LABELS) + sorted(
        set(counts) - set(moderation_rules.RULE_LABELS)
    )
    return [
        RuleStat(
            rule,
            moderation_rules.RULE_LABELS.get(rule, rule),
            counts.get(rule, {}).get("held", 0),
            counts.get(rule, {}).get("pending", 0),
            counts.get(rule, {}).get("approved", 0),
            counts.get(rule, {}).get("removed", 0),
            counts.get(rule, {}).get("auto", 0),
        )
        for rule in names
    ]
