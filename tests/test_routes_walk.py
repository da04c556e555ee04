"""Every route, every role: who may do what, walked from the app's url_map.

A route nobody classified fails here: add its endpoint (or an endpoint prefix) to RULES
with the answer each role should get. A value is an expectation (role -> outcome) or a
list of Cases when the answer depends on the object in the URL (own comment or not).
URL parameters are filled from WORLD_PARAMS with ids of objects `world` creates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
from werkzeug.routing import Rule

from forum import create_app
from forum.extensions import db
from tests.helpers import (
    build_world,
    empty_database,
    login_as,
    make_test_app,
    methods,
    walked_rules,
    world_path,
)

ROLES = ("anonymous", "member", "banned", "moderator", "admin")
OK, LOGIN, FORBIDDEN = "ok", "login", "forbidden"


def expect(anonymous: str, member: str, banned: str, moderator: str, admin: str) -> dict:
    return dict(zip(ROLES, (anonymous, member, banned, moderator, admin), strict=True))


EVERYONE = expect(OK, OK, OK, OK, OK)
SIGNED_IN = expect(LOGIN, OK, OK, OK, OK)
# Writing: guests may comment (their comments are held); banned members may not.
WRITERS = expect(OK, OK, FORBIDDEN, OK, OK)
MEMBERS_WRITING = expect(LOGIN, OK, FORBIDDEN, OK, OK)
STAFF = expect(LOGIN, FORBIDDEN, FORBIDDEN, OK, OK)
ADMINS = expect(LOGIN, FORBIDDEN, FORBIDDEN, FORBIDDEN, OK)
OWNER = expect(LOGIN, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN)  # the member owns the object
NOBODY = expect(LOGIN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN)


@dataclass(frozen=True)
class Case:
    expected: dict
    params: dict = field(default_factory=dict)  # URL parameter -> key of `world`
    data: dict = field(default_factory=dict)  # form data sent with a POST
    label: str = ""


# Endpoint or endpoint prefix ("moderation" covers "moderation.queue") -> expectation.
RULES: dict[str, dict | list[Case] | None] = {
    "static": None,  # not walked
    "healthz": EVERYONE,
    "feeds": EVERYONE,
    "posts.index": EVERYONE,
    "posts.show": EVERYONE,
    "posts.tag": [Case(EVERYONE, params={"slug": "tag_slug"})],
    "posts.new": STAFF,  # POST_ROLES: moderators and admins
    "posts.toggle_comments": STAFF,  # the post's author (an admin here) or a moderator
    "comments.create": WRITERS,
    # Previews store nothing and run no rule: anyone may see how a text would render.
    "comments.preview": [
        Case(EVERYONE, data={"body": "*hi*", "body_format": "markdown", "kind": "comment"})
    ],
    "comments.preview_comment": EVERYONE,
    "posts.markdown_help": EVERYONE,
    "comments.permalink": EVERYONE,
    "comments.edit": [
        Case(OWNER, label="own"),
        Case(NOBODY, params={"comment_id": "other_comment"}, label="other"),
    ],
    "comments.delete": [
        Case(OWNER, label="own"),
        Case(NOBODY, params={"comment_id": "other_comment"}, label="other"),
    ],
    "comments.flag": [Case(MEMBERS_WRITING, params={"comment_id": "other_comment"})],
    "auth.login": EVERYONE,
    "auth.logout": EVERYONE,
    "auth.register": EVERYONE,
    "auth.reset_request": EVERYONE,
    "auth.reset_link": EVERYONE,
    "auth.reset_password": EVERYONE,
    "auth.profile": EVERYONE,
    "auth.my_profile": SIGNED_IN,
    "auth.change_password": SIGNED_IN,
    "auth.users": [Case(ADMINS, data={"role": "member"})],
    "moderation": [Case(STAFF, params={"comment_id": "pending_comment"})],
    "moderation.settings": ADMINS,
    # Where an old #comment-N link of an imported post is now: a 301 for everyone.
    "legacy.old_comment": [Case(EVERYONE, params={"comment_id": "legacy_comment"})],
}

_probe = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "SECRET_KEY": "probe"})
URL_RULES = walked_rules(_probe)


def rule_for(endpoint: str) -> dict | list[Case] | None:
    """The most specific RULES entry: the endpoint itself, else its longest prefix."""
    parts = endpoint.split(".")
    for n in range(len(parts), 0, -1):
        key = ".".join(parts[:n])
        if key in RULES:
            return RULES[key]
    raise KeyError(endpoint)


def walk_cases():
    for rule in URL_RULES:
        try:
            spec = rule_for(rule.endpoint)
        except KeyError:
            yield pytest.param(rule.rule, "GET", None, None, id=f"UNCLASSIFIED-{rule.endpoint}")
            continue
        if spec is None:
            continue
        cases = spec if isinstance(spec, list) else [Case(spec)]
        for method in methods(rule):
            for case in cases:
                for role in ROLES:
                    label = f"-{case.label}" if case.label else ""
                    yield pytest.param(
                        rule.rule,
                        method,
                        case,
                        role,
                        id=f"{method}-{rule.rule}{label}-{role}",
                    )


def fill(rule: Rule, world: dict, params: dict | None = None) -> str:
    """The rule's URL with every parameter set from the world."""
    try:
        return world_path(rule, world, params)
    except KeyError as error:
        pytest.fail(str(error))


