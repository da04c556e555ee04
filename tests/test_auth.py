"""Accounts: sign-up, sign-in and out, passwords, reset links, roles, bans, rate limits."""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from http.cookies import SimpleCookie

import pytest
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from forum.extensions import db, mail
from forum.models import Ban, BanKind, ModerationAction, OutboxMail, Role, Status, User, utcnow
from forum.services import accounts
from tests.factories import PASSWORD, make_comment, make_post, make_user
from tests.helpers import count_queries

NEW_PASSWORD = "violet kettles hum softly"


def register_data(**overrides) -> dict[str, str]:
    data = {
        "username": "newcomer",
        "email": "newcomer@example.org",
        "password": "blue coffee mornings",
        "confirm": "blue coffee mornings",
    }
    data.update(overrides)
    return data


def sign_in(client, login: str, password: str = PASSWORD, **extra):
    return client.post("/auth/login", data={"username": login, "password": password, **extra})


def signed_in_as(client) -> str | None:
    page = client.get("/").get_data(as_text=True)
    found = re.search(r"Signed in as <a [^>]*><strong>([^<]+)</strong>", page)
    return found.group(1) if found else None


def cookie(response, name: str) -> SimpleCookie | None:
    for header in response.headers.getlist("Set-Cookie"):
        jar = SimpleCookie()
        jar.load(header)
        if name in jar:
            return jar
    return None


@pytest.fixture
def member(app) -> dict:
    with app.app_context():
        user = make_user(username="alice", email="alice@example.org")
        db.session.commit()
        return {"id": user.id, "username": "alice", "email": "alice@example.org"}


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


# Profiles ------------------------------------------------------------------------------


def test_profile_lists_only_comments_readers_can_see(app, client, member):
    with app.app_context():
        alice = db.session.get(User, member["id"])
        post = make_post(make_user(Role.ADMIN), title="Topic")
        make_comment(post, user=alice, body="Visible words")
        make_comment(post, user=alice, body="Held words", status=Status.PENDING)
        make_comment(post, user=alice, body="Spam words", status=Status.SPAM)
        make_comment(post, body="Someone else's words")
        db.session.commit()
    page = client.get("/auth/profile/ALICE")
    assert page.status_code == 200
    assert "Visible words" in page.text and "Topic" in page.text
    for hidden in ("Held words", "Spam words", "Someone else"):
        assert hidden not in page.text
    assert client.get("/auth/profile/nobody").status_code == 404
    assert client.get("/auth/profile/alice?page=9").status_code == 404


def test_profile_query_count_does_not_grow_with_comments(app, client, member):
    with app.app_context():
        alice = db.session.get(User, member["id"])
        post = make_post(make_user(Role.ADMIN))
        make_comment(post, user=alice)
        db.session.commit()
    with count_queries(app) as few:
        client.get("/auth/profile/alice")
    with app.app_context():
        alice = db.session.get(User, member["id"])
        for _ in range(5):
            make_comment(make_post(), user=alice)
        db.session.commit()
    with count_queries(app) as many:
        client.get("/auth/profile/alice")
    assert len(many) == len(few)


def test_my_profile_redirects_to_the_public_page(client, member):
    sign_in(client, "alice")
    resp = client.get("/auth/profile")
    assert resp.status_code == 302 and resp.headers["Location"] == "/auth/profile/alice"


# Roles and bans ------------------------------------------------------------------------


@pytest.fixture
def admin(app) -> dict:
    with app.app_context():
        user = make_user(Role.ADMIN, username="root")
        db.session.commit()
        return {"id": user.id}


def test_admin_lists_users_and_finds_them(app, client, admin, member):
    sign_in(client, "root")
    page = client.get("/auth/users/")
    assert page.status_code == 200 and "alice" in page.text and "root" in page.text
    found = client.get("/auth/users/?q=ALI")
    assert "alice@example.org" in found.text and "root@" not in found.text
    assert "No users" in client.get("/auth/users/?q=%25").text


def test_admin_changes_a_role_and_it_is_logged(app, client, admin, member, caplog):
    caplog.set_level(logging.INFO)
    sign_in(client, "root")
    resp = client.post(f"/auth/users/{member['id']}/role", data={"role": "moderator"})
    assert resp.status_code == 302
    with app.app_context():
        assert db.session.get(User, member["id"]).role is Role.MODERATOR
        entry = db.session.scalars(select(ModerationAction)).one()
        assert entry.action == "role" and entry.moderator_id == admin["id"]
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("role"))
    assert 'user="root"' in line and 'target="alice"' in line and 'new="moderator"' in line
    assert 'ip="127.0.0.1"' in line and "at=" in line


def test_bad_role_value_is_a_400(client, admin, member):
    sign_in(client, "root")
    assert client.post(f"/auth/users/{member['id']}/role", data={"role": "god"}).status_code == 400
    assert client.post("/auth/users/9999/role", data={"role": "member"}).status_code == 404


def test_last_admin_cannot_demote_or_ban_themself(app, client, admin):
    sign_in(client, "root")
    resp = client.post(f"/auth/users/{admin['id']}/role", data={"role": "member"})
    assert resp.status_code == 302
    assert "last admin" in client.get("/auth/users/").text
    client.post(f"/auth/users/{admin['id']}/ban")
    with app.app_context():
        root = db.session.get(User, admin["id"])
        assert root.role is Role.ADMIN and not root.is_banned


