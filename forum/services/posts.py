"""Posts: writing them and the queries the post pages make."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, func, select
from sqlalchemy.orm import selectinload

from forum.extensions import db
from forum.models import BodyFormat, Comment, Post, Tag, User, post_tag
from forum.services import markdown, sanitize


class NotAllowedToPost(Exception):
    """The member's role may not write posts, or the member is banned."""


class EmptyPost(ValueError):
    """A title or body a reader would see nothing of; `field` names which."""

    def __init__(self, field: str) -> None:
        super().__init__("This field is required.")
        self.field = field


def slugify(text: str, max_length: int = 80) -> str:
    """A slug for URLs: 'Héllo, World!' -> 'hello-world'; '日本語のタグ' stays itself.

    Latin text is transliterated to ASCII; text with no Latin letters keeps its own
    letters, so that two tags in another script never share a slug.
    """
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    if not slug:
        slug = re.sub(r"[\W_]+", "-", unicodedata.normalize("NFKC", text).casefold()).strip("-")
    return slug[:max_length].rstrip("-") or "post"


def parse_tags(raw: str) -> list[str]:
    """Comma-separated tag names, trimmed, deduplicated case-insensitively, in order."""
    seen: dict[str, str] = {}
    for name in raw.split(","):
        name = " ".join(name.split())[:50]
        if name and name.casefold() not in seen:
            seen[name.casefold()] = name
    return list(seen.values())[:10]


def get_or_create_tags(names: list[str]) -> list[Tag]:
    slugs = {slugify(name, Tag.__table__.c.slug.type.length): name for name in names}
    existing = {t.slug: t for t in db.session.scalars(select(Tag).where(Tag.slug.in_(slugs)))}
    tags = []
    for slug, name in slugs.items():
        tag = existing.get(slug)
        if tag is None:
            tag = Tag(name=name, slug=slug)
            db.session.add(tag)
        tags.append(tag)
    return tags


def can_write_posts(user: User, allowed_roles: list[str]) -> bool:
    return user.is_authenticated and not user.is_banned and user.role.value in allowed_roles


def create_post(
    author: User,
    title: str,
    body: str,
    tags: list[str],
    allowed_roles: list[str],
    body_format: BodyFormat = BodyFormat.HTML,
) -> Post:
    """Write a post: body sanitized like comments, tags created as needed."""
    if not can_write_posts(author, allowed_roles):
        raise NotAllowedToPost()
    if sanitize.is_blank(title):
        raise EmptyPost("title")
    result = markdown.render(body, body_format, markdown.Kind.POST)
    if sanitize.is_blank_html(result.html):
        raise EmptyPost("body")
    post = Post(
        author=author,
        title=title.strip(),
        slug=slugify(title),
        body_source=body,
        body_format=body_format,
        body_html=result.html,
        tags=get_or_create_tags(tags),
    )
    db.session.add(post)
    return post


def recent_posts(tag: Tag | None = None) -> Select:
    """Posts newest first, author and tags eager-loaded; optionally one tag's."""
    stmt = (
        select(Post)
        .options(selectinload(Post.author), selectinload(Post.tags))
        .order_by(Post.created_at.desc(), Post.id.desc())
    )
    if tag is not None:
        stmt = stmt.join(post_tag, post_tag.c.post_id == Post.id).where(post_tag.c.tag_id == tag.id)
    return stmt


def response_counts(post_ids: list[int]) -> dict[int, int]:
    """What a reader sees under each post: visible comments only, in one query."""
    if not post_ids:
        return {}
    rows = db.session.execute(
        select(Comment.post_id, func.count(Comment.id))
        .where(Comment.post_id.in_(post_ids), Comment.visible.is_(True))
        .group_by(Comment.post_id)
    )
    return {post_id: count for post_id, count in rows}


@dataclass(frozen=True)
class LatestResponse:
    """The newest comment a reader can see under a post: when, and by whom."""

    comment_id: int
    created_at: datetime
    author_name: str


def latest_responses(post_ids: list[int]) -> dict[int, LatestResponse]:
    """Each post's newest visible comment, for all the posts in one query."""
    if not post_ids:
        return {}
    ranked = (
        select(
            Comment.post_id,
            Comment.id,
            Comment.created_at,
            Comment.author_name,
            func.row_number()
            .over(
                partition_by=Comment.post_id,
                order_by=(Comment.created_at.desc(), Comment.id.desc()),
            )
            .label("rank"),
        )
        .where(Comment.post_id.in_(post_ids), Comment.visible.is_(True))
        .subquery()
    )
    rows = db.session.execute(
        select(ranked.c.post_id, ranked.c.id, ranked.c.created_at, ranked.c.author_name).where(
            ranked.c.rank == 1
        )
    )
    return {
        post_id: LatestResponse(comment_id, created_at, author_name)
        for post_id, comment_id, created_at, author_name in rows
    }
