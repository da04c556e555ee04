"""Hardening with CSRF ON: tokens on every POST route, headers, cookies, bad bodies."""

from __future__ import annotations

import io
import re

import pytest

from forum.extensions import db
from forum.models import Role
from tests.factories import PASSWORD, make_user
from tests.helpers import build_path, login_as, methods, sample_values, walked_rules

CSRF_ON = {"WTF_CSRF_ENABLED": True}
TYPED = "Some text the person took ten minutes to write."


@pytest.fixture
def app_config() -> dict:
    return dict(CSRF_ON)


def post_routes(app):
    """Every rule that accepts POST, with a URL built from placeholder values."""
    for rule in walked_rules(app):
        if "POST" in methods(rule):
            yield rule.endpoint, build_path(rule, sample_values(rule))


def csrf_token(client, path: str = "/auth/login") -> str:
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)


@pytest.fixture
def admin_id(app) -> int:
    with app.app_context():
        user = make_user(Role.ADMIN, username="root")
        db.session.commit()
        return user.id


# CSRF ----------------------------------------------------------------------------------


def test_there_are_post_routes_to_check(app):
    endpoints = {endpoint for endpoint, _ in post_routes(app)}
    assert {"auth.login", "auth.logout", "comments.create", "auth.users.ban"} <= endpoints


@pytest.mark.parametrize("who", ["anonymous", "admin"])
@pytest.mark.parametrize("token", [None, "wrong", ""])
def test_every_post_route_refuses_a_missing_or_wrong_token(app, admin_id, who, token):
    """Walks the url_map: a route added later is checked without anyone listing it."""
    failures = []
    for endpoint, url in post_routes(app):
        client = app.test_client()
        if who == "admin":
            login_as(client, admin_id)
        data = {"body": TYPED, "username": "root", "password": PASSWORD}
        if token is not None:
            data["csrf_token"] = token
        resp = client.post(url, data=data)
        page = resp.get_data(as_text=True)
        if resp.status_code != 400 or "The form expired" not in page or TYPED not in page:
            failures.append(f"{endpoint} {url}: {resp.status_code}")
    assert failures == []


def test_a_token_from_another_session_is_refused(app, admin_id):
    attacker = app.test_client()
    stolen = csrf_token(attacker)
    victim = app.test_client()
    login_as(victim, admin_id)
    resp = victim.post("/auth/logout", data={"csrf_token": stolen})
    assert resp.status_code == 400


def test_the_real_token_is_accepted(app, admin_id):
    client = app.test_client()
    token = csrf_token(client)
    resp = client.post(
        "/auth/login", data={"csrf_token": token, "username": "root", "password": PASSWORD}
    )
    assert resp.status_code == 302
    token = csrf_token(client, "/auth/password")
    assert client.post("/auth/logout", data={"csrf_token": token}).status_code == 302


def test_csrf_token_in_a_header_is_accepted_too(app, admin_id):
    client = app.test_client()
    token = csrf_token(client)
    resp = client.post(
        "/auth/login",
        data={"username": "root", "password": PASSWORD},
        headers={"X-CSRFToken": token},
    )
    assert resp.status_code == 302


# Headers and cookies ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/", 200),
        ("GET", "/auth/login", 200),
        ("GET", "/static/css/forum.css", 200),
        ("GET", "/no/such/page", 404),
        ("POST", "/auth/login", 400),
        ("GET", "/auth/logout", 405),
        ("GET", "/healthz", 200),
    ],
)
def test_security_headers_on_every_kind_of_response(client, method, path, status):
    with client.open(path, method=method) as resp:
        resp.get_data()
    assert resp.status_code == status
    csp = resp.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "script-src" not in directives and "style-src" not in directives  # 'self' only
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert "Strict-Transport-Security" not in resp.headers


def test_account_pages_are_not_cached(client):
    assert client.get("/auth/login").headers["Cache-Control"] == "no-store"


def test_method_not_allowed_says_what_is(client):
    assert "POST" in client.get("/auth/logout").headers["Allow"]


def set_cookies(resp) -> dict[str, str]:
    return {h.split("=", 1)[0]: h for h in resp.headers.getlist("Set-Cookie")}


def test_cookies_are_httponly_and_samesite_lax(app, admin_id):
    client = app.test_client()
    token = csrf_token(client)
    resp = client.post(
        "/auth/login",
        data={"csrf_token": token, "username": "root", "password": PASSWORD, "remember": "y"},
    )
    cookies = set_cookies(resp)
    assert {"session", "remember_token"} <= cookies.keys()
    for header in cookies.values():
        assert "HttpOnly" in header and "SameSite=Lax" in header
        assert "Secure" not in header


@pytest.mark.parametrize("app_config", [{**CSRF_ON, "HTTPS": True}])
def test_https_adds_hsts_and_secure_cookies(app, admin_id):
    client = app.test_client()
    resp = client.get("/auth/login", base_url="https://localhost")
    assert resp.headers["Strict-Transport-Security"].startswith("max-age=")
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', resp.text).group(1)
    resp = client.post(
        "/auth/login",
        base_url="https://localhost",
        data={"csrf_token": token, "username": "root", "password": PASSWORD, "remember": "y"},
        headers={"Referer": "https://localhost/auth/login"},
    )
    assert resp.status_code == 302
    cookies = set_cookies(resp)
    assert {"session", "remember_token"} <= cookies.keys()
    for header in cookies.values():
        assert "Secure" in header and "HttpOnly" in header and "SameSite=Lax" in header


