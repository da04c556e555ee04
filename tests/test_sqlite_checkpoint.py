"""SQLite's checkpoints run in a thread of each process, not in a writer's COMMIT
(forum/sqlite_checkpoint.py)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from forum import create_app, sqlite_checkpoint
from forum.extensions import db


def file_app(path: Path, seconds: float = 0.05):
    return create_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}",
            "SECRET_KEY": "x",
            "SQLITE_CHECKPOINT_SECONDS": seconds,
        }
    )


@pytest.fixture(autouse=True)
def default_interval():
    yield
    sqlite_checkpoint.configure(sqlite_checkpoint.INTERVAL)


def write(app, rows: int) -> int:
    """`rows` rows of 4 KB, a commit each; the connection's autocheckpoint setting."""
    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(text("CREATE TABLE IF NOT EXISTS t (x TEXT)"))
        for _ in range(rows):
            with db.engine.begin() as conn:
                conn.execute(text("INSERT INTO t (x) VALUES (:x)"), {"x": "x" * 4096})
        with db.engine.connect() as conn:
            return conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()


def test_the_thread_copies_the_log_back_and_commits_do_not(tmp_path):
    path = tmp_path / "c.sqlite3"
    app = file_app(path)
    before = sqlite_checkpoint.checkpoints
    assert write(app, 300) == sqlite_checkpoint.SAFETY_PAGES  # a commit never crosses it
    assert sqlite_checkpoint.running(str(path))
    deadline = time.monotonic() + 5
    while sqlite_checkpoint.checkpoints == before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sqlite_checkpoint.checkpoints > before
    time.sleep(0.2)  # one more round after the last commit
    with sqlite3.connect(path) as conn:
        busy, log, done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    assert busy == 0 and log == done  # nothing left for anyone to copy


def test_off_leaves_sqlite_its_own_checkpoints(tmp_path):
    path = tmp_path / "off.sqlite3"
    assert write(file_app(path, seconds=0), 3) == 1000  # SQLite's default
    assert not sqlite_checkpoint.running(str(path))


def test_no_thread_for_an_in_memory_database():
    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "SECRET_KEY": "x"})
    with app.app_context(), db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000
    assert not sqlite_checkpoint.running("")


def test_the_thread_ends_when_the_database_file_is_gone(tmp_path):
    path = tmp_path / "gone.sqlite3"
    app = file_app(path)
    write(app, 1)
    with app.app_context():
        db.engine.dispose()
    assert sqlite_checkpoint.running(str(path))
    (thread,) = [t for k, t in sqlite_checkpoint._threads.items() if k[1] == str(path)]
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    thread.join(2)
    assert not thread.is_alive()


def test_a_replaced_database_file_gets_a_thread_of_its_own(tmp_path):
    """A restore puts another file at the path: the old file's thread ends, a new one
    serves the new file from its first connection."""
    path = tmp_path / "restored.sqlite3"
    app = file_app(path)
    write(app, 1)
    with app.app_context():
        db.engine.dispose()
    (old,) = [t for k, t in sqlite_checkpoint._threads.items() if k[1] == str(path)]
    copy = tmp_path / "copy.sqlite3"
    with sqlite3.connect(path) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    copy.replace(path)
    write(file_app(path), 1)
    assert sqlite_checkpoint.running(str(path))
    old.join(2)
    assert not old.is_alive()
