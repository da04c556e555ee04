"""Template helpers shared by every blueprint."""

from __future__ import annotations

from datetime import datetime

from flask import Flask, after_this_request, current_app, g, request
from flask_login import current_user
from flask_sqlalchemy.pagination import Pagination
from sqlalchemy import Select, select
from werkzeug.exceptions import NotFound

from forum.extensions import db
from forum.ids import parse_id
from forum.links import absolute_url_for
from forum.models import Action, Rule
from forum.services import mailer, notifications, queue


def init_app(app: Flask) -> None:
    app.context_processor(header_context)
    app.add_template_filter(format_datetime, "datetime")
    app.add_template_filter(iso_datetime, "isodate")
    app.add_url_rule("/healthz", "healthz", healthz)
    app.add_template_global(absolute_url_for)
    # The vocabularies, from models.py: templates never spell an action or a rule again.
    app.add_template_global(Action, "Action")
    app.add_template_global(Rule, "Rule")


def healthz():
    """For load balancers: 200 when the database answers, 503 when it does not."""
    try:
        db.session.execute(select(1))
    except Exception:  # noqa: BLE001 - any database failure means unhealthy
        db.session.rollback()
        return {"status": "error", "database": "unreachable"}, 503
    return {"status": "ok", "database": "ok"}


def header_context() -> dict[str, object]:
    """The moderators' pending badge, only for moderators; on the dashboard it is the
    pending tab's count, so both always agree (and cost one query)."""
    pending = None
    if getattr(current_user, "is_authenticated", False) and current_user.is_moderator:
        try:
            if request.blueprint == "moderation":
                counts = request_tab_counts()
                pending = counts["pending"] if counts else None
            else:
                pending = queue.pending_count()
        except Exception:  # noqa: BLE001 - an error page must render even if the DB is down
            db.session.rollback()
    return {"pending_badge": pending}


def request_tab_counts() -> dict[str, int] | None:
    """The dashboard's tab counts, counted once per request and only for moderators."""
    if not (getattr(current_user, "is_authenticated", False) and current_user.is_moderator):
        return None
    if "tab_counts" not in g:
        try:
            g.tab_counts = queue.tab_counts()
        except Exception:  # noqa: BLE001 - an error page must render even if the DB is down
            db.session.rollback()
            g.tab_counts = None
    return g.tab_counts


def format_datetime(value: datetime | None) -> str:
    return value.strftime("%-d %B %Y at %H:%M") if value else ""


def iso_datetime(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value else ""


def page_arg(name: str = "page") -> int:
    """The page number from the query string; anything but a positive integer is a 404."""
    page = parse_id(request.args.get(name, "1"), high=1_000_000)
    if page is None:
        raise NotFound()
    return page


def paginate_or_404(stmt: Select, per_page: int) -> Pagination:
    """One page of `stmt` for the page in the query string; a page past the end is a 404."""
    pagination = db.paginate(stmt, page=page_arg(), per_page=per_page, error_out=False)
    if pagination.page > 1 and not pagination.items:
        raise NotFound()
    return pagination


def flush_mail_after_response() -> None:
    """Send what is due once this request's response has gone out (best effort), once per
    request: the mailer commits on its own, outside the view's transaction."""
    if not current_app.config["MAIL_FLUSH_AFTER_RESPONSE"] or g.get("_mail_flush_scheduled"):
        return
    g._mail_flush_scheduled = True
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    @after_this_request
    def _schedule(response):
        info = db.session.info
        queued = info.pop(notifications.MAIL_QUEUED, False)
        held = info.pop(notifications.COMMENT_HELD, False)
        response.call_on_close(lambda: mailer.send_quietly(app, queued, held))
        return response
