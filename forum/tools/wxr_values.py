"""The values a WXR import reads from its elements (statuses, ids, dates, names, links)
and the columns they must fit; the Disqus importer shares the widths and body columns."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qs, unquote, urlsplit

from sqlalchemy import select

from forum.extensions import db
from forum.models import PATH_SEGMENT_WIDTH, Comment, CommentKind, Post, Status, Tag, User
from forum.services import comments as comment_service
from forum.services import posts as post_service
from forum.services import sanitize
from forum.tools.wxr_reader import Element

KEY_CHUNK = 500

STATUSES = {
    "1": Status.APPROVED,
    "0": Status.PENDING,
    "spam": Status.SPAM,
    "trash": Status.REJECTED,
    "post-trashed": Status.REJECTED,
}
KINDS = {
    "": CommentKind.COMMENT,
    "comment": CommentKind.COMMENT,
    "pingback": CommentKind.PINGBACK,
    "trackback": CommentKind.TRACKBACK,
}
# WordPress 6.9's private editorial notes on a post: never published, always skipped.
NOTE = "note"
# WXR 1.0 called tags "tag"; later versions "post_tag".
TAG_DOMAINS = ("category", "post_tag", "tag")
# A path of zero-padded ids separated by "/" must fit Comment.path (1000 characters).
MAX_DEPTH = (1000 + 1) // (PATH_SEGMENT_WIDTH + 1) - 1
MAX_ID = 2**63 - 1
USERNAME_RE = re.compile(r"[^A-Za-z0-9_-]+")
VERSION_RE = re.compile(r"\d+\.\d+")
SLUG_RE = re.compile(r"[\w-]+")
NO_DATE = "0000-00-00 00:00:00"
TITLE_WIDTH = Post.__table__.c.title.type.length
TAG_WIDTH = Tag.__table__.c.name.type.length
NAME_WIDTH = Comment.__table__.c.author_name.type.length
SLUG_WIDTH = Post.__table__.c.slug.type.length
URL_WIDTH = Post.__table__.c.original_url.type.length
PATH_WIDTH = Post.__table__.c.legacy_path.type.length


class Skip(Exception):
    """One record cannot be imported: it is skipped for `reason` (a summary count)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


BODY_COLUMNS = comment_service.BODY_COLUMNS


def body_columns(content: str) -> dict[str, object]:
    """The body columns of an imported comment, from the one writer of comment bodies."""
    return comment_service.body_columns(comment_service.body_of(content))


def http_url(url: str) -> str:
    """The URL when it is http(s) without spaces or control characters, else ''."""
    url = url.strip()
    if not url.lower().startswith(("http://", "https://")):
        return ""
    if any(ch.isspace() or unicodedata.category(ch) == "Cc" for ch in url):
        return ""
    return url


def legacy_path(url: str) -> str | None:
    """The path of an old permalink as requests will carry it: decoded, no trailing "/".

    None when there is no path to match ("/?p=123" permalinks: the id redirects those).
    """
    try:
        path = unquote(urlsplit(url).path).rstrip("/")
    except ValueError:
        return None
    if not path or len(path) > PATH_WIDTH or "\x00" in path:
        return None
    return path


def id_in_link(url: str) -> int | None:
    """123 for "https://blog.example/?p=123" (WordPress's plain permalink and guid)."""
    try:
        values = parse_qs(urlsplit(url.strip()).query).get("p", [])
    except ValueError:
        return None
    return int(values[0]) if len(values) == 1 and is_id(values[0]) else None


def site_key(site: str) -> str:
    site = site.rstrip("/")
    if len(site) > 120:
        site = "sha1-" + hashlib.sha1(site.encode(), usedforsecurity=False).hexdigest()
    return f"wxr:{site}"


def plain(markup: str) -> str:
    """Text for a title or a name: entities decoded, markup removed, spaces collapsed."""
    return sanitize.excerpt(markup, length=len(markup) + 1)


def post_slug(post_name: str, title: str) -> str:
    """The file's own slug (wp:post_name, percent-decoded) when usable, else one made
    from the title."""
    name = unquote(post_name.strip())
    if name and SLUG_RE.fullmatch(name) and len(name) <= SLUG_WIDTH:
        return name
    return post_service.slugify(name or title)


def clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def is_id(raw: str) -> bool:
    """ASCII digits only, 1 to 2**63-1: ids a 64-bit column holds."""
    return raw.isascii() and raw.isdigit() and 0 < int(raw) <= MAX_ID


def free_username(login: str, display_name: str) -> str:
    """A username our rules accept, made from the login and not taken yet."""
    ascii_login = unicodedata.normalize("NFKD", login).encode("ascii", "ignore").decode()
    base = USERNAME_RE.sub("-", ascii_login).strip("-")[:30]
    if len(base) < 3:
        ascii_name = unicodedata.normalize("NFKD", display_name).encode("ascii", "ignore").decode()
        base = (USERNAME_RE.sub("-", ascii_name).strip("-") or "wp-author")[:30]
        base = base if len(base) >= 3 else f"wp-{base}"
    candidate, n = base, 1
    while db.session.scalar(select(User.id).where(User.username_key == candidate.casefold())):
        n += 1
        suffix = f"-{n}"
        candidate = base[: 30 - len(suffix)] + suffix
    return candidate


def wp_date(element: Element, tag: str) -> datetime | None:
    """'2024-05-01 12:30:00' as UTC; None when absent or WordPress's zero date."""
    child = element.find(tag)
    raw = child.text.strip() if child is not None else ""
    if not raw or raw == NO_DATE:
        return None
    try:
        return datetime.strptime(raw, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        raise Skip("with a bad date", f"<{tag}> is not a date ({clip(raw)!r})") from None


def rss_date(element: Element, tag: str) -> datetime | None:
    raw = element.findtext(tag).strip()
    if not raw:
        return None
    try:
        value = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
