"""The whole forum as one JSON document (docs/export-format.md).

`export_json` streams every section row by row in id order, so exporting the same forum
twice gives the same bytes. `import_json` loads such a document into an empty database
with the same ids (links keep working), deriving what the file leaves out: thread
paths, depths and visibility, and the case-insensitive user keys. Nothing here commits.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum as PyEnum
from typing import Any, TextIO

from sqlalchemy import JSON, Boolean, Enum, Integer, String, func, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from forum.extensions import db
from forum.models import (
    Ban,
    BodyFormat,
    Comment,
    Flag,
    HoldReason,
    ModerationAction,
    Post,
    Setting,
    Status,
    Tag,
    User,
    UTCDateTime,
    post_tag,
)
from forum.services import accounts, counters, markdown, sanitize, tree
from forum.tools.wxr_values import http_url

FORMAT = "forum-export"
VERSION = 1
BATCH = 1000


class TransferError(Exception):
    """A document that cannot be imported; the message says where and why."""


@dataclass(frozen=True)
class Section:
    name: str
    model: type
    # The columns written, named one by one so a new column (a secret, say) is never
    # exported by accident; tests check every column is here or in `left_out`.
    exported: tuple[str, ...]
    # Columns not in the file: secrets, and what the import derives again.
    left_out: frozenset[str] = frozenset()
    # Lists nested in each row: a post's tag ids, a comment's hold reasons.
    nested: tuple[str, ...] = ()
    # Nullable columns added after version 1: a file made before them may leave them out.
    later: frozenset[str] = frozenset()
    # Columns added after version 1 that are never null: their value when a file has none.
    defaults: tuple[tuple[str, str], ...] = ()

    @property
    def columns(self) -> list[Any]:
        return [self.model.__table__.columns[key] for key in self.exported]

    @property
    def fields(self) -> list[str]:
        return sorted([*self.exported, *self.nested])


SECTIONS = (
    Section("settings", Setting, ("key", "value")),
    Section(
        "users",
        User,
        ("id", "username", "email", "role", "is_banned", "created_at", "last_login_at")
        + ("import_key", "display_name"),
        left_out=frozenset({"password_hash", "session_token", "username_key", "email_key"}),
        later=frozenset({"display_name"}),
    ),
    Section("tags", Tag, ("id", "name", "slug")),
    Section(
        "posts",
        Post,
        ("id", "author_id", "title", "slug", "body_source", "body_html", "created_at")
        + ("updated_at", "comments_open", "import_key", "original_url", "legacy_path", "wp_id")
        + ("body_format",),
        nested=("tags",),
        later=frozenset({"original_url", "legacy_path", "wp_id"}),
        defaults=(("body_format", BodyFormat.HTML.value),),
    ),
    Section(
        "comments",
        Comment,
        ("id", "post_id", "parent_id", "kind", "user_id", "author_name", "author_email")
        + ("author_url", "ip", "user_agent", "body_source", "body_html", "body_hash")
        + ("link_domain", "status", "sanitizer_report", "created_at", "edited_at")
        + ("moderated_at", "moderated_by_id", "notify_on_decision", "notify_on_reply")
        + ("import_key", "wp_id", "body_format"),
        left_out=frozenset({"path", "depth", "visible", "spam_score", "spam_reasons"}),
        nested=("reasons",),
        later=frozenset({"wp_id"}),
        defaults=(("body_format", BodyFormat.HTML.value),),
    ),
    Section(
        "moderation_actions",
        ModerationAction,
        ("id", "comment_id", "moderator_id", "action", "from_status", "to_status", "note")
        + ("batch", "data", "created_at"),
    ),
    Section(
        "flags", Flag, ("id", "comment_id", "user_id", "reason", "note", "created_at", "resolved")
    ),
    Section("bans", Ban, ("id", "kind", "value", "reason", "created_by_id", "created_at")),
)
# Tables whose integer ids come from a sequence on PostgreSQL.
SEQUENCED = (User, Tag, Post, Comment, HoldReason, ModerationAction, Flag, Ban)


def describe(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {name.replace('_', ' ')}" for name, n in counts.items()) + "."


# Export -------------------------------------------------------------------------


def export_json(out: TextIO) -> dict[str, int]:
    """Write the forum to `out`, one row a line; returns the row count of each section."""
    out.write(f'{{"format": "{FORMAT}", "version": {VERSION}')
    counts: dict[str, int] = {}
    for section in SECTIONS:
        out.write(f',\n"{section.name}": [')
        n = 0
        for row in _export_rows(section):
            out.write("\n" if n == 0 else ",\n")
            out.write(json.dumps(row, ensure_ascii=False, sort_keys=True))
            n += 1
        out.write("\n]" if n else "]")
        counts[section.name] = n
    out.write("\n}\n")
    return counts


def _export_rows(section: Section) -> Iterator[dict[str, Any]]:
    model = section.model
    stmt = select(model).order_by(*model.__table__.primary_key.columns)
    if model is Post:
        stmt = stmt.options(selectinload(Post.tags))
    elif model is Comment:
        stmt = stmt.options(selectinload(Comment.reasons))
    keys = [c.key for c in section.columns]
    for obj in db.session.scalars(stmt.execution_options(yield_per=500)):
        row = {key: _dump(getattr(obj, key)) for key in keys}
        if model is Post:
            row["tags"] = sorted(tag.id for tag in obj.tags)
        elif model is Comment:
            row["reasons"] = [{"rule": r.rule, "detail": r.detail} for r in obj.reasons]
        yield row


def _dump(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, PyEnum):
        return value.value
    return value


# Import -------------------------------------------------------------------------


def import_json(stream: TextIO) -> dict[str, int]:
    """Load an export into an empty database with the same ids; raises TransferError."""
    try:
        document = json.load(stream)
    except json.JSONDecodeError as error:
        raise TransferError(f"line {error.lineno}: not JSON: {error.msg}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise TransferError(f'not a forum export (no "format": "{FORMAT}")')
    if document.get("version") != VERSION:
        raise TransferError(f"unsupported version {document.get('version')!r} (expected {VERSION})")
    unknown = set(document) - {"format", "version"} - {s.name for s in SECTIONS}
    if unknown:
        raise TransferError(f"unknown sections: {', '.join(sorted(unknown))}")
    for model in (s.model for s in SECTIONS):
        if db.session.scalar(select(func.count()).select_from(model)):
            raise TransferError("the database is not empty; import-json only fills an empty one")
    sections = {s.name: _parse_section(s, document.get(s.name)) for s in SECTIONS}
    try:
        _insert_all(sections)
    except IntegrityError as error:
        raise TransferError(f"the file contradicts itself: {error.orig}") from None
    _reset_sequences()
    counters.rebuild()
    return {name: len(rows) for name, rows in sections.items()}


def _parse_section(section: Section, rows: Any) -> list[dict[str, Any]]:
    if not isinstance(rows, list):
        raise TransferError(f'"{section.name}" should be a list of rows')
    columns = {c.key: c for c in section.columns}
    wanted = set(section.fields)
    parsed = []
    for index, raw in enumerate(rows):
        where = f"{section.name}[{index}]"
        if not isinstance(raw, dict):
            raise TransferError(f"{where}: a row should be an object")
        raw = dict(section.defaults) | raw
        if section.later and not section.later <= set(raw):
            raw = {key: None for key in section.later} | raw
        if set(raw) != wanted:
            missing, extra = wanted - set(raw), set(raw) - wanted
            problem = "; ".join(
                part
                for part in (
                    f"missing {', '.join(sorted(missing))}" if missing else "",
                    f"unknown {', '.join(sorted(extra))}" if extra else "",
                )
                if part
            )
            raise TransferError(f"{where}: {problem}")
        row = {key: _load(column, raw[key], f"{where}.{key}") for key, column in columns.items()}
        for key in section.nested:
            row[key] = raw[key]
        parsed.append(row)
    return parsed


def _load(column: Any, value: Any, where: str) -> Any:
    """A JSON value as the column's Python value, checked against its type."""
    if value is None:
        if not column.nullable:
            raise TransferError(f"{where}: may not be null")
        return None
    kind = column.type
    if isinstance(kind, UTCDateTime):
        try:
            moment = datetime.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is None:
            raise TransferError(f"{where}: {value!r} is not a date with a time zone")
        return moment.astimezone(UTC)
    if isinstance(kind, Enum):
        try:
            return kind.enum_class(value)
        except ValueError:
            allowed = ", ".join(m.value for m in kind.enum_class)
            raise TransferError(f"{where}: {value!r} is not one of {allowed}") from None
    if isinstance(kind, JSON):
        return value
    if isinstance(kind, Boolean):
        if not isinstance(value, bool):
            raise TransferError(f"{where}: {value!r} is not true or false")
        return value
    if isinstance(kind, Integer):
        if not isinstance(value, int) or isinstance(value, bool):
            raise TransferError(f"{where}: {value!r} is not a whole number")
        return value
    if isinstance(kind, String):
        if not isinstance(value, str):
            raise TransferError(f"{where}: {value!r} is not text")
        if kind.length and len(value) > kind.length:
            raise TransferError(f"{where}: longer than {kind.length} characters")
        return value
    raise TransferError(f"{where}: no rule to read a {kind!r} column")  # a new column type


