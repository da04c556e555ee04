"""Every payload of tests/xss_corpus.txt, as a comment's body, author name and URL, in a
real browser: nothing runs on the post page, nor on the moderation dashboard with the
raw submissions shown. Payloads go in twice: through the comment form, where bodies are
Markdown (rendered, then sanitized), and stored raw as HTML bodies, as an import does.

Content Security Policy is bypassed here (bypass_csp): it would block inline handlers
and hide a hole in the sanitizer or the templates; this checks what is below it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect
from sqlalchemy import select

from forum.extensions import db
from forum.models import BodyFormat, Comment, Post, Role, Status, User
from forum.services import markdown, moderation
from forum.services import settings as settings_service
from forum.services.sanitize import is_blank_html
from tests.browser.conftest import Guard, LiveServer
from tests.browser.pages import fill_guest_details, sign_in, write_comment
from tests.browser.xss import INIT_SCRIPT, examine, inspect, load_corpus
from tests.factories import make_comment, make_post, make_user

pytestmark = pytest.mark.browser

CORPUS = load_corpus()
# Comments per post page: a batch is checked in one page load (BROWSER.md timings).
BATCH = 200
FORM_BATCHES = math.ceil(len(CORPUS) / BATCH)
HIDDEN = re.compile(r'name="(csrf_token|rendered_at)" type="hidden" value="([^"]+)"')
SCOPE_POST = ".comment-text, .comment-meta .author"
# On the dashboard: the rendered body, the raw submission, the author's name and URL,
# the hold reasons and what the sanitizer removed (all derived from the payload).
DASHBOARD_PARTS = (
    ".comment-text",
    ".raw-text",
    ".author-name",
    ".author-url",
    ".reasons",
    ".removed",
)
SCOPE_DASHBOARD = ", ".join(f".queue-item {part}" for part in DASHBOARD_PARTS)


def test_corpus_is_big_enough():
    assert len(CORPUS) >= 150
    assert len(set(CORPUS)) == len(CORPUS), "duplicate payloads in the corpus"


@dataclass
class XssForum:
    """Posts holding the corpus twice: posted through the form, and stored raw."""

    paths: list[str] = field(default_factory=list)
    post_ids: list[int] = field(default_factory=list)
    moderator: str = ""
    counts: list[int] = field(default_factory=list)
    payload_of: dict[int, str] = field(default_factory=dict)
    urls_through_form: int = 0
    refused_as_blank: int = 0  # payloads that sanitize to nothing a reader could see

    def explain(self, problems: list[str]) -> str:
        lines = []
        for problem in problems:
            match = re.match(r"comment (?:comment-)?(\d+)", problem)
            payload = self.payload_of.get(int(match.group(1))) if match else None
            lines.append(f"{problem}\n    payload: {payload!r}" if payload else problem)
        return "\n".join(lines)


def post_through_form(live: LiveServer, post_ids: list[int], forum: XssForum) -> None:
    """Each payload as body (Markdown), name and (when the form takes it) website, via HTTP +
    CSRF."""
    client = live.app.test_client()
    hidden = dict(HIDDEN.findall(client.get(forum.paths[0]).get_data(as_text=True)))
    for n, payload in enumerate(CORPUS):
        data = {
            **hidden,
            "body": payload,
            "author_name": payload[:100],
            "author_email": f"form{n}@example.org",
            "author_url": payload.strip() if payload.lower().startswith("http") else "",
        }
        post_id = post_ids[n // BATCH]
        response = client.post(f"/posts/{post_id}/comments", data=data)
        if response.status_code == 422 and data["author_url"]:
            data["author_url"] = ""  # the form refuses it: it is stored raw below
            response = client.post(f"/posts/{post_id}/comments", data=data)
        else:
            forum.urls_through_form += bool(data["author_url"])
        if response.status_code == 422 and is_blank_html(as_markdown(payload)):
            forum.refused_as_blank += 1  # nothing a reader would see is left: refused
            continue
        assert response.status_code == 302, (payload, response.status_code)
        comment_id = int(response.headers["Location"].rsplit("#comment-", 1)[1])
        forum.payload_of[comment_id] = payload


def as_markdown(payload: str) -> str:
    return markdown.render(payload, BodyFormat.MARKDOWN, markdown.Kind.COMMENT).html


def store_raw(post_ids: list[int], forum: XssForum) -> None:
    """Straight into the database, as an import could: the website exactly as given."""
    for n, payload in enumerate(CORPUS):
        post = db.session.get_one(Post, post_ids[n // BATCH])
        comment = make_comment(
            post,
            body=payload,
            author_name=payload[:100],
            author_email=f"raw{n}@example.org",
            author_url=payload[:500],
        )
        forum.payload_of[comment.id] = payload
    db.session.commit()


@pytest.fixture(scope="module")
def xss_forum(live_server: LiveServer) -> XssForum:
    """The corpus, approved. No test in this module may use `live`: it empties the database."""
    live_server.reset()
    forum = XssForum()
    with live_server.context():
        moderator = make_user(Role.MODERATOR)
        moderator_id, forum.moderator = moderator.id, moderator.username
        posts = [make_post(title=f"Payloads {n}") for n in range(2 * FORM_BATCHES)]
        settings_service.save({"threads_per_page": BATCH})
        db.session.commit()
        post_ids = forum.post_ids = [p.id for p in posts]
        forum.paths = [f"/posts/{p.id}/{p.slug}" for p in posts]
    post_through_form(live_server, post_ids[:FORM_BATCHES], forum)
    with live_server.context():
        store_raw(post_ids[FORM_BATCHES:], forum)
    with live_server.context():
        held = select(Comment.id).where(Comment.status != Status.APPROVED)
        comments = moderation.load_comments(db.session.scalars(held).all())
        moderator = db.session.get_one(User, moderator_id)
        moderation.decide("approve", comments, moderator)
        db.session.commit()
        rows = db.session.execute(select(Comment.post_id, Comment.visible)).all()
        formats = db.session.execute(select(Comment.post_id, Comment.body_format)).all()
        assert {f for pid, f in formats if pid in post_ids[:FORM_BATCHES]} == {BodyFormat.MARKDOWN}
        assert {f for pid, f in formats if pid in post_ids[FORM_BATCHES:]} == {BodyFormat.HTML}
        assert (
            all(visible for _, visible in rows)
            and len(rows) == 2 * len(CORPUS) - forum.refused_as_blank
        )
        forum.counts = [sum(1 for pid, _ in rows if pid == post_id) for post_id in post_ids]
    assert forum.urls_through_form > 0
    return forum


@pytest.mark.browser_context_args(bypass_csp=True)
@pytest.mark.parametrize("batch", range(2 * FORM_BATCHES))
def test_no_payload_runs_on_the_post_page(
    xss_forum: XssForum, context: BrowserContext, page: Page, guard: Guard, batch: int
):
    context.add_init_script(INIT_SCRIPT)
    exercised, problems = inspect(page, xss_forum.paths[batch], SCOPE_POST)
    assert not problems, xss_forum.explain(problems)
    guard.assert_clean()
    # Every comment of the batch was there to be checked.
    expect(page.locator("li.comment")).to_have_count(xss_forum.counts[batch])
    expect(page.locator(".responses-count")).to_have_text(f"{xss_forum.counts[batch]} Responses")
    assert exercised >= 2 * xss_forum.counts[batch]


@pytest.mark.browser_context_args(bypass_csp=True)
def test_payloads_typed_into_the_form_do_not_run_in_the_authors_pending_view(
    live_server: LiveServer, context: BrowserContext, page: Page, guard: Guard
):
    context.add_init_script(INIT_SCRIPT)
    with live_server.context():
        post = make_post(title="Typed payloads")
        db.session.commit()
        post_id, path = post.id, f"/posts/{post.id}/{post.slug}"
    typed = [
        p
        for p in CORPUS
        if ("onerror" in p or "<script" in p.lower())
        and not is_blank_html(as_markdown(p))  # else refused as empty
    ][:3]
    page.goto(path)
    for n, payload in enumerate(typed):
        fill_guest_details(page, payload[:100], f"typed{n}@example.org")
        write_comment(page, payload)
        expect(page.locator(".flash")).to_contain_text("awaiting moderation")
    exercised, problems = inspect(page, path, SCOPE_POST)
    expect(page.locator("li.comment.is-pending")).to_have_count(len(typed))
    assert not problems, problems
    with live_server.context():
        stored = db.session.execute(
            select(Comment.body_source, Comment.status)
            .where(Comment.post_id == post_id)
            .order_by(Comment.id)
        ).all()
        assert stored == [(payload, Status.PENDING) for payload in typed]
    guard.assert_clean()


def test_the_detector_catches_a_payload_that_runs(context: BrowserContext, page: Page):
    """The harness itself: a page that does run payloads must fail every check."""
    guard = Guard()
    guard.attach(context)
    context.add_init_script(INIT_SCRIPT)
    unsafe = (
        '<ol><li class="comment"><article class="comment-body" data-comment-id="7">'
        '<div class="comment-text"><img src="/nothing.png" onerror="alert(1)">'
        '<a href=" java&#x09;script:alert(2)" onmouseover="print()">x</a>'
        '<svg><animate attributeName="x"/></svg><img src="http://evil.example/x.png">'
        "</div></article></li></ol>"
    )

    def serve(route: Route) -> None:
        route.fulfill(status=200, content_type="text/html", body=unsafe)

    context.route("http://127.0.0.1:9/unsafe", serve)
    page.goto("http://127.0.0.1:9/unsafe")
    exercised, problems = examine(page, ".comment-text")
    assert exercised >= 5
    assert guard.dialogs, "the onerror alert was not caught"
    assert guard.external == ["http://evil.example/x.png"]
    text = "\n".join(problems)
    for expected in ("handler attribute onerror", "href= java", "<svg>", "ran: print()"):
        assert expected in text, (expected, problems)


@pytest.fixture(scope="module")
def moderator_cookies(xss_forum: XssForum, browser: Browser, live_server: LiveServer) -> list:
    """A moderator's session, signed in once for all the dashboard pages."""
    context = browser.new_context(base_url=live_server.url)
    try:
        sign_in(context.new_page(), xss_forum.moderator)
        return context.cookies()
    finally:
        context.close()


