"""All models of the forum, SQLAlchemy 2.0 typed."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from flask_login import UserMixin
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    literal_column,
)
from sqlalchemy.orm import Mapped, WriteOnlyMapped, mapped_column, relationship, validates
from sqlalchemy.types import TypeDecorator

from forum.extensions import db

PATH_SEGMENT_WIDTH = 10


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


def _enum(cls: type[enum.Enum], length: int = 16) -> Enum:
    return Enum(
        cls,
        native_enum=False,
        length=length,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )


class Role(enum.StrEnum):
    MEMBER = "member"
    MODERATOR = "moderator"
    ADMIN = "admin"


class Status(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    SPAM = "spam"
    REJECTED = "rejected"


class Action(enum.StrEnum):
    """What the moderation log records: the decisions, and everything else staff do."""

    APPROVE = "approve"
    REJECT = "reject"
    SPAM = "spam"
    RESTORE = "restore"
    DELETE = "delete"
    EDIT = "edit"
    REPLY = "reply"
    BAN = "ban"
    UNBAN = "unban"
    UNDO = "undo"
    REQUEUE = "requeue"
    DISMISS_FLAGS = "dismiss-flags"
    ROLE = "role"
    IMPORT = "import"


# The actions a moderator takes on comments from the queue, in the order buttons show.
DECISIONS = (Action.APPROVE, Action.REJECT, Action.SPAM, Action.RESTORE, Action.DELETE)


class Rule(enum.StrEnum):
    """Why a comment was held: the rules (services/moderation_rules.py) and the requeues."""

    BANNED = "banned"
    HONEYPOT = "honeypot"
    TOO_FAST = "too-fast"
    NO_TIMESTAMP = "no-timestamp"
    BLOCK_WORD = "block-word"
    HOLD_WORD = "hold-word"
    LINKS = "links"
    SANITIZED = "sanitized"
    NEW_COMMENT = "new comment"
    FLAG = "flag"
    EDITED = "edited"
    CLASSIFIER = "classifier"


class CommentKind(enum.StrEnum):
    COMMENT = "comment"
    PINGBACK = "pingback"
    TRACKBACK = "trackback"


class BodyFormat(enum.StrEnum):
    """What a body's source is written in; everything stored before Markdown is HTML."""

    HTML = "html"
    MARKDOWN = "markdown"


class BanKind(enum.StrEnum):
    ACCOUNT = "account"
    EMAIL = "email"
    IP = "ip"


