"""A WXR item's comments: read and checked, then written a thread level at a time, parents
first; with `update`, comments imported before take a newer export's status and text."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update

from forum.extensions import db
from forum.models import Comment, CommentKind, HoldReason, Status, utcnow
from forum.services import audit, counters, sanitize, tree
from forum.services import comments as comment_service
from forum.services import moderation as moderation_service
from forum.tools.wxr_reader import Element
from forum.tools.wxr_summary import ImportSummary
from forum.tools.wxr_values import (
    BODY_COLUMNS,
    KEY_CHUNK,
    KINDS,
    MAX_DEPTH,
    NAME_WIDTH,
    NOTE,
    STATUSES,
    Skip,
    body_columns,
    clip,
    http_url,
    is_id,
    plain,
    wp_date,
)


@dataclass
class SourceComment:
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
class Placed:
    id: int
    path: str
    depth: int
    visible: bool


class CommentWriter:
    """Reads and writes the comments of one import; `site` is set once the header is read."""

    def __init__(
        self,
        summary: ImportSummary,
        warn: Callable[[int | None, str, str], None],
        users_by_wp_id: dict[int, int],
        update: bool,
    ) -> None:
        self.summary = summary
        self.warn = warn
        self.users_by_wp_id = users_by_wp_id
        self.update = update
        self.site = ""
        self.changed: list[Comment] = []
        self.batch = audit.new_batch()

    def source(self, element: Element) -> SourceComment:
        raw_id = element.findtext("wp:comment_id").strip()
        if not is_id(raw_id):
            raise Skip("without an id", f"<wp:comment_id> {raw_id!r} is not an id: skipped")
        wp_id = int(raw_id)
        record = f"comment {wp_id}"
        raw_type = element.findtext("wp:comment_type").strip()
        if raw_type == NOTE:
            raise Skip("notes (private, never published)", "a private note: skipped")
        if raw_type not in KINDS:
            raise Skip(
                f"of type {clip(raw_type)!r}",
                f"unknown comment type {clip(raw_type)!r} (expected comment, pingback or "
                "trackback): skipped",
            )
        approved = element.find("wp:comment_approved")
        line = approved.line if approved is not None else element.line
        raw_status = approved.text.strip() if approved is not None else ""
        status = STATUSES.get(raw_status)
        if status is None:
            status = Status.PENDING
            what = "empty" if not raw_status else f"unknown ({clip(raw_status)!r})"
            self.warn(line, record, f"{what} <wp:comment_approved>: held as pending")
            self.summary.repaired["held as pending (empty or unknown status)"] += 1
        try:
            created = wp_date(element, "wp:comment_date_gmt") or wp_date(element, "wp:comment_date")
        except Skip as skip:
            raise Skip("with a bad date", f"{skip.message}: skipped") from None
        if created is None:
            raise Skip("without a date", "no date: skipped")
        name = sanitize.normalize_text(plain(element.findtext("wp:comment_author")))
        if len(name) > NAME_WIDTH:
            raise Skip("with an author name too long", f"author name over {NAME_WIDTH} characters")
        email = element.findtext("wp:comment_author_email").strip().casefold()
        url = http_url(element.findtext("wp:comment_author_url"))
        ip = element.findtext("wp:comment_author_IP").strip()
        for value, width, what in ((email, 254, "email"), (url, 500, "URL"), (ip, 45, "IP")):
            if len(value) > width:
                self.warn(element.line, record, f"author {what} over {width} characters: left out")
        parent = element.findtext("wp:comment_parent").strip()
        user = element.findtext("wp:comment_user_id").strip()
        return SourceComment(
            wp_id=wp_id,
            parent=int(parent) if is_id(parent) else 0,
            line=element.line,
            kind=KINDS[raw_type],
            status=status,
            raw_status=raw_status,
            author_name=name or "Anonymous",
            author_email=email if len(email) <= 254 else "",
            author_url=url if len(url) <= 500 else "",
            ip=ip if len(ip) <= 45 else "",
            wp_user_id=int(user) if is_id(user) else 0,
            content=element.findtext("wp:comment_content"),
            created_at=created,
        )

    def write(self, post_id: int, comments: list[SourceComment]) -> None:
        """Write the comments not imported before, parents first, a thread level at a time."""
        by_wp_id: dict[int, SourceComment] = {}
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

    def _orphan(self, comment: SourceComment, why: str) -> None:
        self.warn(comment.line, f"comment {comment.wp_id}", f"{why}: imported at the top level")
        self.summary.repaired["moved to the top level (parent missing or a loop)"] += 1
        comment.parent = 0

    def _existing(self, wp_ids: set[int]) -> dict[int, tuple[int, Placed]]:
        """Comments imported before, by WordPress id: (their post id, where they are)."""
        keys = {f"{self.site}:comment:{wp_id}": wp_id for wp_id in wp_ids}
        found: dict[int, tuple[int, Placed]] = {}
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
                placed = Placed(row.id, row.path, row.depth, row.visible)
                found[keys[row.import_key]] = (row.post_id, placed)
        return found

    def _update_comments(self, comments: list[SourceComment]) -> None:
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

    def _update_comment(self, comment: Comment, source: SourceComment, now: datetime) -> None:
        changed = []
        before = {key: getattr(comment, key) for key in BODY_COLUMNS}
        if comment_service.apply_body(comment, comment_service.body_of(source.content)):
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
        self, post_id: int, level: list[SourceComment], placed: dict[int, Placed]
    ) -> None:
        rows = []
        parents = []
        for c in level:
            parent = placed.get(c.parent) if c.parent else None
            if parent is not None and parent.depth + 1 > MAX_DEPTH:
                # Attached one level up instead: a thread path holds MAX_DEPTH levels.
                grand_path = parent.path.rsplit("/", 1)[0]
                parent = Placed(
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
        counters.inserted(rows)
        paths = []
        reasons = []
        for c, row, parent, comment_id in zip(level, rows, parents, ids, strict=True):
            path = tree.path_of(comment_id, parent.path if parent else None)
            placed[c.wp_id] = Placed(comment_id, path, row["depth"], row["visible"])
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
