"""Atom feeds: recent posts, recent comments, and one post's comments."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest

from forum.extensions import db
from forum.links import DEVELOPMENT_BASE_URL
from forum.models import CommentKind, Post, Role, Status
from tests.factories import make_comment, make_post, make_user
from tests.helpers import count_queries

A = "{http://www.w3.org/2005/Atom}"
BASE = DEVELOPMENT_BASE_URL
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
T0 = datetime(2025, 2, 1, 12, 0, tzinfo=UTC)


def parse_atom(resp) -> ET.Element:
    """Parse a feed response and check what RFC 4287 requires of a feed and its entries."""
    assert resp.status_code == 200
    assert resp.mimetype == "application/atom+xml"
    feed = ET.fromstring(resp.data)  # noqa: S314 - our own output
    assert feed.tag == f"{A}feed"

    def one(parent: ET.Element, name: str) -> ET.Element:
        found = parent.findall(f"{A}{name}")
        assert len(found) == 1, f"{parent.tag} needs exactly one {name}"
        return found[0]

    def check_iri(value: str) -> None:
        parts = urlsplit(value)
        assert parts.scheme in ("http", "https", "tag") and (parts.netloc or parts.scheme == "tag")

    check_iri(one(feed, "id").text)
    assert one(feed, "title").text
    assert RFC3339.match(one(feed, "updated").text)
    links = {link.get("rel"): link.get("href") for link in feed.findall(f"{A}link")}
    # Built from BASE_URL (the development default here), never from the request.
    assert links["self"] == BASE + urlsplit(resp.request.url).path
    feed_has_author = feed.find(f"{A}author") is not None
    ids = []
    for entry in feed.findall(f"{A}entry"):
        ids.append(one(entry, "id").text)
        check_iri(ids[-1])
        assert one(entry, "title").text
        assert RFC3339.match(one(entry, "updated").text)
        published = entry.find(f"{A}published")
        assert published is None or RFC3339.match(published.text)
        assert feed_has_author or one(one(entry, "author"), "name").text
        content = entry.find(f"{A}content")
        alternate = [
            e for e in entry.findall(f"{A}link") if e.get("rel", "alternate") == "alternate"
        ]
        assert content is not None or alternate
        assert content is None or content.get("type", "text") in ("text", "html", "xhtml")
    assert len(ids) == len(set(ids))
    return feed


def entry_titles(feed: ET.Element) -> list[str]:
    return [e.findtext(f"{A}title") for e in feed.findall(f"{A}entry")]


def entry_html(feed: ET.Element) -> str:
    return "\n".join(e.findtext(f"{A}content") or "" for e in feed.findall(f"{A}entry"))


@pytest.fixture
def forum(app):
    """Two posts; on the first, comments in every state readers may or may not see."""
    with app.app_context():
        author = make_user(Role.ADMIN, username="writer")
        older = make_post(author, title="Older & <wiser>", created_at=T0)
        post = make_post(
            author, title="Newer post", created_at=T0 + timedelta(days=1), body="<b>Bold</b> text"
        )
        member = make_user(username="member")
        seen = make_comment(
            post,
            body="Seen <em>comment</em>",
            author_name="Visible Val",
            author_url="https://val.example",
            created_at=T0 + timedelta(hours=30),
        )
        make_comment(
            post, parent=seen, body="Seen reply", user=member, created_at=T0 + timedelta(hours=31)
        )
        make_comment(post, body="Pending words", status=Status.PENDING, author_name="Pat")
        make_comment(post, body="Spam words", status=Status.SPAM, author_name="Spammer")
        rejected = make_comment(post, body="Rejected words", status=Status.REJECTED)
        make_comment(post, parent=rejected, body="Orphaned approved words")
        make_comment(post, kind=CommentKind.PINGBACK, body="Ping words", author_name="Pinger")
        make_comment(older, body="On the older post", created_at=T0 + timedelta(hours=2))
        db.session.commit()
        return {"post": post.id, "older": older.id}


def test_posts_feed_is_valid_atom_newest_first(client, forum):
    feed = parse_atom(client.get("/feed.atom"))
    assert entry_titles(feed) == ["Newer post", "Older & <wiser>"]
    entry = feed.find(f"{A}entry")
    assert entry.findtext(f"{A}author/{A}name") == "writer"
    assert entry.findtext(f"{A}published") == "2025-02-02T12:00:00Z"
    assert entry.find(f"{A}content").get("type") == "html"
    assert entry.findtext(f"{A}content") == "<p><b>Bold</b> text</p>"
    assert entry.findtext(f"{A}id") == f"{BASE}/posts/{forum['post']}"
    link = entry.find(f"{A}link").get("href")
    assert link == f"{BASE}/posts/{forum['post']}/newer-post"
    assert client.get(link).status_code == 200


def test_titles_and_bodies_are_escaped(client, forum):
    raw = client.get("/feed.atom").get_data(as_text=True)
    assert "<wiser>" not in raw and "&lt;wiser&gt;" in raw
    assert "<b>Bold" not in raw and "&lt;b&gt;Bold" in raw


@pytest.mark.parametrize("url", ["/comments/feed.atom", "/posts/{post}/feed.atom"])
def test_comment_feeds_show_only_what_readers_see(client, forum, url):
    feed = parse_atom(client.get(url.format(post=forum["post"])))
    html = entry_html(feed)
    assert "Seen <em>comment</em>" in html and "Seen reply" in html
    for hidden in ("Pending", "Spam", "Rejected", "Orphaned", "Ping words"):
        assert hidden not in html
    raw = ET.tostring(feed, encoding="unicode")
    assert "@example" not in raw  # no email address, ever
    assert "Pat" not in raw and "Spammer" not in raw
    authors = [e.findtext(f"{A}author/{A}name") for e in feed.findall(f"{A}entry")]
    assert "Visible Val" in authors and "member" in authors


def test_site_comment_feed_spans_posts_newest_first(client, forum):
    feed = parse_atom(client.get("/comments/feed.atom"))
    titles = entry_titles(feed)
    assert titles[:2] == ["Comment on Newer post by member", "Comment on Newer post by Visible Val"]
    assert len(titles) == 3 and titles[2].startswith("Comment on Older & <wiser> by Guest ")
    val = feed.findall(f"{A}entry")[1]
    assert val.findtext(f"{A}author/{A}uri") == "https://val.example"
    assert val.findtext(f"{A}published") == val.findtext(f"{A}updated") == "2025-02-02T18:00:00Z"
    # A member's entry never links a website.
    assert feed.find(f"{A}entry").find(f"{A}author/{A}uri") is None


def test_post_comment_feed_has_only_that_post(client, forum):
    feed = parse_atom(client.get(f"/posts/{forum['older']}/feed.atom"))
    assert entry_html(feed) == "<p>On the older post</p>"
    assert feed.findtext(f"{A}title") == "Comments on Older & <wiser>"
    assert client.get("/posts/999/feed.atom").status_code == 404


def test_empty_feeds_are_still_valid(app, client):
    parse_atom(client.get("/feed.atom"))
    parse_atom(client.get("/comments/feed.atom"))
    with app.app_context():
        post_id = make_post().id
        db.session.commit()
    feed = parse_atom(client.get(f"/posts/{post_id}/feed.atom"))
    assert feed.findall(f"{A}entry") == []


def test_characters_xml_cannot_carry_are_dropped(app, client):
    with app.app_context():
        make_post(title="Bell\x07 and \ufffe here")
        db.session.commit()
    feed = parse_atom(client.get("/feed.atom"))
    assert entry_titles(feed) == ["Bell and  here"]


def test_pages_link_to_their_feeds(client, forum):
    index = client.get("/").get_data(as_text=True)
    links = re.findall(
        r'<link rel="alternate" type="application/atom\+xml"[^>]*href="([^"]+)"', index
    )
    assert links == ["/feed.atom", "/comments/feed.atom"]
    page = client.get(f"/posts/{forum['post']}/newer-post").get_data(as_text=True)
    links = re.findall(
        r'<link rel="alternate" type="application/atom\+xml"[^>]*href="([^"]+)"', page
    )
    assert links == ["/feed.atom", "/comments/feed.atom", f"/posts/{forum['post']}/feed.atom"]


@pytest.mark.parametrize("url", ["/feed.atom", "/comments/feed.atom", "/posts/{post}/feed.atom"])
def test_feed_query_count_does_not_grow_with_entries(app, client, url):
    with app.app_context():
        author = make_user(Role.ADMIN)
        post = make_post(author)
        post_id = post.id
        make_comment(post)
        db.session.commit()
    url = url.format(post=post_id)
    with count_queries(app) as few:
        parse_atom(client.get(url))
    with app.app_context():
        for n in range(8):
            other = make_post(author if n % 2 else make_user(Role.MODERATOR))
            make_comment(db.session.get(Post, post_id), user=make_user())
            make_comment(other)
        db.session.commit()
    with count_queries(app) as many:
        feed = parse_atom(client.get(url))
    assert len(feed.findall(f"{A}entry")) >= 9
    assert len(many) == len(few)
