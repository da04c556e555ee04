"""The post page: a post, one page of its discussion, and the comment form as this
viewer sees it (remembered guest details, own pending comments, the reply target).

Both blueprints build it: posts.show for readers, and comments.create again with the
refused form and its errors.
"""

from __future__ import annotations

import time

from flask import abort, current_app, make_response, render_template, request, session
from flask_login import current_user
from itsdangerous import BadSignature, URLSafeSerializer

from forum.comments.forms import CommentForm, GuestCommentForm
from forum.extensions import db
from forum.forms import ActionForm
from forum.models import Comment, Post
from forum.services import comments as comment_service
from forum.services import settings as settings_service
from forum.services import threads

AUTHOR_COOKIE = "comment_author"
PENDING_KEY = "pending_comments"


def serializer(salt: str) -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=salt)


def viewer_pending_ids() -> frozenset[int]:
    """A guest's own pending comments, remembered in the signed session."""
    if current_user.is_authenticated:
        return frozenset()
    return frozenset(i for i in session.get(PENDING_KEY, []) if isinstance(i, int))


def remembered_author() -> dict[str, str]:
    raw = request.cookies.get(AUTHOR_COOKIE)
    if not raw:
        return {}
    try:
        data = serializer("comment-author").loads(raw)
    except BadSignature:
        return {}
    return {k: str(v)[:500] for k, v in data.items() if k in ("name", "email", "url")}


def comment_form_for(post: Post, reply_to: int | None = None) -> CommentForm:
    """An empty form for this viewer, with remembered guest details filled in."""
    if current_user.is_authenticated:
        form = CommentForm(formdata=None)
    else:
        form = GuestCommentForm(formdata=None)
        author = remembered_author()
        form.author_name.data = author.get("name", "")
        form.author_email.data = author.get("email", "")
        form.author_url.data = author.get("url", "")
        form.remember.data = bool(author)
    form.parent_id.data = reply_to
    form.rendered_at.data = serializer("comment-form").dumps(time.time())
    return form


def seconds_since_rendered(token: str) -> float | None:
    """Seconds since the form was shown; 0 for a forged token, None when absent."""
    if not token:
        return None
    try:
        return max(0.0, time.time() - float(serializer("comment-form").loads(token)))
    except (BadSignature, TypeError, ValueError):
        return 0.0


def render_post(post: Post, form: CommentForm, status: int = 200, page: int = 1, **extra):
    """The post page with the given form (filled in when a submission was refused)."""
    settings = settings_service.load()
    reply_to = form.parent_id.data  # an id within range, or None (IdField)
    parent = db.session.get(Comment, reply_to) if reply_to else None
    if parent is not None and (parent.post_id != post.id or not parent.visible):
        own = parent.id in viewer_pending_ids() or (
            current_user.is_authenticated and parent.user_id == current_user.id
        )
        if not own:
            parent = None
    if request.method == "GET":
        form.parent_id.data = parent.id if parent else None
    thread = threads.thread_page(
        post.id,
        page,
        settings.threads_per_page,
        viewer_user_id=current_user.id if current_user.is_authenticated else None,
        viewer_pending_ids=viewer_pending_ids(),
    )
    if thread is None:
        abort(404)
    body = render_template(
        "posts/show.html",
        post=post,
        thread=thread,
        form=form,
        reply_parent=parent,
        closed=comment_service.comments_closed(post, settings),
        action_form=ActionForm(formdata=None),
        settings=settings,
        edit_window=settings.edit_window_minutes,
        **extra,
    )
    return make_response(body, status)
