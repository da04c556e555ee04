"""Rendered pages reused between requests, and conditional GET (ETag, Last-Modified, 304).

A page is rendered once per (versions, page, kind of reader) and kept as bytes (forum/
cache.py). What differs per request is never cached: the CSRF token and the comment form's
signed timestamp are rendered as unguessable markers (derived from SECRET_KEY, so no
comment can contain one) and filled in for each request, so the token is the reader's
own and the timestamp the moment the page was served, as if rendered now. Who is reading
is part of the key: anonymous readers share one page; a guest with remembered details or
own pending comments, and each member, get their own; moderators (the queue badge) and
pages carrying a flash message are always rendered.

Conditional GET is for pages that do not depend on who reads them beyond the key:
anonymous and guest readers, and the feeds. The ETag is made of the key and, for a page
carrying a CSRF token, of the session's CSRF secret: a 304 tells a browser to reuse a page
whose token still matches its session. Last-Modified is sent only once its second has
passed (so no later change can share it) and If-Modified-Since is honoured only for pages
without a token (If-None-Match wins when both are sent).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, Response, current_app, g, request, session
from flask_login import current_user
from flask_wtf.csrf import generate_csrf
from itsdangerous import URLSafeSerializer

from forum.cache import Backend, Entry, make_backend

CSRF = b"c"
STAMP = b"t"
CSRF_FIELD = "csrf_token"
STAMP_SALT = "comment-form"


@dataclass(frozen=True)
class PageCache:
    backend: Backend
    mark: str

    @property
    def csrf_mark(self) -> str:
        return f"{self.mark}c"

    @property
    def stamp_mark(self) -> str:
        return f"{self.mark}t"

    def entry(self, body: bytes, **meta) -> Entry:
        """The rendered page cut at its markers."""
        parts = re.split(rb"%s([ct])" % self.mark.encode(), body)
        return Entry(tuple(parts), meta)


def init_app(app: Flask) -> None:
    backend = make_backend(
        app.config["CACHE_URL"],
        app.config["PAGE_CACHE_BYTES"],
        app.config["PAGE_CACHE_TTL"],
        prefix=fingerprint(app) if app.config["CACHE_URL"] else "",
    )
    secret = str(app.config["SECRET_KEY"]).encode()
    mark = "pc" + hmac.new(secret, b"page-cache-marker", hashlib.sha256).hexdigest()[:24]
    app.extensions["page_cache"] = PageCache(backend, mark)


def fingerprint(app: Flask) -> str:
    """This deployment: its code, templates and plain settings (the database's address and
    the secret key among them). Redis keys start with it, so pages rendered by another
    release, configuration or forum sharing the server are never served."""
    digest = hashlib.sha256(_code_digest(app.root_path).encode())
    plain = (str, int, float, bool, type(None))
    settings = sorted((k, v) for k, v in app.config.items() if isinstance(v, plain))
    digest.update(json.dumps(settings, default=str).encode())
    return digest.hexdigest()[:16]


def cache() -> PageCache:
    return current_app.extensions["page_cache"]


def viewer_variant(
    pending: frozenset[int], author: dict[str, str], members: bool = True
) -> str | None:
    """The kind of reader, as part of a key; None: render this page for this reader only.
    `pending` and `author`: a guest's own pending comments and remembered details."""
    if "_flashes" in session:
        return None
    if current_user.is_authenticated:
        if not members or current_user.is_moderator:
            return None
        who = f"{current_user.username}|{current_user.role}|{current_user.is_banned}"
        return f"m{current_user.id}.{_digest(who)}"
    if not pending and not author:
        return "a"
    if not members:
        return None
    return "g" + _digest(f"{sorted(pending)}|{sorted(author.items())}")


@contextlib.contextmanager
def markers() -> Iterator[PageCache]:
    """While rendering a page to keep: the CSRF token renders as its marker."""
    pc = cache()
    saved = g.pop(CSRF_FIELD, None)
    setattr(g, CSRF_FIELD, pc.csrf_mark)
    try:
        yield pc
    finally:
        g.pop(CSRF_FIELD, None)
        if saved is not None:
            setattr(g, CSRF_FIELD, saved)


def form_stamp() -> str:
    """The comment form's signed timestamp (posts/page.py reads it back)."""
    return _stamp_serializer(current_app.config["SECRET_KEY"]).dumps(time.time())


@functools.lru_cache(maxsize=8)
def _stamp_serializer(secret_key: str | bytes) -> URLSafeSerializer:
    """Made once per key: making one probes its JSON serializer with a dump."""
    return URLSafeSerializer(secret_key, salt=STAMP_SALT)


def respond(
    entry: Entry,
    key: str,
    changed_at: float,
    conditional: bool,
    shared: bool = False,
    cache_control: str | None = None,
) -> Response:
    """The cached page for this request, or 304 when the reader's copy is still this page.

    `conditional`: send validators and answer If-None-Match; `shared`: the page is the
    same for every reader, so If-Modified-Since may be answered too.
    """
    names = entry.names()
    bound = CSRF in names
    if conditional and (not bound or session.get(CSRF_FIELD)):
        etag = _etag(key, session.get(CSRF_FIELD) if bound else "")
        if _not_modified(etag, changed_at, shared and not bound):
            response = Response(status=304)
            _validators(response, etag, changed_at, cache_control)
            return response
    values: dict[bytes, bytes] = {}
    if bound:
        values[CSRF] = generate_csrf().encode()
    if STAMP in names:
        values[STAMP] = form_stamp().encode()
    response = Response(entry.fill(values), mimetype=entry.meta.get("mimetype", "text/html"))
    if conditional:
        etag = _etag(key, session.get(CSRF_FIELD) if bound else "")
        _validators(response, etag, changed_at, cache_control)
    return response


@functools.cache
def _code_digest(root_path: str) -> str:
    digest = hashlib.sha256()
    root = Path(root_path)
    for folder, pattern in ((root, "*.py"), (root.parent / "templates", "*")):
        for path in sorted(folder.rglob(pattern)):
            if path.is_file():
                digest.update(path.relative_to(folder).as_posix().encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


def _etag(key: str, csrf_secret: str) -> str:
    return hashlib.sha256(f"{key}|{csrf_secret}".encode()).hexdigest()[:32]


def _not_modified(etag: str, changed_at: float, by_date: bool) -> bool:
    if request.if_none_match:
        return request.if_none_match.contains_weak(etag)
    since = request.if_modified_since
    if since is None or since.timestamp() > time.time():
        # Absent, not a date, or a date still to come: no valid HTTP-date (RFC 7232, 3.3);
        # a clock ahead must not keep a reader on an old page once the page changes.
        return False
    return bool(by_date and changed_at and int(changed_at) <= since.timestamp())


def _validators(response: Response, etag: str, changed_at: float, cache_control: str | None):
    response.set_etag(etag, weak=True)
    # Only a second that has passed: a change later in this same second would otherwise
    # carry the same Last-Modified and be answered 304.
    if changed_at and int(changed_at) < int(time.time()):
        response.last_modified = int(changed_at)
    if cache_control:
        response.headers["Cache-Control"] = cache_control


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]
