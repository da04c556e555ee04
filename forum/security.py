"""Security headers, refusal of malformed input, and the audit lines in the app log."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from flask import Flask, Response, abort, current_app, g, has_request_context, request
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer
from werkzeug.exceptions import SecurityError
from werkzeug.middleware.proxy_fix import ProxyFix

# No 'unsafe-inline' anywhere: every script and style is a file under static/. Images
# may come from any https host: post bodies keep their https images (imported blogs);
# the sanitizer never lets one into a comment.
CSP = (
    "default-src 'self'; img-src 'self' data: https:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=()"
BAD_FORM = "The form contained invalid characters."
NO_FILES = "This form takes text only, not files."

audit_logger = logging.getLogger("forum.audit")


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, with its signing serializer made once per set of keys.

    Flask makes a new serializer to open and again to save every session, and making one
    probes its JSON serializer with a dump: on a cached page for a first-time reader (a
    new CSRF secret, so a new cookie) that was a tenth of the request (bench/NOTES.md).
    The serializer keeps no state between calls; a change of SECRET_KEY or
    SECRET_KEY_FALLBACKS makes a new one.
    """

    def __init__(self) -> None:
        self._serializers: dict[tuple[Any, ...], URLSafeTimedSerializer] = {}

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        if not app.secret_key:
            return None
        keys = (*(app.config["SECRET_KEY_FALLBACKS"] or ()), app.secret_key)
        found = self._serializers.get(keys)
        if found is None:
            found = self._serializers[keys] = super().get_signing_serializer(app)
        return found


def init_app(app: Flask) -> None:
    app.session_interface = SessionInterface()
    if app.config["PROXY_FIX"]:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)  # type: ignore[method-assign]
    # First of all before_request functions: CSRFProtect reads the form before any view,
    # and once werkzeug has parsed it the raw bytes can no longer be checked.
    app.before_request_funcs.setdefault(None, []).insert(0, reject_malformed_input)
    app.after_request(add_security_headers)
    app.after_request(log_staff_action)
    # Sign-ins, bans and moderation are logged at INFO: keep them unless configured lower.
    if app.logger.level == logging.NOTSET:
        app.logger.setLevel(app.config.get("LOG_LEVEL", "INFO"))


SECURITY_HEADERS = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("X-Frame-Options", "DENY"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Permissions-Policy", PERMISSIONS_POLICY),
)
NO_STORE = ("Cache-Control", "no-store")
HSTS = ("Strict-Transport-Security", "max-age=31536000; includeSubDomains")


def add_security_headers(response: Response) -> Response:
    """Each header unless the view set its own: one look at the response's headers, not
    one per header (on a cached page the lookups were a twentieth of the request)."""
    headers = response.headers
    present = {key.lower() for key in headers.keys()}  # noqa: SIM118 - Headers, not a dict
    wanted = list(SECURITY_HEADERS)
    if request.path.startswith(("/moderation", "/auth")):
        wanted.append(NO_STORE)
    if current_app.config["HTTPS"]:
        wanted.append(HSTS)
    for key, value in wanted:
        if key.lower() not in present:
            headers.add(key, value)
    return response


def reject_malformed_input() -> None:
    """An untrusted Host, NUL bytes anywhere, invalid UTF-8 or a file in a submitted form
    get a 400, never a 500.

    PostgreSQL refuses NUL in text, so letting one through would fail deep in a query. No
    form of the forum takes a file: a file part where text is expected is refused here,
    once for every form.
    """
    if isinstance(request.routing_exception, SecurityError):
        # Flask could not trust the Host (TRUSTED_HOSTS): refuse before anything else
        # runs, since no URL can be built for this request.
        raise request.routing_exception
    if "\x00" in request.path or any(
        "\x00" in key or "\x00" in value for key, value in request.args.items(multi=True)
    ):
        abort(400, description="The address contained invalid characters.")
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    if request.mimetype == "application/x-www-form-urlencoded":
        raw = request.get_data(cache=True)  # raises 413 past MAX_CONTENT_LENGTH
        # latin-1 maps bytes to characters one to one, so the decoded bytes come back intact.
        pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True, encoding="latin-1")
        for key, value in pairs:
            if not is_clean_bytes(key.encode("latin-1")) or not is_clean_bytes(
                value.encode("latin-1")
            ):
                abort(400, description=BAD_FORM)
    elif request.mimetype == "multipart/form-data":
        for key, value in request.form.items(multi=True):
            if "\x00" in key or "\x00" in value or "\ufffd" in value:
                abort(400, description=BAD_FORM)
        if request.files:
            abort(400, description=NO_FILES)


def is_clean_bytes(data: bytes) -> bool:
    if b"\x00" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def log_staff_action(response: Response) -> Response:
    """Every moderation request a moderator or admin made, in the app log: who, what, on what.

    Logged here once for the whole blueprint, so a moderation route added later is covered
    too. Free text (notes, bodies) is left out; ids and the action are enough to trace.
    """
    if request.method != "POST" or not (request.endpoint or "").startswith("moderation."):
        return response
    if response.status_code >= 400:  # refused: nothing was done
        return response
    # Who passed the dashboard's guard, as they were then (remember_staff): reading the
    # user again here, after the view's commit expired it, would cost a query.
    staff = g.get("staff")
    if staff is None:
        return response
    details: dict[str, Any] = {"endpoint": request.endpoint}
    details.update(request.view_args or {})
    if request.is_json:
        sent = request.get_json(silent=True)
        sent = sent if isinstance(sent, dict) else {}
        action, ids = sent.get("action"), sent.get("ids")
        ids = [str(i) for i in ids] if isinstance(ids, list) else []
    else:
        action, ids = request.form.get("action"), request.form.getlist("ids")
    if action and "action" not in details:
        details["action"] = str(action)
    if ids:
        details["ids"] = ",".join(ids[:50]) + (",..." if len(ids) > 50 else "")
    log_event("moderation", staff, status=response.status_code, **details)
    return response


@dataclass(frozen=True)
class Staff:
    """A moderator or admin as log lines name them."""

    id: int
    username: str


def remember_staff(user: Any) -> None:
    """Note the moderator or admin this request is from, for log_staff_action."""
    g.staff = Staff(user.id, user.username)


def log_event(event: str, user: Any = None, **details: Any) -> None:
    """One audit line: what happened, to or by whom, from which IP, when.

    Values are quoted, so nothing typed into a form can forge a log line. Never pass a
    password or a token.
    """
    fields: dict[str, Any] = {}
    if user is not None:
        fields["user"] = getattr(user, "username", user)
        if getattr(user, "id", None) is not None:
            fields["user_id"] = user.id
    fields.update(details)
    fields["ip"] = (request.remote_addr or "") if has_request_context() else ""
    fields["at"] = datetime.now(UTC).isoformat(timespec="seconds")
    text = " ".join(f"{key}={_quote(value)}" for key, value in fields.items())
    audit_logger.info("%s %s", event, text)


def _quote(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return json.dumps(str(value)[:200], ensure_ascii=True)
