"""The moderation rules: plain functions deciding a new comment's status and why.

Every rule that fires adds its reason; the strongest outcome wins
(rejected > spam > pending > approved). Nothing here reads the request.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from sqlalchemy import Exists, Select, bindparam, exists, select

from forum.extensions import db
from forum.models import Ban, BanKind, Comment, Role, Rule, Status
from forum.services.settings import Settings

SEVERITY = {Status.APPROVED: 0, Status.PENDING: 1, Status.SPAM: 2, Status.REJECTED: 3}

# Every reason a comment can be held for, as shown on the rule statistics page.
RULE_LABELS = {
    Rule.BANNED: "Banned account, email or IP address",
    Rule.HONEYPOT: "Hidden honeypot field filled in",
    Rule.TOO_FAST: "Form sent back faster than a person types",
    Rule.NO_TIMESTAMP: "Sent without the form's timestamp (a script, not the page)",
    Rule.BLOCK_WORD: "Block word (spam)",
    Rule.HOLD_WORD: "Hold word",
    Rule.LINKS: "Too many links",
    Rule.SANITIZED: "The sanitizer removed markup",
    Rule.NEW_COMMENT: "Moderation mode (every comment, or a first comment)",
    Rule.FLAG: "Flagged by readers",
    Rule.EDITED: "Edited after approval",
    Rule.CLASSIFIER: "Spam filter score (spam or held at the admin's thresholds)",
}


@dataclass(frozen=True)
class Submission:
    """What the rules look at; built from a form, an edit or an import."""

    body: str
    link_count: int = 0
    removed: tuple[str, ...] = ()
    author_name: str = ""
    author_email: str = ""
    author_url: str = ""
    ip: str = ""
    user_agent: str = ""
    user_id: int | None = None
    role: Role | None = None
    honeypot: str = ""
    seconds_to_submit: float | None = None
    # A web submission that came without the page's signed timestamp.
    timestamp_missing: bool = False
    # The spam filter's score, and whether it has learned enough to act on it.
    spam_score: float | None = None
    spam_ready: bool = False


@dataclass(frozen=True)
class Reason:
    rule: str
    detail: str = ""


@dataclass
class Decision:
    status: Status = Status.APPROVED
    reasons: list[Reason] = field(default_factory=list)

    def add(self, status: Status, rule: str, detail: str = "") -> None:
        self.reasons.append(Reason(rule, detail))
        if SEVERITY[status] > SEVERITY[self.status]:
            self.status = status


def evaluate(sub: Submission, settings: Settings) -> Decision:
    """Run every rule over a submission and combine what fires."""
    decision = Decision()
    if sub.role in (Role.MODERATOR, Role.ADMIN):
        return decision
    bans, approved_before = author_checks(sub, settings.moderation_mode)
    for ban in bans:
        decision.add(Status.REJECTED, Rule.BANNED, ban)
    if sub.honeypot.strip():
        decision.add(Status.SPAM, Rule.HONEYPOT, "hidden field was filled in")
    if sub.seconds_to_submit is not None and sub.seconds_to_submit < settings.min_submit_seconds:
        decision.add(
            Status.SPAM,
            Rule.TOO_FAST,
            f"form sent {sub.seconds_to_submit:.1f} s after it was shown",
        )
    if sub.timestamp_missing:
        # Scripts may use the public field names, so this holds rather than spams.
        decision.add(Status.PENDING, Rule.NO_TIMESTAMP, "the form's rendered_at field was missing")
    classifier = classifier_reason(sub, settings)
    if classifier:
        decision.add(*classifier)
    for word in matched_words(settings.block_words, sub):
        decision.add(Status.SPAM, Rule.BLOCK_WORD, word)
    for word in matched_words(settings.hold_words, sub):
        decision.add(Status.PENDING, Rule.HOLD_WORD, word)
    if settings.max_links and sub.link_count >= settings.max_links:
        decision.add(Status.PENDING, Rule.LINKS, f"{sub.link_count} links")
    if settings.hold_on_sanitized and sub.removed:
        decision.add(Status.PENDING, Rule.SANITIZED, "removed " + ", ".join(sub.removed))
    mode_reason = moderation_mode_reason(settings.moderation_mode, approved_before)
    if mode_reason:
        decision.add(Status.PENDING, *mode_reason)
    return decision


def classifier_reason(sub: Submission, settings: Settings) -> tuple[Status, str, str] | None:
    """Spam at or above the spam threshold, held at or above the hold threshold (1: off)."""
    if sub.spam_score is None or not sub.spam_ready:
        return None
    score = sub.spam_score
    if settings.spam_threshold < 1 and score >= settings.spam_threshold:
        return (
            Status.SPAM,
            Rule.CLASSIFIER,
            f"score {score:.2f} (spam at {settings.spam_threshold:g})",
        )
    if settings.spam_hold_threshold < 1 and score >= settings.spam_hold_threshold:
        return (
            Status.PENDING,
            Rule.CLASSIFIER,
            f"score {score:.2f} (held at {settings.spam_hold_threshold:g})",
        )
    return None


def moderation_mode_reason(mode: str, approved_before: bool) -> tuple[str, str] | None:
    if mode == "off":
        return None
    if mode == "all":
        return (Rule.NEW_COMMENT, "every comment is held for review")
    if approved_before:
        return None
    return (Rule.NEW_COMMENT, "first comment from this author")


def author_checks(sub: Submission, mode: str) -> tuple[list[str], bool]:
    """The bans that match this author's account, email or IP address, and (when the
    moderation mode asks) whether they have an approved comment: one query for both."""
    wanted = []
    if sub.user_id is not None:
        wanted.append((BanKind.ACCOUNT, str(sub.user_id)))
    if sub.author_email.strip():
        wanted.append((BanKind.EMAIL, sub.author_email.strip().casefold()))
    if sub.ip.strip():
        wanted.append((BanKind.IP, sub.ip.strip()))
    approved = None
    if mode not in ("off", "all"):
        if sub.user_id is not None:
            approved = "member"
        elif sub.author_email:
            approved = "guest"
    if not wanted and approved is None:
        return [], False
    params = {f"ban_{kind.name}": value for kind, value in wanted}
    params.update(user_id=sub.user_id, email=sub.author_email.casefold(), name=sub.author_name)
    stmt = _author_query(tuple(kind for kind, _ in wanted), approved)
    row = db.session.execute(stmt, params).one()
    bans = [
        f"{kind.value} {value}"
        for (kind, value), hit in zip(wanted, row[: len(wanted)], strict=True)
        if hit
    ]
    return bans, approved is not None and bool(row[-1])


@functools.cache
def _author_query(kinds: tuple[BanKind, ...], approved: str | None) -> Select:
    """Built once per shape (which bans can match; whether and how to look for an
    approved comment): a submission only binds its values."""
    columns = [
        exists().where(Ban.kind == kind, Ban.value == bindparam(f"ban_{kind.name}"))
        for kind in kinds
    ]
    if approved is not None:
        columns.append(_approved_comment(approved))
    return select(*columns)


def _approved_comment(who: str) -> Exists:
    """Matched by account, or for guests by the same email and name."""
    stmt = exists().where(Comment.status == Status.APPROVED)
    if who == "member":
        return stmt.where(Comment.user_id == bindparam("user_id"))
    # `user_id + 0`: a guest's test no index can answer, so that the planner reads the
    # author's own comments (ix_comment_email_status) and not every approved guest comment
    # (ix_comment_user_status: SQLite without statistics took it, 7 ms at 10,000 comments).
    # `author_name || ''` likewise: by the email, not by whichever of the email's and the
    # name's indexes the schema happens to list first (both find the author).
    return stmt.where(
        (Comment.user_id + 0).is_(None),
        Comment.author_email == bindparam("email"),
        Comment.author_name.concat("") == bindparam("name"),
    )


def matched_words(words: tuple[str, ...], sub: Submission) -> list[str]:
    """Words and phrases found as whole words (case-insensitive) in any one field."""
    if not words:
        return []
    fields = (sub.body, sub.author_name, sub.author_email, sub.author_url, sub.ip, sub.user_agent)
    fields = tuple(f for f in fields if f)
    hits = []
    for word in words:
        parts = word.split()
        if not parts:
            continue
        # A phrase matches across any run of whitespace, but never across two fields.
        pattern = re.compile(
            r"(?<!\w)" + r"\s+".join(map(re.escape, parts)) + r"(?!\w)", re.IGNORECASE
        )
        if any(pattern.search(f) for f in fields):
            hits.append(word)
    return hits
