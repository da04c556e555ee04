"""Under gunicorn: 4 sync workers, 16 guests posting 2,000 comments, 2 moderators
approving them through the dashboard as they arrive, on the run's database backend.

Everything goes over HTTP with CSRF on (each client scrapes its form's token) and rate
limits off (16 clients share 127.0.0.1). Every comment must be stored exactly once, no
request may fail with a 5xx or "database is locked", and every count must be exact.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from forum.extensions import db
from forum.models import Comment, ModerationAction, Post, QueueCounter, Role, Status
from forum.services import counters
from tests.factories import PASSWORD, make_post, make_user
from tests.helpers import make_test_app, scratch_database

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).with_name("gunicorn")
WORKERS = 4
CLIENTS = 16
COMMENTS = 2000
MODERATORS = 2
POSTS = 4
REPLY_EVERY = 4  # every 4th comment of a client answers its own previous one
DEADLINE = 240.0  # seconds for the whole load; the test fails rather than hang
HIDDEN = re.compile(r'name="(csrf_token|rendered_at)" (?:type="hidden" )?value="([^"]+)"')


class Client:
    """A browser-like HTTP client: its own cookies, no redirects followed."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}

    def request(
        self, method: str, path: str, form: dict | None = None, json_wanted: bool = False
    ) -> tuple[int, http.client.HTTPMessage, str]:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        if json_wanted:
            headers["Accept"] = "application/json"
        body = None
        if form is not None:
            body = urlencode(form, doseq=True)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(method, path, body, headers)
            resp = conn.getresponse()
            text = resp.read().decode("utf-8", "replace")
        finally:
            conn.close()
        for raw in resp.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(raw).items():
                if morsel["max-age"] == "0" or not morsel.value:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        return resp.status, resp.headers, text

    def csrf(self, path: str) -> str:
        return self.form_fields(path)["csrf_token"]

    def form_fields(self, path: str) -> dict[str, str]:
        """The hidden fields of the page's forms (CSRF token, the comment form's timestamp)."""
        status, _, page = self.request("GET", path)
        assert status == 200, (path, status)
        return dict(HIDDEN.findall(page))


@dataclass
class Tally:
    """What the threads saw; lists are appended to from many threads (atomic in CPython)."""

    sent: list[str] = field(default_factory=list)
    stored_ids: list[int] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    approved: list[int] = field(default_factory=list)  # "changed" of every approve answer
    posting_done: threading.Event = field(default_factory=threading.Event)


def guest(port: int, n: int, posts: list[tuple[int, str]], count: int, tally: Tally, stop_at):
    """One guest posting `count` comments (some replies to their own) on the posts."""
    client = Client(port)
    post_id, path = posts[n % len(posts)]
    try:
        hidden = client.form_fields(path)
        previous: int | None = None
        for k in range(count):
            if time.monotonic() > stop_at:
                tally.failures.append(f"guest {n}: out of time after {k} comments")
                return
            body = f"Guest {n} comment {k} {uuid.uuid4().hex}"
            form = {
                **hidden,
                "body": body,
                "author_name": f"Guest {n}",
                "author_email": f"guest{n}.{k}@example.org",
                "parent_id": str(previous) if previous and k % REPLY_EVERY == 0 else "",
            }
            tally.sent.append(body)
            status, headers, text = client.request("POST", f"/posts/{post_id}/comments", form)
            tally.statuses.append(status)
            if status != 302:
                tally.failures.append(f"guest {n} comment {k}: {status} {text[:300]!r}")
                continue
            match = re.search(r"#comment-(\d+)$", headers["Location"])
            previous = int(match.group(1))
            tally.stored_ids.append(previous)
    except Exception as error:  # noqa: BLE001 - reported, and fails the test
        tally.failures.append(f"guest {n}: {error!r}")


