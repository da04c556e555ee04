"""Bans by account, email or IP address: one writer for the dashboard and the admins'
users page, with an explicit choice to sweep the author's comments.

An account ban is the account's `is_banned` mark (what every check reads) and a Ban row
(what the bans page lists); only this module writes either, so they never disagree.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Select, and_, delete, or_, select

from forum.extensions import db
from forum.ids import parse_id
from forum.models import Ban, BanKind, Comment, Status, User, utcnow
from forum.services.audit import log, new_batch
from forum.services.moderation import ModerationError, Outcome, decide, load_comments


def ban_values(comment: Comment, kinds: Iterable[BanKind]) -> list[tuple[BanKind, str]]:
    """The account, email and IP address of a comment's author, for the kinds asked."""
    values = []
    for kind in kinds:
        if kind is BanKind.ACCOUNT and comment.user_id is not None:
            values.append((kind, str(comment.user_id)))
        elif kind is BanKind.EMAIL and comment.author_email.strip():
            values.append((kind, comment.author_email.strip().casefold()))
        elif kind is BanKind.IP and comment.ip.strip():
            values.append((kind, comment.ip.strip()))
    return values


class BanError(ModerationError):
    """A ban that cannot be made; the message is shown to whoever asked."""


def ban_author(
    comment: Comment,
    kinds: Iterable[BanKind],
    by: User,
    reason: str = "",
    remove_everything: bool = False,
    batch: str | None = None,
    now: datetime | None = None,
) -> Outcome:
    """Ban a comment's author by account, email and/or IP, and spam their comments."""
    values = ban_values(comment, kinds)
    if not values:
        raise BanError("Choose an account, email or IP address to ban.")
    return ban(
        values,
        by,
        user=comment.user if BanKind.ACCOUNT in dict(values) else None,
        reason=reason,
        sweep=True,
        remove_everything=remove_everything,
        comment_id=comment.id,
        batch=batch,
        now=now,
    )


def ban_member(target: User, by: User, reason: str = "", sweep: bool = True) -> Outcome:
    """Ban an account from the admins' users page (it can still sign in and read)."""
    return ban([(BanKind.ACCOUNT, str(target.id))], by, user=target, reason=reason, sweep=sweep)


def ban(
    values: list[tuple[BanKind, str]],
    by: User,
    *,
    user: User | None,
    sweep: bool,
    reason: str = "",
    remove_everything: bool = False,
    comment_id: int | None = None,
    batch: str | None = None,
    now: datetime | None = None,
) -> Outcome:
    """The one writer of bans: the Ban rows, the account's mark, one log entry in the shape
    undo reads, and (when `sweep`) the author's pending comments, or with
    `remove_everything` their approved ones too, marked as spam.

    Call `sweep_banned` again after committing to catch comments that arrived meanwhile.
    """
    now = now or utcnow()
    if user is not None:
        refuse_to_ban(user, by)
    outcome = Outcome("ban", batch or new_batch())
    existing = {
        (b.kind, b.value)
        for b in db.session.scalars(
            select(Ban).where(or_(*(and_(Ban.kind == k, Ban.value == v) for k, v in values)))
        )
    }
    made = []
    for kind, value in values:
        if (kind, value) in existing:
            continue
        row = Ban(kind=kind, value=value, reason=reason[:500], created_by_id=by.id, created_at=now)
        db.session.add(row)
        made.append(row)
    user_banned = user is not None and not user.is_banned
    if user_banned:
        user.is_banned = True
    if made or user_banned:
        db.session.flush()
        log(
            comment_id,
            by,
            "ban",
            None,
            None,
            outcome.batch,
            "; ".join([f"{b.kind.value} {b.value}" for b in made] + ([reason] if reason else [])),
            data={
                "ban_ids": [b.id for b in made],
                "user_banned_id": user.id if user_banned else None,
            },
            now=now,
        )
    outcome.extra["bans"] = [f"{k.value} {v}" for k, v in values if (k, v) not in existing]
    outcome.extra["ban_values"] = [[k.value, v] for k, v in values]
    if not sweep:
        return outcome
    return outcome.merge(sweep_banned(values, by, remove_everything, outcome.batch, now))


def refuse_to_ban(user: User, by: User) -> None:
    """Nobody bans themselves, and staff are demoted before they can be banned."""
    if user.id == by.id:
        raise BanError("You cannot ban yourself.")
    if user.is_moderator:
        raise BanError(f"{user.username} is a {user.role.value}: demote them first.")


def unban_member(target: User, by: User, now: datetime | None = None) -> Outcome:
    """Lift an account's ban: its mark and its row on the bans page."""
    outcome = Outcome("unban", new_batch())
    if not target.is_banned:
        return outcome
    target.is_banned = False
    db.session.execute(delete(Ban).where(Ban.kind == BanKind.ACCOUNT, Ban.value == str(target.id)))
    log(None, by, "unban", None, None, outcome.batch, f"account {target.username}", now=now)
    return outcome


def sweep_banned(
    values: Iterable[tuple[BanKind, str]],
    by: User,
    remove_everything: bool = False,
    batch: str | None = None,
    now: datetime | None = None,
) -> Outcome:
    """Spam every pending (or also approved) comment matching these bans."""
    stmt = banned_comments(values, remove_everything)
    if stmt is None:
        return Outcome("spam", batch or new_batch())
    ids = list(db.session.scalars(stmt))
    return decide("spam", load_comments(ids), by, "ban sweep", batch, now)


def banned_comments(
    values: Iterable[tuple[BanKind, str]], remove_everything: bool = False
) -> Select | None:
    conditions = []
    for kind, value in values:
        kind = BanKind(kind)
        if kind is BanKind.ACCOUNT and parse_id(value) is not None:
            conditions.append(Comment.user_id == parse_id(value))
        elif kind is BanKind.EMAIL:
            conditions.append(Comment.author_email == value)
        elif kind is BanKind.IP:
            conditions.append(Comment.ip == value)
    if not conditions:
        return None
    statuses = [Status.PENDING, Status.APPROVED] if remove_everything else [Status.PENDING]
    return select(Comment.id).where(Comment.status.in_(statuses), or_(*conditions))


def lift_ban(ban: Ban, by: User, now: datetime | None = None) -> Outcome:
    """Remove a ban (and the account's banned mark)."""
    outcome = Outcome("unban", new_batch())
    if ban.kind is BanKind.ACCOUNT and parse_id(ban.value) is not None:
        user = db.session.get(User, parse_id(ban.value))
        if user is not None:
            user.is_banned = False
    log(None, by, "unban", None, None, outcome.batch, f"{ban.kind.value} {ban.value}", now=now)
    db.session.delete(ban)
    return outcome
