"""Importing a WordPress export (WXR 1.0-1.2): streamed, checked, all or nothing.

expat reads the file in chunks with DTDs refused (so no entity expansion), and only the
channel header and the current <item> are held in memory. An item's comments are
buffered, checked (status, type, parent, dates) and written one thread level at a
time. Every row remembers its source id in `import_key`, so importing the same file
again finds everything present and writes nothing. Nothing here commits: the caller
commits, or rolls back on WXRError (the file is broken) or for a dry run.
"""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import BinaryIO
from urllib.parse import urlsplit
from xml.parsers import expat

from sqlalchemy import insert, select, update

from forum.extensions import db
from forum.models import (
    PATH_SEGMENT_WIDTH,
    Comment,
    CommentKind,
    HoldReason,
    Post,
    Status,
    User,
    post_tag,
)
from forum.services import accounts, sanitize
from forum.services import posts as post_service

CHUNK_BYTES = 64 * 1024
KEY_CHUNK = 500

STATUSES = {
    "1": Status.APPROVED,
    "0": Status.PENDING,
    "spam": Status.SPAM,
    "trash": Status.REJECTED,
}
KINDS = {
    "": CommentKind.COMMENT,
    "comment": CommentKind.COMMENT,
    "pingback": CommentKind.PINGBACK,
    "trackback": CommentKind.TRACKBACK,
}
TAG_DOMAINS = ("category", "post_tag")
# A path of zero-padded ids separated by "/" must fit Comment.path (1000 characters).
MAX_DEPTH = (1000 + 1) // (PATH_SEGMENT_WIDTH + 1) - 1
USERNAME_RE = re.compile(r"[^A-Za-z0-9_-]+")
NO_DATE = "0000-00-00 00:00:00"

_WP_NS = "http://wordpress.org/export/"
_NAMESPACES = {
    "http://purl.org/rss/1.0/modules/content/": "content",
    "http://purl.org/dc/elements/1.1/": "dc",
    "http://wellformedweb.org/CommentAPI/": "wfw",
}


class WXRError(Exception):
    """The file cannot be imported; `line` says where (None when it is the whole file)."""

    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


@dataclass
class Element:
    """An XML element with the line it starts on; text is the joined character data."""

    tag: str
    line: int
    attrs: dict[str, str]
    children: list[Element] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def find(self, tag: str) -> Element | None:
        return next((child for child in self.children if child.tag == tag), None)

    def findall(self, tag: str) -> list[Element]:
        return [child for child in self.children if child.tag == tag]

    def findtext(self, tag: str) -> str:
        child = self.find(tag)
        return child.text if child is not None else ""


@dataclass
class ImportSummary:
    """What an import did (or, in a dry run, would do)."""

    posts_created: int = 0
    posts_present: int = 0
    comments_created: Counter[Status] = field(default_factory=Counter)
    pings_created: int = 0
    comments_present: int = 0
    authors_created: int = 0
    authors_matched: int = 0
    tags_created: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    def __str__(self) -> str:
        made = self.comments_created
        by_status = ", ".join(f"{made[s]} {s.value}" for s in Status if made[s])
        lines = [
            f"Posts: {self.posts_created} imported, {self.posts_present} already present.",
            f"Comments: {made.total()} imported ({by_status or 'none'}), "
            f"{self.pings_created} of them pingbacks or trackbacks; "
            f"{self.comments_present} already present.",
            f"Authors: {self.authors_created} created, {self.authors_matched} matched.",
            f"Tags: {self.tags_created} created.",
        ]
        if self.skipped:
            lines.append(
                "Skipped: " + ", ".join(f"{n} {what}" for what, n in sorted(self.skipped.items()))
            )
        return "\n".join(lines)


def import_wxr(stream: BinaryIO, progress: Callable[[int], None] | None = None) -> ImportSummary:
    """Import a WXR file read from `stream`; raises WXRError. The caller commits."""
    reader = WXRReader()
    importer = _Importer(reader.header)
    for kind, element in reader.read(stream, progress):
        if kind == "author":
            importer.author(element)
        else:
            importer.item(element)
    importer.check_header(None)
    return importer.summary


