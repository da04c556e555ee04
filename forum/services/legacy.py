"""Finding imported posts and comments by the addresses they had on the old blog."""

from __future__ import annotations

import re

from sqlalchemy import select

from forum.extensions import db
from forum.models import Comment, Post

# WordPress endings of a post's address that still mean the post.
_SUFFIX_RE = re.compile(r"/(?:comment-page-\d+|amp|embed|trackback)$")
_FEED_RE = re.compile(r"/feed(?:/(?:rss2?|atom|rdf))?$")


def split_old_path(path: str) -> tuple[str, bool]:
    """The post's own path in an old address, and whether it asked for the comment feed."""
    path = "/" + path.strip("/")
    feed = bool(_FEED_RE.search(path))
    path = _FEED_RE.sub("", path)
    return _SUFFIX_RE.sub("", path), feed


def post_for_old_path(path: str) -> Post | None:
    """The imported post whose old permalink had this path; else the imported post whose
    slug is the path's last segment (what WordPress itself guesses on a 404)."""
    if len(path) > Post.__table__.c.legacy_path.type.length:
        return None
    post = db.session.scalars(
        select(Post).where(Post.legacy_path == path).order_by(Post.id).limit(1)
    ).first()
    if post is not None:
        return post
    slug = path.rsplit("/", 1)[-1]
    if not slug:
        return None
    return db.session.scalars(
        select(Post)
        .where(Post.slug.in_({slug, slug.lower()}), Post.wp_id.is_not(None))
        .order_by(Post.id)
        .limit(1)
    ).first()


def post_for_wp_id(wp_id: int) -> Post | None:
    """The imported post that had this id on the old blog (the first, if several blogs)."""
    return db.session.scalars(
        select(Post).where(Post.wp_id == wp_id).order_by(Post.id).limit(1)
    ).first()


def comment_for_wp_id(post_id: int, wp_id: int) -> Comment | None:
    """The comment of this post that had this id on the old blog."""
    return db.session.scalars(
        select(Comment).where(Comment.post_id == post_id, Comment.wp_id == wp_id).limit(1)
    ).first()
