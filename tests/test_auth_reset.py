"""Passwords: changing one, resetting it by a mailed link, and its rate limit."""

from __future__ import annotations

import logging
import re

import pytest
from sqlalchemy import select

from forum.extensions import db, mail
from forum.models import OutboxMail, User
from forum.services import accounts
from tests.factories import PASSWORD
from tests.helpers import LIMITED, cookie, sign_in, signed_in_as

NEW_PASSWORD = "violet kettles hum softly"


# Changing and resetting the password -----------------------------------------------------


def test_change_password_needs_the_current_one(app, client, member):
    sign_in(client, "alice")
    resp = client.post(
        "/auth/password",
        data={"current_password": "wrong one", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert resp.status_code == 422 and "not your current password" in resp.text
    resp = client.post(
        "/auth/password",
        data={"current_password": PASSWORD, "password": "password123", "confirm": "password123"},
    )
    assert resp.status_code == 422 and "most common" in resp.text


def test_change_password_keeps_this_session_and_ends_the_others(app, client, member):
    sign_in(client, "alice", remember="y")
    elsewhere = app.test_client()
    sign_in(elsewhere, "alice")
    resp = client.post(
        "/auth/password",
        data={"current_password": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert resp.status_code == 302
    assert cookie(resp, "remember_token") is not None  # a new one, with the new token
    assert signed_in_as(client) == "alice"
    assert signed_in_as(elsewhere) is None
    assert sign_in(app.test_client(), "alice", PASSWORD).status_code == 200
    assert sign_in(app.test_client(), "alice", NEW_PASSWORD).status_code == 302


def reset_link_from(outbox) -> str:
    assert len(outbox) == 1
    found = re.search(r"http://127\.0\.0\.1:5000(/auth/reset/\S+)", outbox[0].body)
    assert found, outbox[0].body
    return found.group(1)


def test_password_reset_by_mailed_link_works_once(app, client, member, caplog):
    caplog.set_level(logging.INFO)
    with mail.record_messages() as outbox:
        resp = client.post("/auth/reset", data={"email": "ALICE@example.org"})
        resp.close()  # the outbox is sent once the response has gone out
    assert resp.status_code == 302
    assert outbox[0].recipients == ["alice@example.org"]
    link = reset_link_from(outbox)
    token = link.rsplit("/", 1)[1]

    resp = client.get(link)
    assert resp.status_code == 302 and resp.headers["Location"] == "/auth/new-password"
    page = client.get("/auth/new-password")
    assert page.status_code == 200 and token not in page.text
    resp = client.post(
        "/auth/new-password", data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    )
    assert resp.status_code == 302 and resp.headers["Location"] == "/auth/login"
    assert sign_in(app.test_client(), "alice", NEW_PASSWORD).status_code == 302
    assert sign_in(app.test_client(), "alice", PASSWORD).status_code == 200

    again = app.test_client()
    again.get(link)
    resp = again.get("/auth/new-password")
    assert resp.status_code == 302 and resp.headers["Location"] == "/auth/reset"
    assert token not in caplog.text


def test_reset_for_unknown_address_answers_the_same_and_sends_nothing(app, client, member):
    with mail.record_messages() as outbox:
        known = client.post("/auth/reset", data={"email": "alice@example.org"})
        unknown = client.post("/auth/reset", data={"email": "nobody@example.org"})
        known.close(), unknown.close()
    assert len(outbox) == 1
    assert known.status_code == unknown.status_code == 302
    assert known.headers["Location"] == unknown.headers["Location"]
    assert "If that account exists" in client.get("/auth/login").text


def test_reset_links_expire_and_cannot_be_forged(app, member):
    with app.app_context():
        user = db.session.get(User, member["id"])
        token = accounts.reset_token(user, "test-secret-key")
        assert accounts.user_for_reset_token(token, "test-secret-key", 60) is user
        assert accounts.user_for_reset_token(token, "other-secret", 60) is None
        assert accounts.user_for_reset_token(token + "x", "test-secret-key", 60) is None
        assert accounts.user_for_reset_token("garbage", "test-secret-key", 60) is None
        assert accounts.user_for_reset_token(token, "test-secret-key", -1) is None
        accounts.end_sessions(user)  # signing out everywhere also voids old links
        assert accounts.user_for_reset_token(token, "test-secret-key", 60) is None


def test_reset_mail_failure_is_logged_retried_and_the_page_still_answers(
    app, client, member, caplog, monkeypatch
):
    def broken(_message):
        raise ConnectionRefusedError("mail server down")

    caplog.set_level(logging.INFO)
    monkeypatch.setattr(mail, "send", broken)
    resp = client.post("/auth/reset", data={"email": "alice@example.org"})
    resp.close()
    assert resp.status_code == 302
    assert "failed (attempt 1): ConnectionRefusedError" in caplog.text
    assert "/auth/reset/" not in caplog.text
    with app.app_context():
        queued = db.session.scalars(select(OutboxMail)).one()
        assert queued.kind == "reset" and queued.sent_at is None and queued.attempts == 1


def test_forged_reset_link_is_refused(client, member):
    client.get("/auth/reset/not-a-real-token")
    resp = client.get("/auth/new-password")
    assert resp.status_code == 302 and resp.headers["Location"] == "/auth/reset"
    resp = client.post(
        "/auth/new-password", data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    )
    assert resp.status_code == 302


# Rate limit ---------------------------------------------------------------------------


@pytest.mark.parametrize("app_config", [LIMITED])
def test_reset_mails_are_rate_limited(app, client, member):
    with mail.record_messages() as outbox:
        for _ in range(2):
            resp = client.post("/auth/reset", data={"email": "alice"})
            resp.close()
            assert resp.status_code == 302
        assert client.post("/auth/reset", data={"email": "alice"}).status_code == 429
    assert len(outbox) == 2
