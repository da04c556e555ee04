"""Mail: the moderators' digest, decision and reply mails, the outbox and its retries."""

from __future__ import annotations

import re
import smtplib
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from forum.extensions import db, mail
from forum.models import Comment, OutboxMail, Role, Status, utcnow
from forum.services import mailer, moderation, notifications, undo
from forum.services import settings as settings_service
from forum.services.comments import CommentInput, submit_comment
from tests.factories import make_comment, make_post, make_user
from tests.helpers import login_as


def outbox(kind: str | None = None) -> list[OutboxMail]:
    stmt = select(OutboxMail).order_by(OutboxMail.id)
    if kind:
        stmt = stmt.where(OutboxMail.kind == kind)
    return list(db.session.scalars(stmt))


def later(seconds: float):
    return utcnow() + timedelta(seconds=seconds)


@pytest.fixture
def staff(db_session):
    moderator = make_user(Role.MODERATOR, email="mod@example.org")
    admin = make_user(Role.ADMIN, email="admin@example.org")
    make_user(Role.MODERATOR, email="gone@example.org", is_banned=True)
    make_user(email="member@example.org")
    db.session.commit()
    return moderator, admin


# The moderators' digest ----------------------------------------------------------------


def test_digest_goes_to_moderators_with_signed_links(staff, app):
    post = make_post(title="Busy post")
    held = [make_comment(post, status=Status.PENDING, reasons=["links"]) for _ in range(2)]
    make_comment(post)  # approved: not in the digest
    db.session.commit()
    with mail.record_messages() as sent:
        report = mailer.send_due()
    assert report.sent == 2
    assert sorted(m.recipients[0] for m in sent) == ["admin@example.org", "mod@example.org"]
    body = sent[0].body
    assert sent[0].subject.endswith("2 comments to moderate")
    assert "Busy post" in body and "(links)" in body
    links = re.findall(r"https?://[^/\s]+/moderation/l/(\S+)", body)
    assert len(links) == 2
    assert {notifications.comment_from_link(t, 3600) for t in links} == {c.id for c in held}


def test_digest_at_most_every_n_minutes_and_only_for_new_comments(staff):
    post = make_post()
    make_comment(post, status=Status.PENDING)
    db.session.commit()
    start = utcnow()
    assert notifications.held_digest(start) == 1
    make_comment(post, status=Status.PENDING, created_at=start + timedelta(minutes=1))
    db.session.commit()
    assert notifications.held_digest(start + timedelta(minutes=5)) == 0  # too soon
    assert notifications.held_digest(start + timedelta(minutes=16)) == 1  # only the new one
    assert notifications.held_digest(start + timedelta(minutes=40)) == 0  # nothing new
    assert len(outbox("digest")) == 4


def test_digest_interval_is_a_setting(staff):
    settings_service.save({"digest_minutes": 60})
    post = make_post()
    make_comment(post, status=Status.PENDING)
    db.session.commit()
    start = utcnow()
    notifications.held_digest(start)
    make_comment(post, status=Status.PENDING, created_at=start + timedelta(minutes=1))
    assert notifications.held_digest(start + timedelta(minutes=30)) == 0
    assert notifications.held_digest(start + timedelta(minutes=61)) == 1


def test_no_digest_without_held_comments(staff):
    make_comment(make_post())
    assert notifications.held_digest() == 0 and outbox() == []


def test_signed_link_lands_on_the_item_for_moderators_only(app, client):
    with app.app_context():
        moderator = make_user(Role.MODERATOR)
        comment = make_comment(make_post(), status=Status.PENDING)
        db.session.commit()
        link = notifications.moderation_link(comment.id)
        ids = moderator.id, comment.id
    path = urlsplit(link).path
    resp = client.get(path)
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    login_as(client, ids[0])
    resp = client.get(path)
    assert resp.headers["Location"] == f"/moderation/comments/{ids[1]}"
    tampered = client.get(path[:-3] + ("abc" if not path.endswith("abc") else "xyz"))
    assert tampered.headers["Location"] == "/moderation/"


@pytest.mark.parametrize("app_config", [{"MODERATION_LINK_MAX_AGE_DAYS": -1}])
def test_expired_links_land_on_the_queue(app, client):
    with app.app_context():
        moderator = make_user(Role.MODERATOR)
        comment = make_comment(make_post(), status=Status.PENDING)
        db.session.commit()
        link = notifications.moderation_link(comment.id)
        moderator_id = moderator.id
    login_as(client, moderator_id)
    resp = client.get(urlsplit(link).path, follow_redirects=True)
    assert "expired" in resp.get_data(as_text=True)


@pytest.mark.parametrize("value", ["x", "1", "", "a" * 600])
def test_forged_tokens_are_refused(db_session, value):
    assert notifications.comment_from_link(value, 3600) is None


