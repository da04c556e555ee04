"""Fixtures and pytest hooks only: a fresh database per test, on SQLite or PostgreSQL.
Shared helper functions live in tests/helpers.py.

The backend is chosen with `--db sqlite|postgresql` (default sqlite). For PostgreSQL,
FORUM_TEST_DATABASE_URL names a server (default: the local one at 127.0.0.1:5432);
the run creates its own database there and drops it at the end.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from forum.extensions import db, limiter
from forum.models import Role
from tests.factories import make_user
from tests.helpers import empty_database, make_test_app, postgres_database


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db", choices=("sqlite", "postgresql"), default=os.environ.get("FORUM_TEST_DB", "sqlite")
    )


def pytest_report_header(config: pytest.Config) -> str:
    return f"forum test database: {config.getoption('--db')}"


@pytest.fixture(scope="session")
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None for in-memory SQLite; for PostgreSQL a database of this run's own (an
    unreachable server ends the run: every test would fail the same way)."""
    if request.config.getoption("--db") == "sqlite":
        yield None
        return
    with postgres_database("test", unreachable="exit") as url:
        yield url


@pytest.fixture
def app_config() -> dict:
    """Override in a test module (or parametrize) to change the app's config."""
    return {}


@pytest.fixture
def app(database_url, tmp_path, app_config):
    app = make_test_app(database_url, tmp_path, **app_config)
    if database_url is None:
        with app.app_context():
            db.create_all()
    if app.config["RATELIMIT_ENABLED"]:
        limiter.reset()
    yield app
    empty_database(app, database_url)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def db_session(app):
    """An app context for setup and checks; yields the session."""
    with app.app_context():
        yield db.session


# Accounts for the auth tests (tests/test_auth_*.py) --------------------------------------


@pytest.fixture
def member(app) -> dict:
    """A member, alice, who signs in with factories.PASSWORD."""
    with app.app_context():
        user = make_user(username="alice", email="alice@example.org")
        db.session.commit()
        return {"id": user.id, "username": "alice", "email": "alice@example.org"}


@pytest.fixture
def admin(app) -> dict:
    """An admin, root, who signs in with factories.PASSWORD."""
    with app.app_context():
        user = make_user(Role.ADMIN, username="root")
        db.session.commit()
        return {"id": user.id}