def _insert_all(sections: dict[str, list[dict[str, Any]]]) -> None:
    _insert(Setting, sections["settings"])
    # Through the model, so the validators derive username_key and email_key.
    db.session.add_all(
        User(**row, password_hash=None, session_token=accounts.new_session_token())
        for row in sections["users"]
    )
    db.session.flush()
    _insert(Tag, sections["tags"])
    posts = sections["posts"]
    for row in posts:
        row["body_html"] = _safe_html(row, markdown.Kind.POST)
    _insert(Post, [{k: v for k, v in row.items() if k != "tags"} for row in posts])
    _insert(post_tag, [{"post_id": p["id"], "tag_id": t} for p in posts for t in _ids(p, "tags")])
    comments = _thread_order(sections["comments"], {p["id"] for p in posts})
    reasons = []
    for row in comments:
        row["body_html"] = _safe_html(row, markdown.Kind.COMMENT)
        if row["author_url"] and http_url(row["author_url"]) != row["author_url"]:
            raise TransferError(f"comment {row['id']}: author_url is not an http(s) address")
        for reason in _reasons(row):
            reasons.append({"comment_id": row["id"], **reason})
    _insert(Comment, [{k: v for k, v in row.items() if k != "reasons"} for row in comments])
    _insert(HoldReason, reasons)
    actions = sections["moderation_actions"]
    for row in actions:
        row["data"] = _clean_snapshots(row["data"])
    _insert(ModerationAction, actions)
    _insert(Flag, sections["flags"])
    _insert(Ban, sections["bans"])