# Decisions -----------------------------------------------------------------------------


@pytest.fixture
def mod(db_session):
    moderator = make_user(Role.MODERATOR)
    db.session.commit()
    return moderator


def test_approval_mail_waits_for_the_grace_period_then_goes_out(mod):
    comment = make_comment(make_post(title="Nice post"), status=Status.PENDING,
                           notify_on_decision=True, author_email="ann@example.org")  # fmt: skip
    moderation.decide("approve", [comment], mod)
    db.session.commit()
    with mail.record_messages() as sent:
        mailer.send_due()
        assert [m for m in sent if m.recipients == ["ann@example.org"]] == []
        mailer.send_due(later(61))
    decision = [m for m in sent if m.recipients == ["ann@example.org"]]
    assert len(decision) == 1 and "published" in decision[0].subject
    assert f"/comments/{comment.id}" in decision[0].body


def test_undo_within_the_grace_period_cancels_the_mail(mod):
    comment = make_comment(make_post(), status=Status.PENDING, notify_on_decision=True)
    outcome = moderation.decide("approve", [comment], mod)
    db.session.commit()
    assert len(outbox("approved")) == 1
    undo.undo(outcome.batch, mod)
    db.session.commit()
    assert outbox("approved") == []


def test_a_mail_whose_decision_changed_is_dropped_at_sending(mod):
    comment = make_comment(make_post(), status=Status.PENDING, notify_on_decision=True)
    moderation.decide("approve", [comment], mod)
    db.session.commit()
    comment.status = Status.PENDING  # changed behind the outbox's back
    db.session.commit()
    with mail.record_messages() as sent:
        report = mailer.send_due(later(61))
    assert report.dropped == 1 and outbox("approved") == []
    assert [m for m in sent if m.recipients == [comment.author_email]] == []


def test_rejection_mail_carries_the_reason_and_the_text(mod):
    comment = make_comment(make_post(), status=Status.PENDING, notify_on_decision=True,
                           body="My heartfelt words")  # fmt: skip
    moderation.decide("reject", [comment], mod, note="Off-topic")
    db.session.commit()
    with mail.record_messages() as sent:
        mailer.send_due(later(61))
    assert len(sent) == 1
    assert "not published" in sent[0].subject
    assert "The reason given: Off-topic" in sent[0].body and "My heartfelt words" in sent[0].body


@pytest.mark.parametrize(
    ("action", "opted_in", "kinds"),
    [("spam", True, []), ("approve", False, []), ("reject", False, []), ("restore", True, [])],
)
def test_no_decision_mail_when_not_asked_or_for_spam(mod, action, opted_in, kinds):
    comment = make_comment(make_post(), status=Status.REJECTED if action == "restore" else
                           Status.PENDING, notify_on_decision=opted_in)  # fmt: skip
    moderation.decide(action, [comment], mod)
    assert [m.kind for m in outbox()] == kinds


# Replies -------------------------------------------------------------------------------


def test_reply_mail_only_once_the_reply_is_approved(mod, app):
    post = make_post(title="Thread")
    parent = make_comment(post, notify_on_reply=True, author_email="ann@example.org",
                          author_name="Ann")  # fmt: skip
    db.session.commit()
    settings = settings_service.load()
    reply = submit_comment(
        post,
        CommentInput(
            body="I disagree",
            parent_id=parent.id,
            author_name="Bob",
            author_email="bob@example.org",
        ),  # fmt: skip
        settings,
    )
    db.session.commit()
    assert reply.status is Status.PENDING and outbox("reply") == []
    moderation.decide("approve", [reply], mod)
    db.session.commit()
    with mail.record_messages() as sent:
        mailer.send_due(later(61))
    replies = [m for m in sent if m.recipients == ["ann@example.org"]]
    assert len(replies) == 1 and "Bob replied" in replies[0].subject
    assert "I disagree" in replies[0].body
    # Hidden and shown again: still only one mail about that reply.
    moderation.decide("spam", [reply], mod)
    moderation.decide("approve", [reply], mod)
    db.session.commit()
    assert len(outbox("reply")) == 1


def test_a_reply_published_at_once_tells_the_parent_author(mod):
    post = make_post()
    parent = make_comment(post, notify_on_reply=True, author_email="ann@example.org")
    db.session.commit()
    settings = settings_service.save({"moderation_mode": "off", "hold_words": "casino"})
    reply = submit_comment(
        post,
        CommentInput(
            body="Quick answer",
            parent_id=parent.id,
            author_name="Bob",
            author_email="bob@example.org",
        ),  # fmt: skip
        settings,
    )
    notifications.comment_submitted(reply)
    assert reply.visible and [m.recipient for m in outbox("reply")] == ["ann@example.org"]
    held = submit_comment(
        post,
        CommentInput(body="Visit my casino",
                     parent_id=parent.id, author_name="Cy", author_email="cy@example.org"),
        settings,
    )  # fmt: skip
    notifications.comment_submitted(held)
    assert held.status is Status.PENDING and len(outbox("reply")) == 1


