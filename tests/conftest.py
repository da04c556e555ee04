"""Fixtures: a fresh database per test, on SQLite or PostgreSQL.

The backend is chosen with `--db sqlite|postgresql` (default sqlite). For PostgreSQL,
FORUM_TEST_DATABASE_URL names a server (default: the local one at 127.0.0.1:5432);
the run creates its own database there and drops it at the end.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, event, text

from forum import create_app
from forum.extensions import db, limiter

PG_SERVER = os.environ.get(
    "FORUM_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db", choices=("sqlite", "postgresql"), default=os.environ.get("FORUM_TEST_DB", "sqlite")
    )


def pytest_report_header(config: pytest.Config) -> str:
    return f"forum test database: {config.getoption('--db')}"


def _admin_url(server: str, database: str) -> str:
    from sqlalchemy.engine import make_url

    url = make_url(server)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url.set(database=database).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None for in-memory SQLite; for PostgreSQL a database of this run's own."""
    if request.config.getoption("--db") == "sqlite":
        yield None
        return
    name = f"forum_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(_admin_url(PG_SERVER, "postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as error:  # noqa: BLE001
        pytest.exit(f"PostgreSQL not reachable at {PG_SERVER}: {error}", returncode=3)
    url = _admin_url(PG_SERVER, name)
    engine = create_engine(url)
    with engine.begin() as conn:
        db.metadata.create_all(conn)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def make_test_app(database_url: str | None, tmp_path, **overrides):
    config = {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key",
        "SQLALCHEMY_DATABASE_URI": database_url or "sqlite://",
        "DATABASE_URL": None,
        "WTF_CSRF_ENABLED": False,
        "RATELIMIT_ENABLED": False,
        "RATELIMIT_STORAGE_URI": "memory://",
        "MAIL_SUPPRESS_SEND": True,
        "MODERATION_MIN_SUBMIT_SECONDS": 0,
    }
    config.update(overrides)
    app = create_app(config)
    app.instance_path = str(tmp_path / "instance")
    return app


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


def empty_database(app, database_url: str | None) -> None:
    """After a test: drop the in-memory schema, or empty the run's PostgreSQL database."""
    with app.app_context():
        db.session.remove()
        if database_url is None:
            db.drop_all()
        else:
            _truncate_all()
        db.engine.dispose()


def _truncate_all() -> None:
    """Empty every table; DELETE is ~40x faster than TRUNCATE on tables this small."""
    for table in reversed(db.metadata.sorted_tables):
        db.session.execute(table.delete())
    # Ids start at 1 again, as on a fresh SQLite database.
    db.session.execute(
        text(
            "SELECT setval(s.seq, 1, false) FROM (SELECT pg_get_serial_sequence("
            "quote_ident(c.table_name), c.column_name) AS seq FROM information_schema.columns c "
            "WHERE c.table_schema = current_schema() AND c.column_default LIKE 'nextval%') s"
        )
    )
    db.session.commit()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def db_session(app):
    """An app context for setup and checks; yields the session."""
    with app.app_context():
        yield db.session


def login_as(client, user_id: int, token: str | None = "") -> None:
    """Sign a test client in without the form (auth tests use the real form)."""
    with client.session_transaction() as sess:
        sess["_user_id"] = f"{user_id}:{token or ''}"
        sess["_fresh"] = True


@contextlib.contextmanager
def count_queries(app) -> Iterator[list[str]]:
    """Record every SQL statement the app runs inside the block."""
    statements: list[str] = []
    with app.app_context():
        engine = db.engine

    def record(_conn, _cursor, statement, *_args) -> None:
        if not statement.lstrip().upper().startswith(("BEGIN", "PRAGMA", "SAVEPOINT", "RELEASE")):
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)
