"""Moderators clearing the queue, and readers flagging, in a real browser."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from forum.extensions import db
from forum.models import Comment, Flag, Role, Status, utcnow
from tests.browser.conftest import Guard, LiveServer
from tests.browser.pages import sign_in
from tests.factories import make_comment, make_post, make_user

pytestmark = pytest.mark.browser


def held(post, body: str, minutes_ago: int, parent=None, **kw) -> Comment:
    return make_comment(
        post,
        parent=parent,
        status=Status.PENDING,
        body=body,
        reasons=["new comment"],
        created_at=utcnow() - timedelta(minutes=minutes_ago),
        **kw,
    )


def statuses(live: LiveServer) -> dict[str, Status]:
    with live.context():
        rows = db.session.execute(select(Comment.body_source, Comment.status)).all()
        return {body: status for body, status in rows}


def test_moderator_sees_the_badge_and_clears_the_queue_with_the_keyboard(
    live: LiveServer, page: Page, guard: Guard
):
    with live.context():
        moderator = make_user(Role.MODERATOR).username
        post = make_post(title="Queue by keys")
        # Newest first in the queue: C, then B, then A.
        for minutes, body in ((30, "Comment A"), (20, "Comment B"), (10, "Comment C")):
            held(post, body, minutes)
        db.session.commit()
    sign_in(page, moderator)
    expect(page.locator("#pending-badge")).to_have_text("3")
    page.locator(".queue-link").click()
    expect(page).to_have_url(re.compile(r"/moderation/$"))
    items = page.locator("#queue .queue-item:visible")
    expect(items).to_have_count(3)
    expect(page.locator(".queue-item.is-current .comment-text")).to_have_text("Comment C")

    page.keyboard.press("j")  # to B
    expect(page.locator(".queue-item.is-current .comment-text")).to_have_text("Comment B")
    page.keyboard.press("a")
    expect(page.locator("#notice-text")).to_have_text("Approved 1 comment.")
    expect(items).to_have_count(2)
    expect(page.locator("#pending-badge")).to_have_text("2")
    expect(page.locator("#count-pending")).to_have_text("2")
    expect(page.locator("#count-approved")).to_have_text("1")
    # The next one becomes current; "s" marks it as spam, "u" takes that back.
    expect(page.locator(".queue-item.is-current .comment-text")).to_have_text("Comment A")
    page.keyboard.press("s")
    expect(page.locator("#notice-text")).to_have_text("Marked 1 comment as spam.")
    expect(items).to_have_count(1)
    page.keyboard.press("u")
    expect(page.locator("#notice-text")).to_contain_text("Undid")
    expect(items).to_have_count(2)
    expect(page.locator("#pending-badge")).to_have_text("2")
    assert statuses(live) == {
        "Comment A": Status.PENDING,
        "Comment B": Status.APPROVED,
        "Comment C": Status.PENDING,
    }

    # Reloaded, the page agrees with what the script showed.
    page.reload()
    expect(items).to_have_count(2)
    expect(page.locator("#pending-badge")).to_have_text("2")
    guard.assert_clean()


def test_bulk_approval_publishes_a_nested_thread_and_undo_takes_it_back(
    live: LiveServer, page: Page, other_page: Page, guard: Guard
):
    with live.context():
        moderator = make_user(Role.MODERATOR).username
        post = make_post(title="Held thread")
        root = held(post, "Root of the thread", 40)
        reply = held(post, "First reply", 30, parent=root)
        deeper = held(post, "Reply to the reply", 20, parent=reply)
        held(post, "Unrelated comment", 10)
        db.session.commit()
        ids = [root.id, reply.id, deeper.id]
        path = f"/posts/{post.id}/{post.slug}"
    other_page.goto(path)
    expect(other_page.locator(".responses-count")).to_have_text("0 Responses")

    sign_in(page, moderator)
    page.goto("/moderation/")
    expect(page.locator("#pending-badge")).to_have_text("4")
    expect(page.locator("#queue .queue-item")).to_have_count(4)
    page.locator("#select-all").check()
    page.locator("#bulk-form").get_by_role("button", name="Approve").click()
    expect(page.locator("#notice-text")).to_have_text("Approved 4 comments.")
    expect(page.get_by_text("Nothing here. The queue is clear.")).to_be_visible()
    expect(page.locator("#pending-badge")).to_be_hidden()

    other_page.reload()
    nested = " > ol.children > ".join(f"li#comment-{i}" for i in ids)
    expect(other_page.locator(nested)).to_have_count(1)
    expect(other_page.locator(f"#comment-{ids[-1]} .comment-text")).to_have_text(
        "Reply to the reply"
    )
    expect(other_page.locator(".responses-count")).to_have_text("4 Responses")

    page.locator("#undo-button").click()
    expect(page.locator("#notice-text")).to_contain_text("Undid")
    expect(page.locator("#queue .queue-item:visible")).to_have_count(4)
    expect(page.locator("#pending-badge")).to_have_text("4")
    other_page.reload()
    expect(other_page.locator(".responses-count")).to_have_text("0 Responses")
    expect(other_page.locator("li.comment")).to_have_count(0)
    assert set(statuses(live).values()) == {Status.PENDING}
    guard.assert_clean()


def test_without_javascript_the_dashboard_still_approves_and_offers_undo(
    live: LiveServer, browser, base_url: str
):
    with live.context():
        moderator = make_user(Role.MODERATOR).username
        held(make_post(), "Plain form approval", 5)
        db.session.commit()
    context = browser.new_context(base_url=base_url, java_script_enabled=False)
    guard = Guard()
    guard.attach(context)
    page = context.new_page()
    try:
        sign_in(page, moderator)
        page.goto("/moderation/")
        page.locator(".queue-item .act-approve").click()
        expect(page.locator("#notice-text")).to_have_text("Approved 1 comment.")
        expect(page.locator(".queue-item")).to_have_count(0)
        page.locator("#undo-button").click()
        expect(page.locator(".queue-item")).to_have_count(1)
        assert statuses(live) == {"Plain form approval": Status.PENDING}
        guard.assert_clean()
    finally:
        context.close()


def test_a_reader_flags_a_comment_and_the_moderators_see_the_flag(
    live: LiveServer, page: Page, other_page: Page, guard: Guard
):
    with live.context():
        reader = make_user(username="vigilant").username
        moderator = make_user(Role.MODERATOR).username
        post = make_post(title="Flag me")
        make_comment(post, body="Buy cheap watches now", author_name="Spammy")
        db.session.commit()
        path = f"/posts/{post.id}/{post.slug}"
    sign_in(page, reader)
    page.goto(path)
    page.locator("li.comment").get_by_role("link", name="Flag").click()
    expect(page.locator("h1")).to_have_text("Flag a comment")
    page.get_by_label("Spam or advertising").check()
    page.get_by_label("Anything the moderators should know (optional)").fill("Link farm.")
    page.get_by_role("button", name="Send to the moderators").click()
    expect(page.locator(".flash")).to_have_text("Thank you. The moderators will take a look.")
    with live.context():
        flag = db.session.scalars(select(Flag)).one()
        assert (flag.reason, flag.note, flag.resolved) == ("spam", "Link farm.", False)

    sign_in(other_page, moderator)
    other_page.goto("/moderation/?tab=flagged")
    expect(other_page.locator("#count-flagged")).to_have_text("1")
    item = other_page.locator(".queue-item")
    expect(item).to_have_count(1)
    expect(item.locator(".flags")).to_contain_text("Flagged spam by vigilant: Link farm.")
    guard.assert_clean()
