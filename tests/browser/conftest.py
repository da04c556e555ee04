"""Real-browser tests: Playwright drives Debian's chromium against a live server.

The recipe is ../shared/testing/BROWSER.md: the executable comes from the system (never
`playwright install`), the app runs in a thread on a free port with a database of its
own (a file SQLite database, or a PostgreSQL database of its own with `--db
postgresql`), and every request the browser makes outside 127.0.0.1 is aborted and
reported. CSRF protection is on: the tests submit the rendered forms.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from playwright.sync_api import BrowserContext, Dialog, Page, Route, expect
from playwright.sync_api import Error as PlaywrightError
from werkzeug.serving import make_server

from forum import create_app
from forum.extensions import db, limiter
from tests.helpers import clear_database, scratch_database

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Generous limits by default; a test that checks a limit lowers it (see LiveServer.reset).
RELAXED_LIMIT = "10000 per minute"
LIVE_CONFIG: dict[str, Any] = {
    "SECRET_KEY": "browser-test-secret",
    "DATABASE_URL": None,
    "WTF_CSRF_ENABLED": True,
    "RATELIMIT_ENABLED": True,
    "RATELIMIT_STORAGE_URI": "memory://",
    "RATELIMIT_COMMENT": RELAXED_LIMIT,
    "RATELIMIT_LOGIN": RELAXED_LIMIT,
    "RATELIMIT_LOGIN_ACCOUNT": RELAXED_LIMIT,
    "RATELIMIT_REGISTER": RELAXED_LIMIT,
    "RATELIMIT_RESET": RELAXED_LIMIT,
    "MAIL_SUPPRESS_SEND": True,
    # Playwright fills a form faster than a person: the "too fast" spam rule would fire.
    "MODERATION_MIN_SUBMIT_SECONDS": 0,
}
expect.set_options(timeout=10_000)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """A failed browser test leaves full-page screenshots of its pages in --output.

    Taken here, while the pages are still open, and only on failure: pytest-playwright's
    own `--screenshot only-on-failure` shoots every page of every test and then throws
    the pictures away, which costs seconds on a page of a hundred comments.
    """
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    pages: list[Page] = []
    for value in getattr(item, "funcargs", {}).values():
        found = value.pages if isinstance(value, BrowserContext) else [value]
        pages += [p for p in found if isinstance(p, Page) and p not in pages]
    folder = Path(item.config.getoption("--output", "test-results")) / slug(item.nodeid)
    saved = []
    for n, page in enumerate(pages, 1):
        path = folder / f"page-{n}.png"
        try:
            page.screenshot(path=path, full_page=True, timeout=10_000)
        except PlaywrightError as error:
            saved.append(f"{page.url}: no screenshot ({error.message})")
        else:
            saved.append(f"{page.url}: {path}")
    if saved:
        report.sections.append(("screenshots", "\n".join(saved)))


def slug(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", nodeid).strip("-")[:200]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    if not os.path.exists(CHROMIUM):
        message = "no Chromium: apt-get install -y chromium (or `make browser` as root)"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI must not skip the browser tests
        pytest.skip(message)
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": FLAGS}


@dataclass
class LiveServer:
    url: str
    app: Flask
    defaults: dict[str, Any] = field(default_factory=dict)

    @contextlib.contextmanager
    def context(self) -> Iterator[Any]:
        """An app context on the server's database, for setup and checks."""
        with self.app.app_context():
            yield db.session
            db.session.remove()

    def reset(self) -> None:
        """An empty database, the default config, fresh rate-limit counters."""
        self.app.config.update(self.defaults)
        with self.app.app_context():
            clear_database(db.engine)
            limiter.reset()


def buffered(app: Flask) -> Callable[..., list[bytes]]:
    """The app with each response read whole and closed before the server writes it.

    A browser that leaves a page cancels the requests still loading (a script, a style
    sheet). Werkzeug's development server then gets a connection reset while it drains
    the request after the response, before it closes the response, so the static file's
    handle is left to the garbage collector; with warnings as errors, that
    ResourceWarning failed whichever test happened to be running (CI, 2026-12-01;
    tests/browser/test_live_server.py). No page of the forum streams, so reading each
    response whole changes nothing else (after-response work runs before it is sent).
    """

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        body = app(environ, start_response)
        try:
            return [b"".join(body)]
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()

    return application


@pytest.fixture(scope="session")
def live_server(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[LiveServer]:
    kind = request.config.getoption("--db")
    directory = tmp_path_factory.mktemp("live")
    with scratch_database(kind, directory, "browser") as url:
        app = create_app({**LIVE_CONFIG, "SQLALCHEMY_DATABASE_URI": url})
        app.instance_path = str(directory / "instance")
        server = make_server("127.0.0.1", 0, buffered(app), threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield LiveServer(
                f"http://127.0.0.1:{server.server_port}", app, defaults=dict(app.config)
            )
        finally:
            server.shutdown()
            thread.join(5)
            server.server_close()
            with app.app_context():
                db.engine.dispose()


@pytest.fixture(scope="session")
def base_url(live_server: LiveServer) -> str:
    return live_server.url


@pytest.fixture
def live(live_server: LiveServer) -> LiveServer:
    """The live server, emptied and reset for this test."""
    live_server.reset()
    return live_server


class Guard:
    """Watches a context: dialogs, page errors and requests that leave the machine."""

    # Some payloads fire again on focus; keep the first few only.
    KEEP = 50

    def __init__(self) -> None:
        self.dialogs: list[str] = []
        self.page_errors: list[str] = []
        self.external: list[str] = []

    def attach(self, context: BrowserContext) -> BrowserContext:
        context.route("**/*", self._route)
        context.on("dialog", self._dialog)
        context.on("weberror", lambda error: self._keep(self.page_errors, str(error.error)))
        return context

    def _keep(self, bucket: list[str], item: str) -> None:
        if len(bucket) < self.KEEP:
            bucket.append(item)

    def _dialog(self, dialog: Dialog) -> None:
        self._keep(self.dialogs, f"{dialog.type}: {dialog.message}")
        with contextlib.suppress(PlaywrightError):  # the page may be gone already
            dialog.dismiss()

    def _route(self, route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            self._keep(self.external, route.request.url)
            route.abort()

    def assert_clean(self) -> None:
        assert self.dialogs == [], f"dialogs fired: {self.dialogs}"
        assert self.page_errors == [], f"JavaScript errors: {self.page_errors}"
        assert self.external == [], f"requests leaving the machine: {self.external}"


@pytest.fixture
def guard(context: BrowserContext) -> Guard:
    """The test's default context, watched."""
    watcher = Guard()
    watcher.attach(context)
    return watcher


@pytest.fixture
def other_page(new_context: Callable[..., BrowserContext], guard: Guard) -> Page:
    """A page in a second, separate browser context (another person), watched too."""
    return guard.attach(new_context()).new_page()
