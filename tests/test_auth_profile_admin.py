"""Profiles, roles and bans on the admins' users page, and the moderation log line."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import select

from forum.extensions import db
from forum.models import Ban, BanKind, ModerationAction, Role, Status, User, utcnow
from forum.services import accounts, bans
from tests.factories import make_comment, make_post, make_user
from tests.helpers import count_queries, sign_in, signed_in_as

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
        with pytest.raises(bans.BanError, match="demote them first"):
            bans.ban_member(mod, by=root)
        with pytest.raises(bans.BanError, match="yourself"):
            bans.ban_member(root, by=root)
        bans.ban_member(alice, by=root)
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
