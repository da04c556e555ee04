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

This module reads the header, authors and posts; beside it: `wxr_reader` (the streaming
XML reader), `wxr_comments` (a post's comments, a thread level at a time), `wxr_values`
(checked values and column widths, shared with the Disqus import) and `wxr_summary`.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import BinaryIO
from urllib.parse import urlsplit

from sqlalchemy import insert, select

from forum.extensions import db
from forum.models import Post, Tag, User, post_tag, utcnow
from forum.services import accounts, sanitize
from forum.services import posts as post_service
from forum.tools.wxr_comments import CommentWriter
from forum.tools.wxr_reader import CHUNK_BYTES, Element, WXRError, WXRReader
from forum.tools.wxr_summary import ImportSummary
from forum.tools.wxr_values import (
    MAX_DEPTH,
    TAG_DOMAINS,
    TAG_WIDTH,
    TITLE_WIDTH,
    URL_WIDTH,
    VERSION_RE,
    Skip,
    body_columns,
    clip,
    free_username,
    http_url,
    id_in_link,
    is_id,
    legacy_path,
    plain,
    post_slug,
    rss_date,
    site_key,
    wp_date,
)

__all__ = [  # what the command and the tests use, wherever it is defined
    "CHUNK_BYTES",
    "MAX_DEPTH",
    "Element",
    "ImportSummary",
    "WXRError",
    "WXRReader",
    "body_columns",
    "http_url",
    "import_wxr",
    "legacy_path",
]


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
    importer.comments.finish()
    return importer.summary


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
        self.comments = CommentWriter(self.summary, self.warn, self.users_by_wp_id, update)

    def warn(self, line: int | None, record: str, message: str) -> None:
        where = f"line {line}: " if line else ""
        self.summary.warnings.append(f"{where}{record}: {message}")

    def check_header(self, line: int | None) -> str:
        """The site part of every import key; checks this is a WXR file first."""
        if self.site is None:
            self.site = self.comments.site = self._site(line)
        return self.site

    def _site(self, line: int | None) -> str:
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
                return site_key(parts.netloc.lower() + parts.path)
        title = html.unescape(self.header.get("title", ("", 0))[0]).strip()
        self.summary.assumed.append(
            f"no <wp:base_site_url> or channel <link>: the blog is told by its title "
            f"({title or 'none'!r}); another such file with the same title is the same blog."
        )
        return site_key("untitled/" + post_service.slugify(title or "untitled", 60))

    # Authors --------------------------------------------------------------------

    def author(self, element: Element) -> None:
        self.check_header(element.line)
        login = element.findtext("wp:author_login").strip()
        if not login:
            self.warn(element.line, "author", "no <wp:author_login>: skipped")
            self.summary.skipped["author(s) without a login"] += 1
            return
        display = plain(element.findtext("wp:author_display_name"))[:250]
        if display:
            self.display_names[login] = display
        user_id = self._user(login, element.findtext("wp:author_email").strip(), display)
        wp_id = element.findtext("wp:author_id").strip()
        if is_id(wp_id):
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
            username = free_username(login, display_name)
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
            self._skip_item(comments, f"{clip(post_type)} item(s)", f"on {clip(post_type)}s")
            return
        if status != "publish":
            self._skip_item(comments, f"{clip(status)} post(s)", f"on {clip(status)} posts")
            return
        if element.findtext("wp:post_password"):
            self._skip_item(comments, "password-protected post(s)", "on password-protected posts")
            return
        if not any(child.tag.startswith("wp:") for child in element.children):
            self.warn(element.line, "item", "no element of the WordPress namespace: skipped")
            self._skip_item(comments, "item(s) not from WordPress", "on items not from WordPress")
            return
        raw_id = element.findtext("wp:post_id").strip()
        if is_id(raw_id):
            wp_id = int(raw_id)
        else:
            guessed = id_in_link(element.findtext("guid")) or id_in_link(element.findtext("link"))
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
        except Skip as skip:
            self.warn(element.line, f"post {wp_id}", skip.message)
            self._skip_item(comments, skip.reason, f"on {skip.reason}")
            return
        sources = []
        for c in comments:
            try:
                sources.append(self.comments.source(c))
            except Skip as skip:
                self.warn(c.line, f"comment {c.findtext('wp:comment_id').strip()}", skip.message)
                self.summary.comments_skipped[skip.reason] += 1
        self.comments.write(post_id, sources)

    def _skip_item(self, comments: list[Element], item_reason: str, comment_reason: str) -> None:
        self.summary.skipped[item_reason] += 1
        if comments:
            self.summary.comments_skipped[comment_reason] += len(comments)

    def _post_fields(self, element: Element, wp_id: int) -> dict[str, object]:
        """The columns a post takes from its item (raises Skip when one does not fit)."""
        title = plain(element.findtext("title")) or "(no title)"
        if len(title) > TITLE_WIDTH:
            raise Skip("posts with a title too long", f"title over {TITLE_WIDTH} characters")
        body = element.findtext("content:encoded")
        try:
            created = (
                wp_date(element, "wp:post_date_gmt")
                or wp_date(element, "wp:post_date")
                or rss_date(element, "pubDate")
            )
            problem = "no date"
        except Skip as skip:
            created, problem = None, skip.message
        if created is None:
            # What WordPress does too: the post is dated when it is imported.
            created = utcnow()
            self.warn(element.line, f"post {wp_id}", f"{problem}: dated at the import")
            self.summary.repaired["posts dated at the import (no valid date)"] += 1
        try:
            modified = wp_date(element, "wp:post_modified_gmt") or created
        except Skip:
            modified = created
        link = http_url(element.findtext("link"))
        if len(link) > URL_WIDTH:
            link = ""
        return {
            "title": title,
            "slug": post_slug(element.findtext("wp:post_name"), title),
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
            name = plain(c.text)
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
