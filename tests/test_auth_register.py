"""Registering: the form, its refusals, the password and name rules, its rate limit."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from forum.extensions import db
from forum.models import Role, User
from forum.services import accounts
from tests.factories import make_post, make_user
from tests.helpers import LIMITED, sign_in, signed_in_as


def register_data(**overrides) -> dict[str, str]:
    data = {
        "username": "newcomer",
        "email": "newcomer@example.org",
        "password": "blue coffee mornings",
        "confirm": "blue coffee mornings",
    }
    data.update(overrides)
    return data


# Registering ---------------------------------------------------------------------------


def test_new_member_registers_arrives_signed_in_comments_and_signs_out(app, client):
    with app.app_context():
        post_id = make_post(make_user(Role.ADMIN), title="Welcome").id
        db.session.commit()
    assert client.get("/auth/register").status_code == 200
    resp = client.post("/auth/register?next=/posts/1", data=register_data())
    assert resp.status_code == 302 and resp.headers["Location"] == "/posts/1"
    assert signed_in_as(client) == "newcomer"
    with app.app_context():
        user = db.session.scalars(select(User).where(User.username == "newcomer")).one()
        assert user.role is Role.MEMBER and not user.is_banned
        assert user.password_hash.startswith("scrypt:")
        assert user.session_token
    resp = client.post(f"/posts/{post_id}/comments", data={"body": "Glad to be here"})
    assert resp.status_code == 302
    assert client.post("/auth/logout").status_code == 302
    assert signed_in_as(client) is None
    resp = sign_in(client, "NEWCOMER@example.org", "blue coffee mornings")
    assert resp.status_code == 302
    assert signed_in_as(client) == "newcomer"


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"username": "ab"}, "username", "3-30"),
        ({"username": "x" * 31}, "username", ""),
        ({"username": "has space"}, "username", "3-30 letters"),
        ({"username": "émile"}, "username", "3-30 letters"),
        ({"username": "a.b.c"}, "username", "3-30 letters"),
        ({"email": "not-an-email"}, "email", ""),
        ({"password": "short1!", "confirm": "short1!"}, "password", "at least 10"),
        ({"password": "password123", "confirm": "password123"}, "password", "most common"),
        ({"password": "Qwertyuiop1!", "confirm": "Qwertyuiop1!"}, "password", "most common"),
        ({"password": "P@ssw0rd2024", "confirm": "P@ssw0rd2024"}, "password", "most common"),
        ({"password": "newcomer2024!", "confirm": "newcomer2024!"}, "password", "username"),
        ({"confirm": "something else entirely"}, "confirm", "differ"),
    ],
)
def test_registration_is_refused_with_a_reason(app, client, overrides, field, message):
    resp = client.post("/auth/register", data=register_data(**overrides))
    assert resp.status_code == 422
    page = resp.get_data(as_text=True)
    assert message in page
    assert f'id="{field}"' in page
    with app.app_context():
        assert db.session.scalars(select(User)).all() == []


@pytest.mark.parametrize(
    "overrides",
    [{"username": "ALICE"}, {"email": "Alice@Example.org"}],
)
def test_registration_with_a_taken_name_or_email_is_refused(app, client, member, overrides):
    resp = client.post("/auth/register", data=register_data(**overrides))
    assert resp.status_code == 422
    assert "taken" in resp.text or "already registered" in resp.text
    with app.app_context():
        assert len(db.session.scalars(select(User)).all()) == 1


def test_a_registration_that_loses_a_race_is_a_form_error(app, client, member, monkeypatch):
    monkeypatch.setattr(accounts, "find_user", lambda _login: None)  # both checks passed
    resp = client.post("/auth/register", data=register_data(username="alice"))
    assert resp.status_code == 422 and "just registered" in resp.text


@pytest.mark.parametrize(
    ("password", "ok"),
    [
        ("correct horse battery", True),
        ("demo-password-2026", True),
        ("Tr0ub4dor&3x-plus", True),
        ("123456789", False),
        ("1234567890", False),
        ("aaaaaaaaaaaa", False),
        ("abababababab", False),
        ("abcdefghijk", False),
        ("qwertyuiop", False),
        ("1q2w3e4r5t6y", False),
        ("iloveyou2024", False),
        ("Dragon2024!!", False),
        ("123monkey!!!", False),
        ("M0nk3y123456", False),
        ("footballfootball", False),
        ("alice-2024!", False),
        ("alice@example.org", False),
    ],
)
def test_password_rules(password, ok):
    problems = accounts.password_problems(password, "alice", "alice@example.org")
    assert (problems == []) is ok, problems


@pytest.mark.parametrize(
    ("username", "ok"),
    [
        ("abc", True),
        ("a" * 30, True),
        ("Some_One-2", True),
        ("ab", False),
        ("a" * 31, False),
        ("a b", False),
        ("a@b", False),
        ("ünï", False),
        ("", False),
    ],
)
def test_username_rules(username, ok):
    assert (accounts.username_problems(username) == []) is ok


def test_common_password_list_is_large_and_loaded_once():
    from forum.services import common_passwords

    words = common_passwords.common_passwords()
    assert len(words) > 19_000
    assert sum(len(w) >= 10 for w in words) > 1_500
    assert common_passwords.common_passwords() is words


# Rate limit ---------------------------------------------------------------------------


@pytest.mark.parametrize("app_config", [LIMITED])
def test_registration_is_rate_limited_per_ip(app, client):
    for n in range(2):
        data = register_data(username=f"new{n}", email=f"new{n}@example.org")
        assert app.test_client().post("/auth/register", data=data).status_code == 302
    resp = client.post("/auth/register", data=register_data())
    assert resp.status_code == 429 and "Too many attempts" in resp.text
