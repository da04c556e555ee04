"""What to tell whom: digests for moderators, decisions and replies for commenters, and
password-reset links.

Every mail is an OutboxMail row queued in the caller's transaction, its body rendered
from `templates/mail/`; `forum.services.mailer` sends them later (right after the
response, or from `flask forum send-mail`), so a mail server that is down never breaks
a request. Mails about a comment wait a grace period (an undo cancels them) and are
checked again just before sending: nothing about a comment goes to anyone but
moderators unless it is approved.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app, render_template
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased, selectinload

from forum.extensions import db
from forum.links import absolute_url_for
from forum.models import Comment, OutboxMail, Role, Setting, Status, User, utcnow
from forum.services import sanitize
from forum.services import settings as settings_service

DIGEST_STATE_KEY = "mail.digest_sent_at"
# What a request did that the mailer's look after the response must know (session.info).
MAIL_QUEUED = "forum.mail_queued"
COMMENT_HELD = "forum.comment_held"
DIGEST_ITEMS = 20
# Mails that speak about one comment, checked against its status just before sending.
ABOUT_COMMENT = ("approved", "rejected", "reply")
# A reply's parent, for replies_visible: made once, as a new alias per call rebuilds
# the proxies of all of Comment's columns and the statement's cache key (~1 ms a call).
PARENT = aliased(Comment)


# Signed links -------------------------------------------------------------------


def _link_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="moderation-link")


def moderation_link(comment_id: int) -> str:
    """A signed one-click link that opens this comment in the dashboard."""
    token = _link_serializer().dumps(comment_id)
    return absolute_url_for("moderation.open_link", token=token)


def comment_from_link(token: str, max_age_seconds: int) -> int | None:
    """The comment id a moderation link points to; None when forged or expired."""
    try:
        value = _link_serializer().loads(token, max_age=max_age_seconds)
    except BadSignature:
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# Queueing ---------------------------------------------------------------------


def queue_mail(
    recipient: str,
    subject: str,
    body: str,
    kind: str,
    comment_id: int | None = None,
    send_after: datetime | None = None,
) -> OutboxMail:
    mail_row = OutboxMail(
        recipient=recipient[:254],
        subject=subject[:300],
        body=body,
        kind=kind,
        comment_id=comment_id,
        created_at=utcnow(),
        next_attempt_at=send_after or utcnow(),
    )
    db.session.add(mail_row)
    db.session.info[MAIL_QUEUED] = True  # the look after this response must not be skipped
    return mail_row


def _grace(now: datetime) -> datetime:
    return now + timedelta(seconds=current_app.config["MAIL_UNDO_GRACE_SECONDS"])


def decision_made(comment: Comment, status: Status, reason: str, now: datetime) -> None:
    """Tell an author who asked that their comment was approved or rejected.

    The caller withdraws earlier unsent mails about the comment first (decisions_withdrawn).
    """
    if not comment.notify_on_decision or not comment.author_email:
        return
    title = comment.post.title
    if status is Status.APPROVED:
        subject = f"Your comment on “{title}” is published"
        kind = "approved"
    elif status is Status.REJECTED:
        subject = f"Your comment on “{title}” was not published"
        kind = "rejected"
    else:
        return
    body = render_template(f"mail/decision_{kind}.txt", comment=comment, reason=reason)
    queue_mail(comment.author_email, subject, body, kind, comment.id, _grace(now))


def decision_withdrawn(comment_id: int) -> None:
    """Cancel the unsent mails about a comment (its decision was changed or undone)."""
    decisions_withdrawn([comment_id])


def decisions_withdrawn(comment_ids: list[int]) -> None:
    """Cancel the unsent mails about these comments, in one statement per 500."""
    for start in range(0, len(comment_ids), 500):
        db.session.execute(_WITHDRAW, {"ids": comment_ids[start : start + 500]})


# Built once, on the table (the ORM's bulk DELETE cost twice the statement): a decision
# binds only its comments' ids.
_outbox = OutboxMail.__table__
_WITHDRAW = delete(_outbox).where(
    _outbox.c.comment_id.in_(bindparam("ids", expanding=True)),
    _outbox.c.kind.in_(ABOUT_COMMENT),
    _outbox.c.sent_at.is_(None),
)


def replies_visible(comment_ids: Iterable[int], now: datetime) -> None:
    """Replies readers can now see: tell the parents' authors who asked (once per reply)."""
    ids = sorted(set(comment_ids))
    if not ids:
        return
    parent = PARENT
    already = select(OutboxMail.comment_id).where(
        OutboxMail.kind == "reply", OutboxMail.comment_id.in_(ids)
    )
    replies = db.session.execute(
        select(Comment, parent)
        .join(parent, parent.id == Comment.parent_id)
        .where(
            Comment.id.in_(ids[:1000]),
            Comment.visible.is_(True),
            parent.notify_on_reply.is_(True),
            parent.author_email != "",
            Comment.id.not_in(already),
        )
        .options(selectinload(Comment.post))
    ).all()
    for reply, above in replies:
        same_author = (reply.user_id is not None and reply.user_id == above.user_id) or (
            reply.author_email.casefold() == above.author_email.casefold()
        )
        if same_author:
            continue
        body = render_template(
            "mail/reply.txt",
            reply=reply,
            parent=above,
            excerpt=sanitize.excerpt(reply.body_html, 500),
        )
        queue_mail(
            above.author_email,
            f"{reply.author_name} replied to your comment on “{reply.post.title}”",
            body,
            "reply",
            reply.id,
            _grace(now),
        )


