"""Defaults for every setting; instance/config.py and FORUM_* variables override them."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from flask import Flask

from forum.links import DEVELOPMENT_BASE_URL, normalize_base_url, trusted_hosts

DEFAULTS: dict[str, Any] = {
    "FORUM_NAME": "Forum",
    # Database: FORUM_DATABASE_URL; SQLite under instance/ when unset.
    "DATABASE_URL": None,
    "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
    "SQLITE_BUSY_TIMEOUT_MS": 15000,
    # Seconds between the checkpoints a thread of each process runs (forum/sqlite_checkpoint.py);
    # 0: SQLite's own, in the COMMIT of whichever writer crosses 1,000 pages of log.
    "SQLITE_CHECKPOINT_SECONDS": 1.0,
    "SECRET_KEY": None,
    "MAX_CONTENT_LENGTH": 256 * 1024,
    "HTTPS": False,
    "PROXY_FIX": False,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "REMEMBER_COOKIE_HTTPONLY": True,
    "REMEMBER_COOKIE_SAMESITE": "Lax",
    "WTF_CSRF_TIME_LIMIT": None,
    "POSTS_PER_PAGE": 20,
    "POST_ROLES": ["moderator", "admin"],
    # Comments
    "COMMENT_MAX_LENGTH": 10_000,
    "COMMENT_MAX_DEPTH": 5,
    "COMMENT_THREADS_PER_PAGE": 50,
    "COMMENT_EDIT_WINDOW_MINUTES": 10,
    "COMMENT_CLOSE_AFTER_DAYS": 0,
    "COMMENT_DUPLICATE_WINDOW_SECONDS": 60,
    # Rate limits (Flask-Limiter)
    "RATELIMIT_ENABLED": True,
    "RATELIMIT_STORAGE_URI": "memory://",
    "RATELIMIT_HEADERS_ENABLED": True,
    "RATELIMIT_COMMENT": "5 per minute;30 per hour",
    # Live previews are sent as people type (debounced), so the allowance is larger.
    "RATELIMIT_PREVIEW": "60 per minute;600 per hour",
    "RATELIMIT_LOGIN": "10 per minute;50 per hour",
    "RATELIMIT_REGISTER": "5 per hour",  # sign-ups, per IP and per username asked for
    # Sign-in limits count failures only: RATELIMIT_LOGIN per IP, this one per account
    # (whatever the IP), so guessing one member's password slows down from anywhere.
    "RATELIMIT_LOGIN_ACCOUNT": "5 per minute;20 per hour",
    "RATELIMIT_RESET": "5 per hour",  # password-reset mails, per IP and per address
    # Accounts
    "PASSWORD_RESET_MAX_AGE_SECONDS": 3600,  # an emailed reset link expires after this
    "REMEMBER_COOKIE_DURATION": 30 * 24 * 3600,  # "remember me" lasts this many seconds
    "USERS_PER_PAGE": 50,  # the admins' user list
    "PROFILE_COMMENTS_PER_PAGE": 20,
    "LOG_LEVEL": "INFO",  # sign-ins, role changes and bans are logged at INFO
    # Moderation: seeds for the settings an admin changes on /moderation/settings.
    "MODERATION_MODE": "first-time",  # all | first-time | off
    "MODERATION_MAX_LINKS": 2,  # hold at this many links or more (0: never)
    "MODERATION_MIN_SUBMIT_SECONDS": 3,  # a form sent back faster than this is spam
    "MODERATION_FLAGS_TO_REQUEUE": 3,  # reader flags that send a comment back to the queue
    "MODERATION_DIGEST_MINUTES": 15,  # at most one held-comments digest mail this often
    # The dashboard: items per page (a ?per_page= up to the max) and the largest selection.
    "MODERATION_PER_PAGE": 25,
    "MODERATION_MAX_PER_PAGE": 200,
    "MODERATION_BULK_MAX": 500,
    # Preset reasons a moderator can give with a decision (mailed to opted-in authors).
    "MODERATION_DECISION_REASONS": [
        "Off-topic",
        "Personal attack or harassment",
        "Advertising or self-promotion",
        "Duplicate of another comment",
        "Please keep it civil",
    ],
    # One-click links in mails to moderators stay valid this long.
    "MODERATION_LINK_MAX_AGE_DAYS": 14,
    # The spam filter's size bound: beyond it the rarest, longest-unseen features go.
    "SPAM_MAX_FEATURES": 200_000,
    # The forum's public address: every absolute link (mail, feeds, canonical links) is
    # built from it, never from the request's Host. Unset, it is the development address
    # (`make serve` refuses to start without it).
    "BASE_URL": None,
    # Hosts a request may name (Flask's TRUSTED_HOSTS; any other Host answers 400): a list,
    # or a comma-separated string. Unset: the base URL's host, plus localhost, 127.0.0.1
    # and ::1 when the base URL is itself local.
    "TRUSTED_HOSTS": None,
    # Rendered pages kept between requests (forum/pagecache.py): in this process within
    # PAGE_CACHE_BYTES (0 turns the cache off), or in Redis for every worker when CACHE_URL
    # is a redis:// URL (entries expire after PAGE_CACHE_TTL seconds; bound Redis itself
    # with maxmemory and an LRU policy).
    "CACHE_URL": None,
    "PAGE_CACHE_BYTES": 16 * 1024 * 1024,
    "PAGE_CACHE_TTL": 24 * 3600,
    # The dashboard's rendered queue items kept in each worker (forum/moderation/
    # fragments.py), least recently used first out; 0 renders every item every time.
    "MODERATION_ITEM_CACHE_BYTES": 4 * 1024 * 1024,
    # Mail (Flask-Mail)
    "MAIL_SERVER": "localhost",
    "MAIL_PORT": 25,
    "MAIL_USE_TLS": False,
    "MAIL_USE_SSL": False,
    "MAIL_USERNAME": None,
    "MAIL_PASSWORD": None,
    "MAIL_DEFAULT_SENDER": "forum@localhost",
    "MAIL_SUPPRESS_SEND": False,
    # The outbox: failed sends are retried with doubling delays up to MAIL_MAX_ATTEMPTS;
    # mails about a decision wait MAIL_UNDO_GRACE_SECONDS so an undo can still cancel them.
    "MAIL_MAX_ATTEMPTS": 8,
    "MAIL_RETRY_BASE_SECONDS": 60,
    "MAIL_UNDO_GRACE_SECONDS": 60,
    # Send what is due right after a response (best effort; `forum send-mail` is the cron).
    "MAIL_FLUSH_AFTER_RESPONSE": True,
}


def finish_config(app: Flask) -> None:
    """Resolve settings that depend on others once every source is loaded."""
    app.config["SQLALCHEMY_DATABASE_URI"] = database_uri(app)
    configured = app.config.get("BASE_URL")
    app.config["BASE_URL_CONFIGURED"] = bool(configured)
    app.config["BASE_URL"] = normalize_base_url(configured or DEVELOPMENT_BASE_URL)
    app.config["TRUSTED_HOSTS"] = trusted_hosts(
        app.config["BASE_URL"], app.config.get("TRUSTED_HOSTS")
    )
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = instance_secret(Path(app.instance_path))
    if app.config["HTTPS"]:
        app.config["SESSION_COOKIE_SECURE"] = True
        app.config["REMEMBER_COOKIE_SECURE"] = True
        app.config["PREFERRED_URL_SCHEME"] = "https"


def database_uri(app: Flask) -> str:
    url = app.config.get("DATABASE_URL") or app.config.get("SQLALCHEMY_DATABASE_URI")
    if not url:
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{Path(app.instance_path) / 'forum.sqlite3'}"
    # Accept the usual spellings and use psycopg 3 for PostgreSQL.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def instance_secret(instance: Path) -> str:
    """Generate the secret key once into instance/secret_key and reuse it."""
    path = instance / "secret_key"
    if path.exists():
        return path.read_text().strip()
    instance.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    try:
        with open(path, "x") as fh:  # another worker may have written it first
            fh.write(key)
    except FileExistsError:
        return path.read_text().strip()
    path.chmod(0o600)
    return key
