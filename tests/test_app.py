"""The application factory and configuration precedence."""

from __future__ import annotations

import pytest

from forum import create_app


def test_factory_defaults_to_sqlite_under_instance(tmp_path, monkeypatch):
    monkeypatch.delenv("FORUM_DATABASE_URL", raising=False)
    monkeypatch.setattr("flask.Flask.auto_find_instance_path", lambda self: str(tmp_path))
    app = create_app()
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'forum.sqlite3'}"
    assert app.template_folder.endswith("../templates")


def test_config_precedence_defaults_env_then_mapping(monkeypatch):
    monkeypatch.setenv("FORUM_RATELIMIT_ENABLED", "false")
    monkeypatch.setenv("FORUM_POSTS_PER_PAGE", "7")
    monkeypatch.setenv("FORUM_SECRET_KEY", "from-env")
    app = create_app({"POSTS_PER_PAGE": 3, "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    assert app.config["RATELIMIT_ENABLED"] is False
    assert app.config["POSTS_PER_PAGE"] == 3  # the mapping (tests) wins over env
    assert app.config["SECRET_KEY"] == "from-env"


def test_instance_config_py_is_read_and_env_overrides_it(tmp_path, monkeypatch):
    instance = tmp_path / "inst"
    instance.mkdir()
    (instance / "config.py").write_text("FORUM_NAME = 'From file'\nPOSTS_PER_PAGE = 11\n")
    monkeypatch.setenv("FORUM_POSTS_PER_PAGE", "12")
    monkeypatch.setattr("flask.Flask.auto_find_instance_path", lambda self: str(instance))
    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "SECRET_KEY": "x"})
    assert app.config["FORUM_NAME"] == "From file"
    assert app.config["POSTS_PER_PAGE"] == 12


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
    ],
)
def test_database_url_from_env(monkeypatch, given, expected):
    monkeypatch.setenv("FORUM_DATABASE_URL", given)
    app = create_app({"SECRET_KEY": "x"})
    assert app.config["SQLALCHEMY_DATABASE_URI"] == expected


def test_secret_key_generated_once_and_reused(tmp_path, monkeypatch):
    monkeypatch.delenv("FORUM_SECRET_KEY", raising=False)
    monkeypatch.setattr("flask.Flask.auto_find_instance_path", lambda self: str(tmp_path))
    first = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"}).config["SECRET_KEY"]
    second = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"}).config["SECRET_KEY"]
    assert first == second
    assert len(first) >= 64
    assert (tmp_path / "secret_key").read_text() == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_blueprints_registered(app):
    assert {"posts", "comments", "auth", "moderation"} <= set(app.blueprints)


def test_sqlite_connections_use_foreign_keys_wal_and_busy_timeout(tmp_path):
    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'f.db'}", "SECRET_KEY": "x"}
    )
    from sqlalchemy import text

    from forum.extensions import db

    with app.app_context():
        assert db.session.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert db.session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert db.session.execute(text("PRAGMA busy_timeout")).scalar() >= 5000
        db.session.rollback()
        db.engine.dispose()
