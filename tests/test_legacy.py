"""Old WordPress addresses of imported posts answer 301 to where they are now."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import select

from forum.extensions import db
from forum.models import Comment, Post
from forum.tools import wxr
from tests.factories import make_post
from tests.test_wxr import comment_xml, item_xml, wxr_document

LINK = "<link>https://small.example/2011/07/some-slug/</link>"


@pytest.fixture
def imported(app) -> dict:
    item = item_xml(
        123, comment_xml(5) + comment_xml(6, status="0"), post_name="some-slug"
    ).replace("<title>", LINK + "<title>")
    with app.app_context():
        wxr.import_wxr(io.BytesIO(wxr_document(item).encode()))
        db.session.commit()
        post = db.session.scalars(select(Post)).one()
        ids = dict(db.session.execute(select(Comment.wp_id, Comment.id)).all())
        assert post.original_url == "https://small.example/2011/07/some-slug/"
        assert post.legacy_path == "/2011/07/some-slug"
        return {"post": post.id, "page": f"/posts/{post.id}/some-slug", **ids}


@pytest.mark.parametrize(
    "old",
    [
        "/2011/07/some-slug/",
        "/2011/07/some-slug",
        "/2011/07/some-slug/comment-page-2/",
        "/some-slug/",
        "/category/news/some-slug/",
        "/?p=123",
    ],
)
def test_old_addresses_answer_301_to_the_post_page(client, imported, old):
    resp = client.get(old)
    assert resp.status_code == 301
    assert resp.headers["Location"] == imported["page"] + "?wp=1"
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "js/legacy.js" in page
    assert f'data-old-comment-url="/from-wordpress/{imported["post"]}/comments/N"' in page


def test_an_old_comment_anchor_leads_to_the_comment_under_its_new_id(client, imported):
    resp = client.get(f"/from-wordpress/{imported['post']}/comments/5")
    assert resp.status_code == 301
    assert resp.headers["Location"] == f"/comments/{imported[5]}"
    final = client.get(resp.headers["Location"])
    assert final.headers["Location"].endswith(f"#comment-{imported[5]}")
    # Held (or unknown) comments are not shown: the discussion is the answer.
    for hidden in (6, 99):
        resp = client.get(f"/from-wordpress/{imported['post']}/comments/{hidden}")
        assert resp.status_code == 302
        assert resp.headers["Location"] == imported["page"] + "#comments"


def test_old_reply_links_and_feeds_redirect(client, imported):
    resp = client.get("/2011/07/some-slug/?replytocom=5")
    assert resp.status_code == 301
    assert resp.headers["Location"] == f"{imported['page']}?reply_to={imported[5]}#respond"
    resp = client.get("/?p=123&replytocom=5")
    assert resp.headers["Location"] == f"{imported['page']}?reply_to={imported[5]}#respond"
    resp = client.get("/2011/07/some-slug/feed/")
    assert resp.status_code == 301
    assert resp.headers["Location"] == f"/posts/{imported['post']}/feed.atom"


@pytest.mark.parametrize(
    "url",
    [
        "/?p=abc",
        "/?p=0",
        "/?p=-1",
        "/?p=+123",
        "/?p=%D9%A1%D9%A2%D9%A3",  # Arabic-Indic digits: isdigit() but not ASCII
        "/?p=9223372036854775808",
        "/?p=124",
        "/?p=123&replytocom=x",
        "/?p=123&replytocom=99999999999999999999999",
        "/from-wordpress/1/comments/9223372036854775808",
        "/from-wordpress/%D9%A1/comments/5",
        "/from-wordpress/99/comments/5",
        "/from-wordpress/1/comments/",
        "/2011/07/other-slug/",
        "/" + "a/" * 400,
    ],
)
def test_bad_ids_and_unknown_addresses_are_404(client, imported, url):
    assert client.get(url).status_code == 404


def test_posts_written_here_carry_no_old_link_script(app, client):
    with app.app_context():
        post = make_post(title="Written here")
        db.session.commit()
        url = f"/posts/{post.id}/{post.slug}"
    page = client.get(url).get_data(as_text=True)
    assert "legacy.js" not in page and "data-old-comment-url" not in page
    assert client.get("/written-here/").status_code == 404  # only imported posts are guessed


def test_only_reads_are_redirected_and_routed_pages_keep_their_answers(client, imported):
    assert client.post("/2011/07/some-slug/").status_code == 404
    assert client.get("/auth/logout").status_code == 405  # a POST-only page stays one
    assert client.get(imported["page"]).status_code == 200
