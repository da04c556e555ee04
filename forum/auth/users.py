"""The admins' page: every user, their role, bans. Mounted at /auth/users/."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from forum.auth.forms import RoleForm
from forum.extensions import db, login_manager
from forum.forms import ActionForm
from forum.models import Role, User
from forum.security import log_event
from forum.services import accounts, bans
from forum.web import paginate_or_404

bp = Blueprint("users", __name__, url_prefix="/users")


@bp.before_request
def require_admin():
    """Every route here: admins only."""
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if not current_user.is_admin:
        abort(403)
    return None


@bp.get("/")
def index():
    """Users newest first, with a search by username or email."""
    query = request.args.get("q", "")[:254]
    pagination = paginate_or_404(
        accounts.users_listing(query), current_app.config["USERS_PER_PAGE"]
    )
    return render_template(
        "auth/users.html",
        pagination=pagination,
        query=query,
        roles=list(Role),
        action_form=ActionForm(formdata=None),
    )


def _back():
    return redirect(accounts.safe_next(request.form.get("next"), url_for("auth.users.index")))


@bp.post("/<int:user_id>/role")
def role(user_id: int):
    """Give a user a role; the last admin cannot be demoted."""
    target = db.get_or_404(User, user_id)
    form = RoleForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        old = accounts.change_role(target, Role(form.role.data), by=current_user)
    except accounts.AccountError as error:
        flash(str(error), "error")
        return _back()
    db.session.commit()
    if old is not target.role:
        log_event("role changed", current_user, target=target.username, old=old, new=target.role)
        flash(f"{target.username} is now {target.role.value}.", "success")
    return _back()


@bp.post("/<int:user_id>/ban")
def ban(user_id: int):
    """Ban a member: they can still sign in and read."""
    target = db.get_or_404(User, user_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        # Their pending comments go to spam with the ban, as from the queue.
        outcome = bans.ban_member(target, by=current_user, sweep=True)
    except bans.BanError as error:
        flash(str(error), "error")
        return _back()
    db.session.commit()
    log_event("ban", current_user, target=target.username)
    swept = len(outcome.changed)
    flash(
        f"{target.username} is banned"
        + (
            f"; {swept} pending comment{'' if swept == 1 else 's'} marked as spam."
            if swept
            else "."
        ),
        "success",
    )
    return _back()


@bp.post("/<int:user_id>/unban")
def unban(user_id: int):
    """Lift a member's ban."""
    target = db.get_or_404(User, user_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    bans.unban_member(target, by=current_user)
    db.session.commit()
    log_event("unban", current_user, target=target.username)
    flash(f"{target.username} may write again.", "success")
    return _back()
