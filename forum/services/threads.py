"""Reading a post's discussion: one page of threads in display order, in constant queries."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, false, func, or_, select

from forum.extensions import db
from forum.models import Comment, CommentKind, Status

CHUNK = 500  # pingbacks a page looks under (a post has a handful)

# What a thread shows of a comment, read as plain rows: building ORM objects (and decoding
# columns no one shows) cost a 1,000-comment page more than its queries (bench/RESULTS.md).
SHOWN = (
    Comment.id,
    Comment.parent_id,
    Comment.depth,
    Comment.path,
    Comment.user_id,
    Comment.author_name,
    Comment.author_url,
    Comment.body_html,
    Comment.status,
    Comment.visible,
    Comment.created_at,
    Comment.edited_at,
)


@dataclass
class Node:
    comment: Any  # a row of SHOWN columns
    children: list[Node] = field(default_factory=list)
    pending: bool = False

    def walk(self) -> Iterator[tuple[Node, int]]:
        """This comment and its replies in display order, each with the number of reply
        lists that end after it: templates render a thread flat, without recursion."""
        stack: list[tuple[Node, int]] = [(self, 0)]
        while stack:
            node, closes = stack.pop()
            yield node, 0 if node.children else closes
            if node.children:
                last = len(node.children) - 1
                stack.extend(
                    (child, closes + 1 if i == last else 0)
                    for i, child in reversed(list(enumerate(node.children)))
                )


@dataclass
class ThreadPage:
    roots: list[Node]
    pingbacks: list[Comment]
    page: int
    pages: int
    total: int  # visible responses on the post: what "N Responses" says
    # Replies to a pingback or trackback, shown under it: its id -> the reply threads.
    ping_replies: dict[int, list[Node]] = field(default_factory=dict)

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
    is_root = top_level()
    total = db.session.scalar(select(func.count(Comment.id)).where(visible)) or 0
    root_count_and_paths = (
        db.session.execute(
            select(Comment.path)
            .where(visible, is_root, is_comment)
            .order_by(Comment.path)
            .offset((page - 1) * per_page)
            .limit(per_page + 1)
        )
        .scalars()
        .all()
    )
    if page > 1 and not root_count_and_paths:
        return None
    roots_total = (
        db.session.scalar(select(func.count(Comment.id)).where(visible, is_root, is_comment)) or 0
    )
    pages = max(1, -(-roots_total // per_page))

    comments: list[Any] = []
    if root_count_and_paths:
        rng = Comment.path >= root_count_and_paths[0]
        if len(root_count_and_paths) > per_page:
            rng &= Comment.path < root_count_and_paths[per_page]
        stmt = select(*SHOWN).where(visible, is_comment, rng).order_by(Comment.path)
        comments = list(db.session.execute(stmt))
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
            select(Comment)
            .where(visible, Comment.kind != CommentKind.COMMENT)
            .order_by(Comment.path)
        )
    )
    # Replies under the pingbacks: one range of the path index per pingback (a join on a
    # computed LIKE pattern scanned the post's comments once per comment: quadratic).
    under = or_(false(), *(Comment.path.startswith(p.path + "/") for p in pingbacks[:CHUNK]))
    under_pings = db.session.execute(
        select(*SHOWN).where(visible, is_comment, under).order_by(Comment.path)
    ).all()
    if page != pages:
        return ThreadPage(build_tree(comments), [], page, pages, total)
    return ThreadPage(
        build_tree(comments), pingbacks, page, pages, total, replies_under(pingbacks, under_pings)
    )


def replies_under(pingbacks: list[Comment], replies: list[Any]) -> dict[int, list[Node]]:
    """Threads of replies (in path order) hanging under pingbacks, by pingback id."""
    under: dict[int, list[Node]] = {p.id: [] for p in pingbacks}
    nodes: dict[int, Node] = {}
    for c in replies:
        if c.id in nodes:
            continue  # under two pingbacks (one replying to the other): shown once
        node = Node(c)
        if c.parent_id in under:
            under[c.parent_id].append(node)
        elif c.parent_id in nodes:
            nodes[c.parent_id].children.append(node)
        else:
            continue
        nodes[c.id] = node
    return {ping_id: roots for ping_id, roots in under.items() if roots}


def top_level():
    """Top-level comments, told by their path (no "/"): the (post_id, visible, path) index
    answers that alone, where parent_id would read every comment of the thread before the
    page (a 5,000-comment thread's last page read them all, twice: bench/RESULTS.md)."""
    return ~Comment.path.contains("/")


# Visible top-level comments before a path: built once (a POST's redirect only binds it),
# on the table (the ORM's layer cost more than the count).
_t = Comment.__table__
_ROOTS_BEFORE = select(func.count(_t.c.id)).where(
    _t.c.post_id == bindparam("post_id"),
    _t.c.visible.is_(True),
    _t.c.kind == CommentKind.COMMENT,
    ~_t.c.path.contains("/"),  # top_level(), on the table
    _t.c.path < bindparam("path"),
)


def own_pending(post_id: int, user_id: int | None, pending_ids: frozenset[int]) -> list[Any]:
    """The viewer's own comments awaiting moderation on this post (rows of SHOWN)."""
    if user_id is None and not pending_ids:
        return []
    return list(db.session.execute(own_pending_statement(post_id, user_id, pending_ids)))


def own_pending_statement(post_id: int, user_id: int | None, pending_ids: frozenset[int]):
    """own_pending's query: a member's by account, a guest's by the ids they posted."""
    if user_id is not None:
        # By the member's own pending comments (ix_comment_user_status), never by the
        # post's: `post_id + 0` is no index's, or SQLite, without statistics, may pick
        # either, by chance of the schema (tests/test_query_plans.py), and read every comment
        # held on a busy post.
        stmt = select(*SHOWN).where(
            (Comment.post_id + 0) == post_id,
            Comment.status == Status.PENDING,
            Comment.user_id == user_id,
        )
    else:
        stmt = select(*SHOWN).where(
            Comment.post_id == post_id,
            Comment.status == Status.PENDING,
            Comment.id.in_(sorted(pending_ids)[-50:]),
            Comment.user_id.is_(None),
        )
    return stmt


def build_tree(comments: list[Any]) -> list[Node]:
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
    """The page of the post that shows this comment's thread (pingbacks, and replies to
    them, are on the last page)."""
    root_path = comment.path.split("/", 1)[0]
    above = [int(segment) for segment in comment.path.split("/") if segment]
    above = [comment_id for comment_id in above if comment_id != comment.id]
    # The comment's own kind is known; a new top-level comment needs no query for it.
    under_ping = comment.kind is not CommentKind.COMMENT or (
        bool(above)
        and db.session.scalar(
            select(func.count(Comment.id)).where(
                Comment.id.in_(above), Comment.kind != CommentKind.COMMENT
            )
        )
    )
    if under_ping:
        roots = (
            db.session.scalar(
                select(func.count(Comment.id)).where(
                    Comment.post_id == comment.post_id,
                    Comment.visible.is_(True),
                    Comment.kind == CommentKind.COMMENT,
                    top_level(),
                )
            )
            or 0
        )
        return max(1, -(-roots // per_page))
    before = db.session.scalar(_ROOTS_BEFORE, {"post_id": comment.post_id, "path": root_path})
    return (before or 0) // per_page + 1