post_tag = Table(
    "post_tag",
    db.metadata,
    Column("post_id", ForeignKey("post.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("tag.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class User(UserMixin, db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(30))
    # Lower-cased copies make uniqueness and look-ups case-insensitive on every backend.
    username_key: Mapped[str] = mapped_column(String(30), unique=True)
    # The name shown on bylines when set (an imported author's WordPress display name).
    display_name: Mapped[str | None] = mapped_column(String(250))
    email: Mapped[str] = mapped_column(String(254))
    email_key: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(_enum(Role), default=Role.MEMBER)
    is_banned: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Bumped on password change: invalidates reset links and remember cookies.
    session_token: Mapped[str | None] = mapped_column(String(64))
    import_key: Mapped[str | None] = mapped_column(String(200), unique=True)

    posts: WriteOnlyMapped[Post] = relationship(back_populates="author")
    comments: WriteOnlyMapped[Comment] = relationship(
        back_populates="user", foreign_keys="Comment.user_id"
    )

    @validates("username")
    def _set_username_key(self, _key: str, value: str) -> str:
        self.username_key = value.casefold()
        return value

    @validates("email")
    def _set_email_key(self, _key: str, value: str) -> str:
        self.email_key = value.strip().casefold()
        return value.strip()

    @property
    def byline(self) -> str:
        return self.display_name or self.username

    @property
    def is_moderator(self) -> bool:
        return self.role in (Role.MODERATOR, Role.ADMIN)

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    def get_id(self) -> str:
        return f"{self.id}:{self.session_token or ''}"

    def __repr__(self) -> str:
        return f"<User {self.id} {self.username!r}>"


class Tag(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    # As wide as WordPress's term names, so imported tags are never cut.
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(200), unique=True)

    posts: Mapped[list[Post]] = relationship(secondary=post_tag, back_populates="tags")


class Post(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int | None] = mapped_column(
        ForeignKey("user.id", ondelete="SET NULL"), index=True
    )
    title: Mapped[str] = mapped_column(String(500))
    slug: Mapped[str] = mapped_column(String(200))
    body_source: Mapped[str] = mapped_column(Text)
    body_format: Mapped[BodyFormat] = mapped_column(
        _enum(BodyFormat), default=BodyFormat.HTML, server_default=BodyFormat.HTML.value
    )
    body_html: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    comments_open: Mapped[bool] = mapped_column(Boolean, default=True)
    import_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    # Where an imported post lived before, so its old links redirect here.
    original_url: Mapped[str | None] = mapped_column(String(2000))
    legacy_path: Mapped[str | None] = mapped_column(String(500), index=True)
    wp_id: Mapped[int | None] = mapped_column(BigInteger, index=True)

    author: Mapped[User | None] = relationship(back_populates="posts")
    tags: Mapped[list[Tag]] = relationship(
        secondary=post_tag, back_populates="posts", order_by="Tag.name"
    )
    comments: WriteOnlyMapped[Comment] = relationship(back_populates="post", passive_deletes=True)


class Comment(db.Model):
    __table_args__ = (
        # The post page: a post's visible comments in display order.
        Index("ix_comment_post_visible_path", "post_id", "visible", "path"),
        # The queue: by status and time, and per post.
        Index("ix_comment_status_created", "status", "created_at", "id"),
        Index("ix_comment_post_status_created", "post_id", "status", "created_at"),
        # One author's or address's comments by status, in the queue's order: a spam wave's
        # page is read in order, not sorted (SQLite, without statistics, otherwise walked
        # the status index: 45 ms a page at 100,000 pending).
        Index("ix_comment_email_status", "author_email", "status", "created_at", "id"),
        Index("ix_comment_user_status", "user_id", "status", "created_at", "id"),
        Index("ix_comment_ip_status", "ip", "status", "created_at", "id"),
        Index("ix_comment_name_status", "author_name", "status", "created_at", "id"),
        # The queue's groups: one text, one linked domain.
        Index("ix_comment_body_hash", "body_hash", "status", "created_at", "id"),
        Index("ix_comment_link_domain", "link_domain", "status", "created_at", "id"),
        Index("ix_comment_post_wp_id", "post_id", "wp_id"),
        # The duplicate check of every submission. Without it SQLite (no ANALYZE statistics)
        # picks a post_id index and reads every comment of the post.
        Index("ix_comment_post_body_hash", "post_id", "body_hash"),
        # The queue sorted by spam score.
        Index("ix_comment_status_spam_score", "status", "spam_score", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("post.id", ondelete="CASCADE"))
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("comment.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[CommentKind] = mapped_column(_enum(CommentKind), default=CommentKind.COMMENT)
    depth: Mapped[int] = mapped_column(Integer, default=0)
    # Materialized path of zero-padded ids ("0000000012/0000000040"): ordering by it
    # reads a whole thread in display order, parents before children, oldest first.
    path: Mapped[str] = mapped_column(String(1000), default="")
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    author_name: Mapped[str] = mapped_column(String(255))
    author_email: Mapped[str] = mapped_column(String(254), default="")
    author_url: Mapped[str] = mapped_column(String(500), default="")
    ip: Mapped[str] = mapped_column(String(45), default="")
    user_agent: Mapped[str] = mapped_column(String(500), default="")
    body_source: Mapped[str] = mapped_column(Text)
    body_format: Mapped[BodyFormat] = mapped_column(
        _enum(BodyFormat), default=BodyFormat.HTML, server_default=BodyFormat.HTML.value
    )
    body_html: Mapped[str] = mapped_column(Text)
    # Normalized body hash: duplicate detection and "near-identical text" groups.
    body_hash: Mapped[str] = mapped_column(String(64), default="")
    link_domain: Mapped[str] = mapped_column(String(255), default="")
    status: Mapped[Status] = mapped_column(_enum(Status), default=Status.PENDING)
    # Approved and every ancestor approved: what a reader sees and what is counted.
    visible: Mapped[bool] = mapped_column(Boolean, default=False)
    sanitizer_report: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    edited_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    moderated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    moderated_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    notify_on_decision: Mapped[bool] = mapped_column(Boolean, default=False)
    notify_on_reply: Mapped[bool] = mapped_column(Boolean, default=False)
    import_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    # The comment's id on the site it was imported from: old "#comment-N" links map here.
    wp_id: Mapped[int | None] = mapped_column(BigInteger)
    # The spam filter's score (0 legitimate .. 1 spam) when the comment arrived, and the
    # features that weighed most as [label, weight] pairs (services/spam_filter.py).
    spam_score: Mapped[float | None] = mapped_column(Float)
    spam_reasons: Mapped[list[Any]] = mapped_column(JSON, default=list)

    post: Mapped[Post] = relationship(back_populates="comments")
    parent: Mapped[Comment | None] = relationship(remote_side=[id])
    user: Mapped[User | None] = relationship(back_populates="comments", foreign_keys=[user_id])
    moderated_by: Mapped[User | None] = relationship(foreign_keys=[moderated_by_id])
    reasons: Mapped[list[HoldReason]] = relationship(
        back_populates="comment",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="HoldReason.id",
    )

    @property
    def anchor(self) -> str:
        return f"comment-{self.id}"

    @property
    def is_reply(self) -> bool:
        return self.parent_id is not None


# The queue's score order: comments scored before the spam filter existed (no score) sort
# last. The same expression in the index and in the queue's statement, so that the index
# gives the order (sorting every pending comment took 0.5 s at 100,000).
UNSCORED = -1.0
SCORE_ORDER = func.coalesce(Comment.spam_score, literal_column(repr(UNSCORED)))
Index("ix_comment_status_score_order", Comment.status, SCORE_ORDER, Comment.id)


class HoldReason(db.Model):
    """One rule that fired on a comment; kept apart so rule statistics are one query."""

    id: Mapped[int] = mapped_column(primary_key=True)
    comment_id: Mapped[int] = mapped_column(
        ForeignKey("comment.id", ondelete="CASCADE"), index=True
    )
    rule: Mapped[str] = mapped_column(String(40), index=True)
    detail: Mapped[str] = mapped_column(String(500), default="")

    comment: Mapped[Comment] = relationship(back_populates="reasons")


class ModerationAction(db.Model):
    """The audit log. comment_id is kept without a foreign key so deletions stay logged."""

    __table_args__ = (Index("ix_moderation_action_created", "created_at", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    comment_id: Mapped[int | None] = mapped_column(Integer, index=True)
    moderator_id: Mapped[int | None] = mapped_column(
        ForeignKey("user.id", ondelete="SET NULL"), index=True
    )
    action: Mapped[Action] = mapped_column(_enum(Action, 30), index=True)
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(String(1000), default="")
    # Actions taken together (a bulk action, a ban sweep) share a batch: undo reverts it.
    batch: Mapped[str] = mapped_column(String(32), default="", index=True)
    # What undo needs beyond the status: an edit's old body, bans made, a deleted row.
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    moderator: Mapped[User | None] = relationship()


class Flag(db.Model):
    __table_args__ = (
        UniqueConstraint("comment_id", "user_id"),
        # A comment's open flags (each queue item asks): without it SQLite read every open
        # flag through the `resolved` index, for every item (migration 0010).
        Index("ix_flag_comment_resolved", "comment_id", "resolved"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    comment_id: Mapped[int] = mapped_column(ForeignKey("comment.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    reason: Mapped[str] = mapped_column(String(30))
    note: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved: Mapped[bool] = mapped_column(Boolean, default=False, index=True)

    comment: Mapped[Comment] = relationship()
    user: Mapped[User] = relationship()


class Ban(db.Model):
    __table_args__ = (UniqueConstraint("kind", "value"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[BanKind] = mapped_column(_enum(BanKind))
    value: Mapped[str] = mapped_column(String(254))
    reason: Mapped[str] = mapped_column(String(500), default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Setting(db.Model):
    """Settings an admin changes at run time; defaults come from config."""

    key: Mapped[str] = mapped_column(String(60), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)


class OutboxMail(db.Model):
    """Mail waiting to be sent: failures are retried and never break a request."""

    __table_args__ = (Index("ix_outbox_mail_pending", "sent_at", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(30), default="")
    # The comment a mail is about (no foreign key: the mail outlives a deletion).
    comment_id: Mapped[int | None] = mapped_column(Integer, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(String(500), default="")


class SpamLabel(enum.StrEnum):
    SPAM = "spam"
    HAM = "ham"


class SpamFeature(db.Model):
    """One hashed feature of the spam filter: its weight and how often each label saw it.

    Key 0 holds the model itself: the bias as weight, and the lessons learned per label.
    """

    # On SQLite an INTEGER primary key is the rowid itself: one B-tree search per look-up.
    key: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=False
    )
    weight: Mapped[float] = mapped_column(Float, default=0.0)
    spam: Mapped[int] = mapped_column(Integer, default=0)
    ham: Mapped[int] = mapped_column(Integer, default=0)
    # Day (days since 1970) a lesson last touched it: old, rare features are pruned first.
    seen_day: Mapped[int] = mapped_column(Integer, default=0)


class SpamLesson(db.Model):
    """What the filter learned from one comment, so that an undo can take it back.

    No foreign key: deleting a spam comment for good keeps what it taught.
    """

    comment_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    label: Mapped[SpamLabel] = mapped_column(_enum(SpamLabel))
    # The change made to each feature's weight (and to the bias), subtracted to unlearn.
    step: Mapped[float] = mapped_column(Float, default=0.0)
    bias_step: Mapped[float] = mapped_column(Float, default=0.0)
    features: Mapped[list[int]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class QueueCounter(db.Model):
    """Maintained counts of comments by status (and of flagged comments) for the queue's
    tabs, the header badge and each post's pending count: services/counters.py keeps them
    equal to a full count, in the transaction of every change."""

    post_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)  # 0: all
    name: Mapped[str] = mapped_column(String(16), primary_key=True)  # a Status, or "flagged"
    n: Mapped[int] = mapped_column(Integer, default=0)


class AuthorCounter(db.Model):
    """Maintained history of one author (an account, or a guest's email address) for the
    queue: their comments by status and their first comment's time. The dashboard reads a
    row per author instead of counting their comments, which a spam wave of thousands
    from one address made the costliest part of every page. services/counters.py keeps
    them equal to a full count, in the transaction of every change."""

    author: Mapped[str] = mapped_column(String(300), primary_key=True)  # "user:ID", "email:A"
    approved: Mapped[int] = mapped_column(Integer, default=0)
    pending: Mapped[int] = mapped_column(Integer, default=0)
    spam: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    first_seen: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PageVersion(db.Model):
    """What readers see, versioned: bumped in the same transaction as every change a reader
    could see (services/versions.py). `scope` is a post id, or SITE (any change: the front
    page and the feeds) or GLOBAL (settings, tags, names: every page)."""

    scope: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(Integer, default=0)
    changed_at: Mapped[float] = mapped_column(Float, default=0.0)  # Unix time of the bump
