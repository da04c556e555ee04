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
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from flask import Flask, current_app
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup

from forum.cache import MemoryCache
from forum.models import Flag
from forum.moderation.query import ItemLinks
from forum.pagecache import cache as page_cache
from forum.services import queue as queue_service
from forum.services import sanitize

EXTENSION = "moderation_items"
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
    app.extensions[EXTENSION] = MemoryCache(app.config["MODERATION_ITEM_CACHE_BYTES"], _size)


def render_items(page: queue_service.QueuePage, here: str, links: ItemLinks) -> Markup:
    """The page's items as the queue shows them, each rendered only when what it shows
    changed since this process last rendered it."""
    kept: MemoryCache = current_app.extensions[EXTENSION]
    mark = page_cache().mark
    fill = {"c": generate_csrf(), "n": here}  # plain text: the join below escapes it
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
            # Markup's own split keeps the pieces Markup; each after the first begins with
            # the name of what goes before it.
            head, *rest = html.split(mark)
            cuts = tuple((part[:1], part[1:]) for part in rest)
            found = ((head, cuts), item.size + len(html) + OVERHEAD)
            kept.set(key, found)
        head, cuts = found[0]
        out.append(head)
        for name, text in cuts:
            out.append(fill[name])
            out.append(text)
    return Markup("").join(out)


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