# Bad bodies ----------------------------------------------------------------------------

BAD_BODIES = [
    pytest.param(b"body=%FF%FE", "application/x-www-form-urlencoded", id="invalid-utf8"),
    pytest.param(b"body=caf\xe9", "application/x-www-form-urlencoded", id="raw-latin1"),
    pytest.param(b"body=a%00b", "application/x-www-form-urlencoded", id="nul-value"),
    pytest.param(b"bo%00dy=x", "application/x-www-form-urlencoded", id="nul-name"),
    pytest.param(b"username=%C0%80&password=x", "application/x-www-form-urlencoded", id="overlong"),
]


@pytest.mark.parametrize(
    "app_config", [CSRF_ON, {"WTF_CSRF_ENABLED": False}], ids=["csrf", "no-csrf"]
)
@pytest.mark.parametrize(("body", "mimetype"), BAD_BODIES)
def test_malformed_forms_get_400_on_every_post_route(app, admin_id, body, mimetype):
    failures = []
    for endpoint, url in post_routes(app):
        client = app.test_client()
        login_as(client, admin_id)
        resp = client.post(url, data=body, content_type=mimetype)
        if resp.status_code != 400:
            failures.append(f"{endpoint} {url}: {resp.status_code}")
    assert failures == []


@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": False}])
def test_nul_in_a_multipart_form_is_a_400(app, client):
    resp = client.post(
        "/auth/login",
        data={"username": "a\x00b", "password": "x", "file": (io.BytesIO(b"x"), "f.txt")},
        content_type="multipart/form-data",
    )
    assert resp.status_code == 400


@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": False}])
def test_well_formed_non_ascii_text_is_accepted(app, client, admin_id):
    resp = client.post(
        "/auth/login", data={"username": "Zoë 🌍 日本", "password": "mot de passe ünïcode"}
    )
    assert resp.status_code == 200 and "Wrong username or password." in resp.text


@pytest.mark.parametrize(
    "path",
    ["/?page=%00", "/tags/%00", "/auth/profile/a%00b", "/auth/login?next=/%00", "/posts/1/%00"],
)
def test_nul_in_the_address_is_a_400(client, path):
    assert client.get(path).status_code == 400


@pytest.mark.parametrize("path", ["/tags/%FF%FE", "/auth/profile/%C3%28", "/?q=%FF"])
def test_invalid_utf8_in_the_address_is_never_a_500(client, path):
    assert client.get(path).status_code in (200, 404)


def test_a_body_over_the_limit_gets_the_413_page(app, client):
    big = "x" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    resp = client.post("/auth/login", data={"body": big})
    assert resp.status_code == 413
    assert "larger than this forum accepts" in resp.text


@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": False}])
def test_a_body_over_the_limit_is_a_413_without_csrf_too(app, client, admin_id):
    login_as(client, admin_id)
    big = b"body=" + b"x" * app.config["MAX_CONTENT_LENGTH"]
    resp = client.post(
        "/posts/1/comments", data=big, content_type="application/x-www-form-urlencoded"
    )
    assert resp.status_code == 413


@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": False}])
@pytest.mark.parametrize(
    ("body", "mimetype"),
    [
        (b'{"username": "root"}', "application/json"),
        (b"not json", "application/json"),
        (b"\x00\x01\x02", "application/octet-stream"),
        (b"--broken", "multipart/form-data; boundary=zzz"),
        (b"username=root&password=", "text/plain"),
    ],
)
def test_odd_bodies_are_a_4xx_not_a_500(app, client, admin_id, body, mimetype):
    resp = client.post("/auth/login", data=body, content_type=mimetype)
    assert 200 <= resp.status_code < 500


@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": False}])
@pytest.mark.parametrize(
    "field",
    ["username", "password"],
)
def test_overlong_fields_are_form_errors(app, client, field):
    data = {"username": "root", "password": "x"}
    data[field] = "y" * 5000
    resp = client.post("/auth/login", data=data)
    assert resp.status_code == 200 and "Field cannot be longer" in resp.text


def test_the_session_signer_is_reused_and_follows_the_keys(app):
    """The session's serializer is made once per set of keys (forum/security.py): a new
    SECRET_KEY refuses the old cookies, a fallback key still reads them."""
    from itsdangerous import BadSignature

    sessions = app.session_interface
    first = sessions.get_signing_serializer(app)
    assert sessions.get_signing_serializer(app) is first
    cookie = first.dumps({"csrf_token": "x"})
    old_key = app.secret_key
    app.secret_key = "a new key"
    try:
        fresh = sessions.get_signing_serializer(app)
        assert fresh is not first
        with pytest.raises(BadSignature):
            fresh.loads(cookie)
        app.config["SECRET_KEY_FALLBACKS"] = [old_key]
        assert sessions.get_signing_serializer(app).loads(cookie) == {"csrf_token": "x"}
    finally:
        app.secret_key = old_key
        app.config["SECRET_KEY_FALLBACKS"] = []
