"""Importing a Disqus comments export (XML): streamed, checked, all or nothing.

A Disqus export is a <disqus> document of <category>, <thread> (one per page that had
comments: its link and title) and <post> (one per comment: author, IP, message, its
thread and parent, whether deleted or spam) elements, in no guaranteed order. expat reads
it in chunks with DTDs refused; threads are kept (small), comments are written as soon as
their parent is, so only replies that came before their parent wait in memory.

A thread is matched to the post that had its link (an imported WordPress post's old
permalink, or its slug), else a post is made for it; comments naming no known thread go
under one post made for them, and the summary says so. Spam and deleted comments are
kept out of view (rejected, for moderators); a deleted comment that has replies becomes
an empty placeholder so the replies stay readable. Rows remember their Disqus id in
`import_key`: importing the same file again changes nothing. Nothing here commits.
`disqus_reader` beside this module streams the file.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import BinaryIO

from sqlalchemy import insert, select, update

from forum.extensions import db
from forum.models import Comment, CommentKind, HoldReason, Post, Status
from forum.services import counters, legacy, sanitize, tree
from forum.services import posts as post_service
from forum.tools.disqus_reader import DisqusError, DisqusReader
from forum.tools.wxr_reader import CHUNK_BYTES, Element
from forum.tools.wxr_values import (
    MAX_DEPTH,
    NAME_WIDTH,
    TITLE_WIDTH,
    URL_WIDTH,
    body_columns,
    http_url,
    legacy_path,
)

__all__ = [
    "CHUNK_BYTES",
    "NO_THREAD_TITLE",
    "DisqusError",
    "DisqusReader",
    "DisqusSummary",
    "import_disqus",
]

BATCH = 500
NO_THREAD_TITLE = "Comments from Disqus without a thread"
# A placeholder shows no text and no name (its email and IP stay, for moderators).
DELETED_NAME = "Deleted"


@dataclass
class DisqusSummary:
    """What an import did (or would do); every <post> in the file is counted once."""

    threads_matched: int = 0
    posts_created: int = 0
    comments_in_file: int = 0
    comments_created: Counter[Status] = field(default_factory=Counter)
    placeholders: int = 0
    comments_present: int = 0
    comments_skipped: Counter[str] = field(default_factory=Counter)
    repaired: Counter[str] = field(default_factory=Counter)
    assumed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        made = self.comments_created
        by_status = ", ".join(f"{made[s]} {s.value}" for s in Status if made[s])
        lines = [
            f"Threads: {self.threads_matched} matched to posts here, "
            f"{self.posts_created} posts created for the others.",
            f"Comments: {made.total()} imported ({by_status or 'none'}), "
            f"{self.placeholders} of them deleted but kept as placeholders for their replies; "
            f"{self.comments_present} already present; "
            f"{self.comments_skipped.total()} skipped; {self.comments_in_file} in the file.",
        ]
        if self.comments_skipped:
            lines.append("Comments skipped: " + _counts(self.comments_skipped) + ".")
        if self.repaired:
            lines.append("Repaired: " + _counts(self.repaired) + ".")
        lines += [f"Assumed: {line}" for line in self.assumed]
        if self.warnings:
            lines.append(f"Warnings: {len(self.warnings)} (listed above).")
        return "\n".join(lines)


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{n} {what}" for what, n in sorted(counter.items()))


def import_disqus(stream: BinaryIO, progress: Callable[[int], None] | None = None) -> DisqusSummary:
    """Import a Disqus export read from `stream`; raises DisqusError. The caller commits."""
    importer = _Importer()
    for element in DisqusReader().read(stream, progress):
        importer.element(element)
    importer.finish()
    return importer.summary


class _Skip(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass
class _Thread:
    link: str
    title: str
    created_at: datetime | None
    closed: bool
    line: int


@dataclass
class _Source:
    dsq_id: str
    thread: str
    parent: str
    line: int
    status: Status
    deleted: bool
    author_name: str
    author_email: str
    ip: str
    content: str
    created_at: datetime


@dataclass(frozen=True)
class _Placed:
    id: int
    post_id: int
    path: str
    depth: int
    visible: bool
    deleted: bool  # imported as deleted (rejected): a placeholder once a reply comes


class _Importer:
    def __init__(self) -> None:
        self.summary = DisqusSummary()
        self.forum = ""
        self.threads: dict[str, _Thread] = {}
        self.posts: dict[str, int] = {}  # thread dsq:id ("" for none) -> post id
        self.placed: dict[str, _Placed] = {}
        self.waiting: dict[str, list[_Source]] = defaultdict(list)
        self.ready: list[_Source] = []
        self.no_thread = 0

    def warn(self, line: int, record: str, message: str) -> None:
        self.summary.warnings.append(f"line {line}: {record}: {message}")

    def element(self, element: Element) -> None:
        if not self.forum:
            forum = element.findtext("forum").strip()
            self.forum = forum[:60] if forum else ""
        if element.tag == "thread":
            self.thread(element)
        elif element.tag == "post":
            self.summary.comments_in_file += 1
            try:
                source = self._source(element)
            except _Skip as skip:
                record = f"post {element.attrs.get('dsq:id', '?')[:30]}"
                self.warn(element.line, record, skip.message)
                self.summary.comments_skipped[skip.reason] += 1
                return
            if not source.parent or source.parent in self.placed:
                self._offer(source)
            else:
                self.waiting[source.parent].append(source)

    def thread(self, element: Element) -> None:
        dsq_id = element.attrs.get("dsq:id", "").strip()
        if not dsq_id:
            self.warn(element.line, "thread", "no dsq:id: its comments go with those of no thread")
            return
        raw_date = element.findtext("createdAt").strip()
        self.threads[dsq_id] = _Thread(
            link=http_url(element.findtext("link")),
            title=_plain(element.findtext("title")),
            created_at=_date(raw_date) if raw_date else None,
            closed=element.findtext("isClosed").strip() == "true",
            line=element.line,
        )

    def _source(self, element: Element) -> _Source:
        dsq_id = element.attrs.get("dsq:id", "").strip()
        if not dsq_id.isascii() or not dsq_id.isdigit() or len(dsq_id) > 30:
            raise _Skip("without a dsq:id", "no numeric dsq:id: skipped")
        created = _date(element.findtext("createdAt").strip())
        if created is None:
            raise _Skip("without a date", "no valid <createdAt>: skipped")
        thread = element.find("thread")
        parent = element.find("parent")
        deleted = element.findtext("isDeleted").strip() == "true"
        spam = element.findtext("isSpam").strip() == "true"
        author = element.find("author")
        name = email = ""
        if author is not None:
            name = _plain(author.findtext("name")) or _plain(author.findtext("username"))
            email = author.findtext("email").strip().casefold()
        if len(name) > NAME_WIDTH:
            raise _Skip("with an author name too long", f"author name over {NAME_WIDTH} characters")
        ip = element.findtext("ipAddress").strip()
        return _Source(
            dsq_id=dsq_id,
            thread=thread.attrs.get("dsq:id", "").strip() if thread is not None else "",
            parent=parent.attrs.get("dsq:id", "").strip() if parent is not None else "",
            line=element.line,
            status=Status.SPAM if spam else Status.REJECTED if deleted else Status.APPROVED,
            deleted=deleted and not spam,
            author_name=name or "Anonymous",
            author_email=email if len(email) <= 254 and "@" in email else "",
            ip=ip if len(ip) <= 45 else "",
            content=element.findtext("message"),
            created_at=created,
        )

    def _offer(self, source: _Source) -> None:
        self.ready.append(source)
        if len(self.ready) >= BATCH:
            self._flush()

    def _flush(self) -> None:
        """Write the ready comments, then the replies that waited for them, and so on."""
        while self.ready:
            batch, self.ready = self.ready, []
            self._insert(batch)
            for source in batch:
                self.ready.extend(self.waiting.pop(source.dsq_id, []))

    def finish(self) -> None:
        self._flush()
        # What still waits replies to a comment the file does not have (or to a loop).
        while self.waiting:
            orphans = sorted(
                (s for group in self.waiting.values() for s in group), key=lambda s: s.line
            )
            first = orphans[0]
            self.waiting[first.parent].remove(first)
            if not self.waiting[first.parent]:
                del self.waiting[first.parent]
            self._orphan(first, f"its parent {first.parent} is not in the file")
            self.ready.append(first)
            self._flush()
        if self.no_thread:
            self.summary.assumed.append(
                f"{self.no_thread} comment(s) named no thread the file declares: imported "
                f"under one post, {NO_THREAD_TITLE!r}."
            )

    def _orphan(self, source: _Source, why: str) -> None:
        self.warn(source.line, f"post {source.dsq_id}", f"{why}: imported at the top level")
        self.summary.repaired["moved to the top level (parent missing or a loop)"] += 1
        source.parent = ""

    def _key(self, what: str, dsq_id: str) -> str:
        return f"disqus:{self.forum or 'unknown'}:{what}:{dsq_id}"

    def _insert(self, batch: list[_Source]) -> None:
        keys = sorted({self._key("post", s.dsq_id) for s in batch})
        existing = {
            row.import_key: row
            for row in db.session.execute(
                select(
                    Comment.import_key,
                    Comment.id,
                    Comment.post_id,
                    Comment.path,
                    Comment.depth,
                    Comment.visible,
                ).where(Comment.import_key.in_(keys))
            )
        }
        rows, todo, parents = [], [], []
        seen: set[str] = set()
        for source in batch:
            key = self._key("post", source.dsq_id)
            if source.dsq_id in self.placed or source.dsq_id in seen:
                self.warn(source.line, f"post {source.dsq_id}", "appears twice: skipped")
                self.summary.comments_skipped["duplicates"] += 1
                continue
            seen.add(source.dsq_id)
            found = existing.get(key)
            if found is not None:
                self.summary.comments_present += 1
                self.placed[source.dsq_id] = _Placed(
                    found.id, found.post_id, found.path, found.depth, found.visible, False
                )
                continue
            post_id = self._post_for(source)
            parent = self.placed.get(source.parent) if source.parent else None
            if parent is not None and parent.post_id != post_id:
                self._orphan(source, f"its parent {source.parent} is in another thread")
                parent = None
            if parent is not None and parent.deleted and source.status is not Status.SPAM:
                parent = self._placeholder(source.parent, parent)
            if parent is not None and parent.depth + 1 > MAX_DEPTH:
                self._orphan(source, f"nested over {MAX_DEPTH} levels")
                parent = None
            parents.append(parent)
            todo.append(source)
            rows.append(
                {
                    "post_id": post_id,
                    "parent_id": parent.id if parent else None,
                    "kind": CommentKind.COMMENT,
                    "depth": parent.depth + 1 if parent else 0,
                    "path": "",
                    "author_name": sanitize.normalize_text(source.author_name),
                    "author_email": source.author_email,
                    "author_url": "",
                    "ip": source.ip,
                    "user_agent": "",
                    **body_columns(source.content),
                    "status": source.status,
                    "visible": source.status is Status.APPROVED
                    and (parent is None or parent.visible),
                    "created_at": source.created_at,
                    "import_key": self._key("post", source.dsq_id),
                }
            )
        if not rows:
            return
        ids = db.session.scalars(
            insert(Comment).returning(Comment.id, sort_by_parameter_order=True), rows
        ).all()
        counters.inserted(rows)
        paths, reasons = [], []
        for source, row, parent, comment_id in zip(todo, rows, parents, ids, strict=True):
            path = tree.path_of(comment_id, parent.path if parent else None)
            self.placed[source.dsq_id] = _Placed(
                comment_id, row["post_id"], path, row["depth"], row["visible"], source.deleted
            )
            paths.append({"id": comment_id, "path": path})
            if source.status is not Status.APPROVED:
                what = "spam" if source.status is Status.SPAM else "deleted"
                detail = f"Disqus: {what} ({source.status.value})"
                reasons.append({"comment_id": comment_id, "rule": "imported", "detail": detail})
            self.summary.comments_created[source.status] += 1
        db.session.execute(update(Comment), paths)
        if reasons:
            db.session.execute(insert(HoldReason), reasons)

    def _placeholder(self, dsq_id: str, placed: _Placed) -> _Placed:
        """A deleted comment with a reply: shown empty, so the reply can be read."""
        above = True
        if "/" in placed.path:
            grand_id = int(placed.path.rsplit("/", 2)[-2])
            above = bool(db.session.scalar(select(Comment.visible).where(Comment.id == grand_id)))
        was, user_id, email = db.session.execute(
            select(Comment.status, Comment.user_id, Comment.author_email).where(
                Comment.id == placed.id
            )
        ).one()
        counters.moved(placed.post_id, was, Status.APPROVED, counters.author_of(user_id, email))
        db.session.execute(
            update(Comment)
            .where(Comment.id == placed.id)
            .values(
                status=Status.APPROVED,
                visible=above,
                author_name=DELETED_NAME,
                author_url="",
                **body_columns(""),
            )
        )
        db.session.execute(HoldReason.__table__.delete().where(HoldReason.comment_id == placed.id))
        self.summary.comments_created[Status.REJECTED] -= 1
        self.summary.comments_created[Status.APPROVED] += 1
        self.summary.placeholders += 1
        now = _Placed(placed.id, placed.post_id, placed.path, placed.depth, above, False)
        self.placed[dsq_id] = now
        return now

    def _post_for(self, source: _Source) -> int:
        """The post a comment's thread is: matched by link, imported before, or made now."""
        thread_id = source.thread if source.thread in self.threads else ""
        if thread_id != source.thread:
            self.warn(
                source.line,
                f"post {source.dsq_id}",
                f"its thread {source.thread[:30]!r} is not in the file: filed under "
                f"{NO_THREAD_TITLE!r}",
            )
        if not thread_id:
            self.no_thread += 1
        if thread_id in self.posts:
            return self.posts[thread_id]
        key = self._key("thread", thread_id or "none")
        post_id = db.session.scalar(select(Post.id).where(Post.import_key == key))
        thread = self.threads.get(thread_id)
        if post_id is None and thread is not None and thread.link:
            path = legacy_path(thread.link)
            post = legacy.post_for_old_path(path) if path else None
            if post is not None:
                post_id = post.id
                self.summary.threads_matched += 1
        if post_id is None:
            post_id = self._create_post(key, thread, source)
        self.posts[thread_id] = post_id
        return post_id

    def _create_post(self, key: str, thread: _Thread | None, source: _Source) -> int:
        title = (thread.title if thread else "") or NO_THREAD_TITLE
        if thread is not None and not thread.title:
            title = thread.link or f"Disqus thread {key.rsplit(':', 1)[1]}"
        title = title[:TITLE_WIDTH]
        link = thread.link if thread and len(thread.link) <= URL_WIDTH else ""
        created = (thread.created_at if thread else None) or source.created_at
        body = (
            f'<p>Comments from <a href="{link}">{link}</a>, moved here from Disqus.</p>'
            if link
            else "<p>Comments moved here from Disqus.</p>"
        )
        self.summary.posts_created += 1
        return db.session.execute(
            insert(Post)
            .values(
                author_id=None,
                title=title,
                slug=post_service.slugify(title),
                body_source=body,
                body_html=sanitize.sanitize_post(body).html,
                created_at=created,
                updated_at=created,
                comments_open=not (thread.closed if thread else False),
                import_key=key,
                original_url=link or None,
                legacy_path=legacy_path(link) if link else None,
            )
            .returning(Post.id)
        ).scalar_one()


def _plain(markup: str) -> str:
    return sanitize.excerpt(markup, length=len(markup) + 1)


def _date(raw: str) -> datetime | None:
    """Disqus's ISO 8601 dates ("2013-01-09T19:10:22Z"), as UTC."""
    try:
        value = datetime.fromisoformat(raw.strip())
    except ValueError:
        return None
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
