"""What keeps the dashboard cheap must not change what it shows.

- Excerpts parse only as much HTML as they need (sanitize.excerpt): the same text as
  parsing all of it.
- A queue item builds its actions' URLs from the item's URL (_macros.html): the routes
  must keep that shape.
"""

from __future__ import annotations

from flask import url_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forum.models import DECISIONS
from forum.moderation import query
from forum.services import sanitize

PIECES = st.sampled_from(
    [
        "a",
        "word",
        "longer-words",
        " ",
        "  ",
        "\n",
        "<p>",
        "</p>",
        "<br>",
        "<b>bold</b>",
        "&amp;",
        "&eacute;",
        "&#x27;",
        "é",
        "end.",
        "<script>x</script>",
        "<a href='https://example.org/'>link</a>",
        "<blockquote>q</blockquote>",
    ]
)


def whole_excerpt(html_text: str, length: int) -> str:
    """excerpt() as it was: the whole text first, then cut."""
    text = " ".join(sanitize._plain_text(html_text).split())
    if len(text) <= length:
        return text
    if length < 1:
        return ""
    cut = text[: length - 1]
    if text[length - 1] != " " and " " in cut:
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip(" ,;:.!?-\u2013\u2014") + "\u2026"


@settings(max_examples=300, deadline=None)
@given(st.lists(PIECES, max_size=400).map("".join), st.sampled_from([0, 1, 5, 80, 160, 500]))
def test_an_excerpt_of_part_of_the_html_is_the_excerpt_of_all_of_it(html_text, length):
    assert sanitize.excerpt(html_text, length) == whole_excerpt(html_text, length)


def test_an_items_action_urls_are_its_url_and_the_action(app):
    with app.test_request_context():
        for comment_id in (1, 42, 2**31 - 1):
            item = url_for("moderation.item", comment_id=comment_id)
            for action in DECISIONS:
                assert url_for("moderation.act", comment_id=comment_id, action=action) == (
                    f"{item}/{action}"
                )


# The app is only read: one per test is enough.
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.integers(min_value=0, max_value=2**63 - 1),
    st.text(max_size=60),
    st.one_of(st.ip_addresses().map(str), st.text(max_size=40)),
)
def test_the_queue_items_links_are_what_url_for_writes(app, comment_id, email, ip):
    with app.test_request_context("/moderation/?tab=spam&q=x"):
        links = query.ItemLinks()
        assert links.item(comment_id) == url_for("moderation.item", comment_id=comment_id)
        assert links.by_author(email) == url_for("moderation.queue", tab="pending", author=email)
        assert links.by_ip(ip) == url_for("moderation.queue", group="ip", value=ip)
