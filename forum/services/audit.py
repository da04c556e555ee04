"""The moderation log: the one writer of its rows, and the batches that group them.

Every decision, edit, reply, ban, role change and undo is one ModerationAction per
comment (or per account) it changed; the rows of one action share a batch, which is
what an undo names.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert

from forum.extensions import db
from forum.models import ModerationAction, Status, User, utcnow


def new_batch() -> str:
    return secrets.token_hex(15)


def log(*args: Any, **kwargs: Any) -> None:
    """One row of the audit log (entry()'s arguments), written with the session's next
    flush."""
    db.session.add(ModerationAction(**entry(*args, **kwargs)))


def entry(
    comment_id: int | None,
    by: User | None,
    action: str,
    from_status: Status | None,
    to_status: Status | None,
    batch: str,
    note: str = "",
    data: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """One row of the audit log, for log() or, with the others of its action, log_many()."""
    return {
        "comment_id": comment_id,
        "moderator_id": by.id if by is not None else None,
        "action": action,
        "from_status": from_status.value if from_status else None,
        "to_status": to_status.value if to_status else None,
        "note": (note or "")[:1000],
        "batch": batch,
        "data": data or {},
        "created_at": now or utcnow(),
    }


def log_many(entries: Sequence[dict[str, Any]]) -> None:
    """Rows of one action, written at once in their order (one statement per 500): a
    decision's, where the unit of work's flush of them cost more than the statement."""
    for start in range(0, len(entries), CHUNK):
        db.session.execute(_INSERT, entries[start : start + CHUNK])


CHUNK = 500
_INSERT = insert(ModerationAction.__table__)
