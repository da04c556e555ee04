"""Readers and members discussing a post, in a real browser."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from forum.extensions import db
from forum.models import Comment, Post, Role, Status
from tests.browser.conftest import Guard, LiveServer
from tests.browser.pages import (
    comment_id_from_url,
    comment_item,
    fill_guest_details,
    sign_in,
    write_comment,
)
from tests.factories import make_comment, make_post, make_user

pytestmark = pytest.mark.browser


def new_post(live: LiveServer, title: str = "Gardening in winter", **kw) -> tuple[int, str]:
    """A post by an admin: its id and its path."""
    with live.context():
        post = make_post(make_user(Role.ADMIN), title=title, **kw)
        db.session.commit()
        return post.id, f"/posts/{post.id}/{post.slug}"


def test_guest_comment_awaits_moderation_and_only_its_author_sees_it(
    live: LiveServer, page: Page, other_page: Page, guard: Guard
):
    _, path = new_post(live)
    page.goto(path)
    fill_guest_details(page, "Ann Reader", "ann@example.org")
    write_comment(page, "Frost came early this year.")

    expect(page.locator(".flash")).to_have_text("Thanks! Your comment is awaiting moderation.")
    mine = comment_item(page, "Frost came early this year.")
    expect(mine).to_have_class(re.compile(r"\bis-pending\b"))
    expect(mine.locator(".awaiting")).to_have_text("Your comment is awaiting moderation.")
    expect(mine.locator(".author")).to_have_text("Ann Reader")
    expect(page.locator(".responses-count")).to_have_text("0 Responses")
    expect(page).to_have_url(re.compile(r"#comment-\d+$"))

    other_page.goto(path)
    expect(other_page.locator(".responses-count")).to_have_text("0 Responses")
    expect(other_page.get_by_text("No responses yet.")).to_be_visible()
    expect(other_page.get_by_text("Frost came early")).to_have_count(0)
    expect(other_page.locator("li.comment")).to_have_count(0)

    # Reloading keeps it visible to its author (the session remembers it).
    page.reload()
    expect(comment_item(page, "Frost came early this year.")).to_be_visible()
    with live.context():
        comment = db.session.scalars(select(Comment)).one()
        assert comment.status is Status.PENDING and comment.author_email == "ann@example.org"
    guard.assert_clean()


def test_member_replies_three_levels_deep_with_the_moving_reply_form(
    live: LiveServer, page: Page, other_page: Page, guard: Guard
):
    post_id, path = new_post(live)
    with live.context():
        member = make_user(username="marta")
        # An earlier approved comment: her new comments skip the first-time hold.
        make_comment(make_post(title="Older post"), user=member, body="Long ago.")
        root = make_comment(
            db.session.get_one(Post, post_id), body="Which roses survive frost?", author_name="Ben"
        )
        db.session.commit()
        root_id = root.id
    sign_in(page, "marta")
    page.goto(path)

    ids = [root_id]
    for level, text in enumerate(["Rugosa roses do.", "Mine did last year.", "Even in pots?"], 1):
        parent = page.locator(f"#comment-{ids[-1]}")
        parent.locator(":scope > .comment-body .reply-link").click()
        # The form moved under the comment, says whom it answers, and has the focus.
        expect(page.locator("#reply-title")).to_have_text(
            "Reply to " + ("Ben" if level == 1 else "marta")
        )
        expect(parent.locator(":scope > #respond")).to_have_count(1)
        expect(page.locator("#comment-form textarea[name=body]")).to_be_focused()
        write_comment(page, text)
        expect(page.locator(".flash")).to_have_text("Your comment is published.")
        ids.append(comment_id_from_url(page))
        expect(page.locator(f"#comment-{ids[-1]}")).to_have_class(re.compile(rf"\bdepth-{level}\b"))

    nested = " > ol.children > ".join(f"li#comment-{i}" for i in ids)
    for viewer in (page, other_page):
        viewer.goto(path)
        expect(viewer.locator(nested)).to_have_count(1)
        expect(viewer.locator(f"#comment-{ids[-1]} .comment-text")).to_have_text("Even in pots?")
        expect(viewer.locator(".responses-count")).to_have_text("4 Responses")
    with live.context():
        depths = db.session.scalars(
            select(Comment.depth).where(Comment.id.in_(ids)).order_by(Comment.id)
        ).all()
        assert depths == [0, 1, 2, 3]
    guard.assert_clean()


def test_cancel_reply_puts_the_form_back(live: LiveServer, page: Page, guard: Guard):
    post_id, path = new_post(live)
    with live.context():
        make_comment(db.session.get_one(Post, post_id), body="A thread to answer.")
        db.session.commit()
    page.goto(path)
    page.locator(".reply-link").first.click()
    expect(page.locator("li.comment #respond")).to_have_count(1)
    expect(page.locator("#replying-to")).to_be_visible()
    expect(page.locator("#parent_id")).not_to_have_value("")
    page.locator("#cancel-reply").click()
    expect(page.locator("#reply-title")).to_have_text("Leave a Reply")
    expect(page.locator("#parent_id")).to_have_value("")
    expect(page.locator("li.comment #respond")).to_have_count(0)
    expect(page.locator("#comments ~ #respond")).to_have_count(1)
    guard.assert_clean()


def test_closed_post_shows_no_form_and_a_late_submission_keeps_the_text(
    live: LiveServer, page: Page, guard: Guard
):
    _, closed = new_post(live, title="Closed already", comments_open=False)
    page.goto(closed)
    expect(page.locator(".closed")).to_have_text("Comments are closed.")
    expect(page.locator("#comment-form")).to_have_count(0)
    expect(page.locator(".reply-link")).to_have_count(0)

    # Comments close while someone is typing: the refusal says so and keeps the text.
    post_id, path = new_post(live, title="Closing soon")
    page.goto(path)
    fill_guest_details(page, "Cleo", "cleo@example.org")
    page.locator("#comment-form textarea[name=body]").fill("My long considered answer.")
    with live.context():
        db.session.get_one(Post, post_id).comments_open = False
        db.session.commit()
    with page.expect_response(re.compile(r"/comments$")) as response:
        page.get_by_role("button", name="Post Comment").click()
    assert response.value.status == 403
    expect(page.get_by_text("Comments are closed on this post.")).to_be_visible()
    expect(page.locator("textarea#kept-body")).to_have_value("My long considered answer.")
    with live.context():
        assert db.session.scalars(select(Comment)).all() == []
    guard.assert_clean()


def test_too_many_comments_get_a_429_that_keeps_the_typed_text(
    live: LiveServer, page: Page, guard: Guard
):
    live.app.config["RATELIMIT_COMMENT"] = "2 per minute"
    _, path = new_post(live)
    page.goto(path)
    fill_guest_details(page, "Dora", "dora@example.org", "https://dora.example.org/")
    page.get_by_label("Remember my name, email and website in this browser").check()
    for n in (1, 2):
        write_comment(page, f"Comment number {n}.")
        expect(page.locator(".flash")).to_contain_text("awaiting moderation")

    text = "A third thought,\nwith a second line & <b>markup</b>."
    page.locator("#comment-form textarea[name=body]").fill(text)
    with page.expect_response(re.compile(r"/comments$")) as response:
        page.get_by_role("button", name="Post Comment").click()
    assert response.value.status == 429
    assert int(response.value.headers["retry-after"]) > 0
    expect(page.get_by_role("alert")).to_contain_text("You are commenting too often")
    form = page.locator("#comment-form")
    expect(form.locator("textarea[name=body]")).to_have_value(text)
    expect(form.get_by_label("Name", exact=True)).to_have_value("Dora")
    expect(form.get_by_label("Email (never shown)")).to_have_value("dora@example.org")
    with live.context():
        assert len(db.session.scalars(select(Comment)).all()) == 2
    guard.assert_clean()
