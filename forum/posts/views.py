"""The front page, tag pages, post pages and writing posts."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required
from sqlalchemy import select

from forum import pagecache
from forum.extensions import db
from forum.forms import ActionForm
from forum.ids import id_arg
from forum.models import BodyFormat, Post, Tag
from forum.posts.forms import PostForm
from forum.posts.page import show_post
from forum.services import markdown, sanitize, versions
from forum.services import posts as post_service
from forum.web import page_arg, paginate_or_404

bp = Blueprint("posts", __name__)


@bp.get("/")
def index():
    """Posts newest first with their response counts."""
    return _cached_list(None)


@bp.get("/tags/<slug>")
def tag(slug: str):
    """Posts with one tag."""
    return _cached_list(slug)


def _cached_list(slug: str | None):
    """Anonymous readers share one rendering per site version; each member has one."""
    variant = pagecache.viewer_variant(frozenset(), {})
    if variant is None:
        return _post_list(slug)
    seen = versions.current()
    key = f"list:{seen.site_key}:{slug or ''}:{page_arg()}:{variant}"
    pc = pagecache.cache()
    entry = pc.backend.get(key)
    if entry is None:
        with pagecache.markers():
            entry = pc.entry(_post_list(slug).encode())
        pc.backend.set(key, entry)
    anonymous = variant == "a"
    return pagecache.respond(
        entry,
        key,
        seen.site_changed_at,
        conditional=anonymous,
        shared=anonymous,
        cache_control="no-cache" if anonymous else None,
    )


def _post_list(slug: str | None) -> str:
    tag = db.first_or_404(select(Tag).where(Tag.slug == slug)) if slug is not None else None
    pagination = paginate_or_404(
        post_service.recent_posts(tag), current_app.config["POSTS_PER_PAGE"]
    )
    ids = [p.id for p in pagination.items]
    return render_template(
        "posts/index.html",
        pagination=pagination,
        counts=post_service.response_counts(ids),
        latest=post_service.latest_responses(ids),
        excerpt=sanitize.excerpt,
        tag=tag,
    )


@bp.get("/posts/<int:post_id>")
@bp.get("/posts/<int:post_id>/<slug>")
def show(post_id: int, slug: str | None = None):
    """A post and one page of its discussion."""
    return show_post(post_id, slug, page_arg(), id_arg("reply_to"))


@bp.route("/posts/new", methods=["GET", "POST"])
@login_required
def new():
    """Members with a posting role write a post."""
    allowed = current_app.config["POST_ROLES"]
    if not post_service.can_write_posts(current_user, allowed):
        abort(403)
    form = PostForm()
    preview = None
    valid = form.validate_on_submit()
    if valid and "preview" in request.form:
        preview = markdown.render(form.body.data, BodyFormat.MARKDOWN, markdown.Kind.POST)
    elif valid:
        try:
            post = post_service.create_post(
                current_user,
                form.title.data,
                form.body.data,
                post_service.parse_tags(form.tags.data or ""),
                allowed,
                BodyFormat.MARKDOWN,
            )
        except post_service.EmptyPost as error:
            form[error.field].errors.append(str(error))
        else:
            post.comments_open = form.comments_open.data
            db.session.commit()
            flash("Your post is published.", "success")
            return redirect(url_for("posts.show", post_id=post.id, slug=post.slug))
    return render_template("posts/new.html", form=form, preview=preview), (
        422 if form.errors else 200
    )


@bp.get("/help/formatting")
def markdown_help():
    """How to format a comment or post: each example shown with what it becomes."""
    examples = [
        (source, markdown.render(source, BodyFormat.MARKDOWN, markdown.Kind.COMMENT).html)
        for source in markdown.HELP_EXAMPLES
    ]
    return render_template("posts/markdown_help.html", examples=examples)


@bp.post("/posts/<int:post_id>/comments-open")
@login_required
def toggle_comments(post_id: int):
    """The post's author or a moderator opens or closes its comments."""
    post = db.get_or_404(Post, post_id)
    if not (
        current_user.is_moderator
        or (post.author_id == current_user.id and not current_user.is_banned)
    ):
        abort(403)
    if not ActionForm().validate_on_submit():
        abort(400)
    post.comments_open = not post.comments_open
    db.session.commit()
    flash("Comments are now open." if post.comments_open else "Comments are now closed.", "success")
    return redirect(url_for("posts.show", post_id=post.id, slug=post.slug))