def _insert(target: Any, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), BATCH):
        db.session.execute(insert(target), rows[start : start + BATCH])


def _ids(row: dict[str, Any], key: str) -> list[int]:
    values = row[key]
    if not isinstance(values, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in values
    ):
        raise TransferError(f"post {row['id']}: {key} should be a list of ids")
    return sorted(set(values))


def _reasons(row: dict[str, Any]) -> list[dict[str, str]]:
    reasons = row["reasons"]
    ok = isinstance(reasons, list) and all(
        isinstance(r, dict)
        and set(r) == {"rule", "detail"}
        and isinstance(r["rule"], str)
        and isinstance(r["detail"], str)
        and len(r["rule"]) <= 40
        and len(r["detail"]) <= 500
        for r in reasons
    )
    if not ok:
        raise TransferError(f"comment {row['id']}: reasons should be a list of {{rule, detail}}")
    return reasons


def _thread_order(rows: list[dict[str, Any]], post_ids: set[int]) -> list[dict[str, Any]]:
    """Comments parents first, each with the path, depth and visibility it derives."""
    by_id = {row["id"]: row for row in rows}
    if len(by_id) != len(rows):
        raise TransferError("two comments share an id")
    done: set[int] = set()
    ordered: list[dict[str, Any]] = []
    for comment_id in sorted(by_id):
        chain: list[dict[str, Any]] = []
        seen: set[int] = set()
        current: int | None = comment_id
        while current is not None and current not in done:
            row = by_id[current]
            if current in seen:
                raise TransferError(f"comment {current} is in a loop of replies to replies")
            if row["post_id"] not in post_ids:
                raise TransferError(f"comment {current}: post {row['post_id']} is not in the file")
            parent_id = row["parent_id"]
            if parent_id is not None:
                parent = by_id.get(parent_id)
                if parent is None or parent["post_id"] != row["post_id"]:
                    raise TransferError(
                        f"comment {current}: parent {parent_id} is not a comment of its post"
                    )
            chain.append(row)
            seen.add(current)
            current = parent_id
        for row in reversed(chain):
            parent = by_id.get(row["parent_id"]) if row["parent_id"] is not None else None
            row["path"] = tree.path_of(row["id"], parent["path"] if parent else None)
            row["depth"] = parent["depth"] + 1 if parent else 0
            row["visible"] = row["status"] is Status.APPROVED and (
                parent is None or parent["visible"]
            )
            if len(row["path"]) > Comment.__table__.c.path.type.length:
                raise TransferError(f"comment {row['id']}: nested too deep")
            done.add(row["id"])
            ordered.append(row)
    return ordered


