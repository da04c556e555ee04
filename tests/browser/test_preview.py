"""Markdown preview in a real browser: what the panel shows is what the thread shows."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from forum.extensions import db
from forum.models import BodyFormat, Comment, Role, User
from forum.services import moderation
from tests.browser.conftest import Guard, LiveServer
from tests.browser.pages import comment_item, fill_guest_details
from tests.factories import make_post, make_user

pytestmark = pytest.mark.browser

BODY = (
    'Frost **early**, see [the almanac](https://example.org/almanac "its title").\n\n'
    "```python\ndef frost(day):\n    return day < 300  # <b>not bold</b>\n```\n\n"
    "> quoted\n\n- one\n- ~~two~~"
)


def new_post(live: LiveServer) -> tuple[int, str, int]:
    with live.context():
        post = make_post(make_user(Role.ADMIN), title="Markdown in winter")
        moderator = make_user(Role.MODERATOR)
        db.session.commit()
        return post.id, f"/posts/{post.id}/{post.slug}", moderator.id


def test_live_preview_is_the_published_comment(live: LiveServer, page: Page, guard: Guard):
    _, path, moderator_id = new_post(live)
    page.goto(path)
    panel = page.locator("#comment-form-preview")
    expect(panel).to_be_hidden()
    fill_guest_details(page, "Ann Reader", "ann@example.org")
    page.locator("#comment-form textarea[name=body]").press_sequentially(
        "Typing *slowly*", delay=20
    )
    expect(panel.locator(".comment-text em")).to_have_text("slowly")
    page.locator("#comment-form textarea[name=body]").fill(BODY)
    expect(panel.locator(".comment-text pre .k")).to_have_text(["def", "return"])
    expect(panel.locator(".comment-text a")).to_have_attribute(
        "href", "https://example.org/almanac"
    )
    previewed = panel.locator(".comment-text").inner_html()
    page.get_by_role("button", name="Post Comment").click()
    expect(page.locator(".flash")).to_contain_text("awaiting moderation")
    with live.context():
        comment = db.session.scalars(select(Comment)).one()
        assert comment.body_format is BodyFormat.MARKDOWN
        moderation.decide("approve", [comment], db.session.get_one(User, moderator_id))
        db.session.commit()
    page.goto(path)
    published = comment_item(page, "Frost").locator(".comment-text")
    assert published.inner_html() == previewed
    # The highlighted block is styled by classes (the CSP allows no inline style).
    color = published.locator("pre .k").first.evaluate("e => getComputedStyle(e).color")
    assert color == "rgb(0, 128, 0)"
    guard.assert_clean()


@pytest.mark.browser_context_args(java_script_enabled=False)
def test_preview_without_javascript_keeps_the_text_and_stores_nothing(
    live: LiveServer, page: Page, guard: Guard
):
    _, path, _ = new_post(live)
    page.goto(path)
    fill_guest_details(page, "Ann Reader", "ann@example.org")
    page.locator("#comment-form textarea[name=body]").fill(BODY)
    page.get_by_role("button", name="Preview").click()
    panel = page.locator("#comment-form-preview")
    expect(panel).to_be_visible()
    expect(panel.locator(".comment-text strong")).to_have_text("early")
    expect(page.locator("#comment-form textarea[name=body]")).to_have_value(BODY)
    expect(page.locator("#comment-form").get_by_label("Name", exact=True)).to_have_value(
        "Ann Reader"
    )
    with live.context():
        assert db.session.scalars(select(Comment)).all() == []
    page.get_by_role("button", name="Post Comment").click()
    expect(page.locator(".flash")).to_contain_text("awaiting moderation")
    with live.context():
        # Browsers send a textarea with CRLF line ends; the source is stored normalized
        # (comments.apply_body), so the edit form shows exactly what was written.
        assert db.session.scalars(select(Comment.body_source)).one() == BODY.strip()
    guard.assert_clean()
