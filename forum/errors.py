"""Error pages rendered from templates/errors/."""

from __future__ import annotations

import math
import time

from flask import Flask, Response, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, SecurityError

from forum.extensions import db, limiter

PAGES = {400, 403, 404, 405, 413, 429, 500}
# Form fields worth handing back when a request is refused after the user typed them.
KEPT_FIELDS = ("body", "title", "note")
CSRF_MESSAGE = "The form expired or was sent from elsewhere. Reload the page and try again."


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(CSRFError, csrf_error)


def http_error(error: HTTPException):
    # A page a view built for this refusal (a rate limit's on_breach): send it as it is.
    if error.response is not None:
        return error.response
    if isinstance(error, SecurityError):
        # An untrusted Host: no URL can be built, so no templated page either.
        return Response("Bad request: unknown host.\n", 400, mimetype="text/plain")
    code = error.code or 500
    if code not in PAGES:
        return error
    if code == 500:
        db.session.rollback()
    headers = {}
    if getattr(error, "valid_methods", None):
        headers["Allow"] = ", ".join(error.valid_methods)
    retry_after = retry_after_seconds() if code == 429 else None
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    response = render_template(
        f"errors/{code}.html",
        message=custom_message(error),
        kept_text=kept_text(code),
        retry_after=retry_after,
    )
    return response, code, headers


def csrf_error(error: CSRFError):
    return render_template("errors/400.html", message=CSRF_MESSAGE, kept_text=kept_text(400)), 400


def custom_message(error: HTTPException) -> str | None:
    """A description we wrote (abort(403, description=...)), not werkzeug's generic one."""
    if error.code in (429, 500) or error.description == type(error).description:
        return None
    return error.description


def retry_after_seconds() -> int | None:
    """Seconds until the breached rate limit lets this client in again."""
    limit = limiter.current_limit
    if limit is None:
        return None
    return max(1, math.ceil(limit.reset_at - time.time()))


def kept_text(code: int) -> dict[str, str]:
    """What the person typed, so that a refused form does not lose it (never for 413)."""
    if code == 413 or request.method != "POST":
        return {}
    try:
        form = request.form
    except Exception:  # noqa: BLE001 - a malformed body must not turn a 4xx into a 500
        return {}
    return {name: form[name] for name in KEPT_FIELDS if form.get(name)}
