"""Databases of their own for servers that run outside the test's app: the live server
of the browser tests and the gunicorn workers of the concurrency test.

They must not share the run's test database: other tests truncate it after every test.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

import forum.models  # noqa: F401 - the tables must be known before create_all
from forum.extensions import db
from tests.conftest import PG_SERVER, _admin_url


@contextlib.contextmanager
def scratch_database(kind: str, directory: Path, label: str) -> Iterator[str]:
    """A new database with the schema in it, dropped afterwards; yields its URL.

    SQLite: a file in `directory`. PostgreSQL: a database named after `label` on the
    server the run uses (FORUM_TEST_DATABASE_URL or the local one).
    """
    if kind == "sqlite":
        url = f"sqlite:///{directory / f'{label}.sqlite3'}"
        engine = create_engine(url)
        db.metadata.create_all(engine)
        engine.dispose()
        yield url
        return
    name = f"forum_{label}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(_admin_url(PG_SERVER, "postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as error:  # noqa: BLE001 - any failure: the PostgreSQL run cannot go on
        admin.dispose()
        pytest.fail(f"PostgreSQL not reachable at {PG_SERVER}: {error}")
    url = _admin_url(PG_SERVER, name)
    try:
        engine = create_engine(url)
        db.metadata.create_all(engine)
        engine.dispose()
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def clear_database(engine: Engine) -> None:
    """Delete every row, keeping the schema (between browser tests)."""
    tables = db.metadata.sorted_tables
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(tables):
                conn.execute(table.delete())
