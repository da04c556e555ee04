"""Importing a WordPress export (WXR 1.0-1.2): streamed, checked, all or nothing.

expat reads the file in chunks with DTDs refused (so no entity expansion), and only the
channel header and the current <item> are held in memory. An item's comments are
buffered, checked (status, type, parent, dates) and written one thread level at a
time. Every row remembers its source id in `import_key`, so importing the same file
again finds everything present and writes nothing; with `update=True` a newer export
of the same blog re-applies statuses and edits. A malformed or hostile file is refused
whole (WXRError); one odd record never is: it is skipped or repaired with a warning
that names its line, and counted in the summary. Nothing here commits: the caller
commits, or rolls back on WXRError or for a dry run.
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
from urllib.parse import parse_qs, unquote, urlsplit
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
    Tag,
    User,
    post_tag,
    utcnow,
)
from forum.services import accounts, audit, sanitize, tree
from forum.services import moderation as moderation_service
from forum.services import posts as post_service

CHUNK_BYTES = 64 * 1024
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

_WP_NS = ("http://wordpress.org/export/", "https://wordpress.org/export/")
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
    """What an import did (or, in a dry run, would do); every comment in the file is in
    exactly one of comments_created, comments_present and comments_skipped."""

    posts_created: int = 0
    posts_present: int = 0
    posts_updated: int = 0
    comments_in_file: int = 0
    comments_created: Counter[Status] = field(default_factory=Counter)
    pings_created: int = 0
    comments_present: int = 0
    comments_updated: int = 0
    comments_skipped: Counter[str] = field(default_factory=Counter)
    repaired: Counter[str] = field(default_factory=Counter)
    authors_created: int = 0
    authors_matched: int = 0
    tags_created: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    assumed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        made = self.comments_created
        by_status = ", ".join(f"{made[s]} {s.value}" for s in Status if made[s])
        posts = f"Posts: {self.posts_created} imported, {self.posts_present} already present"
        if self.posts_updated:
            posts += f" ({self.posts_updated} updated)"
        present = f"{self.comments_present} already present"
        if self.comments_updated:
            present += f" ({self.comments_updated} updated)"
        lines = [
            posts + ".",
            f"Comments: {made.total()} imported ({by_status or 'none'}), "
            f"{self.pings_created} of them pingbacks or trackbacks; {present}; "
            f"{self.comments_skipped.total()} skipped; "
            f"{self.comments_in_file} in the file.",
        ]
        if self.comments_skipped:
            lines.append("Comments skipped: " + _counts(self.comments_skipped) + ".")
        if self.repaired:
            lines.append("Repaired: " + _counts(self.repaired) + ".")
        lines += [
            f"Authors: {self.authors_created} created, {self.authors_matched} matched.",
            f"Tags: {self.tags_created} created.",
        ]
        if self.skipped:
            lines.append("Skipped: " + _counts(self.skipped))
        lines += [f"Assumed: {line}" for line in self.assumed]
        if self.warnings:
            lines.append(f"Warnings: {len(self.warnings)} (listed above).")
        return "\n".join(lines)


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{n} {what}" for what, n in sorted(counter.items()))


def import_wxr(
    stream: BinaryIO,
    progress: Callable[[int], None] | None = None,
    update: bool = False,
) -> ImportSummary:
    """Import a WXR file read from `stream`; raises WXRError. The caller commits."""
    reader = WXRReader()
    importer = _Importer(reader, update)
    for kind, element in reader.read(stream, progress):
        if kind == "author":
            importer.author(element)
        else:
            importer.item(element)
    importer.check_header(None)
    importer.finish()
    return importer.summary


class WXRReader:
    """Stream a WXR file as ("author", element) and ("item", element) events.

    Channel-level elements without children (title, link, wp:base_site_url, ...) are
    collected in `header` as (text, line); categories and terms are dropped.
    `wordpress` tells whether any element of the WordPress namespace was read yet.
    """

    def __init__(self) -> None:
        self.header: dict[str, tuple[str, int]] = {}
        self.wordpress = False
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
        if tag.startswith("wp:"):
            self.wordpress = True
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
    """'http://wordpress.org/export/1.2/ comment' -> 'wp:comment'; no namespace: as is.

    Both spellings of the WordPress namespace (http and https) are the same namespace.
    """
    namespace, _, local = name.rpartition(" ")
    if not namespace:
        return local
    if namespace.startswith(_WP_NS):
        return f"excerpt:{local}" if namespace.rstrip("/").endswith("/excerpt") else f"wp:{local}"
    prefix = _NAMESPACES.get(namespace)
    return f"{prefix}:{local}" if prefix else f"{{{namespace}}}{local}"


class _Skip(Exception):
    """One record cannot be imported: it is skipped for `reason` (a summary count)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass
