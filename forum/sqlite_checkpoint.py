"""SQLite's checkpoints in a thread of each process, not in a writer's COMMIT.

In WAL mode SQLite copies the log back into the database file, and syncs the file, in the
COMMIT that takes the log past 1,000 pages (its "autocheckpoint"), while that writer still
holds the writers' lock (forum/sqlite_writes.py). One approval in about forty paid for
it: 16-200 ms instead of 5, and every writer queued behind it (bench/NOTES.md, session 9).

Each process that opens a database file starts one daemon thread for it that runs a
PASSIVE checkpoint (it never waits for, nor blocks, a reader or a writer) every
`interval` seconds, on a connection of its own. The application's connections then
checkpoint by themselves only past SAFETY_PAGES, should the thread ever fall behind. The
thread ends when the database file is gone or replaced. In-memory databases have no log.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from typing import Any
from urllib.request import pathname2url

SAFETY_PAGES = 10_000  # about 40 MB of log: the connections' own checkpoint, as a backstop
INTERVAL = 1.0  # seconds between two checkpoints; 0: SQLite's own autocheckpoint only

_interval = INTERVAL
_threads: dict[tuple[int, str, int], threading.Thread] = {}
_guard = threading.Lock()
checkpoints = 0  # done by this process's threads (tests read it)


def configure(interval: float) -> None:
    """Seconds between checkpoints for the connections opened from now on (0: off)."""
    global _interval
    _interval = interval


def on_connect(connection: sqlite3.Connection) -> None:
    """For each new connection: leave checkpoints to this process's thread for its file."""
    if _interval <= 0:
        return
    path = database_file(connection)
    if not path:
        return
    try:
        inode = os.stat(path).st_ino
    except OSError:
        return
    connection.execute(f"PRAGMA wal_autocheckpoint={SAFETY_PAGES}")
    key = (os.getpid(), path, inode)
    with _guard:
        thread = _threads.get(key)
        if thread is None or not thread.is_alive():
            thread = threading.Thread(
                target=_run, args=(path, inode, _interval), name=f"checkpoint {path}", daemon=True
            )
            _threads[key] = thread
            thread.start()


def database_file(connection: sqlite3.Connection) -> str:
    """The main database's file ('' for an in-memory or temporary database)."""
    for _seq, name, file in connection.execute("PRAGMA database_list"):
        if name == "main":
            return file or ""
    return ""


def running(path: str) -> bool:
    """Whether a thread of this process checkpoints the file now at `path`."""
    try:
        thread = _threads.get((os.getpid(), path, os.stat(path).st_ino))
    except OSError:
        return False
    return thread is not None and thread.is_alive()


def _same_file(path: str, inode: int) -> bool:
    try:
        return os.stat(path).st_ino == inode
    except OSError:
        return False


def _run(path: str, inode: int, interval: float) -> None:
    global checkpoints
    connection: Any = None
    try:
        # Until the file is gone, or replaced by another (its own thread serves that one).
        while _same_file(path, inode):
            time.sleep(interval)
            try:
                if connection is None:  # mode=rw: never make a database that went
                    uri = f"file:{pathname2url(path)}?mode=rw"
                    connection = sqlite3.connect(uri, uri=True, timeout=0, isolation_level=None)
                # fetchall: the statement runs to its end and holds no read lock after it.
                ((busy, _log, _done),) = connection.execute(
                    "PRAGMA wal_checkpoint(PASSIVE)"
                ).fetchall()
                if not busy:
                    checkpoints += 1
            except sqlite3.Error:
                continue  # busy or locked: the next round, or the backstop
    finally:
        if connection is not None:
            connection.close()
