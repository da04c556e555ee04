"""Every route under /moderation/, GET or POST: login page or 403 for anyone but staff."""

from __future__ import annotations

import pytest

from forum.extensions import db
from forum.models import Role, Status
from tests.factories import make_comment, make_post, make_user
from tests.helpers import build_path, login_as, methods, sample_values, walked_rules

ADMIN_ONLY = {"moderation.settings"}


def moderation_urls(app) -> list[tuple[str, str, str]]:
    """(endpoint, method, url) for every registered moderation route, built with samples."""
    found = []
    for rule in walked_rules(app):
        if not rule.endpoint.startswith("moderation."):
            continue
        url = build_path(rule, sample_values(rule))
        for method in methods(rule):
            found.append((rule.endpoint, method, url))
    return found


@pytest.fixture
def people(app):
    with app.app_context():
        users = {
            "member": make_user(),
            "banned": make_user(is_banned=True),
            "moderator": make_user(Role.MODERATOR),
            "admin": make_user(Role.ADMIN),
        }
        post = make_post(users["admin"])
        make_comment(post, status=Status.SPAM)  # comment 1 exists
        db.session.commit()
        return {name: user.id for name, user in users.items()}


def test_the_walk_covers_every_moderation_route(app):
    endpoints = {endpoint for endpoint, _, _ in moderation_urls(app)}
    assert len(endpoints) >= 15
    assert {"moderation.queue", "moderation.act", "moderation.bulk", "moderation.undo"} <= endpoints


def test_anonymous_visitors_get_the_login_page_everywhere(app, client, people):
    for endpoint, method, url in moderation_urls(app):
        resp = client.open(url, method=method)
        assert resp.status_code == 302, (endpoint, method, resp.status_code)
        assert "/login" in resp.headers["Location"], (endpoint, method)


@pytest.mark.parametrize("who", ["member", "banned"])
def test_members_get_403_everywhere(app, client, people, who):
    login_as(client, people[who])
    for endpoint, method, url in moderation_urls(app):
        resp = client.open(url, method=method, data={"action": "approve", "ids": "1"})
        assert resp.status_code == 403, (endpoint, method, resp.status_code)


@pytest.mark.parametrize("who", ["moderator", "admin"])
def test_moderators_and_admins_get_in(app, client, people, who):
    login_as(client, people[who])
    for endpoint, method, url in moderation_urls(app):
        resp = client.open(url, method=method)
        if who == "moderator" and endpoint in ADMIN_ONLY:
            assert resp.status_code == 403, (endpoint, method)
        else:
            assert resp.status_code not in (401, 403, 500), (endpoint, method, resp.status_code)


@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": True}])
def test_anonymous_posts_with_csrf_on_still_change_nothing(app, client, people):
    for endpoint, method, url in moderation_urls(app):
        if method == "POST":
            resp = client.post(url, data={"action": "approve", "ids": "1"})
            assert resp.status_code in (302, 400), (endpoint, resp.status_code)
    with app.app_context():
        from sqlalchemy import func, select

        from forum.models import ModerationAction

        assert db.session.scalar(select(func.count(ModerationAction.id))) == 0
