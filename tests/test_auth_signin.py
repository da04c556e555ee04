"""Signing in and out: logins, sessions, remember-me, safe next, logs and rate limits."""

from __future__ import annotations

import logging

import pytest
from werkzeug.security import check_password_hash, generate_password_hash

from forum.extensions import db
from forum.models import User
from forum.services import accounts
from tests.factories import PASSWORD, make_user
from tests.helpers import LIMITED, cookie, sign_in, signed_in_as

# Signing in ----------------------------------------------------------------------------


@pytest.mark.parametrize("login", ["alice", "ALICE", "alice@example.org", " Alice@Example.ORG "])
def test_sign_in_by_username_or_email(app, client, member, login):
    resp = sign_in(client, login)
    assert resp.status_code == 302 and resp.headers["Location"] == "/"
    assert signed_in_as(client) == "alice"
    with app.app_context():
        assert db.session.get(User, member["id"]).last_login_at is not None


def test_wrong_password_and_unknown_user_get_the_same_answer(app, client, member):
    wrong = sign_in(client, "alice", "not the password")
    unknown = sign_in(client, "nobody-here", "not the password")
    assert wrong.status_code == unknown.status_code == 200
    assert "Wrong username or password." in wrong.text
    strip = lambda page: page.replace("alice", "X").replace("nobody-here", "X")  # noqa: E731
    assert strip(wrong.text) == strip(unknown.text)
    assert signed_in_as(client) is None


def test_unknown_user_costs_one_password_hash_check_like_a_wrong_password(app, member, monkeypatch):
    calls = []
    real = accounts.check_password_hash

    def counting(pwhash, password):
        calls.append(pwhash.split("$", 1)[0])
        return real(pwhash, password)

    monkeypatch.setattr(accounts, "check_password_hash", counting)
    with app.app_context():
        assert accounts.authenticate("alice", "wrong password") is None
        assert accounts.authenticate("nobody", "wrong password") is None
        db.session.get(User, member["id"]).password_hash = None
        assert accounts.authenticate("alice", "wrong password") is None
    assert len(calls) == 3
    assert len(set(calls)) == 1  # the same method and cost every time


def test_old_password_hash_is_redone_with_the_current_default(app, client):
    with app.app_context():
        user = make_user(username="oldtimer")
        user.password_hash = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")
        db.session.commit()
        uid = user.id
    assert sign_in(client, "oldtimer").status_code == 302
    with app.app_context():
        new_hash = db.session.get(User, uid).password_hash
        assert new_hash.startswith(accounts.CURRENT_HASH_METHOD + "$")
        assert check_password_hash(new_hash, PASSWORD)


def test_sign_in_renews_the_session(app, client, member):
    with client.session_transaction() as sess:
        sess["planted"] = "by an attacker"
        sess["csrf_token"] = "known-token"
    sign_in(client, "alice")
    with client.session_transaction() as sess:
        assert "planted" not in sess
        assert sess.get("csrf_token") != "known-token"
        assert sess["_user_id"].startswith(f"{member['id']}:")


def test_remember_me_sets_a_safe_cookie_and_only_when_asked(app, client, member):
    assert cookie(sign_in(client, "alice"), "remember_token") is None
    other = app.test_client()
    jar = cookie(sign_in(other, "alice", remember="y"), "remember_token")
    assert jar is not None
    morsel = jar["remember_token"]
    assert morsel["httponly"] and morsel["samesite"] == "Lax"
    assert morsel.value.startswith(f"{member['id']}:")


def test_remember_cookie_alone_signs_in_until_sign_out_ends_it(app, client, member):
    resp = sign_in(client, "alice", remember="y")
    value = cookie(resp, "remember_token")["remember_token"].value
    fresh = app.test_client()
    fresh.set_cookie("remember_token", value)
    assert signed_in_as(fresh) == "alice"
    resp = client.post("/auth/logout")
    assert resp.status_code == 302
    cleared = cookie(resp, "remember_token")["remember_token"]
    assert cleared.value == "" and "1970" in cleared["expires"]
    replay = app.test_client()
    replay.set_cookie("remember_token", value)
    assert signed_in_as(replay) is None


def test_logout_is_a_post_only(client, member):
    sign_in(client, "alice")
    assert client.get("/auth/logout").status_code == 405
    assert signed_in_as(client) == "alice"