def test_an_admin_may_step_down_when_another_admin_remains(app, client, admin):
    with app.app_context():
        make_user(Role.ADMIN)
        db.session.commit()
    sign_in(client, "root")
    client.post(f"/auth/users/{admin['id']}/role", data={"role": "moderator"})
    with app.app_context():
        assert db.session.get(User, admin["id"]).role is Role.MODERATOR
    assert client.get("/auth/users/").status_code == 403


def test_role_and_ban_rules_in_the_service(app, admin, member):
    with app.app_context():
        root = db.session.get(User, admin["id"])
        alice = db.session.get(User, member["id"])
        mod = make_user(Role.MODERATOR)
        with pytest.raises(accounts.AccountError, match="demote them first"):
            accounts.ban(mod, by=root)
        with pytest.raises(accounts.AccountError, match="yourself"):
            accounts.ban(root, by=root)
        accounts.ban(alice, by=root)
        with pytest.raises(accounts.AccountError, match="Unban"):
            accounts.change_role(alice, Role.MODERATOR, by=root)
        assert accounts.change_role(mod, Role.MODERATOR, by=root) is Role.MODERATOR
        db.session.rollback()


def test_ban_and_unban_from_the_admin_page(app, client, admin, member, caplog):
    caplog.set_level(logging.INFO)
    sign_in(client, "root")
    assert client.post(f"/auth/users/{member['id']}/ban").status_code == 302
    with app.app_context():
        assert db.session.get(User, member["id"]).is_banned
        ban = db.session.scalars(select(Ban)).one()
        assert ban.kind is BanKind.ACCOUNT and ban.value == str(member["id"])
    assert any(r.getMessage().startswith('ban user="root"') for r in caplog.records)
    assert client.post(f"/auth/users/{member['id']}/unban").status_code == 302
    with app.app_context():
        assert not db.session.get(User, member["id"]).is_banned
        assert db.session.scalars(select(Ban)).all() == []
        actions = [a.action for a in db.session.scalars(select(ModerationAction))]
        assert actions == ["ban", "unban"]


def test_banned_member_signs_in_and_reads_but_cannot_write(app, client, member):
    with app.app_context():
        alice = db.session.get(User, member["id"])
        post = make_post(make_user(Role.ADMIN), title="Read me")
        own = make_comment(post, user=alice, created_at=utcnow() - timedelta(seconds=5))
        alice.is_banned = True
        db.session.commit()
        post_id, comment_id = post.id, own.id
    resp = sign_in(client, "alice")
    assert resp.status_code == 302
    assert signed_in_as(client) == "alice"
    assert client.get(f"/posts/{post_id}").status_code in (200, 301)
    assert client.get(f"/posts/{post_id}/read-me").status_code == 200
    assert client.post(f"/posts/{post_id}/comments", data={"body": "let me in"}).status_code == 403
    assert client.get(f"/comments/{comment_id}/edit").status_code == 403
    assert client.post(f"/comments/{comment_id}/edit", data={"body": "changed"}).status_code == 403
    assert client.post(f"/comments/{comment_id}/delete").status_code == 403


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


def test_moderation_actions_are_logged_with_who_what_and_where(app, client, caplog):
    caplog.set_level(logging.INFO)
    with app.app_context():
        make_user(Role.MODERATOR, username="mod")
        post = make_post(make_user(Role.ADMIN))
        held = make_comment(post, status=Status.PENDING)
        db.session.commit()
        held_id = held.id
    sign_in(client, "mod")
    resp = client.post(f"/moderation/comments/{held_id}/approve")
    assert resp.status_code < 400
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("moderation"))
    assert 'user="mod"' in line and f"comment_id={held_id}" in line
    assert 'action="approve"' in line and 'ip="127.0.0.1"' in line and "at=" in line


# Rate limits ---------------------------------------------------------------------------

LIMITED = {
    "RATELIMIT_ENABLED": True,
    "RATELIMIT_LOGIN": "4 per minute",
    "RATELIMIT_LOGIN_ACCOUNT": "3 per minute",
    "RATELIMIT_REGISTER": "2 per minute",
    "RATELIMIT_RESET": "2 per minute",
}


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


@pytest.mark.parametrize("app_config", [LIMITED])
def test_registration_is_rate_limited_per_ip(app, client):
    for n in range(2):
        data = register_data(username=f"new{n}", email=f"new{n}@example.org")
        assert app.test_client().post("/auth/register", data=data).status_code == 302
    resp = client.post("/auth/register", data=register_data())
    assert resp.status_code == 429 and "Too many attempts" in resp.text


@pytest.mark.parametrize("app_config", [LIMITED])
def test_reset_mails_are_rate_limited(app, client, member):
    with mail.record_messages() as outbox:
        for _ in range(2):
            resp = client.post("/auth/reset", data={"email": "alice"})
            resp.close()
            assert resp.status_code == 302
        assert client.post("/auth/reset", data={"email": "alice"}).status_code == 429
    assert len(outbox) == 2
