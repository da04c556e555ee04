"""The thread tree: where a comment sits (parent, depth, materialized path) and whether
readers see it (approved, with every ancestor approved). The one place that writes them.

A path is the zero-padded ids from the top-level comment down, so a thread reads in
display order with one range scan. A subtree is a prefix of it, but a prefix (`LIKE
'p/%'`) no index answers on both databases: SQLite's LIKE ignores case and PostgreSQL's
collation need not sort '/' before the digits, so they may read every comment of the post
(SQLite: 4.6-8.5 ms in a 6,000-comment thread). `subtree` walks the parent index down.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy import CTE, bindparam, select, update

from forum.extensions import db
from forum.models import PATH_SEGMENT_WIDTH, Comment, Status

CHUNK = 500


def ancestor_ids(comment: Comment) -> list[int]:
    """The ids above a comment, from the top of its thread down (read from its path)."""
    return [int(segment) for segment in comment.path.split("/")[:-1]]


def path_of(comment_id: int, parent_path: str | None) -> str:
    """The path of a comment with this id under a parent with `parent_path` (None: top)."""
    segment = f"{comment_id:0{PATH_SEGMENT_WIDTH}d}"
    return f"{parent_path}/{segment}" if parent_path else segment


def place_in_thread(comment: Comment, parent: Comment | None) -> None:
    """Give a new comment, not stored yet, its parent, depth and visibility."""
    comment.parent_id = parent.id if parent else None
    comment.depth = parent.depth + 1 if parent else 0
    comment.visible = comment.status is Status.APPROVED and (parent is None or parent.visible)


def give_path(comment_id: int, post_id: int, parent: Comment | None) -> str:
    """Store the path of a new comment (it holds the id: one UPDATE once the row exists).
    The statement names its post: one without page_scopes would bump GLOBAL (every cached
    page)."""
    path = path_of(comment_id, parent.path if parent else None)
    db.session.execute(
        _SET_PATH,
        {"comment_id": comment_id, "new_path": path},
        execution_options={"page_scopes": (post_id,)},
    )
    return path


# Built once: a new comment only binds its values.
# A Core statement on the table: the ORM's bulk UPDATE cost a fifth of storing a comment.
_table = Comment.__table__
_SET_PATH = (
    update(_table).where(_table.c.id == bindparam("comment_id")).values(path=bindparam("new_path"))
)


def subtree(*names: str) -> CTE:
    """The comment bound as `subtree_root` and its replies at any depth, with these
    columns of each: a recursive walk down `parent_id` (its index), one step per comment
    found, whatever the size of the post. The columns are carried in the walk itself:
    PostgreSQL planned a join back to the table by id as a scan of the table."""
    table = Comment.__table__
    below = table.alias("below")
    top = (
        select(*(table.c[name] for name in names))
        .where(table.c.id == bindparam("subtree_root"))
        .cte("subtree", recursive=True)
    )
    return top.union_all(
        select(*(below.c[name] for name in names)).where(below.c.parent_id == top.c.id)
    )


def refresh_visibility(comment: Comment) -> None:
    """Recompute `visible` for a comment and its whole subtree after a status change."""
    parent_visible = True
    if comment.parent_id is not None:
        parent_visible = bool(
            db.session.scalar(select(Comment.visible).where(Comment.id == comment.parent_id))
        )
    db.session.flush()
    rows = db.session.execute(_SUBTREE_ROWS, {"subtree_root": comment.id}).all()
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
                .execution_options(synchronize_session="fetch", page_scopes=(comment.post_id,))
            )


def refresh_many(
    comments: Sequence[Comment], store: Callable[[dict[int, bool]], None] | None = None
) -> list[int]:
    """Recompute visibility after status changes; returns the ids that became visible.

    A comment without replies needs only its parent's visibility (one query for all of
    them), set before the flush that writes its status: one UPDATE per comment. A comment
    with replies has its subtree recomputed by refresh_visibility after that flush.

    `store`: the writer of the new statuses themselves (moderation.decide's statement),
    given the leaves' visibility by id, instead of the objects' `visible` and a flush.
    """
    if not comments:
        return []
    ids = [c.id for c in comments]
    with db.session.no_autoflush:  # who has replies does not change with a status
        with_replies = set()
        for start in range(0, len(ids), CHUNK):
            with_replies.update(
                db.session.scalars(_WITH_REPLIES, {"ids": ids[start : start + CHUNK]})
            )
        refreshed: set[int] = set()
        leaves: list[Comment] = []
        subtrees: list[Comment] = []
        for comment in sorted(comments, key=lambda c: c.path):
            if set(ancestor_ids(comment)) & refreshed:
                continue  # inside a subtree recomputed below
            if comment.id in with_replies:
                refreshed.add(comment.id)
                subtrees.append(comment)
            else:
                leaves.append(comment)
        # A leaf's parent is not among the subtrees (it would have a reply): its
        # visibility is what the database holds.
        parent_ids = sorted({c.parent_id for c in leaves if c.parent_id is not None})
        parent_visible: dict[int, bool] = {}
        for start in range(0, len(parent_ids), CHUNK):
            rows = db.session.execute(_VISIBLE, {"ids": parent_ids[start : start + CHUNK]})
            parent_visible.update((row.id, row.visible) for row in rows)
    became: list[int] = []
    leaf_visible: dict[int, bool] = {}
    for comment in leaves:
        above = comment.parent_id is None or parent_visible.get(comment.parent_id, False)
        visible = leaf_visible[comment.id] = above and comment.status is Status.APPROVED
        if visible and not comment.visible:
            became.append(comment.id)
    if store is not None:
        store(leaf_visible)
    else:
        for comment in leaves:
            comment.visible = leaf_visible[comment.id]
        db.session.flush()
    for comment in subtrees:
        refresh_visibility(comment)
        # refresh_visibility synchronized `visible` on the objects in the session.
        if comment.status is Status.APPROVED and comment.visible:
            # It was not approved before, so nothing under it was visible either.
            became.extend(db.session.scalars(_VISIBLE_IN_SUBTREE, {"subtree_root": comment.id}))
    return became


# Built once, on the table (no ORM entity to load): a decision only binds its ids.
_WITH_REPLIES = (
    select(_table.c.parent_id).where(_table.c.parent_id.in_(bindparam("ids", expanding=True)))
).distinct()
_VISIBLE = select(_table.c.id, _table.c.visible).where(
    _table.c.id.in_(bindparam("ids", expanding=True))
)
_rows = subtree("id", "parent_id", "status", "visible", "path")
# Parents before their replies (the path's order).
_SUBTREE_ROWS = select(_rows.c.id, _rows.c.parent_id, _rows.c.status, _rows.c.visible).order_by(
    _rows.c.path
)
_shown = subtree("id", "visible")
_VISIBLE_IN_SUBTREE = select(_shown.c.id).where(_shown.c.visible.is_(True))


def pending_ancestors(comments: Sequence[Comment]) -> list[int]:
    """Ancestors still pending of these comments (one query)."""
    wanted = {i for c in comments for i in ancestor_ids(c)}
    wanted -= {c.id for c in comments}
    if not wanted:
        return []
    # By id alone: with `status = pending` in the WHERE, SQLite searched the status index
    # (every pending comment, 6-10 ms at 100,000) instead of the primary key.
    rows = db.session.execute(
        select(Comment.id, Comment.status).where(Comment.id.in_(sorted(wanted)[:CHUNK]))
    )
    return sorted(row.id for row in rows if row.status is Status.PENDING)
