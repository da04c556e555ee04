"""SQLite writers wait in line: a blocking lock on a file beside the database.

SQLite lets one writer in at a time. A second `BEGIN IMMEDIATE` does not queue: its busy
handler sleeps and retries (1, 2, 5, 10 ... up to 100 ms between tries), and a worker that
has just committed takes the next request and gets the lock again before the sleeper wakes.
With two gunicorn workers writing, that is where the approve POST's tail of seconds came
from (bench/NOTES.md). Here every write transaction first takes an exclusive `flock` on
`<database>.writelock`: the kernel wakes a waiter as soon as the holder lets go, so writers
run one after the other, and SQLite's own lock is then always free when they ask for it.

The lock is taken by `forum.extensions` just before `BEGIN IMMEDIATE` and released after
the connection's COMMIT or ROLLBACK (or when it is closed), whether the transaction ended
well or not. Reads (deferred `BEGIN`) never take it: WAL readers do not wait for writers.
In-memory databases have one connection and no file: nothing to lock. PostgreSQL has its
own row locks and is never touched.

Within one process, threads queue on a `threading.Lock` first (one descriptor per process
and database, since `flock` belongs to the open file, not to the thread). That wait is
bounded by the busy timeout, so a thread that asks for a second write connection while its
first is still open fails with "database is locked" as it did before, instead of waiting
for itself forever. The `flock` itself has no timeout: a writer waits as long as the one
ahead of it takes, and a stuck worker is ended by gunicorn's worker timeout.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from urllib.parse import parse_qs, unquote, urlsplit

LOCK_SUFFIX = ".writelock"


def lock_path_for(database: object, uri: bool = False) -> str | None:
    """The lock file of a database file; None for in-memory and temporary databases."""
    name = os.fsdecode(database) if isinstance(database, str | bytes | os.PathLike) else ""
    if uri or name.startswith("file:"):
        parts = urlsplit(name)
        if parse_qs(parts.query).get("mode") == ["memory"]:
            return None
        name = unquote(parts.path)
    if name in ("", ":memory:"):
        return None
    return os.path.abspath(name) + LOCK_SUFFIX


class _ProcessLock:
    """One writer of this process at a time (threading.Lock), then one of all processes
    (flock on this process's own descriptor of the lock file)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.threads = threading.Lock()
        self.fd: int | None = None

    def acquire(self, timeout: float) -> None:
        if not self.threads.acquire(timeout=timeout):
            raise sqlite3.OperationalError(
                "database is locked (another write transaction of this process is open)"
            )
        try:
            if self.fd is None:
                self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except BaseException:
            self.threads.release()
            raise

    def release(self) -> None:
        try:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        finally:
            self.threads.release()


_locks: dict[tuple[int, str], _ProcessLock] = {}
_registry = threading.Lock()


def _lock_for(path: str) -> _ProcessLock:
    # Keyed by pid: a forked child must not share its parent's open file (and its flock).
    key = (os.getpid(), path)
    with _registry:
        lock = _locks.get(key)
        if lock is None:
            lock = _locks[key] = _ProcessLock(path)
        return lock


class WriteLockedConnection(sqlite3.Connection):
    """A sqlite3 connection that holds the database's write lock from `take_write_lock()`
    until its transaction ends."""

    def __init__(self, database: object, *args: object, **kwargs: object) -> None:
        super().__init__(database, *args, **kwargs)
        self.write_lock_path = lock_path_for(database, bool(kwargs.get("uri")))
        self.holds_write_lock = False

    def take_write_lock(self, timeout: float) -> None:
        if self.write_lock_path is None or self.holds_write_lock:
            return
        _lock_for(self.write_lock_path).acquire(timeout)
        self.holds_write_lock = True

    def release_write_lock(self) -> None:
        if self.holds_write_lock:
            self.holds_write_lock = False
            _lock_for(self.write_lock_path).release()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            if not self.in_transaction:  # a failed COMMIT keeps it until the rollback
                self.release_write_lock()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.release_write_lock()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.release_write_lock()
