"""Moderators' decisions: approve, reject, spam, restore, delete, edit and reply.

They are logged (audit.py), idempotent, and undoable by the batch they share (undo.py);
bans are in bans.py, the queue's read model in queue.py.

Every action takes the moderator and the comments explicitly, records one
ModerationAction per comment it changed, and changes nothing (logging nothing) for a
comment already in the wanted state. Nothing here commits or reads the request.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.orm.attributes import set_committed_value

from forum.extensions import db
from forum.models import (
    DECISIONS,
    BodyFormat,
    Comment,
    Flag,
    Status,
    User,
    utcnow,
)
from forum.services import audit, counters, notifications, snapshots, spam_filter, tree
from forum.services import comments as comment_service
from forum.services.author_counts import author_of
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


def load_comments(ids: Iterable[int]) -> list[Comment]:
    """The comments with these ids, locked for the action, in path order."""
    wanted = sorted(set(ids))
    found: list[Comment] = []
    for start in range(0, len(wanted), CHUNK):
        found.extend(db.session.scalars(_LOAD, {"ids": wanted[start : start + CHUNK]}))
    return sorted(found, key=lambda c: c.path)


# Built once: an action binds only its ids.
_LOAD = (
    select(Comment)
    .where(Comment.id.in_(bindparam("ids", expanding=True)))
    .with_for_update()
    .execution_options(populate_existing=True)
)


def decide(
    action: str,
    comments: Sequence[Comment],
    by: User,
    note: str = "",
    batch: str | None = None,
    now: datetime | None = None,
) -> Outcome:
    """Approve, reject, spam, restore or delete comments; repeating it changes nothing."""
    if action not in DECISIONS:
        raise ModerationError(f"Unknown action {action!r}.")
    if action == "delete":
        return delete_comments(comments, by, note, batch, now)
    now = now or utcnow()
    outcome = Outcome(action, batch or audit.new_batch())
    target = TARGET[action]
    changed: list[Comment] = []
    # The spam filter learns from the decision; the log keeps its lesson before, for undo.
    # One read of the lessons: their labels for the log, and the lessons for learning.
    lessons = spam_filter.lessons_for([c.id for c in comments])
    automatic = spam_filter.automatic_classifier_spam(comments) if action == "restore" else set()
    taught: list[tuple[Comment, Status, bool]] = []
    entries: list[dict[str, Any]] = []
    for comment in comments:
        if comment.status is target:
            outcome.unchanged.append(comment.id)
            continue
        if comment.status not in ALLOWED_FROM[action]:
            outcome.refused.append(comment.id)
            continue
        taught_before = lessons.get(comment.id)
        lesson = {"spam_lesson": taught_before.label.value if taught_before else None}
        entries.append(
            audit.entry(
                comment.id, by, action, comment.status, target, outcome.batch, note, lesson, now
            )
        )
        taught.append((comment, comment.status, comment.id in automatic))
        changed.append(comment)
        outcome.changed.append(comment.id)
    audit.log_many(entries)
    if action == "approve" and outcome.unchanged:
        dismiss_flags(outcome, by, note, now)
    if not changed:
        return outcome
    before = [from_status for _, from_status, _ in taught]
    for comment in changed:  # the statement below stores them
        for key, value in decided_columns(target, by, now).items():
            set_committed_value(comment, key, value)
    became_visible = tree.refresh_many(
        changed, store=lambda leaves: store_decisions(changed, before, leaves)
    )
    if action != "restore":
        resolve_flags([c.id for c in changed])
    if action == "approve":
        outcome.pending_parents = tree.pending_ancestors(changed)
    notifications.decisions_withdrawn([c.id for c in changed])
    if action in ("approve", "reject"):
        for comment in changed:
            notifications.decision_made(comment, target, note, now)
    # Only a reply tells anyone: the decided top-level comments need no lookup.
    top_level = {c.id for c in changed if c.parent_id is None}
    notifications.replies_visible([i for i in became_visible if i not in top_level], now)
    # Last: the lesson updates the model's own row, which every decision updates, and on
    # PostgreSQL holds its lock until the commit; the other moderators wait for it only
    # from here (bench/NOTES.md, session 11).
    spam_filter.learn_decisions(action, taught, lessons)
    return outcome


def set_status(comment: Comment, status: Status, by: User | None, now: datetime) -> None:
    """Change a comment's status through the unit of work (undo, flags, importers; a
    decision stores its comments with one statement: store_decisions)."""
    for key, value in decided_columns(status, by, now).items():
        setattr(comment, key, value)


def decided_columns(status: Status, by: User | None, now: datetime) -> dict[str, Any]:
    return {
        "status": status,
        "moderated_at": now,
        "moderated_by_id": by.id if by is not None else None,
    }


def store_decisions(
    comments: Sequence[Comment], before: Sequence[Status], leaf_visible: dict[int, bool]
) -> None:
    """Store decided comments (their objects hold the new status as committed) with one
    statement, not the unit of work (its flush cost a quarter of an approval: bench/NOTES.md,
    session 10), and tell the counters what moved (the statuses they had: `before`). A
    comment with replies keeps its `visible` here: tree.refresh_visibility recomputes it."""
    rows = []
    for comment, old in zip(comments, before, strict=True):
        visible = leaf_visible.get(comment.id, comment.visible)
        set_committed_value(comment, "visible", visible)
        rows.append(
            {
                "comment_id": comment.id,
                "new_status": comment.status,
                "new_visible": visible,
                "at": comment.moderated_at,
                "by": comment.moderated_by_id,
            }
        )
        counters.moved(
            comment.post_id, old, comment.status, author_of(comment.user_id, comment.author_email)
        )
    scopes = {"page_scopes": sorted({c.post_id for c in comments})}
    for start in range(0, len(rows), CHUNK):
        db.session.execute(_STORE, rows[start : start + CHUNK], execution_options=scopes)


_comments = Comment.__table__
_STORE = (
    update(_comments)
    .where(_comments.c.id == bindparam("comment_id"))
    .values(
        status=bindparam("new_status"),
        visible=bindparam("new_visible"),
        moderated_at=bindparam("at"),
        moderated_by_id=bindparam("by"),
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
        audit.log(
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
        counters.unflagged(
            db.session.scalars(_RESOLVE, {"ids": comment_ids[start : start + CHUNK]})
        )


# On the table, not the entity: the ORM's bulk UPDATE cost twice the statement (no Flag is
# loaded while a decision runs, so there is nothing in the session to synchronize).
_flags = Flag.__table__
_RESOLVE = (
    update(_flags)
    .where(_flags.c.comment_id.in_(bindparam("ids", expanding=True)), _flags.c.resolved.is_(False))
    .values(resolved=True)
    .returning(_flags.c.comment_id)
)


def delete_comments(
    comments: Sequence[Comment],
    by: User,
    note: str = "",
    batch: str | None = None,
    now: datetime | None = None,
) -> Outcome:
    """Delete spam or rejected comments with their replies; the log keeps a copy for undo."""
    now = now or utcnow()
    outcome = Outcome("delete", batch or audit.new_batch())
    roots: list[Comment] = []
    root_ids: set[int] = set()
    for comment in sorted(comments, key=lambda c: c.path):
        if comment.status not in ALLOWED_FROM["delete"]:
            outcome.refused.append(comment.id)
            continue
        if set(tree.ancestor_ids(comment)) & root_ids:
            outcome.changed.append(comment.id)  # goes with its deleted ancestor
            continue
        roots.append(comment)
        root_ids.add(comment.id)
        outcome.changed.append(comment.id)
    for root in roots:
        rows = snapshots.snapshot_subtree(root)
        counters.removed(rows)
        for row in rows:
            is_root = row["id"] == root.id
            audit.log(
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
            .execution_options(synchronize_session=False, page_scopes={r.post_id for r in roots})
        )
    for root in roots:
        db.session.expunge(root)
    return outcome


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
        prepared = comment_service.checked_body(body, settings, comment.body_format)
    except comment_service.CommentError as error:
        raise ModerationError(str(error)) from error
    outcome = Outcome("edit", batch or audit.new_batch())
    if comment.status not in ALLOWED_FROM["approve"] | {Status.APPROVED}:
        outcome.refused.append(comment.id)
        return outcome
    before = {key: getattr(comment, key) for key in comment_service.BODY_COLUMNS}
    if comment_service.apply_body(comment, prepared):
        before["sanitizer_report"] = list(before["sanitizer_report"] or [])
        comment.edited_at = now
        audit.log(
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
    audit.log(
        reply.id, by, "reply", None, reply.status, outcome.batch, f"reply to {comment.id}", now=now
    )
    outcome.changed.append(reply.id)
    outcome.extra["reply_id"] = reply.id
    if reply.visible:
        notifications.replies_visible([reply.id], now)
    return outcome
