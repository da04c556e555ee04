"""What the rules did: for every rule, the comments it fired on and what became of them."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from forum.extensions import db
from forum.models import Comment, HoldReason, Status
from forum.services import moderation_rules


@dataclass(frozen=True)
class RuleStat:
    rule: str
    label: str
    held: int = 0
    pending: int = 0
    approved: int = 0  # approved by a moderator after the rule held it
    removed: int = 0  # spam or rejected by a moderator
    automatic: int = 0  # spam or rejected by the rules alone, never reviewed
    corrected: int = 0  # approved, or restored to pending, by a moderator after it fired

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
            rule, {"held": 0, "pending": 0, "approved": 0, "removed": 0, "auto": 0, "fixed": 0}
        )
        c["held"] += n
        if status is Status.PENDING:
            c["pending"] += n
            if was_reviewed:  # restored by a moderator: the rule's decision was undone
                c["fixed"] += n
        elif status is Status.APPROVED:
            c["approved"] += n
            if was_reviewed:
                c["fixed"] += n
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
            counts.get(rule, {}).get("fixed", 0),
        )
        for rule in names
    ]