def test_session_protection_is_on(app):
    from forum.extensions import login_manager

    assert login_manager.session_protection in ("basic", "strong")


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "///evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "https:evil.example",
        "https://evil.example/",
        "http://localhost/",
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        " //evil.example",
        "/\t/evil.example",
        "/\n/evil.example",
        "evil.example",
        "data:text/html,hi",
        "/%0d%0aSet-Cookie:x",
        "",
    ],
)
def test_next_never_leaves_the_site(client, member, target):
    resp = client.post(
        "/auth/login",
        query_string={"next": target},
        data={"username": "alice", "password": PASSWORD},
    )
    assert resp.status_code == 302
    location = resp.headers["Location"]
    if target == "/%0d%0aSet-Cookie:x":
        assert location == "/%0d%0aSet-Cookie:x"
    else:
        assert location == "/"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/posts/1/hello?page=2#comment-3", "/posts/1/hello?page=2#comment-3"),
        ("/moderation/", "/moderation/"),
        ("//evil", "/"),
        ("/\\evil", "/"),
        ("https:evil", "/"),
        ("javascript:alert(1)", "/"),
        ("https://example.org/", "/"),
        ("/ok\u2028/x", "/"),
        (None, "/"),
    ],
)
def test_safe_next(target, expected):
    assert accounts.safe_next(target) == expected


def test_signed_in_member_visiting_login_goes_to_next(client, member):
    sign_in(client, "alice")
    resp = client.get("/auth/login?next=/auth/profile/alice")
    assert resp.status_code == 302 and resp.headers["Location"] == "/auth/profile/alice"


def test_login_required_page_comes_back_after_sign_in(app, client, member):
    resp = client.get("/auth/password")
    assert resp.status_code == 302
    assert resp.headers["Location"].startswith("/auth/login?next=")
    resp = client.post(resp.headers["Location"], data={"username": "alice", "password": PASSWORD})
    assert resp.headers["Location"] == "/auth/password"


# Logs ----------------------------------------------------------------------------------


def test_sign_ins_are_logged_without_passwords(app, client, member, caplog):
    caplog.set_level(logging.INFO)
    sign_in(client, "alice", "a wrong guess")
    sign_in(client, PASSWORD, "typed into the wrong box")
    sign_in(client, "alice")
    messages = [r.getMessage() for r in caplog.records]
    failed = [m for m in messages if m.startswith("login failed")]
    assert len(failed) == 2
    assert 'user="alice"' in failed[0] and 'ip="127.0.0.1"' in failed[0] and "at=" in failed[0]
    assert 'user="<unknown>"' in failed[1]
    assert any(m.startswith('login user="alice"') for m in messages)
    for secret in (PASSWORD, "a wrong guess", "typed into the wrong box"):
        assert secret not in caplog.text


# Rate limits ---------------------------------------------------------------------------


@pytest.mark.parametrize("app_config", [LIMITED])
def test_repeated_failed_sign_ins_get_a_clear_429(app, client, member):
    for _ in range(3):
        assert sign_in(client, "alice", "wrong guess").status_code == 200
    resp = sign_in(client, "alice", "wrong guess")
    assert resp.status_code == 429
    assert "Too many failed sign-in attempts" in resp.text
    assert int(resp.headers["Retry-After"]) >= 1
    # Even the right password waits: the account is being guessed at.
    assert sign_in(client, "alice").status_code == 429


@pytest.mark.parametrize("app_config", [LIMITED])
def test_the_per_account_limit_holds_across_ips_and_spellings(app, member):
    logins = ["alice", "ALICE", "alice@example.org"]
    for n, login in enumerate(logins):
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = f"10.0.0.{n + 1}"
        assert sign_in(client, login, "wrong guess").status_code == 200
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = "10.0.0.99"
    assert sign_in(client, "alice", "wrong guess").status_code == 429


@pytest.mark.parametrize("app_config", [LIMITED])
def test_the_per_ip_limit_counts_failures_on_any_account(app, client, member):
    for n in range(4):
        assert sign_in(client, f"someone{n}", "wrong guess").status_code == 200
    assert sign_in(client, "alice").status_code == 429


@pytest.mark.parametrize("app_config", [LIMITED])
def test_successful_sign_ins_are_not_counted(app, member):
    for _ in range(6):
        client = app.test_client()
        assert sign_in(client, "alice").status_code == 302
