"""Accounts: registering, signing in, passwords, reset links and roles (bans: bans.py)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from itsdangerous import BadData, URLSafeTimedSerializer
from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import selectinload
from werkzeug.security import check_password_hash, generate_password_hash

from forum.extensions import db
from forum.models import Comment, Role, User, utcnow
from forum.services import audit, common_passwords

# Checked against when the user is unknown, so both answers take the same time.
_DUMMY_HASH = generate_password_hash("not a real password")
# "scrypt:32768:8:1": werkzeug's current default method and cost; older hashes are redone.
CURRENT_HASH_METHOD = _DUMMY_HASH.split("$", 1)[0]
RESET_SALT = "password-reset"

USERNAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
MIN_PASSWORD = 10


class AccountError(Exception):
    """An account cannot be created or changed; the message says why, `field` where."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


# Looking up and creating ---------------------------------------------------------


def find_user(login: str) -> User | None:
    """By username or email, case-insensitively."""
    key = login.strip().casefold()
    if not key:
        return None
    return db.session.scalars(
        select(User).where(or_(User.username_key == key, User.email_key == key))
    ).first()


def create_user(username: str, email: str, password: str | None, role: Role = Role.MEMBER) -> User:
    """A new account; username and email unique case-insensitively."""
    if find_user(username) is not None:
        raise AccountError("That username is taken.", "username")
    if find_user(email) is not None:
        raise AccountError("That email is already registered.", "email")
    user = User(username=username, email=email, role=role, session_token=new_session_token())
    user.password_hash = generate_password_hash(password) if password else None
    db.session.add(user)
    return user


def register(username: str, email: str, password: str) -> User:
    """A member signing up: the username and password rules, then create_user."""
    for message in username_problems(username):
        raise AccountError(message, "username")
    for message in password_problems(password, username, email):
        raise AccountError(message, "password")
    return create_user(username, email, password)


# Passwords ------------------------------------------------------------------------


def authenticate(login: str, password: str) -> User | None:
    """The user if the password is right; same work whether or not the user exists.

    A hash made with an older method or cost is redone with the current default.
    """
    user = find_user(login)
    if user is None or not user.password_hash:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(user.password_hash, password):
        return None
    if needs_rehash(user.password_hash):
        user.password_hash = generate_password_hash(password)
    user.last_login_at = utcnow()
    return user


def needs_rehash(password_hash: str) -> bool:
    return password_hash.split("$", 1)[0] != CURRENT_HASH_METHOD


def new_session_token() -> str:
    return secrets.token_urlsafe(24)


def end_sessions(user: User) -> None:
    """Sign the user out everywhere: sessions and remember cookies carry the old token."""
    user.session_token = new_session_token()


def set_password(user: User, password: str) -> None:
    """Store a new password (checked by the caller) and end every other session."""
    user.password_hash = generate_password_hash(password)
    end_sessions(user)


def change_password(user: User, current: str, new: str) -> None:
    """A signed-in member changes their password; the current one is required."""
    if not user.password_hash or not check_password_hash(user.password_hash, current):
        raise AccountError("That is not your current password.", "current_password")
    for message in password_problems(new, user.username, user.email):
        raise AccountError(message, "password")
    set_password(user, new)


def reset_password(user: User, new: str) -> None:
    """Set a password from a reset link (which this makes useless)."""
    for message in password_problems(new, user.username, user.email):
        raise AccountError(message, "password")
    set_password(user, new)


def username_problems(username: str) -> list[str]:
    if not 3 <= len(username) <= 30 or not set(username) <= USERNAME_CHARS:
        return ["Usernames are 3-30 letters, digits, _ or -."]
    return []


def password_problems(password: str, username: str = "", email: str = "") -> list[str]:
    """Why a new password is refused: too short, too common, or the account's own name."""
    if len(password) < MIN_PASSWORD:
        return [f"Passwords need at least {MIN_PASSWORD} characters."]
    if common_passwords.is_monotonous(password) or common_passwords.is_common(password):
        return ["That password is one of the most common; choose another."]
    own = {username.casefold(), email.strip().casefold(), email.partition("@")[0].casefold()}
    core = common_passwords.core_word(password)
    if {password.casefold(), core} & (own - {""}):
        return ["Your password must not be your username or email."]
    return []


# Reset links ----------------------------------------------------------------------


def _reset_serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=RESET_SALT)


def _reset_fingerprint(user: User) -> str:
    """Changes when the password (or session token) does: a used link stops working."""
    state = f"{user.password_hash or ''}|{user.session_token or ''}"
    return hashlib.sha256(state.encode()).hexdigest()[:32]


def reset_token(user: User, secret_key: str) -> str:
    """A signed link token for this user, valid until used or expired."""
    return _reset_serializer(secret_key).dumps({"u": user.id, "f": _reset_fingerprint(user)})


def user_for_reset_token(token: str, secret_key: str, max_age_seconds: int) -> User | None:
    """The user a reset token was made for; None when forged, expired or already used."""
    try:
        data = _reset_serializer(secret_key).loads(token, max_age=max_age_seconds)
    except BadData:
        return None
    if not isinstance(data, dict):
        return None
    user_id, fingerprint = data.get("u"), data.get("f")
    if (
        not isinstance(user_id, int)
        or isinstance(user_id, bool)
        or not isinstance(fingerprint, str)
    ):
        return None
    user = db.session.get(User, user_id)
    if user is None or not hmac.compare_digest(_reset_fingerprint(user), fingerprint):
        return None
    return user


# Redirects ------------------------------------------------------------------------


def safe_next(target: str | None, default: str = "/") -> str:
    """Only a path on this site: //evil, /\\evil, https:evil and javascript: fall back."""
    if not target:
        return default
    # Printable ASCII only: browsers strip or reinterpret tabs, newlines, backslashes.
    if any(not 0x20 < ord(ch) < 0x7F or ch == "\\" for ch in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    return target


# Roles and bans -------------------------------------------------------------------


def active_admin_count() -> int:
    return (
        db.session.scalar(
            select(func.count(User.id)).where(User.role == Role.ADMIN, User.is_banned.is_(False))
        )
        or 0
    )


def change_role(target: User, role: Role, by: User) -> Role:
    """An admin gives `target` a role; returns the old one. The last admin stays admin."""
    old = target.role
    if role is old:
        return old
    if target.is_banned and role is not Role.MEMBER:
        raise AccountError(f"Unban {target.username} before giving them a role.")
    if old is Role.ADMIN and active_admin_count() <= 1:
        raise AccountError("The last admin cannot be demoted; make someone else admin first.")
    target.role = role
    note = f"{target.username}: {old.value} -> {role.value}"
    audit.log(None, by, "role", None, None, audit.new_batch(), note, data={"user_id": target.id})
    return old


# Pages ----------------------------------------------------------------------------


def users_listing(query: str = "") -> Select:
    """Users for the admin page, newest first; `query` matches username or email."""
    stmt = select(User).order_by(User.created_at.desc(), User.id.desc())
    key = query.strip().casefold()
    if key:
        pattern = "%" + key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = stmt.where(
            or_(
                User.username_key.like(pattern, escape="\\"),
                User.email_key.like(pattern, escape="\\"),
            )
        )
    return stmt


def approved_comments(user: User) -> Select:
    """A member's comments readers can see, newest first, with their posts."""
    return (
        select(Comment)
        .where(Comment.user_id == user.id, Comment.visible.is_(True))
        .options(selectinload(Comment.post))
        .order_by(Comment.created_at.desc(), Comment.id.desc())
    )
