"""Copies of deleted comments in the log, so that an undo can put them back."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import aliased, selectinload

from forum.extensions import db
from forum.models import Comment, HoldReason, Status
from forum.services import counters, tree

DATETIME_COLUMNS = ("created_at", "edited_at", "moderated_at")


def snapshot_subtree(root: Comment) -> list[dict[str, Any]]:
    """Every column of a comment and its replies (and their hold reasons), JSON-ready."""
    comments = db.session.scalars(_SUBTREE, {"subtree_root": root.id}).all()
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


_copied = aliased(Comment, tree.subtree(*Comment.__table__.columns.keys()))
_SUBTREE = select(_copied).options(selectinload(_copied.reasons)).order_by(_copied.path)


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
        counters.inserted([values])
        if row["_reasons"]:
            db.session.execute(
                insert(HoldReason),
                [{"comment_id": row["id"], "rule": r, "detail": d} for r, d in row["_reasons"]],
            )
        restored.append(row["id"])
    return restored
