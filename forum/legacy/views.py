"""Old addresses of imported posts: 301 to where the post and its comments are now.

A WordPress post was at `/2011/07/some-slug/` (or `/some-slug/`, or `/?p=123`), its
comments at `#comment-N` with N the old comment id, and WordPress's reply links at
`?replytocom=N`. A fragment never reaches the server, so the redirect marks the post
page with `?wp=1`; on such a page static/js/legacy.js sends `#comment-N` to
`old_comment`, which knows the comment's new id. Every id from the address is checked
strictly (forum.ids.parse_id), anything else is a 404.
"""

from __future__ import annotations

from flask import Blueprint, abort, redirect, request, url_for
from werkzeug.exceptions import NotFound

from forum.extensions import db
from forum.ids import MAX_BIGINT, parse_id
from forum.models import Post
from forum.services import legacy

bp = Blueprint("legacy", __name__)


@bp.before_app_request
def old_address():
    """`/?p=123` (WordPress's plain permalink, and every post's guid), and any path no
    page answers: an imported post's old permalink, or the 404 it would have been.

    Only paths that matched no route come here, so a POST-only page still says 405.
    """
    if request.method not in ("GET", "HEAD"):
        return None
    if request.path == "/" and "p" in request.args:
        wp_id = parse_id(request.args.get("p"), high=MAX_BIGINT)
        post = legacy.post_for_wp_id(wp_id) if wp_id is not None else None
        if post is None:
            abort(404)
        return _to_post(post)
    if type(request.routing_exception) is not NotFound:
        return None
    path, feed = legacy.split_old_path(request.path)
    post = legacy.post_for_old_path(path)
    if post is None:
        return None  # the 404 it was
    if feed:
        return redirect(url_for("feeds.post_comments", post_id=post.id), 301)
    return _to_post(post)


@bp.get("/from-wordpress/<int:post_id>/comments/<comment_id>")
def old_comment(post_id: int, comment_id: str):
    """Where an old `#comment-N` link of this post points now."""
    comment_key = parse_id(comment_id, high=MAX_BIGINT)
    if comment_key is None:
        abort(404)
    post = db.get_or_404(Post, post_id)
    comment = legacy.comment_for_wp_id(post.id, comment_key)
    if comment is None or not comment.visible:
        # Gone, held or never imported: the discussion is the best answer.
        return redirect(
            url_for("posts.show", post_id=post.id, slug=post.slug, _anchor="comments"), 302
        )
    return redirect(url_for("comments.permalink", comment_id=comment.id), 301)


def _to_post(post: Post):
    raw = request.args.get("replytocom")
    if raw is not None:
        wp_comment = parse_id(raw, high=MAX_BIGINT)
        if wp_comment is None:
            abort(404)
        comment = legacy.comment_for_wp_id(post.id, wp_comment)
        if comment is not None and comment.visible:
            return redirect(
                url_for(
                    "posts.show",
                    post_id=post.id,
                    slug=post.slug,
                    reply_to=comment.id,
                    _anchor="respond",
                ),
                301,
            )
    # No fragment in the address: the browser keeps the old one (#comment-N) for the script.
    return redirect(url_for("posts.show", post_id=post.id, slug=post.slug, wp=1), 301)
