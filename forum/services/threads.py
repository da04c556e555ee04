"""Reading a post's discussion: one page of threads in display order, in constant queries."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from forum.extensions import db
from forum.models import Comment, CommentKind, Status


@dataclass
class Node:
    comment: Comment
    children: list[Node] = field(default_factory=list)
    pending: bool = False


@dataclass
class ThreadPage:
    roots: list[Node]
    pingbacks: list[Comment]
    page: int
    pages: int
    total: int  # visible responses on the post: what "N Responses" says

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


def thread_page(
    post_id: int,
    page: int,
    per_page: int,
    viewer_user_id: int | None = None,
    viewer_pending_ids: frozenset[int] = frozenset(),
) -> ThreadPage | None:
    """Visible comments of one page of top-level threads, plus the viewer's own pending.

    Threads are contiguous in path order, so a page is one range scan of the
    (post_id, visible, path) index between its first root and the next page's.
    Returns None for a page past the end (page 1 always exists).
    """
    visible = (Comment.post_id == post_id) & Comment.visible.is_(True)
    is_comment = Comment.kind == CommentKind.COMMENT
    total = db.session.scalar(select(func.count(Comment.id)).where(visible)) or 0
    root_count_and_paths = db.session.execute(
        select(Comment.path)
        .where(visible, is_comment, Comment.parent_id.is_(None))
        .order_by(Comment.path)
        .offset((page - 1) * per_page)
        .limit(per_page + 1)
    ).scalars().all()
    if page > 1 and not root_count_and_paths:
        return None
    roots_total = db.session.scalar(
        select(func.count(Comment.id)).where(visible, is_comment, Comment.parent_id.is_(None))
    ) or 0
    pages = max(1, -(-roots_total // per_page))

    comments: list[Comment] = []
    if root_count_and_paths:
        rng = Comment.path >= root_count_and_paths[0]
        if len(root_count_and_paths) > per_page:
            rng &= Comment.path < root_count_and_paths[per_page]
        comments = list(
            db.session.scalars(
                select(Comment)
                .where(visible, is_comment, rng)
                .options(joinedload(Comment.user))
                .order_by(Comment.path)
            )
        )
    own = own_pending(post_id, viewer_user_id, viewer_pending_ids)
    if own:
        lo = root_count_and_paths[0] if root_count_and_paths and page > 1 else ""
        hi = root_count_and_paths[per_page] if len(root_count_and_paths) > per_page else None
        for c in own:
            if c.path >= lo and (hi is None or c.path < hi):
                comments.append(c)
        comments.sort(key=lambda c: c.path)
    # Queried on every page so the page's query count never varies; shown on the last.
    pingbacks = list(
        db.session.scalars(
            select(Comment).where(visible, Comment.kind != CommentKind.COMMENT).order_by(Comment.path)
        )
    )
    return ThreadPage(build_tree(comments), pingbacks if page == pages else [], page, pages, total)


def own_pending(
    post_id: int, user_id: int | None, pending_ids: frozenset[int]
) -> list[Comment]:
    """The viewer's own comments awaiting moderation on this post."""
    if user_id is None and not pending_ids:
        return []
    stmt = select(Comment).where(Comment.post_id == post_id, Comment.status == Status.PENDING)
    if user_id is not None:
        stmt = stmt.where(Comment.user_id == user_id)
    else:
        stmt = stmt.where(Comment.id.in_(sorted(pending_ids)[-50:]), Comment.user_id.is_(None))
    return list(db.session.scalars(stmt.options(joinedload(Comment.user))))


def build_tree(comments: list[Comment]) -> list[Node]:
    """Nest comments given in path order; a comment whose parent is absent is dropped."""
    nodes: dict[int, Node] = {}
    roots: list[Node] = []
    for c in comments:
        node = Node(c, pending=c.status is Status.PENDING)
        if c.parent_id is None:
            roots.append(node)
        elif c.parent_id in nodes:
            nodes[c.parent_id].children.append(node)
        else:
            continue
        nodes[c.id] = node
    return roots


def page_of(comment: Comment, per_page: int) -> int:
    """The page of the post that shows this comment's thread."""
    root_path = comment.path.split("/", 1)[0]
    before = db.session.scalar(
        select(func.count(Comment.id)).where(
            Comment.post_id == comment.post_id,
            Comment.visible.is_(True),
            Comment.kind == CommentKind.COMMENT,
            Comment.parent_id.is_(None),
            Comment.path < root_path,
        )
    ) or 0
    return before // per_page + 1