def comment_submitted(comment: Comment, now: datetime | None = None) -> None:
    """Call after submit_comment: a reply published at once tells the parent's author.

    A held comment needs nothing here but a word to the mailer: the next digest
    (send_due) picks it up, and may be due now.
    """
    if comment.status is Status.PENDING:
        db.session.info[COMMENT_HELD] = True
    if comment.visible and comment.parent_id is not None:
        replies_visible([comment.id], now or utcnow())


def moderator_addresses() -> list[str]:
    return list(
        db.session.scalars(
            select(User.email)
            .where(User.role.in_([Role.MODERATOR, Role.ADMIN]), User.is_banned.is_(False))
            .order_by(User.id)
        )
    )


@dataclass(frozen=True)
class Digest:
    """What one look for held comments did."""

    listed: int  # held comments the digest queued lists (0: no digest queued)
    next_due: datetime | None  # a new held comment can start a digest from then (None: now)


def held_digest(now: datetime | None = None) -> int:
    """Queue one digest of newly held comments per moderator, at most every N minutes.

    Returns how many held comments the digest lists (0 when none is due).
    """
    return digest_held(now).listed


def digest_held(now: datetime | None = None) -> Digest:
    """`held_digest`, also saying when the next digest could be due."""
    now = now or utcnow()
    interval = timedelta(minutes=settings_service.load().digest_minutes)
    last = _last_digest(db.session.get(Setting, DIGEST_STATE_KEY))
    if last is not None and now - last < interval:
        return Digest(0, last + interval)
    held = Comment.status == Status.PENDING
    if last is not None:
        held &= Comment.created_at > last
    held &= Comment.created_at <= now
    total = db.session.scalar(select(func.count(Comment.id)).where(held)) or 0
    if not total:
        return Digest(0, None)
    recipients = moderator_addresses()
    if not recipients:
        return Digest(0, None)
    # A digest is due: lock its state, so that of several workers only one sends it.
    state = _locked_digest_state()
    if _last_digest(state) != last:
        sent = _last_digest(state)  # another worker sent it meanwhile
        return Digest(0, sent + interval if sent is not None else None)
    newest = db.session.scalars(
        select(Comment)
        .where(held)
        .options(selectinload(Comment.post), selectinload(Comment.reasons))
        .order_by(Comment.created_at.desc(), Comment.id.desc())
        .limit(DIGEST_ITEMS)
    ).all()
    items = [
        {
            "comment": c,
            "why": ", ".join(sorted({r.rule for r in c.reasons})) or "held",
            "excerpt": sanitize.excerpt(c.body_html, 160),
            "link": moderation_link(c.id),
        }
        for c in newest
    ]
    body = render_template("mail/digest.txt", total=total, items=items)
    noun = "comment" if total == 1 else "comments"
    subject = f"[{current_app.config['FORUM_NAME']}] {total} {noun} to moderate"
    for address in recipients:
        queue_mail(address, subject, body, "digest", send_after=now)
    state.value = now.isoformat()
    return Digest(total, now + interval)


def _last_digest(state: Setting | None) -> datetime | None:
    return datetime.fromisoformat(state.value) if state is not None and state.value else None


def _locked_digest_state() -> Setting:
    """The digest's state row, created if missing, locked until the transaction ends."""
    if db.session.get(Setting, DIGEST_STATE_KEY) is None:
        try:
            with db.session.begin_nested():
                db.session.add(Setting(key=DIGEST_STATE_KEY, value=None))
        except IntegrityError:
            pass  # another worker created it meanwhile
    return db.session.get(Setting, DIGEST_STATE_KEY, with_for_update=True, populate_existing=True)


def password_reset(user: User, link: str, now: datetime | None = None) -> OutboxMail:
    """The single-use link to choose a new password; sent at once, never batched."""
    minutes = current_app.config["PASSWORD_RESET_MAX_AGE_SECONDS"] // 60
    body = render_template("mail/password_reset.txt", user=user, link=link, minutes=minutes)
    subject = f"[{current_app.config['FORUM_NAME']}] Choose a new password"
    return queue_mail(user.email, subject, body, "reset", send_after=now or utcnow())
