"""The moderation log: the one writer of its rows, and the batches that group them.

Every decision, edit, reply, ban, role change and undo is one ModerationAction per
comment (or per account) it changed; the rows of one action share a batch, which is
what an undo names.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from forum.extensions import db
from forum.models import ModerationAction, Status, User, utcnow


def new_batch() -> str:
    return secrets.token_hex(15)


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