class _SourceComment:
    wp_id: int
    parent: int
    line: int
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
    def __init__(self, reader: WXRReader, update: bool) -> None:
        self.reader = reader
        self.header = reader.header
        self.update = update
        self.summary = ImportSummary()
        self.site: str | None = None
        self.users_by_login: dict[str, int] = {}
        self.users_by_wp_id: dict[int, int] = {}
        self.display_names: dict[str, str] = {}
        self.post_lines: dict[int, int] = {}
        self.changed: list[Comment] = []
        self.batch = audit.new_batch()

    def warn(self, line: int | None, record: str, message: str) -> None:
        where = f"line {line}: " if line else ""
        self.summary.warnings.append(f"{where}{record}: {message}")

    def check_header(self, line: int | None) -> str:
        """The site part of every import key; checks this is a WXR file first."""
        if self.site is not None:
            return self.site
        version, version_line = self.header.get("wp:wxr_version", ("", line))
        if not version:
            if not self.reader.wordpress:
                raise WXRError(
                    line,
                    "not a WordPress export: no <wp:wxr_version> in the channel "
                    "and no WordPress elements",
                )
            self.summary.assumed.append("no <wp:wxr_version> in the channel: read as WXR 1.0.")
        elif not VERSION_RE.fullmatch(version):
            raise WXRError(version_line, f"invalid WXR version {version!r}")
        elif not version.startswith("1."):
            raise WXRError(version_line, f"unsupported WXR version {version!r}")
        for tag in ("wp:base_blog_url", "wp:base_site_url", "link"):
            url = self.header.get(tag, ("", 0))[0]
            parts = urlsplit(url) if http_url(url) else None
            if parts is not None and parts.netloc:
                if tag == "link":
                    self.summary.assumed.append(
                        f"no <wp:base_site_url>: the blog is {url} (the channel <link>)."
                    )
                self.site = _site_key(parts.netloc.lower() + parts.path)
                return self.site
        title = html.unescape(self.header.get("title", ("", 0))[0]).strip()
        self.site = _site_key("untitled/" + post_service.slugify(title or "untitled", 60))
        self.summary.assumed.append(
            f"no <wp:base_site_url> or channel <link>: the blog is told by its title "
            f"({title or 'none'!r}); another such file with the same title is the same blog."
        )
        return self.site

    # Authors --------------------------------------------------------------------

    def author(self, element: Element) -> None:
        self.check_header(element.line)
        login = element.findtext("wp:author_login").strip()
        if not login:
            self.warn(element.line, "author", "no <wp:author_login>: skipped")
            self.summary.skipped["author(s) without a login"] += 1
            return
        display = _plain(element.findtext("wp:author_display_name"))[:250]
        if display:
            self.display_names[login] = display
        user_id = self._user(login, element.findtext("wp:author_email").strip(), display)
        wp_id = element.findtext("wp:author_id").strip()
        if _is_id(wp_id):
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
            if display_name and display_name != username:
                user.display_name = display_name
            db.session.flush()
            user_id = user.id
            self.summary.authors_created += 1
        self.users_by_login[login] = user_id
        return user_id

    # Posts ----------------------------------------------------------------------

    def item(self, element: Element) -> None:
        self.check_header(element.line)
        comments = element.findall("wp:comment")
        self.summary.comments_in_file += len(comments)
        post_type = element.findtext("wp:post_type").strip() or "post"
        status = element.findtext("wp:status").strip() or "publish"
        if post_type != "post":
            self._skip_item(comments, f"{_clip(post_type)} item(s)", f"on {_clip(post_type)}s")
            return
        if status != "publish":
            self._skip_item(comments, f"{_clip(status)} post(s)", f"on {_clip(status)} posts")
            return
        if element.findtext("wp:post_password"):
            self._skip_item(comments, "password-protected post(s)", "on password-protected posts")
            return
        if not any(child.tag.startswith("wp:") for child in element.children):
            self.warn(element.line, "item", "no element of the WordPress namespace: skipped")
            self._skip_item(comments, "item(s) not from WordPress", "on items not from WordPress")
            return
        raw_id = element.findtext("wp:post_id").strip()
        if _is_id(raw_id):
            wp_id = int(raw_id)
        else:
            guessed = _id_in_link(element.findtext("guid")) or _id_in_link(element.findtext("link"))
            if guessed is None:
                self.warn(element.line, "post", f"<wp:post_id> {raw_id!r} is not an id: skipped")
                self._skip_item(comments, "post(s) without an id", "on posts without an id")
                return
            wp_id = guessed
            self.warn(element.line, f"post {wp_id}", "no <wp:post_id>: the id in its ?p= link used")
            self.summary.repaired["post ids taken from their ?p= links"] += 1
        if wp_id in self.post_lines:
            self.warn(
                element.line,
                f"post {wp_id}",
                f"appears twice (first at line {self.post_lines[wp_id]}): this copy is skipped",
            )
            self._skip_item(comments, "duplicate post(s)", "on duplicate posts")
            return
        self.post_lines[wp_id] = element.line
        key = f"{self.site}:post:{wp_id}"
        post = db.session.scalars(select(Post).where(Post.import_key == key)).one_or_none()
        try:
            if post is None:
                post_id = self._create_post(element, key, wp_id)
                self.summary.posts_created += 1
            else:
                post_id = post.id
                self.summary.posts_present += 1
                if self.update:
                    self._update_post(element, post, wp_id)
        except _Skip as skip:
            self.warn(element.line, f"post {wp_id}", skip.message)
            self._skip_item(comments, skip.reason, f"on {skip.reason}")
            return
        sources = []
        for c in comments:
            try:
                sources.append(self._source_comment(c))
            except _Skip as skip:
                self.warn(c.line, f"comment {c.findtext('wp:comment_id').strip()}", skip.message)
                self.summary.comments_skipped[skip.reason] += 1
        self._import_comments(post_id, sources)

    def _skip_item(self, comments: list[Element], item_reason: str, comment_reason: str) -> None:
        self.summary.skipped[item_reason] += 1
        if comments:
            self.summary.comments_skipped[comment_reason] += len(comments)

    def _post_fields(self, element: Element, wp_id: int) -> dict[str, object]:
        """The columns a post takes from its item (raises _Skip when one does not fit)."""
        title = _plain(element.findtext("title")) or "(no title)"
        if len(title) > TITLE_WIDTH:
            raise _Skip("posts with a title too long", f"title over {TITLE_WIDTH} characters")
        body = element.findtext("content:encoded")
        try:
            created = (
                _wp_date(element, "wp:post_date_gmt")
                or _wp_date(element, "wp:post_date")
                or _rss_date(element, "pubDate")
            )
            problem = "no date"
        except _Skip as skip:
            created, problem = None, skip.message
        if created is None:
            # What WordPress does too: the post is dated when it is imported.
            created = utcnow()
            self.warn(element.line, f"post {wp_id}", f"{problem}: dated at the import")
            self.summary.repaired["posts dated at the import (no valid date)"] += 1
        try:
            modified = _wp_date(element, "wp:post_modified_gmt") or created
        except _Skip:
            modified = created
        link = http_url(element.findtext("link"))
        if len(link) > URL_WIDTH:
            link = ""
        return {
            "title": title,
            "slug": _slug(element.findtext("wp:post_name"), title),
            "body_source": body,
            "body_html": sanitize.sanitize_post(body).html,
            "created_at": created,
            "updated_at": max(created, modified),
            "comments_open": element.findtext("wp:comment_status").strip() != "closed",
            "original_url": link or None,
            "legacy_path": legacy_path(link),
            "wp_id": wp_id,
        }

    def _create_post(self, element: Element, key: str, wp_id: int) -> int:
        values = self._post_fields(element, wp_id)
        creator = element.findtext("dc:creator").strip()
        author_id = None
        if creator:
            author_id = self._user(creator, "", self.display_names.get(creator, creator))
        post_id = db.session.execute(
            insert(Post).values(author_id=author_id, import_key=key, **values).returning(Post.id)
        ).scalar_one()
        tags = self._tags(element, wp_id)
        if tags:
            db.session.execute(
                insert(post_tag), [{"post_id": post_id, "tag_id": tag.id} for tag in tags]
            )
        return post_id

    def _tags(self, element: Element, wp_id: int) -> list[Tag]:
        names: dict[str, str] = {}
        for c in element.findall("category"):
            if c.attrs.get("domain") not in TAG_DOMAINS:
                continue
            name = _plain(c.text)
            if len(name) > TAG_WIDTH:
                self.warn(c.line, f"post {wp_id}", f"tag over {TAG_WIDTH} characters: left out")
                self.summary.skipped["tag(s) too long"] += 1
            elif name:
                names.setdefault(name.casefold(), name)
        if not names:
            return []
        tags = post_service.get_or_create_tags(list(names.values()))
        self.summary.tags_created += sum(1 for tag in tags if tag.id is None)
        db.session.flush()
        return tags

    def _update_post(self, element: Element, post: Post, wp_id: int) -> None:
        """Re-apply title, body and comments open/closed from a newer export."""
        values = self._post_fields(element, wp_id)
        for key in ("original_url", "legacy_path", "wp_id"):
            if getattr(post, key) is None:  # imported before posts remembered their old links
                setattr(post, key, values[key])
        changed = []
        for key in ("title", "body_source", "comments_open"):
            if getattr(post, key) != values[key]:
                changed.append("text" if key == "body_source" else key.replace("_", " "))
                setattr(post, key, values[key])
        if "text" in changed:
            post.body_html = values["body_html"]  # type: ignore[assignment]
        if changed:
            post.updated_at = max(post.updated_at, values["updated_at"])  # type: ignore[type-var]
            self.summary.posts_updated += 1
            self.summary.changes.append(f"post {wp_id}: {', '.join(changed)} changed")

    # Comments -------------------------------------------------------------------

    def _source_comment(self, element: Element) -> _SourceComment:
        raw_id = element.findtext("wp:comment_id").strip()
        if not _is_id(raw_id):
            raise _Skip("without an id", f"<wp:comment_id> {raw_id!r} is not an id: skipped")
        wp_id = int(raw_id)
        record = f"comment {wp_id}"
        raw_type = element.findtext("wp:comment_type").strip()
        if raw_type == NOTE:
            raise _Skip("notes (private, never published)", "a private note: skipped")
        if raw_type not in KINDS:
            raise _Skip(
                f"of type {_clip(raw_type)!r}",
                f"unknown comment type {_clip(raw_type)!r} (expected comment, pingback or "
                "trackback): skipped",
            )
        approved = element.find("wp:comment_approved")
        line = approved.line if approved is not None else element.line
        raw_status = approved.text.strip() if approved is not None else ""
        status = STATUSES.get(raw_status)
        if status is None:
            status = Status.PENDING
            what = "empty" if not raw_status else f"unknown ({_clip(raw_status)!r})"
            self.warn(line, record, f"{what} <wp:comment_approved>: held as pending")
            self.summary.repaired["held as pending (empty or unknown status)"] += 1
        try:
            created = _wp_date(element, "wp:comment_date_gmt") or _wp_date(
                element, "wp:comment_date"
            )
        except _Skip as skip:
            raise _Skip("with a bad date", f"{skip.message}: skipped") from None
        if created is None:
            raise _Skip("without a date", "no date: skipped")
        name = sanitize.normalize_text(_plain(element.findtext("wp:comment_author")))
        if len(name) > NAME_WIDTH:
            raise _Skip("with an author name too long", f"author name over {NAME_WIDTH} characters")
        email = element.findtext("wp:comment_author_email").strip().casefold()
        url = http_url(element.findtext("wp:comment_author_url"))
        ip = element.findtext("wp:comment_author_IP").strip()
        for value, width, what in ((email, 254, "email"), (url, 500, "URL"), (ip, 45, "IP")):
            if len(value) > width:
                self.warn(element.line, record, f"author {what} over {width} characters: left out")
        parent = element.findtext("wp:comment_parent").strip()
        user = element.findtext("wp:comment_user_id").strip()
        return _SourceComment(
            wp_id=wp_id,
            parent=int(parent) if _is_id(parent) else 0,
            line=element.line,
            kind=KINDS[raw_type],
            status=status,
            raw_status=raw_status,
            author_name=name or "Anonymous",
            author_email=email if len(email) <= 254 else "",
            author_url=url if len(url) <= 500 else "",
            ip=ip if len(ip) <= 45 else "",
            wp_user_id=int(user) if _is_id(user) else 0,
            content=element.findtext("wp:comment_content"),
            created_at=created,
        )

    def _import_comments(self, post_id: int, comments: list[_SourceComment]) -> None:
        """Write the comments not imported before, parents first, a thread level at a time."""
        by_wp_id: dict[int, _SourceComment] = {}
        for comment in comments:
            if comment.wp_id in by_wp_id:
                self.warn(comment.line, f"comment {comment.wp_id}", "appears twice: skipped")
                self.summary.comments_skipped["duplicates"] += 1
                continue
            by_wp_id[comment.wp_id] = comment
        comments = list(by_wp_id.values())
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
                self._orphan(comment, f"its parent {comment.parent} is not a comment of this post")
        todo = sorted(
            (c for c in comments if c.wp_id not in existing),
            key=lambda c: (c.created_at, c.wp_id),
        )
        present = [c for c in comments if c.wp_id in existing]
        self.summary.comments_present += len(present)
        if self.update and present:
            self._update_comments(present)
        while todo:
            level = [c for c in todo if not c.parent or c.parent in placed]
            if not level:
                # Every comment left is in (or under) a loop of replies: break it at the oldest.
                first = todo[0]
                self._orphan(first, "it is in a loop of replies to replies")
                level = [first]
            self._insert_level(post_id, level, placed)
            todo = [c for c in todo if c.wp_id not in placed]

    def _orphan(self, comment: _SourceComment, why: str) -> None:
        self.warn(comment.line, f"comment {comment.wp_id}", f"{why}: imported at the top level")
        self.summary.repaired["moved to the top level (parent missing or a loop)"] += 1
        comment.parent = 0

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

    def _update_comments(self, comments: list[_SourceComment]) -> None:
        """Re-apply status, text and author details of comments imported before."""
        keys = {f"{self.site}:comment:{c.wp_id}": c for c in comments}
        wanted = sorted(keys)
        now = utcnow()
        for start in range(0, len(wanted), KEY_CHUNK):
            rows = db.session.scalars(
                select(Comment).where(Comment.import_key.in_(wanted[start : start + KEY_CHUNK]))
            )
            for comment in rows:
                self._update_comment(comment, keys[comment.import_key], now)

    def _update_comment(self, comment: Comment, source: _SourceComment, now: datetime) -> None:
        changed = []
        if comment.body_source != source.content:
            before = {key: getattr(comment, key) for key in BODY_COLUMNS}
            result = body_columns(source.content)
            for key, value in result.items():
                setattr(comment, key, value)
            comment.edited_at = now
            audit.log(
                comment.id,
                None,
                "import",
                None,
                None,
                self.batch,
                "text updated from a newer export",
                data={"before": before},
                now=now,
            )
            changed.append("text edited")
        for key in ("author_name", "author_email", "author_url"):
            if getattr(comment, key) != getattr(source, key):
                setattr(comment, key, getattr(source, key))
                changed.append(key.replace("_", " ") + " changed")
        if comment.status is not source.status:
            old = comment.status
            audit.log(
                comment.id,
                None,
                "import",
                old,
                source.status,
                self.batch,
                f'WordPress status "{source.raw_status}" in a newer export',
                now=now,
            )
            moderation_service.set_status(comment, source.status, None, now)
            self.changed.append(comment)
            changed.append(f"{old.value} -> {source.status.value}")
        if changed:
            self.summary.comments_updated += 1
            self.summary.changes.append(f"comment {source.wp_id}: {', '.join(changed)}")

    def finish(self) -> None:
        """After the last item: visibility of the threads whose statuses changed."""
        if self.changed:
            tree.refresh_many(self.changed)

    def _insert_level(
        self, post_id: int, level: list[_SourceComment], placed: dict[int, _Placed]
    ) -> None:
        rows = []
        parents = []
        for c in level:
            parent = placed.get(c.parent) if c.parent else None
            if parent is not None and parent.depth + 1 > MAX_DEPTH:
                # Attached one level up instead: a thread path holds MAX_DEPTH levels.
                grand_path = parent.path.rsplit("/", 1)[0]
                parent = _Placed(
                    int(grand_path.rsplit("/", 1)[-1]), grand_path, parent.depth - 1, parent.visible
                )
                self.warn(
                    c.line,
                    f"comment {c.wp_id}",
                    f"nested over {MAX_DEPTH} levels: attached beside its parent",
                )
                self.summary.repaired[f"attached at level {MAX_DEPTH} (nested deeper)"] += 1
            parents.append(parent)
            depth = parent.depth + 1 if parent else 0
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
                    **body_columns(c.content),
                    "status": c.status,
                    "visible": c.status is Status.APPROVED and (parent is None or parent.visible),
                    "created_at": c.created_at,
                    "import_key": f"{self.site}:comment:{c.wp_id}",
                    "wp_id": c.wp_id,
                }
            )
        # Ids come back in row order, so siblings (all in one level) keep their date order.
        ids = db.session.scalars(
            insert(Comment).returning(Comment.id, sort_by_parameter_order=True), rows
        ).all()
        paths = []
        reasons = []
        for c, row, parent, comment_id in zip(level, rows, parents, ids, strict=True):
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