@pytest.mark.browser_context_args(bypass_csp=True)
@pytest.mark.parametrize("batch", range(2 * FORM_BATCHES))
def test_no_payload_runs_on_the_dashboard_with_raw_submissions_open(
    xss_forum: XssForum,
    moderator_cookies: list,
    context: BrowserContext,
    page: Page,
    guard: Guard,
    batch: int,
):
    context.add_init_script(INIT_SCRIPT)
    context.add_cookies(moderator_cookies)
    url = f"/moderation/?tab=approved&post={xss_forum.post_ids[batch]}&per_page=200"
    page.goto(url)
    first = page.locator("#queue .queue-item").first
    first.locator("details.raw summary").click()  # the toggle; the others opened at once
    page.evaluate("() => document.querySelectorAll('details.raw').forEach(d => { d.open = true; })")
    exercised, problems = examine(page, SCOPE_DASHBOARD)
    assert not problems, xss_forum.explain(problems)
    guard.assert_clean()
    expect(page.locator("#queue .queue-item")).to_have_count(xss_forum.counts[batch])
    assert exercised >= 4 * xss_forum.counts[batch]
    # The raw submission is the payload, shown as text.
    raw = first.locator(".raw-text")
    expect(raw).to_be_visible()
    assert raw.text_content() == xss_forum.payload_of[int(first.get_attribute("data-id"))]