def test_replies_withheld_with_their_parent_are_not_mailed(mod):
    post = make_post()
    top = make_comment(post, status=Status.PENDING)
    parent = make_comment(post, parent=top, notify_on_reply=True)
    reply = make_comment(post, parent=parent, status=Status.PENDING)
    moderation.decide("approve", [reply], mod)  # approved, but not visible: top waits
    assert outbox("reply") == []
    moderation.decide("approve", [parent], mod)
    assert outbox("reply") == []
    moderation.decide("approve", [top], mod)  # now the whole thread shows
    assert [m.comment_id for m in outbox("reply")] == [reply.id]


def test_a_reply_hidden_again_before_sending_is_dropped(mod):
    post = make_post()
    parent = make_comment(post, notify_on_reply=True)
    reply = make_comment(post, parent=parent, status=Status.PENDING)
    moderation.decide("approve", [reply], mod)
    db.session.commit()
    db.session.execute(
        Comment.__table__.update().where(Comment.id == reply.id).values(visible=False)
    )
    db.session.commit()
    with mail.record_messages() as sent:
        report = mailer.send_due(later(61))
    assert sent == [] and report.dropped == 1


def test_no_mail_for_replying_to_yourself(mod):
    post = make_post()
    parent = make_comment(post, notify_on_reply=True, author_email="ann@example.org")
    reply = make_comment(post, parent=parent, status=Status.PENDING, author_email="ann@example.org")
    moderation.decide("approve", [reply], mod)
    assert outbox("reply") == []


def test_moderators_reply_notifies_the_author(mod):
    post = make_post()
    comment = make_comment(post, status=Status.PENDING, notify_on_reply=True,
                           notify_on_decision=True)  # fmt: skip
    moderation.approve_and_reply(comment, "Welcome aboard", mod, settings_service.load())
    assert sorted(m.kind for m in outbox()) == ["approved", "reply"]


# Sending: failures, retries, after the response, the command -----------------------------------


def queued_mail(**kw) -> OutboxMail:
    row = notifications.queue_mail("x@example.org", "Subject", "Body", "test", **kw)
    db.session.commit()
    return row


def test_failures_are_retried_with_growing_delays(app, db_session, monkeypatch):
    row = queued_mail()
    start = utcnow()

    def broken(_message):
        raise smtplib.SMTPServerDisconnected("down")

    monkeypatch.setattr(mail, "send", broken)
    report = mailer.send_due(start)
    assert report.failed == 1
    assert row.attempts == 1 and "down" in row.last_error and row.sent_at is None
    assert row.next_attempt_at == start + timedelta(seconds=60)
    assert mailer.send_due(start + timedelta(seconds=30)).failed == 0  # not due yet
    assert mailer.send_due(start + timedelta(seconds=61)).failed == 1
    assert row.next_attempt_at == start + timedelta(seconds=61 + 120)
    monkeypatch.undo()
    with mail.record_messages() as sent:
        assert mailer.send_due(start + timedelta(minutes=10)).sent == 1
    assert len(sent) == 1 and row.sent_at is not None and row.last_error == ""
    assert mailer.send_due(start + timedelta(hours=1)).sent == 0  # sent once


@pytest.mark.parametrize("app_config", [{"MAIL_MAX_ATTEMPTS": 2}])
def test_retries_stop_after_the_last_attempt(app, db_session, monkeypatch):
    row = queued_mail()
    monkeypatch.setattr(mail, "send", lambda _m: (_ for _ in ()).throw(OSError("refused")))
    for hours in range(4):
        mailer.send_due(utcnow() + timedelta(hours=hours))
    assert row.attempts == 2 and row.sent_at is None


def test_a_leased_mail_is_not_sent_twice(db_session):
    row = queued_mail()
    row.next_attempt_at = utcnow() + mailer.LEASE  # another worker took it
    db.session.commit()
    assert mailer.send_due().sent == 0