BODY_COLUMNS = ("body_source", "body_html", "body_hash", "link_domain", "sanitizer_report")


def body_columns(content: str) -> dict[str, object]:
    """The body columns of an imported comment: kept as written, shown sanitized."""
    result = sanitize.sanitize_comment(content)
    domains = sanitize.link_domains(result.html)
    return {
        "body_source": content,
        "body_html": result.html,
        "body_hash": sanitize.body_fingerprint(content),
        "link_domain": domains[0][:255] if domains else "",
        "sanitizer_report": list(result.removed),
    }


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


def _id_in_link(url: str) -> int | None:
    """123 for "https://blog.example/?p=123" (WordPress's plain permalink and guid)."""
    try:
        values = parse_qs(urlsplit(url.strip()).query).get("p", [])
    except ValueError:
        return None
    return int(values[0]) if len(values) == 1 and _is_id(values[0]) else None


def _site_key(site: str) -> str:
    site = site.rstrip("/")
    if len(site) > 120:
        site = "sha1-" + hashlib.sha1(site.encode(), usedforsecurity=False).hexdigest()
    return f"wxr:{site}"


def _plain(markup: str) -> str:
    """Text for a title or a name: entities decoded, markup removed, spaces collapsed."""
    return sanitize.excerpt(markup, length=len(markup) + 1)


def _slug(post_name: str, title: str) -> str:
    """The file's own slug (wp:post_name, percent-decoded) when usable, else one made
    from the title."""
    name = unquote(post_name.strip())
    if name and SLUG_RE.fullmatch(name) and len(name) <= SLUG_WIDTH:
        return name
    return post_service.slugify(name or title)


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _is_id(raw: str) -> bool:
    """ASCII digits only, 1 to 2**63-1: ids a 64-bit column holds."""
    return raw.isascii() and raw.isdigit() and 0 < int(raw) <= MAX_ID


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


def _wp_date(element: Element, tag: str) -> datetime | None:
    """'2024-05-01 12:30:00' as UTC; None when absent or WordPress's zero date."""
    child = element.find(tag)
    raw = child.text.strip() if child is not None else ""
    if not raw or raw == NO_DATE:
        return None
    try:
        return datetime.strptime(raw, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        raise _Skip("with a bad date", f"<{tag}> is not a date ({_clip(raw)!r})") from None


def _rss_date(element: Element, tag: str) -> datetime | None:
    raw = element.findtext(tag).strip()
    if not raw:
        return None
    try:
        value = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
