"""The mailer: the one worker that sends the outbox and commits as it goes.

It is not part of any request's transaction: it runs after a response has gone out
(`forum.web.flush_mail_after_response`) or from `flask forum send-mail`, and commits
each step itself so that two workers never send the same mail and a failure is
retried with doubling delays.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import Flask, current_app
from flask_mail import Message
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from forum.extensions import db, mail, take_write_lock_up_front
from forum.models import Comment, OutboxMail, Status, utcnow
from forum.services import notifications

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=10)


# How long a process trusts what its last look after a response found: a mail whose time
# came meanwhile, or a digest made due sooner by a settings change, waits at most this much
# longer for the next response (`flask forum send-mail` does not wait at all).
RECHECK = timedelta(seconds=60)


@dataclass(frozen=True)
class SendReport:
    sent: int = 0
    failed: int = 0
    dropped: int = 0
    more: bool = False  # the batch was full: more may be due now
    next_digest: datetime | None = None  # a held comment may start a digest from then


@dataclass
class Gate:
    """What this process's last look after a response found, so that the next look is
    skipped when it could find nothing (it costs a few statements and two commits after
    every comment, approval and moderation action): looks happen when the request queued
    mail, when it held a comment and a digest may be due, or RECHECK after the last."""

    next_look: datetime | None = None
    digest_due: datetime | None = None

    def must_look(self, now: datetime, queued: bool, held: bool) -> bool:
        if queued or self.next_look is None or now >= self.next_look:
            return True
        return held and (self.digest_due is None or now >= self.digest_due)

    def looked(self, now: datetime, report: SendReport) -> None:
        self.next_look = None if report.more else now + RECHECK
        self.digest_due = report.next_digest


def still_true(row: OutboxMail) -> bool:
    """Is what a mail about a comment says still so? (Else it is dropped unsent.)"""
    if row.kind not in notifications.ABOUT_COMMENT or row.comment_id is None:
        return True
    comment = db.session.get(Comment, row.comment_id)
    if comment is None:
        return False
    if row.kind == "approved":
        return comment.status is Status.APPROVED
    if row.kind == "rejected":
        return comment.status is Status.REJECTED
    return comment.visible


def send_due(now: datetime | None = None, limit: int = 50) -> SendReport:
    """Build a digest if one is due, then send what is due. Commits as it goes.

    Rows are leased (their next attempt pushed back) and committed before sending, so
    two workers never send the same mail.
    """
    now = now or utcnow()
    digest = notifications.digest_held(now)
    db.session.commit()
    max_attempts = current_app.config["MAIL_MAX_ATTEMPTS"]
    rows = db.session.scalars(
        select(OutboxMail)
        .where(
            OutboxMail.sent_at.is_(None),
            OutboxMail.next_attempt_at <= now,
            OutboxMail.attempts < max_attempts,
        )
        .order_by(OutboxMail.next_attempt_at, OutboxMail.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for row in rows:
        row.next_attempt_at = now + LEASE
    db.session.commit()
    sent = failed = dropped = 0
    base = current_app.config["MAIL_RETRY_BASE_SECONDS"]
    for row in rows:
        if not still_true(row):
            db.session.delete(row)
            db.session.commit()
            dropped += 1
            continue
        row.attempts += 1
        try:
            mail.send(Message(subject=row.subject, recipients=[row.recipient], body=row.body))
        except Exception as error:  # noqa: BLE001 - any mail failure is retried, never raised
            row.last_error = f"{type(error).__name__}: {error}"[:500]
            row.next_attempt_at = now + timedelta(seconds=base * 2 ** (row.attempts - 1))
            log.warning(
                "mail %s to %s failed (attempt %s): %s",
                row.id,
                row.recipient,
                row.attempts,
                row.last_error,
            )
            failed += 1
        else:
            row.sent_at = utcnow()
            row.last_error = ""
            sent += 1
        db.session.commit()
    return SendReport(sent, failed, dropped, len(rows) == limit, digest.next_due)


def send_quietly(app: Flask, queued: bool = True, held: bool = True) -> None:
    """send_due in its own app context, unless this process's Gate says nothing can be
    due (`queued`: the request queued mail; `held`: it held a new comment); logs instead
    of raising.

    It runs after every response and mostly only reads, so on SQLite its transactions
    begin deferred. One that read and then must write fails at once with "database is
    locked" when another worker wrote meanwhile; it then runs once more with the write
    lock taken up front, which waits for the other writer instead.
    """
    gate = app.extensions.setdefault("forum.mail_gate", Gate())
    now = utcnow()
    if not gate.must_look(now, queued, held):
        return
    with app.app_context():
        for attempt in (1, 2):
            try:
                gate.looked(now, send_due(now))
                return
            except OperationalError as error:
                db.session.rollback()
                if attempt == 1 and "database is locked" in str(error.orig):
                    take_write_lock_up_front()
                    continue
                log.exception("sending queued mail failed")
                return
            except Exception:  # noqa: BLE001 - best effort after the response
                db.session.rollback()
                log.exception("sending queued mail failed")
                return
