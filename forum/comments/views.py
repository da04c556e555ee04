"""Posting, replying to, editing and deleting comments."""

from __future__ import annotations

import time

from flask import (
    Blueprint,
    abort,
    after_this_request,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required

from forum.comments.forms import (
    CommentForm,
    EditCommentForm,
    FlagForm,
    GuestCommentForm,
    PreviewForm,
)
from forum.extensions import db, limiter
from forum.forms import ActionForm
from forum.models import BodyFormat, Comment, Post
from forum.posts import page
from forum.services import comments as comment_service
from forum.services import flags, markdown, notifications, threads
from forum.services import settings as settings_service
from forum.web import flush_mail_after_response

bp = Blueprint("comments", __name__)


def _rate_limited(limit) -> object:
    """Over the limit: the post page again with the text kept, and when to retry."""
    post = db.get_or_404(Post, request.view_args["post_id"])
    form = CommentForm() if current_user.is_authenticated else GuestCommentForm()
    retry = max(1, int(limit.window.reset_time - time.time()))
    response = page.render_post(post, form, 429, rate_limited=True, retry_after=retry)
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
        return page.render_post(post, form, 400 if form.errors.get("csrf_token") else 422)
    data = comment_service.CommentInput(
        body=form.body.data,
        parent_id=form.parent_id.data,
        author_name=form.author_name.data if guest else "",
        author_email=form.author_email.data if guest else "",
        author_url=(form.author_url.data or "") if guest else "",
        ip=request.remote_addr or "",
        user_agent=request.user_agent.string[:500],
        honeypot=form.homepage.data or "",
        seconds_to_submit=page.seconds_since_rendered(form.rendered_at.data or ""),
        timestamp_missing=not form.rendered_at.data,
        notify_on_decision=form.notify_decision.data,
        notify_on_reply=form.notify_replies.data,
        body_format=BodyFormat.MARKDOWN,
    )
    try:
        comment = comment_service.submit_comment(
            post,
            data,
            settings,
            user=None if guest else current_user,
            own_pending_ids=page.viewer_pending_ids(),
        )
    except comment_service.DuplicateComment as dup:
        flash("You already posted that comment.", "info")
        return redirect(_comment_url(post, dup.existing, settings))
    except comment_service.InvalidParent as error:
        form.parent_id.errors = [str(error)]
        form.parent_id.data = None
        return page.render_post(post, form, 422)
    except comment_service.CommentError as error:
        form.body.errors = [str(error)]
        return page.render_post(post, form, 422)
    notifications.comment_submitted(comment)
    # What the answer needs, read before the commit expires every loaded object (reading
    # them after it would load the comment, the post and the settings again).
    target = _comment_url(post, comment, settings)
    logged = (comment.id, post.id, comment.author_name, comment.ip, comment.status.value)
    message = _status_message(comment)
    db.session.commit()
    flush_mail_after_response()
    current_app.logger.info("comment %s on post %s by %s from %s: %s", *logged)
    comment_id, status = logged[0], logged[-1]
    if guest and status == "pending":
        session[page.PENDING_KEY] = [*session.get(page.PENDING_KEY, []), comment_id][-50:]
    flash(*message)
    response = redirect(target)
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
        value = page.serializer("comment-author").dumps(
            {
                "name": form.author_name.data,
                "email": form.author_email.data,
                "url": form.author_url.data or "",
            }
        )
        response.set_cookie(
            page.AUTHOR_COOKIE,
            value,
            max_age=365 * 24 * 3600,
            httponly=True,
            samesite="Lax",
            secure=current_app.config["HTTPS"],
        )
    else:
        response.delete_cookie(page.AUTHOR_COOKIE)


def _comment_url(post: Post, comment: Comment, settings: settings_service.Settings) -> str:
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
    return redirect(_comment_url(comment.post, comment, settings_service.load()))


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
    preview = None
    valid = form.validate_on_submit()
    if valid and "preview" in request.form:
        preview = markdown.render(form.body.data, comment.body_format, markdown.Kind.COMMENT)
    elif valid:
        try:
            comment_service.edit_comment(comment, form.body.data, current_user, settings)
        except comment_service.CommentError as error:
            form.body.errors = [str(error)]
        else:
            db.session.commit()
            flash("Your comment was updated.", "success")
            return redirect(_comment_url(comment.post, comment, settings))
    return render_template(
        "comments/edit.html",
        form=form,
        comment=comment,
        delete_form=ActionForm(),
        preview=preview,
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


@bp.route("/comments/<int:comment_id>/flag", methods=["GET", "POST"])
@login_required
def flag(comment_id: int):
    """Flag a comment others wrote; one flag per reader per comment."""
    comment = db.get_or_404(Comment, comment_id)
    if not comment.visible:
        abort(404)
    if not flags.can_flag(comment, current_user):
        abort(403, description="You cannot flag this comment.")
    back = url_for("comments.permalink", comment_id=comment.id)
    if flags.has_flagged(comment, current_user):
        flash("You already flagged this comment; the moderators will look at it.", "info")
        return redirect(back)
    form = FlagForm()
    if form.validate_on_submit():
        try:
            flags.flag_comment(
                comment,
                current_user,
                form.reason.data,
                form.note.data or "",
                settings_service.load(),
            )
        except flags.AlreadyFlagged:
            db.session.rollback()
            flash("You already flagged this comment; the moderators will look at it.", "info")
            return redirect(back)
        except flags.FlagError as error:
            abort(403, description=str(error))
        db.session.commit()
        flush_mail_after_response()
        flash("Thank you. The moderators will take a look.", "success")
        post = comment.post
        if comment.visible:
            return redirect(back)
        return redirect(url_for("posts.show", post_id=post.id, slug=post.slug))
    status = 422 if form.errors else 200
    return render_template("comments/flag.html", form=form, comment=comment), status


def _preview_limit() -> str:
    return current_app.config["RATELIMIT_PREVIEW"]


def _keep_session(response):
    # A live preview can still be on its way while the page posts the comment; a session
    # cookie sent back from here (Flask-Login marks every guest session as changed) could
    # arrive last and undo the comment's (its flash, its pending id). A preview changes
    # nothing, so it never writes the session.
    session.modified = False
    return response


@bp.post("/preview")
@limiter.limit(_preview_limit, key_func=lambda: f"ip:{request.remote_addr}")
def preview():
    """The live preview: a text rendered exactly as it would be stored; nothing is stored."""
    after_this_request(_keep_session)
    form = PreviewForm()
    if not form.validate_on_submit():
        abort(400)
    limit = settings_service.load().comment_max_length
    if form.kind.data == markdown.Kind.COMMENT and len(form.body.data or "") > limit:
        # Not rendered: the comment would be refused, and a long text costs the most.
        return render_template("comments/preview.html", too_long=limit)
    result = markdown.render(
        form.body.data or "", BodyFormat(form.body_format.data), markdown.Kind(form.kind.data)
    )
    return render_template("comments/preview.html", preview=result, kind=form.kind.data)


@bp.post("/posts/<int:post_id>/comments/preview")
@limiter.limit(
    _preview_limit, key_func=lambda: f"ip:{request.remote_addr}", on_breach=_rate_limited
)
def preview_comment(post_id: int):
    """Without JavaScript: the post page, the form filled in, the comment previewed above it."""
    post = db.get_or_404(Post, post_id)
    form = CommentForm() if current_user.is_authenticated else GuestCommentForm()
    form.validate_on_submit()
    if form.errors.get("csrf_token"):
        return page.render_post(post, form, 400)
    # Only the text matters here; the other fields are checked when the comment is sent.
    for name in list(form.errors):
        if name not in ("body", "parent_id"):
            form[name].errors = []
    form.form_errors = []
    result = markdown.render(form.body.data or "", BodyFormat.MARKDOWN, markdown.Kind.COMMENT)
    return page.render_post(post, form, 200, preview=result)
