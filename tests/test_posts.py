"""Front page, tag pages, post pages and writing posts."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from forum.extensions import db
from forum.models import Post, Role, Status
from tests.factories import make_comment, make_post, make_user
from tests.helpers import count_queries, login_as


def test_front_page_lists_posts_newest_first_with_visible_counts(app, client):
    with app.app_context():
        author = make_user(Role.ADMIN, username="writer")
        old = make_post(author, title="Older post")
        new = make_post(author, title="Newer post")
        old.created_at = old.created_at.replace(year=2020)
        root = make_comment(new)
        make_comment(new, parent=root)
        make_comment(new, status=Status.PENDING)
        make_comment(new, status=Status.SPAM)
        rejected = make_comment(new, status=Status.REJECTED)
        # An approved reply under a rejected parent is not seen, so not counted.
        make_comment(new, parent=rejected)
        db.session.commit()
    resp = client.get("/")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert html.index("Newer post") < html.index("Older post")
    assert "2 Responses" in html
    assert "0 Responses" in html
    assert "writer" in html


def test_front_page_shows_an_excerpt_and_who_answered_last(app, client):
    with app.app_context():
        post = make_post(
            make_user(Role.ADMIN), body="<p>First <b>lines</b> of the post. " + "More " * 80
        )
        first = make_comment(post, author_name="Early Bird")
        first.created_at = first.created_at.replace(year=2020)
        make_comment(post, author_name="Latest Owl")
        make_comment(post, author_name="Hidden Pending", status=Status.PENDING)
        db.session.commit()
    html = client.get("/").get_data(as_text=True)
    assert '<p class="post-excerpt">First lines of the post. More' in html
    assert "More " * 60 not in html  # cut short
    assert "latest reply by <strong>Latest Owl</strong>" in html
    assert "Hidden Pending" not in html and "Early Bird" not in html


def test_front_page_query_count_is_constant(app, client):
    with app.app_context():
        author = make_user(Role.ADMIN)
        post = make_post(author)
        make_comment(post)
        db.session.commit()
    with count_queries(app) as few:
        client.get("/")
    with app.app_context():
        for _ in range(15):
            p = make_post(make_user(), tags=[])
            make_comment(p)
        db.session.commit()
    with count_queries(app) as many:
        client.get("/")
    assert len(many) == len(few)


@pytest.mark.parametrize("page", ["0", "-1", "abc", str(10**12), "1.5", ""])
def test_bad_page_numbers_are_404_not_500(app, client, page):
    resp = client.get(f"/?page={page}")
    assert resp.status_code in (200, 404)
    assert resp.status_code == 404 or page == ""


def test_page_past_the_end_is_404_and_first_page_exists_when_empty(app, client):
    assert client.get("/").status_code == 200
    assert client.get("/?page=2").status_code == 404


def test_pagination_splits_posts(app, client):
    app.config["POSTS_PER_PAGE"] = 2
    with app.app_context():
        for i in range(5):
            make_post(title=f"Paged {i}")
        db.session.commit()
    first = client.get("/").get_data(as_text=True)
    third = client.get("/?page=3").get_data(as_text=True)
    assert "Page 1 of 3" in first
    assert "Paged 0" in third and "Paged 4" not in third


def test_tag_page_lists_only_tagged_posts(app, client):
    with app.app_context():
        from forum.services.posts import get_or_create_tags

        tagged = make_post(title="About SQLite")
        tagged.tags = get_or_create_tags(["Databases"])
        make_post(title="Untagged one")
        db.session.commit()
    resp = client.get("/tags/databases")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "About SQLite" in html and "Untagged one" not in html
    assert client.get("/tags/nope").status_code == 404


def test_post_page_and_wrong_slug_redirect(app, client):
    with app.app_context():
        post = make_post(title="Hello World")
        db.session.commit()
        post_id = post.id
    resp = client.get(f"/posts/{post_id}/hello-world")
    assert resp.status_code == 200
    assert "Hello World" in resp.get_data(as_text=True)
    for wrong in (f"/posts/{post_id}/wrong", f"/posts/{post_id}"):
        resp = client.get(wrong)
        assert resp.status_code == 301
        assert resp.headers["Location"].endswith(f"/posts/{post_id}/hello-world")


@pytest.mark.parametrize("url", ["/posts/999999/x", "/posts/abc/x", "/posts/-1/x"])
def test_unknown_post_is_404(app, client, url):
    assert client.get(url).status_code == 404


def test_moderator_writes_a_post_with_tags_and_sanitized_body(app, client):
    with app.app_context():
        mod = make_user(Role.MODERATOR)
        db.session.commit()
        mod_id = mod.id
    login_as(client, mod_id)
    resp = client.post(
        "/posts/new",
        data={
            "title": "Évènement <b>spécial</b>",
            "body": "Hi<script>alert(1)</script>\n\nSecond paragraph",
            "tags": "News, news, Events",
            "comments_open": "y",
        },
    )
    assert resp.status_code == 302
    with app.app_context():
        post = db.session.scalars(select(Post)).one()
        assert post.slug == "evenement-b-special-b"
        assert "<script" not in post.body_html
        assert post.body_source.startswith("Hi<script>")
        assert sorted(t.name for t in post.tags) == ["Events", "News"]
        assert resp.headers["Location"].endswith(f"/posts/{post.id}/{post.slug}")


def test_members_cannot_write_posts_by_default(app, client):
    with app.app_context():
        member = make_user(Role.MEMBER)
        db.session.commit()
        member_id = member.id
    login_as(client, member_id)
    assert client.get("/posts/new").status_code == 403
    assert client.post("/posts/new", data={"title": "x", "body": "y"}).status_code == 403
    client2 = app.test_client()
    assert client2.get("/posts/new").status_code == 302  # anonymous: to the login page


def test_author_or_moderator_closes_comments(app, client):
    with app.app_context():
        author = make_user(Role.MODERATOR)
        other = make_user(Role.MEMBER)
        post = make_post(author)
        db.session.commit()
        ids = author.id, other.id, post.id
    login_as(client, ids[1])
    assert client.post(f"/posts/{ids[2]}/comments-open").status_code == 403
    login_as(client, ids[0])
    assert client.post(f"/posts/{ids[2]}/comments-open").status_code == 302
    with app.app_context():
        assert db.session.get(Post, ids[2]).comments_open is False
    assert "Comments are closed." in client.get(
        f"/posts/{ids[2]}/x", follow_redirects=True
    ).get_data(as_text=True)


@pytest.mark.parametrize(
    ("title", "slug"),
    [
        ("Hello, World!", "hello-world"),
        ("Évènement spécial", "evenement-special"),
        ("日本語のタグ", "日本語のタグ"),
        ("Привет мир", "привет-мир"),
        ("!!!", "post"),
        ("a" * 200, "a" * 80),
    ],
)
def test_slugify(title, slug):
    from forum.services.posts import slugify

    assert slugify(title) == slug


def test_non_latin_tags_get_distinct_slugs_and_pages(app, client):
    with app.app_context():
        from forum.services.posts import get_or_create_tags

        post = make_post(title="Tagged")
        post.tags = get_or_create_tags(["日本語", "中文"])
        db.session.commit()
        slugs = sorted(t.slug for t in post.tags)
    assert slugs == ["中文", "日本語"]
    assert "Tagged" in client.get("/tags/日本語").get_data(as_text=True)