@pytest.mark.parametrize("app_config", [{"MAIL_UNDO_GRACE_SECONDS": 0}])
def test_mail_goes_out_after_the_response_and_failures_never_break_it(app, client, monkeypatch):
    with app.app_context():
        moderator = make_user(Role.MODERATOR)
        first = make_comment(make_post(), status=Status.PENDING, notify_on_decision=True,
                             author_email="ann@example.org")  # fmt: skip
        second = make_comment(first.post, status=Status.PENDING, notify_on_decision=True,
                              author_email="bob@example.org")  # fmt: skip
        db.session.commit()
        ids = moderator.id, first.id, second.id
    login_as(client, ids[0])
    with mail.record_messages() as sent:
        resp = client.post(f"/moderation/comments/{ids[1]}/approve")
        assert resp.status_code == 302 and sent == []
        resp.close()  # the server closes the response once it is sent
    assert [m.recipients for m in sent if "published" in m.subject] == [["ann@example.org"]]

    def broken(_message):
        raise smtplib.SMTPException("mail server down")

    monkeypatch.setattr(mail, "send", broken)
    resp = client.post(
        f"/moderation/comments/{ids[2]}/approve", headers={"Accept": "application/json"}
    )
    resp.close()
    assert resp.status_code == 200 and resp.json["ok"]
    with app.app_context():
        row = db.session.scalars(
            select(OutboxMail).where(OutboxMail.recipient == "bob@example.org")
        ).one()
        assert row.attempts == 1 and row.sent_at is None and "down" in row.last_error
        assert db.session.get(Comment, ids[2]).status is Status.APPROVED


def test_send_mail_command(app):
    with app.app_context():
        queued_mail()
    runner = app.test_cli_runner()
    with app.app_context(), mail.record_messages() as sent:
        result = runner.invoke(args=["forum", "send-mail"])
    assert result.exit_code == 0, result.output
    assert "sent 1" in result.output and len(sent) == 1


# The look after a response -------------------------------------------------------------


@pytest.mark.parametrize(
    ("next_look", "digest_due", "queued", "held", "looks"),
    [
        (None, None, False, False, True),  # nothing known yet
        (10, None, True, False, True),  # the request queued mail
        (10, None, False, True, True),  # held a comment, a digest may be due now
        (10, -5, False, True, True),  # held a comment, the digest's time has come
        (10, 15, False, True, False),  # held a comment before the digest's time
        (10, None, False, False, False),  # nothing new, looked less than RECHECK ago
        (0, 15, False, False, True),  # RECHECK has passed
    ],
)
def test_the_gate_looks_only_when_something_may_be_due(next_look, digest_due, queued, held, looks):
    start = utcnow()

    def at(minutes: int | None):
        return None if minutes is None else start + timedelta(minutes=minutes)

    gate = mailer.Gate(at(next_look), at(digest_due))
    assert gate.must_look(start, queued, held) is looks


def test_responses_look_at_the_outbox_only_when_something_may_be_due(app, client, monkeypatch):
    """A held comment sends the digest at once; the next ones, inside the digest interval,
    skip the look, as do approvals that queue no mail; a queued mail is looked at by the
    response of its request, and sent by a response once its time has come (within
    RECHECK); a held comment once the interval is over starts the next digest."""
    with app.app_context():
        moderator = make_user(Role.MODERATOR, email="mod@example.org")
        post = make_post()
        db.session.commit()
        ids = moderator.id, post.id
    looks = []
    real_send_due = mailer.send_due
    monkeypatch.setattr(
        mailer, "send_due", lambda now=None: looks.append(now) or real_send_due(now)
    )
    ahead = [timedelta(0)]  # the mailer's clock runs ahead of the comments' by this much
    monkeypatch.setattr(mailer, "utcnow", lambda: utcnow() + ahead[0])

    def comment(n: int, **extra) -> int:
        data = {"author_name": f"Guest {n}", "author_email": f"g{n}@example.org"}
        resp = client.post(f"/posts/{ids[1]}/comments", data={**data, "body": f"Hi {n}", **extra})
        resp.close()  # the look runs when the response is closed
        assert resp.status_code == 302
        with app.app_context():
            return db.session.scalars(select(Comment.id).order_by(Comment.id.desc())).first()

    with mail.record_messages() as sent:
        first = comment(1, notify_decision="y")
        assert len(looks) == 1 and [m.subject for m in sent][-1].endswith("1 comment to moderate")
        comment(2)
        assert len(looks) == 1  # held inside the digest interval: no look
        moderator_client = app.test_client()
        login_as(moderator_client, ids[0])
        moderator_client.post(f"/moderation/comments/{first}/approve").close()
        assert len(looks) == 2  # the approval queued a mail (sent after the undo grace)
        assert not any(m.recipients == ["g1@example.org"] for m in sent)
        ahead[0] += mailer.RECHECK + timedelta(seconds=5)
        comment(3)  # held, inside the digest interval, but RECHECK has passed
        assert len(looks) == 3
        assert any(m.recipients == ["g1@example.org"] for m in sent)  # its time had come
        comment(4)
        assert len(looks) == 3
        ahead[0] += timedelta(minutes=16)
        comment(5)
        assert len(looks) == 4
        digests = [m for m in sent if m.subject.endswith("to moderate")]
        assert len(digests) == 2 and digests[-1].subject.endswith("4 comments to moderate")
