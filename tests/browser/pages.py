"""What a person does on the forum's pages, in Playwright terms."""

from __future__ import annotations

import re

from playwright.sync_api import Locator, Page, expect

from tests.factories import PASSWORD


def sign_in(page: Page, username: str, password: str = PASSWORD) -> None:
    """Through the real sign-in form."""
    page.goto("/auth/login")
    page.get_by_label("Username or email").fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".account")).to_contain_text(f"Signed in as {username}")


def fill_guest_details(page: Page, name: str, email: str, url: str = "") -> None:
    form = page.locator("#comment-form")
    form.get_by_label("Name", exact=True).fill(name)
    form.get_by_label("Email (never shown)").fill(email)
    if url:
        form.get_by_label("Website", exact=True).fill(url)


def write_comment(page: Page, body: str) -> None:
    """Type into the comment form and send it (the page then shows the outcome)."""
    page.locator("#comment-form textarea[name=body]").fill(body)
    page.get_by_role("button", name="Post Comment").click()


def comment_item(page: Page, text: str) -> Locator:
    """The list item of the comment whose own text (not its replies') contains `text`."""
    return page.locator("li.comment").filter(
        has=page.locator(":scope > .comment-body .comment-text", has_text=text)
    )


def comment_id_from_url(page: Page) -> int:
    """After posting, the page lands at #comment-<id>."""
    match = re.search(r"#comment-(\d+)$", page.url)
    assert match, f"not at a comment anchor: {page.url}"
    return int(match.group(1))