def _safe_html(row: dict[str, Any], kind: markdown.Kind) -> str:
    """The file's HTML if the sanitizer leaves it unchanged, else the source rendered now."""
    html_text = row["body_html"]
    clean = sanitize.sanitize_post if kind is markdown.Kind.POST else sanitize.sanitize_comment
    # Moderation snapshots carry no format of their own; anything unknown is HTML.
    markdown_source = row.get("body_format") == BodyFormat.MARKDOWN
    if clean(html_text, tables=markdown_source).html == html_text:
        return html_text
    body_format = BodyFormat.MARKDOWN if markdown_source else BodyFormat.HTML
    return markdown.render(row["body_source"], body_format, kind).html


def _clean_snapshots(value: Any) -> Any:
    """Comment copies kept for undo (edits, deletions) get the same checks as comments."""
    if isinstance(value, list):
        return [_clean_snapshots(item) for item in value]
    if not isinstance(value, dict):
        return value
    cleaned = {key: _clean_snapshots(item) for key, item in value.items()}
    html_text, source = cleaned.get("body_html"), cleaned.get("body_source")
    if isinstance(html_text, str) and isinstance(source, str):
        cleaned["body_html"] = _safe_html(cleaned, markdown.Kind.COMMENT)
    url = cleaned.get("author_url")
    if isinstance(url, str) and http_url(url) != url:
        cleaned["author_url"] = ""
    return cleaned


def _reset_sequences() -> None:
    """Ids were given explicitly; PostgreSQL's sequences must continue after them."""
    bind = db.session.get_bind()
    if bind.dialect.name != "postgresql":
        return
    quote = bind.dialect.identifier_preparer.quote
    for model in SEQUENCED:
        table = quote(model.__table__.name)
        # The table name comes from our own models, quoted by the dialect: not user input.
        db.session.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence(:table, 'id'), "  # noqa: S608 # nosec B608
                f"COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
            ),
            {"table": table},
        )