class WXRReader:
    """Stream a WXR file as ("author", element) and ("item", element) events.

    Channel-level elements without children (title, link, wp:base_site_url, ...) are
    collected in `header` as (text, line); categories and terms are dropped.
    """

    def __init__(self) -> None:
        self.header: dict[str, tuple[str, int]] = {}
        self._stack: list[Element] = []
        self._ready: list[tuple[str, Element]] = []
        self._parser = expat.ParserCreate(namespace_separator=" ")
        parser = self._parser
        parser.buffer_text = True
        parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        parser.StartDoctypeDeclHandler = self._forbid
        parser.EntityDeclHandler = self._forbid
        parser.UnparsedEntityDeclHandler = self._forbid
        parser.ExternalEntityRefHandler = self._forbid
        parser.StartElementHandler = self._start
        parser.EndElementHandler = self._end
        parser.CharacterDataHandler = self._data

    def read(
        self, stream: BinaryIO, progress: Callable[[int], None] | None = None
    ) -> Iterator[tuple[str, Element]]:
        while True:
            chunk = stream.read(CHUNK_BYTES)
            try:
                self._parser.Parse(chunk, not chunk)
            except expat.ExpatError as error:
                raise WXRError(
                    error.lineno, f"malformed XML: {expat.ErrorString(error.code)}"
                ) from None
            events, self._ready = self._ready, []
            yield from events
            if progress is not None and chunk:
                progress(len(chunk))
            if not chunk:
                return

    def _forbid(self, *_args: object) -> None:
        raise WXRError(
            self._parser.CurrentLineNumber,
            "a DTD or entity declaration: not in WordPress exports, and refused for safety",
        )

    def _start(self, name: str, attrs: dict[str, str]) -> None:
        line = self._parser.CurrentLineNumber
        tag = _tag(name)
        depth = len(self._stack)
        if depth == 0 and tag != "rss":
            raise WXRError(line, f"not a WordPress export: the root is <{tag}>, not <rss>")
        if depth == 1 and tag != "channel":
            raise WXRError(line, f"unexpected <{tag}> outside <channel>")
        element = Element(tag, line, {_tag(k): v for k, v in attrs.items()})
        if depth > 2:
            self._stack[-1].children.append(element)
        self._stack.append(element)

    def _end(self, _name: str) -> None:
        element = self._stack.pop()
        if len(self._stack) != 2:
            return
        if element.tag == "item":
            self._ready.append(("item", element))
        elif element.tag == "wp:author":
            self._ready.append(("author", element))
        elif not element.children and element.tag not in self.header:
            self.header[element.tag] = (element.text.strip(), element.line)

    def _data(self, text: str) -> None:
        if len(self._stack) > 2:
            self._stack[-1].parts.append(text)


def _tag(name: str) -> str:
    """'http://wordpress.org/export/1.2/ comment' -> 'wp:comment'; no namespace: as is."""
    namespace, _, local = name.rpartition(" ")
    if not namespace:
        return local
    if namespace.startswith(_WP_NS):
        return f"excerpt:{local}" if namespace.rstrip("/").endswith("/excerpt") else f"wp:{local}"
    prefix = _NAMESPACES.get(namespace)
    return f"{prefix}:{local}" if prefix else f"{{{namespace}}}{local}"


@dataclass
class _SourceComment:
    wp_id: int
    parent: int
    line: int
    parent_line: int
    kind: CommentKind
    status: Status
    raw_status: str
    author_name: str
    author_email: str
    author_url: str
    ip: str
    wp_user_id: int
    content: str
    created_at: datetime


@dataclass(frozen=True)
class _Placed:
    id: int
    path: str
    depth: int
    visible: bool


