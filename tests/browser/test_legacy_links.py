"""An old WordPress link to a comment lands on that comment, in a real browser."""

from __future__ import annotations

import io
import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from forum.models import Comment
from forum.tools import wxr
from tests.browser.conftest import Guard, LiveServer
from tests.test_wxr import comment_xml, item_xml, wxr_document

pytestmark = pytest.mark.browser


def test_an_old_comment_link_lands_on_the_comment_under_its_new_id(
    live: LiveServer, page: Page, guard: Guard
):
    # Comment 2 of the old blog becomes comment 1 here: the old anchor must not be kept.
    item = item_xml(
        123,
        comment_xml(2) + comment_xml(1, content="The one linked to", date="2023-05-02 09:00:00"),
        post_name="some-slug",
    ).replace("<title>", "<link>https://old.example/2011/07/some-slug/</link><title>")
    with live.context() as session:
        wxr.import_wxr(io.BytesIO(wxr_document(item).encode()))
        session.commit()
        new_id = session.scalar(select(Comment.id).where(Comment.wp_id == 1))
    assert new_id != 1
    page.goto("/2011/07/some-slug/#comment-1")
    expect(page).to_have_url(re.compile(rf"/posts/\d+/some-slug#comment-{new_id}$"))
    expect(page.locator(f"#comment-{new_id}")).to_contain_text("The one linked to")
    guard.assert_clean()
