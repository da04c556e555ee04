"""Atom feeds: recent posts, recent comments site-wide, and one post's comments.

A comment appears only when a reader would see it on the page (`visible`: approved,
with every ancestor approved); pending, spam and rejected ones never do. Each feed is
a constant number of queries.
"""

from __future__ import annotations

import re

# bandit B405 is about parsing untrusted XML; this module only builds XML.
import xml.etree.ElementTree as ET  # nosec B405
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import Blueprint, Response, current_app
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from forum import pagecache
from forum.extensions import db
from forum.links import absolute_url_for
from forum.models import Comment, CommentKind, Post, Tag, utcnow
from forum.services import posts as post_service
from forum.services import versions

bp = Blueprint("feeds", __name__)

ATOM_NS = "http://www.w3.org/2005/Atom"
ATOM_TYPE = "application/atom+xml"
POSTS_IN_FEED = 20
COMMENTS_IN_FEED = 30
# Characters XML 1.0 cannot carry at all, even escaped.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True)
class Entry:
    id: str
    title: str
    link: str
    author: str
    published: datetime
    updated: datetime
    html: str
    author_uri: str = ""
    tags: tuple[Tag, ...] = ()


@bp.get("/feed.atom")
def posts():
    """The newest posts."""
    return _cached("posts", _posts)


@bp.get("/comments/feed.atom")
def comments():
    """The newest comments readers can see, on any post."""
    return _cached("comments", _comments)


@bp.get("/posts/<int:post_id>/feed.atom")
def post_comments(post_id: int):
    """The newest comments readers can see on one post."""
    return _cached(f"post{post_id}", lambda: _post_comments(post_id))


def _cached(name: str, build: Callable[[], Response]) -> Response:
    """Every reader shares one rendering of a feed per site version (any change a reader
    could see bumps it), with ETag and Last-Modified for feed readers."""
    seen = versions.current()
    key = f"feed:{name}:{seen.site_key}"
    pc = pagecache.cache()
    entry = pc.backend.get(key)
    if entry is None:
        entry = pc.entry(build().get_data(), mimetype=ATOM_TYPE)
        pc.backend.set(key, entry)
    return pagecache.respond(
        entry, key, seen.site_changed_at, conditional=True, shared=True, cache_control="no-cache"
    )


def _posts() -> Response:
    recent = db.session.scalars(post_service.recent_posts().limit(POSTS_IN_FEED)).all()
    entries = [_post_entry(post) for post in recent]
    return _atom(
        title=current_app.config["FORUM_NAME"],
        self_url=absolute_url_for("feeds.posts"),
        page_url=absolute_url_for("posts.index"),
        entries=entries,
    )


def _comments() -> Response:
    recent = db.session.scalars(
        _visible_comments().options(joinedload(Comment.post)).limit(COMMENTS_IN_FEED)
    ).all()
    return _atom(
        title=f"Comments · {current_app.config['FORUM_NAME']}",
        self_url=absolute_url_for("feeds.comments"),
        page_url=absolute_url_for("posts.index"),
        entries=[_comment_entry(c, c.post) for c in recent],
    )


def _post_comments(post_id: int) -> Response:
    post = db.get_or_404(Post, post_id)
    recent = db.session.scalars(
        _visible_comments().where(Comment.post_id == post.id).limit(COMMENTS_IN_FEED)
    ).all()
    return _atom(
        title=f"Comments on {post.title}",
        self_url=absolute_url_for("feeds.post_comments", post_id=post.id),
        page_url=absolute_url_for("posts.show", post_id=post.id, slug=post.slug),
        entries=[_comment_entry(c, post) for c in recent],
        empty_updated=post.updated_at,
    )


def _visible_comments():
    return (
        select(Comment)
        # Deleted comments kept as empty placeholders (imports) are not news.
        .where(Comment.visible.is_(True), Comment.kind == CommentKind.COMMENT)
        .where(Comment.body_html != "")
        .order_by(Comment.created_at.desc(), Comment.id.desc())
    )


def _post_entry(post: Post) -> Entry:
    return Entry(
        # Without the slug: the id stays the same when the title changes.
        id=absolute_url_for("posts.show", post_id=post.id),
        title=post.title,
        link=absolute_url_for("posts.show", post_id=post.id, slug=post.slug),
        author=post.author.byline if post.author else "a former member",
        published=post.created_at,
        updated=max(post.updated_at, post.created_at),
        html=post.body_html,
        tags=tuple(post.tags),
    )


def _comment_entry(comment: Comment, post: Post) -> Entry:
    return Entry(
        id=absolute_url_for("comments.permalink", comment_id=comment.id),
        title=f"Comment on {post.title} by {comment.author_name}",
        link=absolute_url_for("comments.permalink", comment_id=comment.id),
        author=comment.author_name,
        author_uri=comment.author_url if comment.user_id is None else "",
        published=comment.created_at,
        updated=comment.edited_at or comment.created_at,
        html=comment.body_html,
    )


def _atom(
    title: str,
    self_url: str,
    page_url: str,
    entries: Iterable[Entry],
    empty_updated: datetime | None = None,
) -> Response:
    entries = list(entries)
    feed = ET.Element("feed", {"xmlns": ATOM_NS})
    _text(feed, "id", self_url)
    _text(feed, "title", title)
    newest = max((e.updated for e in entries), default=empty_updated or utcnow())
    _text(feed, "updated", _rfc3339(newest))
    ET.SubElement(feed, "link", {"rel": "self", "type": ATOM_TYPE, "href": self_url})
    ET.SubElement(feed, "link", {"rel": "alternate", "type": "text/html", "href": page_url})
    _text(feed, "generator", "forum")
    for entry in entries:
        item = ET.SubElement(feed, "entry")
        _text(item, "id", entry.id)
        _text(item, "title", entry.title)
        ET.SubElement(item, "link", {"rel": "alternate", "type": "text/html", "href": entry.link})
        author = ET.SubElement(item, "author")
        _text(author, "name", entry.author)
        if entry.author_uri.lower().startswith(("http://", "https://")):
            _text(author, "uri", entry.author_uri)
        _text(item, "published", _rfc3339(entry.published))
        _text(item, "updated", _rfc3339(entry.updated))
        for tag in entry.tags:
            ET.SubElement(item, "category", {"term": _clean(tag.slug), "label": _clean(tag.name)})
        _text(item, "content", entry.html, type="html")
    body = '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(feed, encoding="unicode")
    return Response(body, mimetype=ATOM_TYPE)


def _text(parent: ET.Element, tag: str, value: str, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    element.text = _clean(value)
    return element


def _clean(value: str) -> str:
    return _NOT_XML.sub("", value)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