class _Importer:
    def __init__(self, header: dict[str, tuple[str, int]]) -> None:
        self.header = header
        self.summary = ImportSummary()
        self.site: str | None = None
        self.users_by_login: dict[str, int] = {}
        self.users_by_wp_id: dict[int, int] = {}

    def check_header(self, line: int | None) -> str:
        """The site part of every import key; checks this is a WXR file first."""
        if self.site is not None:
            return self.site
        version, version_line = self.header.get("wp:wxr_version", ("", line))
        if not version:
            raise WXRError(line, "not a WordPress export: no <wp:wxr_version> in the channel")
        if not version.startswith("1."):
            raise WXRError(version_line, f"unsupported WXR version {version!r}")
        for tag in ("wp:base_blog_url", "wp:base_site_url", "link"):
            url = self.header.get(tag, ("", 0))[0]
            parts = urlsplit(url)
            if parts.netloc:
                site = (parts.netloc.lower() + parts.path).rstrip("/")
                if len(site) > 120:
                    site = "sha1-" + hashlib.sha1(site.encode(), usedforsecurity=False).hexdigest()
                self.site = f"wxr:{site}"
                return self.site
        raise WXRError(line, "no <wp:base_site_url> or channel <link>: which blog is this?")

    # Authors --------------------------------------------------------------------

    def author(self, element: Element) -> None:
        self.check_header(element.line)
        login = element.findtext("wp:author_login").strip()
        if not login:
            raise WXRError(element.line, "an author without <wp:author_login>")
        user_id = self._user(
            login,
            element.findtext("wp:author_email").strip(),
            html.unescape(element.findtext("wp:author_display_name")).strip(),
        )
        wp_id = element.findtext("wp:author_id").strip()
        if wp_id.isdigit():
            self.users_by_wp_id[int(wp_id)] = user_id

    def _user(self, login: str, email: str, display_name: str = "") -> int:
        """The member for a WordPress login: imported before, matched by email, or new."""
        if login in self.users_by_login:
            return self.users_by_login[login]
        key = f"{self.site}:author:{login}"[:200]
        user_id = db.session.scalar(select(User.id).where(User.import_key == key))
        if user_id is None and email:
            user_id = db.session.scalar(select(User.id).where(User.email_key == email.casefold()))
        if user_id is not None:
            self.summary.authors_matched += 1
        else:
            username = _free_username(login, display_name)
            if "@" not in email or len(email) > 254:
                email = f"{username.casefold()}@wxr.invalid"
            user = accounts.create_user(username, email, password=None)
            user.import_key = key
            db.session.flush()
            user_id = user.id
            self.summary.authors_created += 1
        self.users_by_login[login] = user_id
        return user_id

    # Posts ----------------------------------------------------------------------

    def item(self, element: Element) -> None:
        self.check_header(element.line)
        post_type = element.findtext("wp:post_type").strip() or "post"
        status = element.findtext("wp:status").strip() or "publish"
        if post_type != "post":
            self.summary.skipped[f"{post_type} item(s)"] += 1
            return
        if status != "publish":
            self.summary.skipped[f"{status} post(s)"] += 1
            return
        if element.findtext("wp:post_password"):
            self.summary.skipped["password-protected post(s)"] += 1
            return
        wp_id = _integer(element, "wp:post_id", required=True)
        comments = [self._source_comment(c) for c in element.findall("wp:comment")]
        key = f"{self.site}:post:{wp_id}"
        post_id = db.session.scalar(select(Post.id).where(Post.import_key == key))
        if post_id is None:
            post_id = self._create_post(element, key)
            self.summary.posts_created += 1
        else:
            self.summary.posts_present += 1
        self._import_comments(post_id, comments)

    def _create_post(self, element: Element, key: str) -> int:
        title = html.unescape(element.findtext("title")).strip()[:200] or "(no title)"
        body = element.findtext("content:encoded")
        created = (
            _wp_date(element, "wp:post_date_gmt")
            or _wp_date(element, "wp:post_date")
            or _rss_date(element, "pubDate")
        )
        if created is None:
            raise WXRError(element.line, f"post {element.findtext('wp:post_id')}: no date")
        modified = _wp_date(element, "wp:post_modified_gmt") or created
        creator = element.findtext("dc:creator").strip()
        post_id = db.session.execute(
            insert(Post)
            .values(
                author_id=self._user(creator, "", creator) if creator else None,
                title=title,
                slug=post_service.slugify(title),
                body_source=body,
                body_html=sanitize.sanitize_post(body).html,
                created_at=created,
                updated_at=max(created, modified),
                comments_open=element.findtext("wp:comment_status").strip() != "closed",
                import_key=key,
            )
            .returning(Post.id)
        ).scalar_one()
        names = [
            html.unescape(c.text).strip()[:50]
            for c in element.findall("category")
            if c.attrs.get("domain") in TAG_DOMAINS
        ]
        names = [name for name in names if name]
        if names:
            tags = post_service.get_or_create_tags(names)
            self.summary.tags_created += sum(1 for tag in tags if tag.id is None)
            db.session.flush()
            db.session.execute(
                insert(post_tag), [{"post_id": post_id, "tag_id": tag.id} for tag in tags]
            )
        return post_id

    # Comments -------------------------------------------------------------------

    def _source_comment(self, element: Element) -> _SourceComment:
        wp_id = _integer(element, "wp:comment_id", required=True)
        approved = element.find("wp:comment_approved")
        raw_status = approved.text.strip() if approved is not None else ""
        if raw_status not in STATUSES:
            raise WXRError(
                approved.line if approved is not None else element.line,
                f"comment {wp_id}: unknown status {raw_status!r} in <wp:comment_approved> "
                "(expected 1, 0, spam or trash)",
            )
        type_element = element.find("wp:comment_type")
        raw_type = type_element.text.strip() if type_element is not None else ""
        if raw_type not in KINDS:
            raise WXRError(
                type_element.line if type_element is not None else element.line,
                f"comment {wp_id}: unknown comment type {raw_type!r} "
                "(expected comment, pingback or trackback)",
            )
        created = _wp_date(element, "wp:comment_date_gmt") or _wp_date(element, "wp:comment_date")
        if created is None:
            raise WXRError(element.line, f"comment {wp_id}: no date")
        name = html.unescape(element.findtext("wp:comment_author")).strip()
        parent = element.find("wp:comment_parent")
        return _SourceComment(
            wp_id=wp_id,
            parent=_integer(element, "wp:comment_parent"),
            line=element.line,
            parent_line=parent.line if parent is not None else element.line,
            kind=KINDS[raw_type],
            status=STATUSES[raw_status],
            raw_status=raw_status,
            author_name=sanitize.normalize_text(name)[:100] or "Anonymous",
            author_email=element.findtext("wp:comment_author_email").strip().casefold()[:254],
            author_url=http_url(element.findtext("wp:comment_author_url"))[:500],
            ip=element.findtext("wp:comment_author_IP").strip()[:45],
            wp_user_id=_integer(element, "wp:comment_user_id"),
            content=element.findtext("wp:comment_content"),
            created_at=created,
        )

    def _import_comments(self, post_id: int, comments: list[_SourceComment]) -> None:
        """Write the comments not imported before, parents first, a thread level at a time."""
        by_wp_id: dict[int, _SourceComment] = {}
        for comment in comments:
            if comment.wp_id in by_wp_id:
                raise WXRError(comment.line, f"comment {comment.wp_id} appears twice")
            by_wp_id[comment.wp_id] = comment
        outside = {c.parent for c in comments if c.parent and c.parent not in by_wp_id}
        existing = self._existing(set(by_wp_id) | outside)
        # A parent from elsewhere in the file must be a comment of this post imported before.
        placed = {
            wp_id: found
            for wp_id, (found_post_id, found) in existing.items()
            if found_post_id == post_id
        }
        for comment in comments:
            if comment.parent and comment.parent not in by_wp_id and comment.parent not in placed:
                raise WXRError(
                    comment.parent_line,
                    f"comment {comment.wp_id} replies to comment {comment.parent}, "
                    "which is not a comment of this post",
                )
        todo = sorted(
            (c for c in comments if c.wp_id not in existing),
            key=lambda c: (c.created_at, c.wp_id),
        )
        self.summary.comments_present += len(comments) - len(todo)
        while todo:
            level = [c for c in todo if not c.parent or c.parent in placed]
            if not level:
                raise WXRError(
                    todo[0].line, f"comment {todo[0].wp_id} is in a loop of replies to replies"
                )
            self._insert_level(post_id, level, placed)
            todo = [c for c in todo if c.wp_id not in placed]

    def _existing(self, wp_ids: set[int]) -> dict[int, tuple[int, _Placed]]:
        """Comments imported before, by WordPress id: (their post id, where they are)."""
        keys = {f"{self.site}:comment:{wp_id}": wp_id for wp_id in wp_ids}
        found: dict[int, tuple[int, _Placed]] = {}
        wanted = sorted(keys)
        for start in range(0, len(wanted), KEY_CHUNK):
            rows = db.session.execute(
                select(
                    Comment.import_key,
                    Comment.post_id,
                    Comment.id,
                    Comment.path,
                    Comment.depth,
                    Comment.visible,
                ).where(Comment.import_key.in_(wanted[start : start + KEY_CHUNK]))
            )
            for row in rows:
                placed = _Placed(row.id, row.path, row.depth, row.visible)
                found[keys[row.import_key]] = (row.post_id, placed)
        return found

    def _insert_level(
        self, post_id: int, level: list[_SourceComment], placed: dict[int, _Placed]
    ) -> None:
        rows = []
        for c in level:
            parent = placed.get(c.parent) if c.parent else None
            depth = parent.depth + 1 if parent else 0
            if depth > MAX_DEPTH:
                raise WXRError(c.line, f"comment {c.wp_id} is nested over {MAX_DEPTH} levels deep")
            result = sanitize.sanitize_comment(c.content)
            domains = sanitize.link_domains(result.html)
            rows.append(
                {
                    "post_id": post_id,
                    "parent_id": parent.id if parent else None,
                    "kind": c.kind,
                    "depth": depth,
                    "path": "",
                    "user_id": self.users_by_wp_id.get(c.wp_user_id) if c.wp_user_id else None,
                    "author_name": c.author_name,
                    "author_email": c.author_email,
                    "author_url": c.author_url,
                    "ip": c.ip,
                    "user_agent": "",
                    "body_source": c.content,
                    "body_html": result.html,
                    "body_hash": sanitize.body_fingerprint(c.content),
                    "link_domain": domains[0][:255] if domains else "",
                    "status": c.status,
                    "visible": c.status is Status.APPROVED and (parent is None or parent.visible),
                    "sanitizer_report": list(result.removed),
                    "created_at": c.created_at,
                    "import_key": f"{self.site}:comment:{c.wp_id}",
                }
            )
        # Ids come back in row order, so siblings (all in one level) keep their date order.
        ids = db.session.scalars(
            insert(Comment).returning(Comment.id, sort_by_parameter_order=True), rows
        ).all()
        paths = []
        reasons = []
        for c, row, comment_id in zip(level, rows, ids, strict=True):
            parent = placed.get(c.parent) if c.parent else None
            segment = f"{comment_id:0{PATH_SEGMENT_WIDTH}d}"
            path = f"{parent.path}/{segment}" if parent else segment
            placed[c.wp_id] = _Placed(comment_id, path, row["depth"], row["visible"])
            paths.append({"id": comment_id, "path": path})
            if c.status is not Status.APPROVED:
                detail = f'WordPress status "{c.raw_status}" ({c.status.value})'
                reasons.append({"comment_id": comment_id, "rule": "imported", "detail": detail})
            self.summary.comments_created[c.status] += 1
            if c.kind is not CommentKind.COMMENT:
                self.summary.pings_created += 1
        db.session.execute(update(Comment), paths)
        if reasons:
            db.session.execute(insert(HoldReason), reasons)


