"""Posting, replying to, editing and deleting comments."""

from __future__ import annotations

import time

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required
from itsdangerous import BadSignature, URLSafeSerializer

from forum.comments.forms import CommentForm, EditCommentForm, GuestCommentForm
from forum.extensions import db, limiter
from forum.forms import ActionForm
from forum.models import Comment, Post
from forum.services import comments as comment_service
from forum.services import notifications, threads
from forum.services import settings as settings_service

bp = Blueprint("comments", __name__)

AUTHOR_COOKIE = "comment_author"
PENDING_KEY = "pending_comments"


def _serializer(salt: str) -> URLSafeSerializer:
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
        data = _serializer("comment-author").loads(raw)
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
    form.rendered_at.data = _serializer("comment-form").dumps(time.time())
    return form


def seconds_since_rendered(token: str) -> float | None:
    """Seconds since the form was shown; 0 for a forged token, None when absent."""
    if not token:
        return None
    try:
        return max(0.0, time.time() - float(_serializer("comment-form").loads(token)))
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


def _rate_limited(limit) -> object:
    """Over the limit: the post page again with the text kept, and when to retry."""
    post = db.get_or_404(Post, request.view_args["post_id"])
    form = CommentForm() if current_user.is_authenticated else GuestCommentForm()
    retry = max(1, int(limit.window.reset_time - time.time()))
    response = render_post(post, form, 429, rate_limited=True, retry_after=retry)
    response.headers["Retry-After"] = str(retry)
    return response


def _comment_limit() -> str:
    return current_app.config["RATELIMIT_COMMENT"]


def _account_key() -> str:
    return f"user:{current_user.id}" if current_user.is_authenticated else "anonymous"


@bp.post("/posts/<int:post_id>/comments")
@limiter.limit(
    _comment_limit, key_func=lambda: f"ip:{request.remote_addr}", on_breach=_rate_limited
)
@limiter.limit(
    _comment_limit,
    key_func=_account_key,
    exempt_when=lambda: not current_user.is_authenticated,
    on_breach=_rate_limited,
)
def create(post_id: int):
    """Submit a comment or a reply; it goes through the rules and maybe the queue."""
    post = db.get_or_404(Post, post_id)
    settings = settings_service.load()
    if comment_service.comments_closed(post, settings):
        abort(403, description="Comments are closed on this post.")
    if current_user.is_authenticated and current_user.is_banned:
        abort(403, description="Your account may not comment.")
    guest = not current_user.is_authenticated
    form = GuestCommentForm() if guest else CommentForm()
    if not form.validate_on_submit():
        return render_post(post, form, 400 if form.errors.get("csrf_token") else 422)
    data = comment_service.CommentInput(
        body=form.body.data,
        parent_id=form.parent_id.data,
        author_name=form.author_name.data if guest else "",
        author_email=form.author_email.data if guest else "",
        author_url=(form.author_url.data or "") if guest else "",
        ip=request.remote_addr or "",
        user_agent=request.user_agent.string[:500],
        honeypot=form.homepage.data or "",
        seconds_to_submit=seconds_since_rendered(form.rendered_at.data or ""),
        timestamp_missing=not form.rendered_at.data,
        notify_on_decision=form.notify_decision.data,
        notify_on_reply=form.notify_replies.data,
    )
    try:
        comment = comment_service.submit_comment(
            post,
            data,
            settings,
            user=None if guest else current_user,
            own_pending_ids=viewer_pending_ids(),
        )
    except comment_service.DuplicateComment as dup:
        flash("You already posted that comment.", "info")
        return redirect(_comment_url(post, dup.existing))
    except comment_service.InvalidParent as error:
        form.parent_id.errors = [str(error)]
        form.parent_id.data = None
        return render_post(post, form, 422)
    except comment_service.CommentError as error:
        form.body.errors = [str(error)]
        return render_post(post, form, 422)
    notifications.comment_submitted(comment)
    db.session.commit()
    notifications.flush_after_response()
    current_app.logger.info(
        "comment %s on post %s by %s from %s: %s",
        comment.id,
        post.id,
        comment.author_name,
        comment.ip,
        comment.status.value,
    )
    if guest and comment.status.value == "pending":
        session[PENDING_KEY] = [*session.get(PENDING_KEY, []), comment.id][-50:]
    flash(*_status_message(comment))
    response = redirect(_comment_url(post, comment))
    if guest:
        _remember_author(response, form)
    return response


def _status_message(comment: Comment) -> tuple[str, str]:
    status = comment.status.value
    if status == "approved":
        return "Your comment is published.", "success"
    if status == "pending":
        return "Thanks! Your comment is awaiting moderation.", "info"
    return "Your comment was received.", "info"


def _remember_author(response, form: GuestCommentForm) -> None:
    if form.remember.data:
        value = _serializer("comment-author").dumps(
            {
                "name": form.author_name.data,
                "email": form.author_email.data,
                "url": form.author_url.data or "",
            }
        )
        response.set_cookie(
            AUTHOR_COOKIE,
            value,
            max_age=365 * 24 * 3600,
            httponly=True,
            samesite="Lax",
            secure=current_app.config["HTTPS"],
        )
    else:
        response.delete_cookie(AUTHOR_COOKIE)


def _comment_url(post: Post, comment: Comment) -> str:
    settings = settings_service.load()
    page = threads.page_of(comment, settings.threads_per_page)
    return url_for(
        "posts.show",
        post_id=post.id,
        slug=post.slug,
        page=page if page > 1 else None,
        _anchor=comment.anchor,
    )


@bp.get("/comments/<int:comment_id>")
def permalink(comment_id: int):
    """Where a comment lives: its post page, at its anchor."""
    comment = db.get_or_404(Comment, comment_id)
    if not comment.visible:
        abort(404)
    return redirect(_comment_url(comment.post, comment))


@bp.route("/comments/<int:comment_id>/edit", methods=["GET", "POST"])
@login_required
def edit(comment_id: int):
    """A member edits their own comment within the edit window."""
    comment = db.get_or_404(Comment, comment_id)
    settings = settings_service.load()
    if not comment_service.can_edit(comment, current_user, settings):
        abort(403)
    form = EditCommentForm(obj=comment) if request.method == "GET" else EditCommentForm()
    if request.method == "GET":
        form.body.data = comment.body_source
    if form.validate_on_submit():
        try:
            comment_service.edit_comment(comment, form.body.data, current_user, settings)
        except comment_service.CommentError as error:
            form.body.errors = [str(error)]
        else:
            db.session.commit()
            flash("Your comment was updated.", "success")
            return redirect(_comment_url(comment.post, comment))
    return render_template(
        "comments/edit.html", form=form, comment=comment, delete_form=ActionForm()
    )


@bp.post("/comments/<int:comment_id>/delete")
@login_required
def delete(comment_id: int):
    """A member deletes their own comment within the edit window."""
    comment = db.get_or_404(Comment, comment_id)
    settings = settings_service.load()
    if not comment_service.can_edit(comment, current_user, settings):
        abort(403)
    if not ActionForm().validate_on_submit():
        abort(400)
    post = comment.post
    try:
        comment_service.delete_own_comment(comment, current_user, settings)
    except comment_service.CommentError as error:
        flash(str(error), "error")
        return redirect(url_for("comments.edit", comment_id=comment.id))
    db.session.commit()
    flash("Your comment was deleted.", "success")
    return redirect(url_for("posts.show", post_id=post.id, slug=post.slug))
