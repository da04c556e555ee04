"""The dashboard's query string: tabs, filters and keyset cursors, checked once.

Anything the dashboard did not offer is a 404 (an unknown tab or order) or a 400 (a
broken cursor, an impossible number), never a 500.
"""

from __future__ import annotations

from urllib.parse import urlencode

from flask import abort, request, url_for

from forum.ids import id_arg
from forum.services import queue as queue_service


def text_arg(name: str, limit: int) -> str:
    """A query-string value cut to size (security.py already refused NUL bytes)."""
    return request.args.get(name, "")[:limit]


def queue_filter() -> queue_service.QueueFilter:
    """The tab and filters from the query string; anything we did not offer is a 404."""
    try:
        return queue_service.QueueFilter(
            tab=request.args.get("tab", "pending"),
            post_id=id_arg("post"),
            author=text_arg("author", 254),
            q=text_arg("q", queue_service.MAX_SEARCH),
            order=request.args.get("order", "newest"),
            group=request.args.get("group", ""),
            value=text_arg("value", 500) if request.args.get("group") else "",
        )
    except ValueError:
        abort(404)


def cursor_arg(name: str) -> queue_service.Cursor | None:
    raw = request.args.get(name)
    if not raw:
        return None
    try:
        return queue_service.Cursor.decode(raw[:100])
    except queue_service.BadCursor:
        abort(400, description="That page link is broken; start again from the first page.")


def filter_args(f: queue_service.QueueFilter) -> dict:
    """The query string of a filter, without defaults (for links that keep it)."""
    args = {
        "tab": f.tab if f.tab != "pending" else None,
        "post": f.post_id,
        "author": f.author or None,
        "q": f.q or None,
        "order": f.order if f.order != "newest" else None,
        "group": f.group or None,
        "value": f.value if f.group else None,
    }
    return {k: v for k, v in args.items() if v is not None}


class ItemLinks:
    """The links every queue item repeats (its page, the queue of its author's email, of
    its IP), written as url_for writes them but from one url_for each per page: werkzeug
    builds a link in 5-9 µs, and a page has 75 of them. test_queue_costs.py checks that
    they are url_for's."""

    # werkzeug.urls._urlencode's safe characters
    SAFE = "!$'()*,/:;?@"

    def __init__(self) -> None:
        self.queue = url_for("moderation.queue")
        self.item_prefix = url_for("moderation.item", comment_id=0).removesuffix("0")

    def item(self, comment_id: int) -> str:
        return f"{self.item_prefix}{comment_id}"

    def by_author(self, email: str) -> str:
        return f"{self.queue}?{urlencode({'tab': 'pending', 'author': email}, safe=self.SAFE)}"

    def by_ip(self, ip: str) -> str:
        return f"{self.queue}?{urlencode({'group': 'ip', 'value': ip}, safe=self.SAFE)}"
