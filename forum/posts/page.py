"""The post page: a post, one page of its discussion, and the comment form as this
viewer sees it (remembered guest details, own pending comments, the reply target).

Both blueprints build it: posts.show for readers, and comments.create again with the
refused form and its errors.
"""

from __future__ import annotations

import time
from datetime import timedelta

from flask import (
    Response,
    abort,
    current_app,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user
from itsdangerous import BadSignature, URLSafeSerializer

from forum import pagecache
from forum.comments.forms import CommentForm, GuestCommentForm
from forum.extensions import db
from forum.forms import ActionForm
from forum.models import Comment, Post
from forum.services import comments as comment_service
from forum.services import settings as settings_service
from forum.services import threads, versions

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
    form.rendered_at.data = pagecache.form_stamp()
    return form


def seconds_since_rendered(token: str) -> float | None:
    """Seconds since the form was shown; 0 for a forged token, None when absent."""
    if not token:
        return None
    try:
        stamp = float(serializer(pagecache.STAMP_SALT).loads(token))
        return max(0.0, time.time() - stamp)
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


def show_post(post_id: int, slug: str | None, page: int, reply_to: int | None) -> Response:
    """The post page for a GET: from the render cache when this kind of reader has seen
    this page at these versions (no query but the versions', and the user's for members),
    rendered and kept otherwise. A reply form (?reply_to=) is always rendered."""
    variant = None
    if reply_to is None:
        variant = pagecache.viewer_variant(viewer_pending_ids(), remembered_author())
    if variant is None:
        return _show_rendered(db.get_or_404(Post, post_id), slug, page, reply_to)
    seen = versions.current(post_id)
    key = f"thread:{post_id}:{seen.thread_key}:{page}:{variant}"
    pc = pagecache.cache()
    entry = pc.backend.get(key)
    if entry is None or entry.meta.get("slug") != slug or time.time() >= entry.meta["until"]:
        post = db.get_or_404(Post, post_id)
        if slug != post.slug:
            return _redirect_to_slug(post, page)
        with pagecache.markers():
            form = comment_form_for(post)
            form.rendered_at.data = pc.stamp_mark
            body = render_post(post, form, page=page).get_data()
        entry = pc.entry(body, slug=post.slug, until=_closes_at(post))
        pc.backend.set(key, entry)
    anonymous = not variant.startswith("m")
    return pagecache.respond(
        entry,
        key,
        seen.thread_changed_at,
        conditional=anonymous,
        cache_control="private, no-cache" if anonymous else None,
    )


def _show_rendered(post: Post, slug: str | None, page: int, reply_to: int | None):
    if slug != post.slug:
        return _redirect_to_slug(post, page)
    return render_post(post, comment_form_for(post, reply_to), page=page)


def _redirect_to_slug(post: Post, page: int):
    return redirect(
        url_for("posts.show", post_id=post.id, slug=post.slug, page=page if page > 1 else None),
        301,
    )


def _closes_at(post: Post) -> float:
    """When an open post closes by itself (a cached page showing the form expires then);
    never for a page that already says "closed"."""
    days = settings_service.load().close_after_days
    if not post.comments_open or not days:
        return float("inf")
    closes = (post.created_at + timedelta(days=days)).timestamp()
    return closes if closes > time.time() else float("inf")