def http_url(url: str) -> str:
    """The URL when it is http(s) without spaces or control characters, else ''."""
    url = url.strip()
    if not url.lower().startswith(("http://", "https://")):
        return ""
    if any(ch.isspace() or unicodedata.category(ch) == "Cc" for ch in url):
        return ""
    return url


def _free_username(login: str, display_name: str) -> str:
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


def _integer(element: Element, tag: str, required: bool = False) -> int:
    child = element.find(tag)
    raw = child.text.strip() if child is not None else ""
    if not raw and not required:
        return 0
    if not raw.isdigit():
        where = child.line if child is not None else element.line
        raise WXRError(where, f"<{tag}> should be a number, not {raw!r}")
    return int(raw)


def _wp_date(element: Element, tag: str) -> datetime | None:
    """'2024-05-01 12:30:00' as UTC; None when absent or WordPress's zero date."""
    child = element.find(tag)
    raw = child.text.strip() if child is not None else ""
    if not raw or raw == NO_DATE:
        return None
    try:
        return datetime.strptime(raw, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        raise WXRError(child.line, f"<{tag}> is not a date: {raw!r}") from None


def _rss_date(element: Element, tag: str) -> datetime | None:
    raw = element.findtext(tag).strip()
    if not raw:
        return None
    try:
        value = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
