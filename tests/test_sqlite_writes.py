"""SQLite writers queue on a lock file instead of polling (forum/sqlite_writes.py).

Every writer here sets SQLite's busy timeout to 0: without the lock file, the second
writer of two fails at once with "database is locked", so each concurrent test fails on
code that only relies on SQLite's own lock.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from forum import create_app
from forum.extensions import db
from forum.sqlite_writes import WriteLockedConnection, lock_path_for

ROOT = Path(__file__).resolve().parent.parent
ROUNDS = 25

WRITER = """
import sys
from forum import create_app
from tests.test_sqlite_writes import write_rounds

app = create_app({"SQLALCHEMY_DATABASE_URI": sys.argv[1], "SECRET_KEY": "x"})
write_rounds(app, sys.argv[2])
"""


def write_rounds(app, name: str) -> None:
    """ROUNDS write transactions, each reads the counter, yields the CPU, writes it + 1 and
    logs when it ran; busy timeout 0, so any overlap is "database is locked"."""
    for _ in range(ROUNDS):
        with app.test_request_context("/", method="POST"):
            db.session.execute(text("PRAGMA busy_timeout=0"))  # begins: the lock is held
            start = time.time()
            n = db.session.execute(text("SELECT n FROM counter")).scalar_one()
            time.sleep(0.002)
            db.session.execute(text("UPDATE counter SET n = :n"), {"n": n + 1})
            db.session.execute(
                text("INSERT INTO turns (who, started, ended) VALUES (:w, :s, :e)"),
                {"w": name, "s": start, "e": time.time()},
            )
            db.session.commit()


def file_app(path: Path):
    return create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}", "SECRET_KEY": "x"})


@pytest.fixture
def counter_db(tmp_path):
    path = tmp_path / "w.sqlite3"
    app = file_app(path)
    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(text("CREATE TABLE counter (n INTEGER NOT NULL)"))
            conn.execute(text("INSERT INTO counter (n) VALUES (0)"))
            conn.execute(text("CREATE TABLE turns (who TEXT, started REAL, ended REAL)"))
        db.engine.dispose()
    return path


def check(path: Path, writers: int) -> None:
    app = file_app(path)
    with app.app_context():
        assert db.session.execute(text("SELECT n FROM counter")).scalar_one() == writers * ROUNDS
        turns = db.session.execute(text("SELECT started, ended FROM turns ORDER BY started")).all()
        db.session.rollback()
        db.engine.dispose()
    assert len(turns) == writers * ROUNDS
    # In order: each transaction ended before the next one began.
    for before, after in zip(turns, turns[1:], strict=False):
        assert before.ended <= after.started


def test_processes_write_in_turn_without_database_is_locked(counter_db):
    url = f"sqlite:///{counter_db}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, url, f"p{i}", str(ROUNDS)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(3)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert "database is locked" not in err
    check(counter_db, 3)


def test_threads_write_in_turn(counter_db):
    app = file_app(counter_db)
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        try:
            write_rounds(app, name)
        except BaseException as error:  # noqa: BLE001 - reported by the test
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(f"t{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    with app.app_context():
        db.engine.dispose()
    check(counter_db, 3)


def lock_is_free(path: Path) -> bool:
    """Whether another open file (another process, as far as flock knows) could take it."""
    fd = os.open(lock_path_for(str(path)), os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def test_lock_is_held_by_a_write_and_released_on_commit_and_rollback(counter_db):
    app = file_app(counter_db)
    with app.test_request_context("/", method="POST"):
        db.session.execute(text("UPDATE counter SET n = 1"))
        assert not lock_is_free(counter_db)
        db.session.commit()
        assert lock_is_free(counter_db)
        db.session.execute(text("UPDATE counter SET n = 2"))
        assert not lock_is_free(counter_db)
        db.session.rollback()
        assert lock_is_free(counter_db)
        assert db.session.execute(text("SELECT n FROM counter")).scalar_one() == 1
        db.session.rollback()
    with app.app_context():
        db.engine.dispose()


def test_lock_is_released_when_a_request_fails(counter_db):
    app = file_app(counter_db)
    app.config["WTF_CSRF_ENABLED"] = False

    @app.post("/boom")
    def boom():
        db.session.execute(text("UPDATE counter SET n = 5"))
        raise RuntimeError("boom")

    app.config["PROPAGATE_EXCEPTIONS"] = False
    assert app.test_client().post("/boom").status_code == 500
    assert lock_is_free(counter_db)
    with app.app_context():
        assert db.session.execute(text("SELECT n FROM counter")).scalar_one() == 0
        db.session.rollback()
        db.engine.dispose()


def test_lock_is_released_when_begin_fails(counter_db):
    app = file_app(counter_db)
    with app.app_context():
        blocker = db.engine.raw_connection()  # SQLite's own write lock, without the file's
        blocker.driver_connection.execute("BEGIN IMMEDIATE")
        impatient = db.engine.raw_connection()  # back to the pool, for the session below
        impatient.driver_connection.execute("PRAGMA busy_timeout=0")
        impatient.close()
    try:
        with app.test_request_context("/", method="POST"):
            with pytest.raises(Exception, match="database is locked"):
                db.session.execute(text("SELECT n FROM counter"))
            db.session.rollback()
            assert lock_is_free(counter_db)
    finally:
        blocker.driver_connection.rollback()
        blocker.close()
        with app.app_context():
            db.engine.dispose()


def test_reads_do_not_wait_for_the_lock(counter_db):
    app = file_app(counter_db)
    fd = os.open(lock_path_for(str(counter_db)), os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # a writer elsewhere
    try:
        with app.test_request_context("/", method="GET"):
            assert db.session.execute(text("SELECT n FROM counter")).scalar_one() == 0
            db.session.rollback()
    finally:
        os.close(fd)
        with app.app_context():
            db.engine.dispose()


def test_in_memory_sqlite_writes_without_a_lock_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "SECRET_KEY": "x"})
    with app.test_request_context("/", method="POST"):
        db.session.execute(text("CREATE TABLE t (n INTEGER)"))
        db.session.execute(text("INSERT INTO t VALUES (1)"))
        raw = db.session.connection().connection.dbapi_connection
        assert isinstance(raw, WriteLockedConnection)
        assert raw.write_lock_path is None and not raw.holds_write_lock
        db.session.commit()
        assert db.session.execute(text("SELECT n FROM t")).scalar_one() == 1
        db.session.rollback()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("database", "uri", "expected"),
    [
        (":memory:", False, None),
        ("", False, None),
        ("file::memory:?cache=shared", True, None),
        ("file:x.db?mode=memory&cache=shared", True, None),
        ("/srv/forum.sqlite3", False, "/srv/forum.sqlite3.writelock"),
        ("file:/srv/forum.sqlite3?mode=rw", True, "/srv/forum.sqlite3.writelock"),
    ],
)
def test_lock_path(database, uri, expected):
    assert lock_path_for(database, uri) == expected