@pytest.fixture(scope="module")
def walk_app(database_url, tmp_path_factory):
    """One app for the whole walk: building one per case would compile every template
    again; the database is emptied and the world rebuilt only after a POST."""
    app = make_test_app(database_url, tmp_path_factory.mktemp("walk"))
    with app.app_context():
        db.create_all()
    app.extensions["walk_world"] = None
    yield app
    empty_database(app, database_url)


@pytest.fixture
def world(walk_app) -> dict:
    """The objects the URLs point at and one user per role (rebuilt when a POST ran)."""
    if walk_app.extensions["walk_world"] is None:
        with walk_app.app_context():
            for table in reversed(db.metadata.sorted_tables):
                db.session.execute(table.delete())
            db.session.commit()
            walk_app.extensions["walk_world"] = build_world(walk_app)
    return walk_app.extensions["walk_world"]


def outcome(resp) -> str:
    if resp.status_code in (401, 403):
        return FORBIDDEN
    redirect = resp.status_code in (301, 302, 303, 307, 308)
    if redirect and urlsplit(resp.headers["Location"]).path == "/auth/login":
        return LOGIN
    if resp.status_code in (200, 201, 204, 301, 302, 303, 400, 409, 422):
        return OK
    return f"status {resp.status_code}"


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)
INLINE_STYLE = re.compile(r"<style\b|\sstyle=|\son[a-z]+=", re.I)


def check_response_is_hardened(resp) -> None:
    """Headers on every answer; no inline script, style or handler in any page."""
    csp = resp.headers.get("Content-Security-Policy", "")
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert resp.headers.get("X-Content-Type-Options") == "nosniff"
    assert resp.headers.get("Referrer-Policy")
    if resp.mimetype == "text/html":
        page = resp.get_data(as_text=True)
        assert not INLINE_SCRIPT.search(page), INLINE_SCRIPT.search(page)
        assert not INLINE_STYLE.search(page), INLINE_STYLE.search(page)


@pytest.mark.parametrize(("path", "method", "case", "role"), list(walk_cases()))
def test_route_answers_each_role_as_the_rules_say(walk_app, world, path, method, case, role):
    rule = next(r for r in walked_rules(walk_app) if r.rule == path)
    if case is None:
        pytest.fail(
            f"{rule.endpoint} ({path}) is in no rule: classify it in RULES in {__name__}.py"
        )
    client = walk_app.test_client()
    if role != "anonymous":
        login_as(client, world["users"][role])
    url = fill(rule, world, case.params)
    resp = client.open(url, method=method, data=case.data if method == "POST" else None)
    if method != "GET" and outcome(resp) not in (LOGIN, FORBIDDEN):
        walk_app.extensions["walk_world"] = None  # it may have changed: rebuild for the next
    assert resp.status_code < 500
    assert outcome(resp) == case.expected[role], (
        f"{method} {url} as {role}: got {resp.status_code} "
        f"{resp.headers.get('Location', '')}, expected {case.expected[role]}"
    )
    check_response_is_hardened(resp)


def test_every_rule_covers_a_route():
    """A stale or misspelled entry in RULES would leave nothing checked."""
    endpoints = {r.endpoint for r in URL_RULES} | {"static"}
    future = {"feeds", "comments.flag"}  # announced routes, classified before they land
    for key in RULES.keys() - future:
        assert any(e == key or e.startswith(key + ".") for e in endpoints), key
