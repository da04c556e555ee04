"""Production serving: /healthz, ProxyFix behind a reverse proxy, the gunicorn settings."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select
from werkzeug.middleware.proxy_fix import ProxyFix

from forum.extensions import db
from forum.models import Comment
from tests.factories import make_post
from tests.helpers import make_test_app

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).with_name("gunicorn")


def test_healthz_reports_a_working_database(client):
    resp = client.get("/healthz")
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "ok", "database": "ok"}


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:////nonexistent-directory/forum.sqlite3",
        "postgresql+psycopg://postgres@127.0.0.1:9/forum?connect_timeout=2",
    ],
    ids=["sqlite", "postgresql"],
)
def test_healthz_is_503_when_the_database_does_not_answer(tmp_path, url):
    app = make_test_app(url, tmp_path)
    resp = app.test_client().get("/healthz")
    assert resp.status_code == 503
    assert resp.get_json() == {"status": "error", "database": "unreachable"}
    with app.app_context():
        db.engine.dispose()


def comment_ip(app, client, headers: dict[str, str]) -> str:
    """Post a guest comment with these headers; the address the app recorded."""
    with app.app_context():
        post_id = make_post().id
        db.session.commit()
    resp = client.post(
        f"/posts/{post_id}/comments",
        data={"author_name": "Pia", "author_email": "pia@example.org", "body": "Hi"},
        headers=headers,
        environ_base={"REMOTE_ADDR": "10.0.0.2"},
    )
    assert resp.status_code == 302
    with app.app_context():
        return db.session.scalars(select(Comment.ip)).one()


PROXY_HEADERS = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}


def test_forwarded_headers_are_ignored_without_proxy_fix(app, client):
    assert app.config["PROXY_FIX"] is False
    assert comment_ip(app, client, PROXY_HEADERS) == "10.0.0.2"


@pytest.mark.parametrize("app_config", [{"PROXY_FIX": True}])
def test_proxy_fix_trusts_one_forwarded_hop(app, client):
    # A client can prepend its own X-Forwarded-For; only the proxy's entry (the last) counts.
    headers = {**PROXY_HEADERS, "X-Forwarded-For": "198.51.100.1, 203.0.113.9"}
    assert comment_ip(app, client, headers) == "203.0.113.9"


@pytest.mark.parametrize("app_config", [{"PROXY_FIX": True}])
def test_proxy_fix_trusts_one_hop_of_for_proto_and_host(app):
    assert isinstance(app.wsgi_app, ProxyFix)
    fix = app.wsgi_app
    assert (fix.x_for, fix.x_proto, fix.x_host, fix.x_port, fix.x_prefix) == (1, 1, 1, 0, 0)


def gunicorn_settings(monkeypatch, **env: str) -> dict:
    for name in [n for n in os.environ if n.startswith("GUNICORN_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(ROOT / "gunicorn.conf.py"))


def test_gunicorn_defaults_bind_localhost_and_scale_with_cpus(monkeypatch):
    conf = gunicorn_settings(monkeypatch)
    assert conf["bind"] == "127.0.0.1:8000"
    assert conf["workers"] == min((os.cpu_count() or 1) * 2 + 1, 9)
    assert conf["worker_class"] == "sync"
    assert conf["graceful_timeout"] > 0 and conf["timeout"] > 0
    assert conf["accesslog"] == "-"
    assert conf["preload_app"] is False


def test_each_worker_freezes_what_the_app_made_once_it_is_loaded(monkeypatch):
    """Full collections then skip the app's long-lived objects (bench/NOTES.md)."""
    import gc

    conf = gunicorn_settings(monkeypatch)
    assert gc.get_freeze_count() == 0
    try:
        conf["post_worker_init"](None)
        assert gc.get_freeze_count() > 1000
    finally:
        gc.unfreeze()


def test_gunicorn_settings_come_from_the_environment(monkeypatch):
    conf = gunicorn_settings(
        monkeypatch,
        GUNICORN_BIND="127.0.0.1:0",
        GUNICORN_WORKERS="4",
        GUNICORN_ACCESSLOG="/var/log/forum/access.log",
    )
    assert conf["bind"] == "127.0.0.1:0" and conf["workers"] == 4
    assert conf["accesslog"] == "/var/log/forum/access.log"
    conf = gunicorn_settings(monkeypatch, GUNICORN_CONTROL_SOCKET="off")
    assert conf["control_socket_disable"] is True


def test_gunicorn_accepts_the_config_and_loads_the_app(tmp_path):
    if not GUNICORN.exists():
        pytest.skip("gunicorn is not installed (pip install -e '.[serve]')")
    env = {
        **os.environ,
        "GUNICORN_CONTROL_SOCKET": "off",
        "FORUM_SECRET_KEY": "check-config",
        "FORUM_DATABASE_URL": f"sqlite:///{tmp_path / 'forum.sqlite3'}",
    }
    result = subprocess.run(
        [str(GUNICORN), "--check-config", "-c", "gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("base_url", [None, "https://forum.example.org"])
def test_gunicorn_refuses_to_start_without_a_base_url(tmp_path, base_url):
    """Links in mail and feeds come from FORUM_BASE_URL; gunicorn will not guess it."""
    if not GUNICORN.exists():
        pytest.skip("gunicorn is not installed (pip install -e '.[serve]')")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FORUM_", "GUNICORN_"))}
    env.update(
        GUNICORN_CONTROL_SOCKET="off",
        GUNICORN_BIND="127.0.0.1:0",
        GUNICORN_WORKERS="1",
        FORUM_SECRET_KEY="check-base-url",
        FORUM_DATABASE_URL=f"sqlite:///{tmp_path / 'forum.sqlite3'}",
    )
    if base_url:
        env["FORUM_BASE_URL"] = base_url
    proc = subprocess.Popen(
        [str(GUNICORN), "-c", "gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output, _ = proc.communicate(timeout=8)
    except subprocess.TimeoutExpired:  # still serving: it started
        proc.terminate()
        output, _ = proc.communicate(timeout=30)
        started = True
    else:
        started = False
    if base_url:
        assert started, output
    else:
        assert not started and proc.returncode != 0
        assert "FORUM_BASE_URL is not set" in output
