"""Small factories with unique defaults; call them inside an app context."""

from __future__ import annotations

import itertools
from datetime import datetime

from werkzeug.security import generate_password_hash

from forum.extensions import db
from forum.models import BodyFormat, Comment, Post, Role, Status, User
from forum.services import comments as comment_service
from forum.services import markdown, sanitize
from forum.services import posts as post_service

PASSWORD = "correct horse battery"
_PASSWORD_HASH = generate_password_hash(PASSWORD)  # one hash per run: scrypt is slow
_seq = itertools.count(1)


def make_user(role: Role | str = Role.MEMBER, username: str | None = None, **kw) -> User:
    n = next(_seq)
    user = User(
        username=username or f"user{n}",
        email=kw.pop("email", f"user{n}@example.org"),
        role=Role(role),
        password_hash=_PASSWORD_HASH,
        **kw,
    )
    db.session.add(user)
    db.session.flush()
    return user


def make_post(author: User | None = None, title: str | None = None, **kw) -> Post:
    n = next(_seq)
    title = title or f"Post number {n}"
    body = kw.pop("body", f"Body of post {n}.")
    post = Post(
        author=author,
        title=title,
        slug=post_service.slugify(title),
        body_source=body,
        body_html=sanitize.sanitize_post(body).html,
        **kw,
    )
    db.session.add(post)
    db.session.flush()
    return post


def make_comment(
    post: Post,
    parent: Comment | None = None,
    status: Status | str = Status.APPROVED,
    body: str | None = None,
    user: User | None = None,
    created_at: datetime | None = None,
    reasons: list[str] | None = None,
    **kw,
) -> Comment:
    n = next(_seq)
    body = body or f"Comment number {n}."
    body_format = BodyFormat(kw.get("body_format", BodyFormat.HTML))
    result = markdown.render(body, body_format, markdown.Kind.COMMENT)
    status = Status(status)
    comment = Comment(
        post_id=post.id,
        user_id=user.id if user else None,
        author_name=kw.pop("author_name", user.username if user else f"Guest {n}"),
        author_email=kw.pop("author_email", user.email_key if user else f"guest{n}@example.net"),
        body_source=body,
        body_html=result.html,
        body_hash=sanitize.body_fingerprint(body),
        status=status,
        **kw,
    )
    if created_at is not None:
        comment.created_at = created_at
    comment_service.store_new(comment, parent, [(r, "") for r in (reasons or [])])
    return comment
