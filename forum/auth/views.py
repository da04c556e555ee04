"""Accounts: signing up, in and out, profiles, passwords and reset links."""

from __future__ import annotations

import math
import time

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError

from forum.auth.forms import (
    ChangePasswordForm,
    LoginForm,
    RegisterForm,
    ResetPasswordForm,
    ResetRequestForm,
)
from forum.auth.users import bp as users_bp
from forum.extensions import db, driver_load, limiter, login_manager
from forum.forms import ActionForm
from forum.ids import parse_id
from forum.links import absolute_url_for
from forum.models import User
from forum.security import log_event
from forum.services import accounts, notifications
from forum.web import flush_mail_after_response, paginate_or_404

bp = Blueprint("auth", __name__, url_prefix="/auth")
bp.register_blueprint(users_bp)  # /auth/users/: the admins' page

RESET_SESSION_KEY = "reset_token"


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """The id is "<id>:<session token>": a new token ends every old session and cookie."""
    raw_id, _, token = user_id.partition(":")
    ident = parse_id(raw_id)
    if ident is None:
        return None
    user = db.session.identity_map.get(db.session.identity_key(User, ident))
    if user is None and request.method in ("GET", "HEAD") and not db.session().holds_connection():
        # A page read: on the driver, so a kept page opens no transaction at all
        # (extensions.driver_load). A write loads its user in its own transaction, which on
        # SQLite is the write lock's: nothing about the user changes before it commits.
        user = driver_load(User, ident)
    elif user is None:
        # A statement built once, not session.get: this runs on every signed-in request,
        # and a cached page has little else to do (bench/NOTES.md, "An honest yardstick").
        user = db.session.execute(_USER_BY_ID, {"id": ident}).scalar_one_or_none()
    if user is None or (user.session_token or "") != token:
        return None
    return user


_USER_BY_ID = select(User).where(User.id == bindparam("id"))


# Rate limits: attempts are counted only when a view sets g.count_attempt, so a
# member who signs in at the first try is never slowed down by it.


def _count_attempt(_response) -> bool:
    return bool(g.get("count_attempt"))


def _ip_key() -> str:
    return f"ip:{request.remote_addr}"


def _form_value(name: str) -> str:
    return request.form.get(name, "").strip().casefold()[:254]


def _login_target() -> User | None:
    """The account a sign-in names, by username or email (looked up once per request)."""
    if "login_target" not in g:
        g.login_target = accounts.find_user(_form_value("username"))
    return g.login_target


def _login_account_key() -> str:
    user = _login_target()
    return f"user:{user.id}" if user is not None else f"login:{_form_value('username')}"


def _limit(name: str):
    return lambda: current_app.config[name]


def _too_many(limit) -> object:
    """The 429 page: what was refused and when to try again."""
    retry = max(1, math.ceil(limit.reset_at - time.time()))
    if request.endpoint == "auth.login":
        # Unknown names are not logged: they are often a password typed in the wrong box.
        log_event("login throttled", _login_target() or "<unknown>")
        message = "Too many failed sign-in attempts. Please wait before trying again."
    else:
        message = "Too many attempts. Please wait before trying again."
    body = render_template("errors/429.html", message=message, retry_after=retry)
    response = make_response(body, 429)
    response.headers["Retry-After"] = str(retry)
    return response


def _limits(ip_limit: str, account_limit: str, field: str, account_key=None):
    """Two limits on a form's POST: per IP, and per account named in the form's `field`."""
    if account_key is None:

        def account_key() -> str:
            return f"{field}:{_form_value(field)}"

    by_ip = limiter.limit(
        _limit(ip_limit),
        key_func=_ip_key,
        methods=["POST"],
        deduct_when=_count_attempt,
        on_breach=_too_many,
    )
    by_account = limiter.limit(
        _limit(account_limit),
        key_func=account_key,
        methods=["POST"],
        deduct_when=_count_attempt,
        on_breach=_too_many,
        exempt_when=lambda: not _form_value(field),
    )
    return lambda view: by_ip(by_account(view))


# Signing in and out -------------------------------------------------------------------


def _sign_in(user: User, remember: bool) -> None:
    """A fresh session: nothing from before sign-in (or a planted cookie) carries over."""
    session.clear()
    login_user(user, remember=remember)


def _next_url() -> str:
    return accounts.safe_next(request.args.get("next"), url_for("posts.index"))


@bp.route("/login", methods=["GET", "POST"])
@_limits("RATELIMIT_LOGIN", "RATELIMIT_LOGIN_ACCOUNT", "username", _login_account_key)
def login():
    """Sign in by username or email."""
    if current_user.is_authenticated and request.method == "GET":
        return redirect(_next_url())
    form = LoginForm()
    if form.validate_on_submit():
        user = accounts.authenticate(form.username.data, form.password.data)
        if user is not None:
            _sign_in(user, remember=form.remember.data)
            db.session.commit()
            log_event("login", user, remember=form.remember.data, banned=user.is_banned)
            if user.is_banned:
                flash("Your account is suspended: you can read, but not write.", "warning")
            return redirect(_next_url())
        g.count_attempt = True
        log_event("login failed", _login_target() or "<unknown>")
        form.password.errors = ["Wrong username or password."]
    return render_template("auth/login.html", form=form)


