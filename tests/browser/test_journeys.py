"""Keyboard-only journeys: a guest comments and replies (one submission refused, then
corrected), and a moderator clears twenty comments, acting on the one with the focus."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import func, select

from forum.extensions import db
from forum.models import Comment, Post, Role, Status, utcnow
from tests.browser.conftest import Guard, LiveServer
from tests.factories import PASSWORD, make_comment, make_post, make_user

pytestmark = pytest.mark.browser


def tab_to(page: Page, selector: str, limit: int = 80) -> int:
    """Press Tab until the element matching `selector` has the focus; how many presses."""
    for presses in range(1, limit + 1):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement.matches(s)", selector):
            return presses
    raise AssertionError(f"{selector} not reached in {limit} Tab presses")


def test_guest_comments_and_replies_with_the_keyboard_only(
    live: LiveServer, page: Page, guard: Guard
):
    with live.context():
        post = make_post(make_user(Role.ADMIN), title="Keyboard thread")
        first = make_comment(post, body="The first word on it.", author_name="Olga")
        for n in range(30):  # 30 Reply links between the top of the page and the form
            make_comment(post, body=f"Opinion {n}.")
        db.session.commit()
        path, first_id, post_id = f"/posts/{post.id}/{post.slug}", first.id, post.id
    page.goto(path)

    # The jump link comes a few Tab stops in and leads to the form.
    assert tab_to(page, "a.jump-to-form") <= 8
    page.keyboard.press("Enter")
    tab_to(page, "#comment-form textarea[name=body]", limit=3)
    page.keyboard.type("Frost came early, and the kale loved it.")
    tab_to(page, "#author_name", limit=3)
    page.keyboard.type("Ann Reader")
    # The email is forgotten: the answer opens at the summary, which has the focus.
    tab_to(page, "#comment-form button[type=submit]", limit=12)
    page.keyboard.press("Enter")
    summary = page.locator("#comment-form-errors")
    expect(summary).to_be_focused()
    expect(summary).to_be_in_viewport()
    expect(summary).to_contain_text("Email (never shown)")
    email = page.locator("#author_email")
    expect(email).to_have_attribute("aria-invalid", "true")
    expect(email).to_have_accessible_description(re.compile("required", re.I))
    expect(page.locator("#comment-form textarea[name=body]")).to_have_value(
        "Frost came early, and the kale loved it."
    )
    expect(page.locator("#author_name")).to_have_value("Ann Reader")
    # From the summary's link straight to the field.
    page.keyboard.press("Tab")
    expect(page.locator("#comment-form-errors a")).to_be_focused()
    page.keyboard.press("Enter")
    expect(email).to_be_focused()
    page.keyboard.type("ann@example.org")
    tab_to(page, "#comment-form button[type=submit]", limit=12)
    page.keyboard.press("Enter")
    expect(page.locator(".flash")).to_contain_text("awaiting moderation")
    expect(page).not_to_have_url(re.compile("errors"))

    # A reply: the form comes under the comment; Cancel takes the focus back to its Reply
    # link; a second try sends it.
    page.goto(path)
    reply = f"#comment-{first_id} > .comment-body .reply-link"
    tab_to(page, reply)
    page.keyboard.press("Enter")
    expect(page.locator(f"#comment-{first_id} #respond")).to_have_count(1)
    expect(page.locator("#comment-form textarea[name=body]")).to_be_focused()
    page.keyboard.press("Shift+Tab")  # the Cancel link is above the form
    page.keyboard.press("Shift+Tab")
    expect(page.locator("#cancel-reply")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator(reply)).to_be_focused()
    expect(page.locator("#parent_id")).to_have_value("")
    page.keyboard.press("Enter")
    expect(page.locator("#comment-form textarea[name=body]")).to_be_focused()
    page.keyboard.type("Olga, which kale?")
    tab_to(page, "#author_name", limit=3)
    page.keyboard.type("Ann Reader")
    page.keyboard.press("Tab")
    page.keyboard.type("ann@example.org")
    tab_to(page, "#comment-form button[type=submit]", limit=12)
    page.keyboard.press("Enter")
    expect(page.locator(".flash")).to_contain_text("awaiting moderation")
    with live.context():
        rows = db.session.execute(
            select(Comment.body_source, Comment.parent_id, Comment.author_email).where(
                Comment.post_id == post_id, Comment.author_name == "Ann Reader"
            )
        ).all()
    assert sorted(rows) == [
        ("Frost came early, and the kale loved it.", None, "ann@example.org"),
        ("Olga, which kale?", first_id, "ann@example.org"),
    ]
    guard.assert_clean()


def counts_in_db(live: LiveServer) -> dict[str, int]:
    with live.context():
        rows = db.session.execute(select(Comment.status, func.count()).group_by(Comment.status))
        return {status.value: n for status, n in rows}


def test_moderator_clears_twenty_comments_with_the_keyboard(
    live: LiveServer, page: Page, guard: Guard
):
    with live.context():
        moderator = make_user(Role.MODERATOR)
        post = make_post(title="A busy post")
        ids = [
            make_comment(
                post,
                status=Status.PENDING,
                body=f"Held number {n}: is this spam?",
                author_name=f"Writer {n}",
                reasons=["first-time"],
                created_at=utcnow() - timedelta(minutes=n),
            ).id
            for n in range(24)
        ]
        db.session.commit()
        username = moderator.username
    # Signing in by keyboard too.
    page.goto("/auth/login")
    # The username field has the focus (autofocus; waited for: on a busy machine the
    # first keys could come before it, and went nowhere).
    expect(page.locator("input[name=username]")).to_be_focused()
    page.keyboard.type(username)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.locator(".account")).to_contain_text(f"Signed in as {username}")
    page.goto("/moderation/")

    # Newest first: Held number 0 is current. Tab to the third item's Approve button and
    # press "a": the third one is approved, not the highlighted first one.
    # The status region is there before any action, for screen readers to follow.
    expect(page.locator("#notice[role=status]")).to_have_attribute("aria-live", "polite")
    expect(page.locator("#help-link")).to_be_visible()
    first, third = page.locator(f"#item-{ids[0]}"), page.locator(f"#item-{ids[2]}")
    expect(first).to_have_class(re.compile(r"\bis-current\b"))
    expect(third).to_have_accessible_name("Writer 2: Held number 2: is this spam?")
    tab_to(page, f"#item-{ids[2]} .act-approve")
    expect(third).to_have_class(re.compile(r"\bis-current\b"))
    page.keyboard.press("a")
    expect(page.locator("#notice-text")).to_have_text("Approved 1 comment.")
    with live.context():
        assert db.session.get_one(Comment, ids[2]).status is Status.APPROVED
        assert db.session.get_one(Comment, ids[0]).status is Status.PENDING
    # The Undo notice stays on screen, however far down the moderator is.
    expect(page.locator("#undo-button")).to_be_in_viewport()
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    expect(page.locator("#undo-button")).to_be_in_viewport()
    expect(page.locator(f"#item-{ids[3]}")).to_be_focused()  # the next one is current

    # Nineteen more in a burst, without waiting for the answers; then undo the last.
    keys = [
        "a",
        "s",
        "r",
        "a",
        "j",
        "a",
        "s",
        "a",
        "a",
        "r",
        "k",
        "a",
        "s",
        "a",
        "r",
        "a",
        "a",
        "s",
        "a",
        "r",
        "a",
    ]
    for key in keys:
        page.keyboard.press(key)
    page.keyboard.press("u")
    expect(page.locator("#notice-text")).to_have_text(re.compile("^Undid"))
    acted = 1 + sum(1 for k in keys if k in "asr")
    assert acted == 20
    in_db = counts_in_db(live)
    assert in_db.get("pending", 0) == 24 - acted + 1
    # The counts shown are the server's, right after its last answer: no waiting needed.
    for tab in ("pending", "approved", "spam", "rejected"):
        assert page.locator(f"#count-{tab}").text_content() == str(in_db.get(tab, 0)), tab
    assert page.locator("#pending-badge").text_content() == str(in_db["pending"])
    expect(page.locator("#queue .queue-item:visible")).to_have_count(in_db["pending"])
    page.reload()
    expect(page.locator("#count-pending")).to_have_text(str(in_db["pending"]))
    with live.context():
        assert db.session.scalar(select(func.count()).select_from(Post)) == 1
    guard.assert_clean()


def test_queue_shows_six_items_on_a_laptop_and_the_first_comment_on_a_phone(
    live: LiveServer, page: Page
):
    with live.context():
        moderator = make_user(Role.MODERATOR)
        post = make_post(title="Which database should a small forum use?")
        parent = make_comment(post, body="SQLite is the default here. What do you run?")
        for n in range(10):
            make_comment(
                post,
                parent=parent if n % 2 else None,
                status=Status.PENDING,
                body=f"We tried this at work and it went fine, except for the migrations ({n}).",
                author_name=f"Reader {n}",
                author_email=f"reader{n}@example.net",
                reasons=["first-time"],
            )
        db.session.commit()
        username = moderator.username
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto("/auth/login")
    page.get_by_label("Username or email").fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto("/moderation/")
    fits = """() => [...document.querySelectorAll('#queue .queue-item')]
        .filter(i => i.getBoundingClientRect().bottom <= innerHeight).length"""
    assert page.evaluate(fits) >= 6
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    top = page.evaluate(
        "() => document.querySelector('#queue .item-body').getBoundingClientRect().top"
    )
    assert top < 844 - 40, f"the first comment's text starts {top} px down"


def test_without_javascript_a_refused_comment_opens_at_its_focused_summary(
    live: LiveServer, browser: Browser
):
    with live.context():
        post = make_post(make_user(Role.ADMIN), title="No scripts here")
        for n in range(20):
            make_comment(post, body=f"Opinion {n}.")
        db.session.commit()
        path = f"/posts/{post.id}/{post.slug}"
    context = browser.new_context(java_script_enabled=False, base_url=live.url)
    page = context.new_page()
    page.goto(path)
    page.locator("#comment-form textarea[name=body]").fill("Kept, whatever happens.")
    page.get_by_role("button", name="Post Comment").click()
    summary = page.locator("#comment-form-errors")
    expect(summary).to_be_focused()
    expect(summary).to_be_in_viewport()
    expect(page.locator("#comment-form textarea[name=body]")).to_have_value(
        "Kept, whatever happens."
    )
    context.close()
