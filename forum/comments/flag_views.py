"""Readers flag a comment for the moderators: GET shows the form, POST records the flag."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask_login import current_user, login_required
from wtforms import RadioField, SelectChoice, TextAreaField
from wtforms.validators import InputRequired, Length

from forum.comments.views import bp
from forum.extensions import db
from forum.forms import Form
from forum.models import Comment
from forum.services import flags, notifications
from forum.services import settings as settings_service


class FlagForm(Form):
    reason = RadioField(
        "What is wrong with it?",
        choices=[SelectChoice(k, v) for k, v in flags.REASONS.items()],
        validators=[InputRequired()],
    )
    note = TextAreaField("Anything the moderators should know (optional)", [Length(max=500)])


@bp.route("/comments/<int:comment_id>/flag", methods=["GET", "POST"])
@login_required
def flag(comment_id: int):
    """Flag a comment others wrote; one flag per reader per comment."""
    if comment_id > 2**31 - 1:
        abort(404)
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
        notifications.flush_after_response()
        flash("Thank you. The moderators will take a look.", "success")
        post = comment.post
        if comment.visible:
            return redirect(back)
        return redirect(url_for("posts.show", post_id=post.id, slug=post.slug))
    status = 422 if form.errors else 200
    return render_template("comments/flag.html", form=form, comment=comment), status
