"""Measurements inside one process: SQL statements per request, and the sanitizer alone."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import bleach
import corpus
from flask import Flask
from sqlalchemy import event

from forum import create_app
from forum.extensions import db
from forum.services import sanitize


def forum_app(url: str, **config) -> Flask:
    return create_app(
        {
            "DATABASE_URL": url,
            "SECRET_KEY": "bench",
            "WTF_CSRF_ENABLED": False,
            "RATELIMIT_ENABLED": False,
            "MAIL_SUPPRESS_SEND": True,
            "MODERATION_MIN_SUBMIT_SECONDS": 0,
            **config,
        }
    )


@contextlib.contextmanager
def count_queries(app: Flask) -> Iterator[list[str]]:
    """Every SQL statement the app runs inside the block (as tests/conftest.py counts them)."""
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


def queries_for(app: Flask, method: str, path: str, user_id: int | None = None, **kw) -> int:
    """Statements for one request, after a warm-up request that fills the caches."""
    client = app.test_client()
    if user_id is not None:
        with client.session_transaction() as sess:
            sess["_user_id"] = f"{user_id}:"
            sess["_fresh"] = True
    if method == "GET":
        client.get(path)
    with count_queries(app) as statements:
        resp = client.open(path, method=method, **kw)
    if resp.status_code >= 400:
        raise RuntimeError(f"{method} {path}: {resp.status_code}")
    return len(statements)


def best_cpu_ms(client, path: str, n: int = 9) -> float:
    """The least CPU time (this process) one GET took out of `n`, after two warm-ups:
    the figure other load on the machine disturbs least."""
    for _ in range(2):
        client.get(path)
    best = float("inf")
    for _ in range(n):
        start = time.process_time()
        resp = client.get(path)
        best = min(best, time.process_time() - start)
    if resp.status_code != 200:
        raise RuntimeError(f"GET {path}: {resp.status_code}")
    return round(best * 1000, 2)


def sanitizer_throughput(seconds: float = 3.0, n: int = 500, seed: int = 99) -> dict:
    """Comments per second through forum.services.sanitize.sanitize_comment, one core,
    and through a bare bleach.clean + bleach.linkify on the same corpus for reference."""
    bodies = corpus.corpus(n, seed)
    chars = sum(len(b) for b in bodies) / len(bodies)

    def loop(fn) -> float:
        for body in bodies[:20]:
            fn(body)
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            fn(bodies[done % len(bodies)])
            done += 1
        return done / (time.perf_counter() - start)

    tags = {
        "a",
        "abbr",
        "b",
        "blockquote",
        "code",
        "del",
        "em",
        "i",
        "q",
        "s",
        "strong",
        "ul",
        "ol",
        "li",
        "pre",
        "p",
        "br",
    }
    attrs = {"a": ["href", "title"], "abbr": ["title"], "blockquote": ["cite"], "q": ["cite"]}
    forum_rate = loop(sanitize.sanitize_comment)
    bleach_rate = loop(
        lambda text: bleach.linkify(bleach.clean(text, tags=tags, attributes=attrs, strip=True))
    )
    held = sum(1 for b in bodies if sanitize.sanitize_comment(b).removed)
    return {
        "comments": len(bodies),
        "mean_chars": round(chars),
        "forum_per_second": round(forum_rate, 1),
        "bleach_per_second": round(bleach_rate, 1),
        "ratio_to_bleach": round(forum_rate / bleach_rate, 2),
        "with_removals": held,
    }
