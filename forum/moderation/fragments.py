"""The queue's items, each rendered once for what it shows and reused while that holds.

An item's HTML is a function of a few dozen values: the comment's own columns, its
parent's name, status and text, the account's name and ban, the post's id, slug and
title, the hold reasons (all in the page's `ItemView`, services/queue_items.py), the
open flags and the author's history. The macro renders from those alone, and they are
the key. So an item is rendered again as soon as anything it shows changes (an edit, a
decision on the author's other comments, a flag, a rename, a ban), and never while
nothing did, whichever page of the queue shows it.

Two things differ from page to page: the CSRF token (it carries a timestamp) and the
address the item's form returns to. Items are kept cut at unguessable markers (the page
cache's, derived from SECRET_KEY: forum/pagecache.py), and each request's values go
between the cuts.

The page around the items (header, tabs, filters, bulk form, pager) is kept the same way
(`render_page`), keyed on every value it shows: the moderator, the tab counts, the
filter, the post filter's options, the page's ids and links. The items and the token go
between its cuts.

And the whole page is kept (`kept_whole`) for the queue's version (services/versions.py:
bumped in the transaction of every change the dashboard shows), its address and the
moderator: while nothing changed, a page costs the version's read and the token, not the
six reads and the lookups above.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

from flask import Flask, current_app, render_template, request, session
from flask_login import current_user
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup, escape

from forum.cache import MemoryCache
from forum.models import Flag
from forum.moderation.query import ItemLinks
from forum.pagecache import cache as page_cache
from forum.pagecache import markers as page_cache_markers
from forum.services import queue as queue_service
from forum.services import sanitize, versions
from forum.web import request_tab_counts

EXTENSION = "moderation_items"
PAGES = "moderation_pages"  # the pages around the items, in a quarter of the items' budget
WHOLE = "moderation_whole"  # whole pages by version, in another quarter
NOTICE_KEY = "moderation_notice"  # the session's notice of the last action, shown once
OVERHEAD = 1024  # bytes an item costs beyond its texts (the key's tuples), roughly


class Flagger(NamedTuple):
    username: str


class FlagView(NamedTuple):
    reason: str
    note: str
    user: Flagger


def flag_views(flags: Iterable[Flag] | None) -> tuple[FlagView, ...]:
    return tuple(FlagView(f.reason, f.note, Flagger(f.user.username)) for f in flags or ())


def _size(kept: tuple[tuple[Markup, tuple[tuple[str, Markup], ...]], int]) -> int:
    return kept[1]


def init_app(app: Flask) -> None:
    budget = app.config["MODERATION_ITEM_CACHE_BYTES"]
    app.extensions[EXTENSION] = MemoryCache(budget, _size)
    app.extensions[PAGES] = MemoryCache(budget // 4, _size)
    app.extensions[WHOLE] = MemoryCache(budget // 4, _size)


def render_items(page: queue_service.QueuePage, here: str, links: ItemLinks) -> Markup:
    """The page's items as the queue shows them, each rendered only when what it shows
    changed since this process last rendered it."""
    kept: MemoryCache = current_app.extensions[EXTENSION]
    mark = page_cache().mark
    fill = {"c": escape(generate_csrf()), "n": escape(here)}
    macro = None
    out: list[str] = []
    for item in page.items:
        history = page.histories.get(queue_service.author_key(item))
        flags = flag_views(page.flags.get(item.id))
        key = (item, history, flags, links.queue, links.item_prefix)
        found = kept.get(key)
        if found is None:
            if macro is None:
                macro = current_app.jinja_env.get_template("moderation/_macros.html").module
            html = macro.queue_item(
                item, history, flags, sanitize.excerpt, f"{mark}n", links, csrf=f"{mark}c"
            )
            found = _cut(html, mark, item.size)
            kept.set(key, found)
        _fill(found, fill, out)
    # Every piece is the macro's Markup or a value escaped above: joined as they are (an
    # escape of each of the page's 125 pieces was a twentieth of the page).
    return Markup("".join(out))  # noqa: S704  # nosec B704


Kept = tuple[tuple[str, tuple[tuple[str, str], ...]], int]


def _cut(html: str, mark: str, size: int = 0) -> Kept:
    """Rendered HTML cut at the markers, with the bytes it costs to keep (`size`: what the
    key holds beyond it). Markup's own split keeps the pieces Markup; each after the first
    begins with the name of what goes before it."""
    head, *rest = html.split(mark)
    cuts = tuple((part[:1], part[1:]) for part in rest)
    return (head, cuts), size + len(html) + OVERHEAD


def _fill(kept: Kept, values: dict[str, str], out: list[str]) -> None:
    head, cuts = kept[0]
    out.append(head)
    for name, text in cuts:
        out.append(values[name])
        out.append(text)


# The page around the items ----------------------------------------------------------


def render_page(
    template: str, shown: dict[str, Any], items: Markup, fixed: Callable[[], dict[str, Any]]
) -> str:
    """A dashboard page: rendered once for what its frame shows and kept while that holds.

    `shown`: every value the template shows beyond the items, the CSRF token and what is
    read here (the moderator, the tab counts and the header badge the layout takes from
    them); with those, the key. `fixed()`: what is the same on every page (empty forms,
    constants), called only to render. A session that carries something shown once (a
    flash, the last action's notice) gets the page rendered.
    """
    if "_flashes" in session or NOTICE_KEY in session:
        return render_template(template, items=items, **shown, **fixed())
    counts = request_tab_counts()
    who = (current_user.id, current_user.username, current_user.is_moderator, current_user.is_admin)
    values = tuple((k, tuple(v.items()) if isinstance(v, dict) else v) for k, v in shown.items())
    key = (template, request.script_root, who, counts and tuple(counts.items()), values)
    kept: MemoryCache = current_app.extensions[PAGES]
    found = kept.get(key)
    if found is None:
        with page_cache_markers() as pc:
            # The marker is letters and digits: escaping leaves it as it is.
            html = render_template(template, items=f"{pc.mark}i", **shown, **fixed())
        found = _cut(html, pc.mark)
        kept.set(key, found)
    out: list[str] = []
    _fill(found, {"c": generate_csrf(), "i": items}, out)
    return "".join(out)


# The whole page -------------------------------------------------------------------


def kept_whole(view: Callable[[], Any]) -> Callable[[], Any]:
    """A dashboard view whose page is kept whole while the queue's version holds.

    Its key: the version (read first, in the request's transaction: what the view then
    reads is at least as new, so a page is never kept under a version newer than its
    data), the page's address and the moderator the frame shows. The CSRF token is cut
    out and each request's goes back in. A session holding something shown once (a
    flash, a notice), a JSON request or any answer but a page goes to the view.
    """

    @functools.wraps(view)
    def kept_view() -> Any:
        if "_flashes" in session or NOTICE_KEY in session or wants_json():
            return view()
        who = (current_user.id, current_user.username, current_user.is_moderator)
        who += (current_user.is_admin,)
        key = (versions.queue_key(), request.script_root, request.full_path, who)
        kept: MemoryCache = current_app.extensions[WHOLE]
        token = generate_csrf()
        found = kept.get(key)
        if found is None:
            page = view()
            # The view may have flashed, or found its session holding something to show.
            if not isinstance(page, str) or "_flashes" in session or NOTICE_KEY in session:
                return page
            found = (tuple(page.split(token)), len(page) + OVERHEAD)
            kept.set(key, found)
        return token.join(found[0])

    return kept_view


def wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json"


# The post filter ------------------------------------------------------------------


def post_options(posts: Sequence[tuple[int, str, int]], selected: int | None) -> Markup:
    """The post filter's options: the newest posts with their pending counts, and the
    chosen post when it is older than those. Rendered again only when the rows or the
    choice differ from a recent request's (they are the key, so it is never stale)."""
    return _post_options(tuple((pid, title, pending) for pid, title, pending in posts), selected)


@functools.lru_cache(maxsize=16)
def _post_options(posts: tuple[tuple[int, str, int], ...], selected: int | None) -> Markup:
    option = Markup('<option value="{}"{}>{}{}</option>')
    out = [Markup('<option value="">All posts</option>')]
    for pid, title, pending in posts:
        chosen = Markup(" selected") if selected == pid else ""
        out.append(option.format(pid, chosen, title, f" ({pending} pending)" if pending else ""))
    if selected and all(pid != selected for pid, _, _ in posts):
        out.append(option.format(selected, Markup(" selected"), f"Post {selected}", ""))
    return Markup("").join(out)