@bp.post("/logout")
def logout():
    """Sign out here and everywhere else: the remember cookie stops working too."""
    if not ActionForm().validate_on_submit():
        abort(400)
    if current_user.is_authenticated:
        user = current_user._get_current_object()
        accounts.end_sessions(user)
        db.session.commit()
        log_event("logout", user)
    session.clear()
    logout_user()  # after clear(): it flags the remember cookie for deletion
    flash("You are signed out.", "info")
    return redirect(url_for("posts.index"))


@bp.route("/register", methods=["GET", "POST"])
@_limits("RATELIMIT_REGISTER", "RATELIMIT_REGISTER", "username")
def register():
    """Sign up as a member, then arrive signed in."""
    if current_user.is_authenticated:
        return redirect(url_for("posts.index"))
    form = RegisterForm()
    if form.validate_on_submit():
        g.count_attempt = True
        try:
            user = accounts.register(form.username.data, form.email.data, form.password.data)
            db.session.commit()
        except accounts.AccountError as error:
            form[error.field or "username"].errors.append(str(error))
        except IntegrityError:  # the same name, registered a moment ago by another request
            db.session.rollback()
            form.username.errors.append("That username or email was just registered.")
        else:
            _sign_in(user, remember=False)
            log_event("register", user)
            flash(f"Welcome, {user.username}! You are signed in.", "success")
            return redirect(_next_url())
    return render_template("auth/register.html", form=form), 422 if form.errors else 200


# Profile and password -----------------------------------------------------------------


@bp.get("/profile")
@login_required
def my_profile():
    """The signed-in member's own profile."""
    return redirect(url_for("auth.profile", username=current_user.username))


@bp.get("/profile/<username>")
def profile(username: str):
    """A member's public page: their comments that readers can see."""
    user = db.first_or_404(select(User).where(User.username_key == username.casefold()))
    pagination = paginate_or_404(
        accounts.approved_comments(user), current_app.config["PROFILE_COMMENTS_PER_PAGE"]
    )
    return render_template("auth/profile.html", user=user, pagination=pagination)


def _user_key() -> str:
    return f"user:{current_user.id}" if current_user.is_authenticated else ""


@bp.route("/password", methods=["GET", "POST"])
@limiter.limit(
    _limit("RATELIMIT_LOGIN_ACCOUNT"),
    key_func=_user_key,
    methods=["POST"],
    deduct_when=_count_attempt,
    on_breach=_too_many,
    exempt_when=lambda: not current_user.is_authenticated,
)
@login_required
def change_password():
    """Change your password; every other session and remember cookie ends."""
    form = ChangePasswordForm()
    if form.validate_on_submit():
        user = current_user._get_current_object()
        try:
            accounts.change_password(user, form.current_password.data, form.password.data)
        except accounts.AccountError as error:
            g.count_attempt = error.field == "current_password"
            form[error.field or "password"].errors.append(str(error))
        else:
            db.session.commit()
            remembered = current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token")
            _sign_in(user, remember=remembered in request.cookies)
            log_event("password changed", user)
            flash("Your password was changed. Other sessions are signed out.", "success")
            return redirect(url_for("auth.profile", username=user.username))
    return render_template("auth/password.html", form=form), 422 if form.errors else 200


# Password reset -------------------------------------------------------------------------


@bp.route("/reset", methods=["GET", "POST"])
@_limits("RATELIMIT_RESET", "RATELIMIT_RESET", "email")
def reset_request():
    """Ask for a reset link; the answer is the same whether or not the account exists."""
    form = ResetRequestForm()
    if form.validate_on_submit():
        g.count_attempt = True
        user = accounts.find_user(form.email.data)
        if user is not None:
            token = accounts.reset_token(user, current_app.config["SECRET_KEY"])
            notifications.password_reset(user, absolute_url_for("auth.reset_link", token=token))
            db.session.commit()
            flush_mail_after_response()
            log_event("password reset requested", user)
        else:
            log_event("password reset requested", "<unknown>")
        flash(
            "If that account exists, a link to choose a new password is on its way to its "
            "email address. It works once, within an hour.",
            "info",
        )
        return redirect(url_for("auth.login"))
    return render_template("auth/reset_request.html", form=form)


@bp.get("/reset/<token>")
def reset_link(token: str):
    """The emailed link: keep its token in the session, out of the address bar and Referer."""
    session[RESET_SESSION_KEY] = token[:500]
    return redirect(url_for("auth.reset_password"))


@bp.route("/new-password", methods=["GET", "POST"])
def reset_password():
    """Choose a new password with a valid reset link."""
    token = session.get(RESET_SESSION_KEY)
    user = None
    if isinstance(token, str):
        user = accounts.user_for_reset_token(
            token,
            current_app.config["SECRET_KEY"],
            current_app.config["PASSWORD_RESET_MAX_AGE_SECONDS"],
        )
    if user is None:
        session.pop(RESET_SESSION_KEY, None)
        flash("That link is invalid, expired or already used. Ask for a new one.", "error")
        return redirect(url_for("auth.reset_request"))
    form = ResetPasswordForm()
    if form.validate_on_submit():
        try:
            accounts.reset_password(user, form.password.data)
        except accounts.AccountError as error:
            form.password.errors.append(str(error))
        else:
            db.session.commit()
            session.clear()
            logout_user()
            log_event("password reset", user)
            flash("Your password was changed. Sign in with it.", "success")
            return redirect(url_for("auth.login"))
    return render_template("auth/reset_password.html", form=form, user=user), (
        422 if form.errors else 200
    )