def moderator(port: int, username: str, tally: Tally, stop_at: float) -> None:
    """Sign in, then approve the queue's first page in bulk until everything is approved."""
    client = Client(port)
    try:
        token = client.csrf("/auth/login")
        status, _, _ = client.request(
            "POST", "/auth/login", {"csrf_token": token, "username": username, "password": PASSWORD}
        )
        assert status == 302, f"{username} could not sign in: {status}"
        token = client.csrf("/moderation/")
        while time.monotonic() < stop_at:
            finished = tally.posting_done.is_set()
            status, _, text = client.request("GET", "/moderation/?per_page=50", json_wanted=True)
            tally.statuses.append(status)
            if status != 200:
                tally.failures.append(f"{username} queue: {status} {text[:300]!r}")
                return
            page = json.loads(text)
            ids = re.findall(r'data-id="(\d+)"', page["html"])
            if not ids:
                if finished:
                    return
                time.sleep(0.05)
                continue
            form = {"csrf_token": token, "action": "approve", "ids": ids, "next": "/moderation/"}
            status, _, text = client.request("POST", "/moderation/bulk", form, json_wanted=True)
            tally.statuses.append(status)
            if status != 200:
                tally.failures.append(f"{username} bulk: {status} {text[:300]!r}")
                return
            tally.approved.extend(json.loads(text)["changed"])
        tally.failures.append(f"{username}: out of time")
    except Exception as error:  # noqa: BLE001 - reported, and fails the test
        tally.failures.append(f"{username}: {error!r}")


@pytest.fixture
def database(request: pytest.FixtureRequest, tmp_path) -> str:
    with scratch_database(request.config.getoption("--db"), tmp_path, "concurrency") as url:
        yield url


@pytest.fixture
def seeded(database: str, tmp_path) -> dict:
    """Posts and moderators, written through a short-lived app of the test's own."""
    app = make_test_app(database, tmp_path)
    with app.app_context():
        admin = make_user(Role.ADMIN)
        posts = [make_post(admin, title=f"Busy post {n}") for n in range(POSTS)]
        names = [make_user(Role.MODERATOR).username for _ in range(MODERATORS)]
        db.session.commit()
        seed = {"posts": [(p.id, f"/posts/{p.id}/{p.slug}") for p in posts], "moderators": names}
        db.session.remove()
        db.engine.dispose()
    return seed


@pytest.fixture
def gunicorn(database: str, tmp_path):
    """gunicorn with the project's gunicorn.conf.py on a free port; yields (port, logs)."""
    if not GUNICORN.exists():
        pytest.fail("gunicorn is not installed: pip install -e '.[serve]'")
    error_log = tmp_path / "gunicorn.log"
    access_log = tmp_path / "access.log"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("FORUM_", "GUNICORN_"))},
        "FORUM_DATABASE_URL": database,
        "FORUM_SECRET_KEY": "concurrency-test",
        "FORUM_BASE_URL": "http://127.0.0.1:5000",
        "FORUM_RATELIMIT_ENABLED": "false",
        "FORUM_MODERATION_MIN_SUBMIT_SECONDS": "0",
        "FORUM_MAIL_SUPPRESS_SEND": "true",
        "GUNICORN_BIND": "127.0.0.1:0",
        "GUNICORN_WORKERS": str(WORKERS),
        "GUNICORN_ACCESSLOG": str(access_log),
        "GUNICORN_CONTROL_SOCKET": str(tmp_path / "gunicorn.ctl"),
    }
    with open(error_log, "w") as log:
        proc = subprocess.Popen(
            [str(GUNICORN), "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        port = wait_for_port(proc, error_log)
        yield port, error_log, access_log
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def wait_for_port(proc: subprocess.Popen, log: Path, timeout: float = 30) -> int:
    """The port gunicorn bound (it was asked for port 0), once its workers booted."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text()
        port = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", text)
        booted = len(re.findall(r"Booting worker with pid", text))
        if port and booted >= WORKERS:
            return int(port.group(1))
        if proc.poll() is not None:
            pytest.fail(f"gunicorn exited with {proc.returncode}:\n{text[-3000:]}")
        time.sleep(0.1)
    pytest.fail(f"gunicorn did not start in {timeout} s:\n{log.read_text()[-3000:]}")


def test_2000_comments_from_16_clients_under_4_workers_are_stored_once_and_counted(
    seeded: dict, gunicorn, database: str
):
    port, error_log, access_log = gunicorn
    tally = Tally()
    stop_at = time.monotonic() + DEADLINE
    per_client = COMMENTS // CLIENTS
    guests = [
        threading.Thread(target=guest, args=(port, n, seeded["posts"], per_client, tally, stop_at))
        for n in range(CLIENTS)
    ]
    moderators = [
        threading.Thread(target=moderator, args=(port, name, tally, stop_at + 30))
        for name in seeded["moderators"]
    ]
    started = time.monotonic()
    for thread in guests + moderators:
        thread.start()
    for thread in guests:
        thread.join(max(0.0, stop_at - time.monotonic()) + 5)
    tally.posting_done.set()
    for thread in moderators:
        thread.join(max(0.0, stop_at + 30 - time.monotonic()) + 5)
    elapsed = time.monotonic() - started
    assert not any(t.is_alive() for t in guests + moderators), "clients still running"
    assert tally.failures == [], "\n".join(tally.failures[:20])

    # What the clients saw: every request answered, nothing failed on the server.
    assert len(tally.sent) == COMMENTS
    assert [s for s in tally.statuses if s >= 500] == []
    access = access_log.read_text()
    server_errors = re.findall(r'" (5\d\d) ', access)
    assert server_errors == [], f"{len(server_errors)} responses with 5xx in the access log"
    log = error_log.read_text()
    for bad in ("database is locked", "Traceback", "WORKER TIMEOUT", "ERROR"):
        at = log.find(bad)
        assert at < 0, f"{bad!r} in the gunicorn log:\n{log[max(0, at - 500) : at + 2500]}"

    # The database: each comment once, all approved once, visibility and counts exact.
    engine = create_engine(database)
    try:
        with Session(engine) as session:
            rows = session.execute(
                select(Comment.id, Comment.body_source, Comment.status, Comment.visible)
            ).all()
            assert len(rows) == COMMENTS
            assert sorted(r.body_source for r in rows) == sorted(tally.sent)
            assert sorted(r.id for r in rows) == sorted(tally.stored_ids)
            assert {r.status for r in rows} == {Status.APPROVED}
            assert all(r.visible for r in rows)
            assert sorted(tally.approved) == sorted(r.id for r in rows)  # each approved once
            logged = session.scalar(
                select(func.count(ModerationAction.id)).where(ModerationAction.action == "approve")
            )
            assert logged == COMMENTS
            replies = session.scalar(select(func.count(Comment.id)).where(Comment.depth > 0))
            assert replies > 0
            per_post = {
                post_id: n
                for post_id, n in session.execute(
                    select(Post.id, func.count(Comment.id))
                    .join(Comment, Comment.post_id == Post.id)
                    .where(Comment.visible.is_(True))
                    .group_by(Post.id)
                )
            }
            top_level = session.execute(
                select(
                    func.count(Comment.id).filter(Comment.visible.is_(True)),
                    func.count(Comment.id).filter(Comment.status == Status.APPROVED),
                ).where(Comment.parent_id.is_(None))
            ).one()
            assert top_level[0] == top_level[1]
            # The queue's maintained counters (services/counters.py) lost no update.
            stored = session.execute(
                select(QueueCounter.post_id, QueueCounter.name, QueueCounter.n)
            ).all()
            assert {(p, name): n for p, name, n in stored if n} == counters.full_count(session)
    finally:
        engine.dispose()

    # What readers see: each post page and the front page count the same.
    reader = Client(port)
    _, _, front = reader.request("GET", "/")
    for post_id, path in seeded["posts"]:
        status, _, page = reader.request("GET", path)
        assert status == 200
        expected = per_post.get(post_id, 0)
        assert f"{expected} Responses" in page
        assert re.search(rf'{re.escape(path)}#comments">{expected} Responses<', front)
    assert sum(per_post.values()) == COMMENTS
    print(f"\n{COMMENTS} comments, {WORKERS} workers, {CLIENTS} clients: {elapsed:.1f} s")
