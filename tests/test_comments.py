"""Comments and threaded replies through the web form."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from forum.extensions import db
from forum.models import BodyFormat, Comment, Post, Role, Status, utcnow
from forum.services import comments as comment_service
from forum.services import settings as settings_service
from tests.factories import make_comment, make_post, make_user
from tests.helpers import count_queries, login_as

GUEST = {"author_name": "Ann", "author_email": "ann@example.org", "body": "Hello there"}


@pytest.fixture
def post_id(app):
    with app.app_context():
        post = make_post(make_user(Role.ADMIN), title="A post")
        db.session.commit()
        return post.id


def only_comment(app) -> Comment:
    return db.session.scalars(select(Comment)).one()


def rendered_at(client, post_id) -> str:
    page = client.get(f"/posts/{post_id}/a-post").get_data(as_text=True)
    return re.search(r'name="rendered_at" type="hidden" value="([^"]+)"', page).group(1)


def test_guest_comment_is_held_and_shown_only_to_its_author(app, client, post_id):
    token = rendered_at(client, post_id)
    resp = client.post(f"/posts/{post_id}/comments", data={**GUEST, "rendered_at": token})
    assert resp.status_code == 302
    with app.app_context():
        comment = only_comment(app)
        assert comment.status is Status.PENDING
        assert [r.rule for r in comment.reasons] == ["new comment"]
        assert comment.visible is False
        assert resp.headers["Location"].endswith(f"/posts/{post_id}/a-post#comment-{comment.id}")
        cid = comment.id
    mine = client.get(f"/posts/{post_id}/a-post").get_data(as_text=True)
    assert "Your comment is awaiting moderation." in mine
    assert f'id="comment-{cid}"' in mine
    assert "0 Responses" in mine  # pending comments are not counted
    other = app.test_client().get(f"/posts/{post_id}/a-post").get_data(as_text=True)
    assert "Hello there" not in other and f"comment-{cid}" not in other


def test_member_comment_uses_account_and_is_shown_to_member(app, client, post_id):
    with app.app_context():
        uid = make_user(username="maria").id
        db.session.commit()
    login_as(client, uid)
    resp = client.post(f"/posts/{post_id}/comments", data={"body": "From a member"})
    assert resp.status_code == 302
    with app.app_context():
        comment = only_comment(app)
        assert comment.user_id == uid and comment.author_name == "maria"
        assert comment.status is Status.PENDING
    assert "awaiting moderation" in client.get(f"/posts/{post_id}/a-post").get_data(as_text=True)


@pytest.mark.parametrize("role", [Role.MODERATOR, Role.ADMIN])
def test_moderators_comments_are_approved(app, client, post_id, role):
    with app.app_context():
        uid = make_user(role).id
        db.session.commit()
    login_as(client, uid)
    client.post(f"/posts/{post_id}/comments", data={"body": "Official answer"})
    with app.app_context():
        comment = only_comment(app)
        assert comment.status is Status.APPROVED and comment.visible
    page = app.test_client().get(f"/posts/{post_id}/a-post").get_data(as_text=True)
    assert "Official answer" in page and "1 Response" in page


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("author_name", ""),
        ("author_email", ""),
        ("author_email", "not-an-email"),
        ("author_url", "javascript:alert(1)"),
        ("author_url", "ftp://example.org"),
        ("body", ""),
        ("body", "   "),
        ("parent_id", "abc"),
        ("parent_id", "1.5"),
        ("parent_id", "-3"),
    ],
)
def test_guest_form_errors_are_422_and_store_nothing(app, client, post_id, field, value):
    resp = client.post(f"/posts/{post_id}/comments", data={**GUEST, field: value})
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert 'class="error-summary"' in html
    if field != "parent_id":  # a hidden field: its message is in the summary only
        tag = re.search(rf'<(?:input|textarea)\b[^>]*\bname="{field}"[^>]*>', html).group(0)
        assert 'aria-invalid="true"' in tag and f'aria-describedby="{field}-error"' in tag
        assert f'id="{field}-error"' in html
    with app.app_context():
        assert db.session.scalars(select(Comment)).first() is None


def test_guest_url_is_shown_with_nofollow_and_email_never_shown(app, client, post_id):
    with app.app_context():
        post = db.session.get(type(make_post()), post_id)
        make_comment(
            post,
            author_name="Site Owner",
            author_email="secret@example.org",
            author_url="https://owner.example/",
        )
        db.session.commit()
    html = client.get(f"/posts/{post_id}/a-post").get_data(as_text=True)
    assert '<a href="https://owner.example/" rel="nofollow ugc noopener"' in html
    assert "secret@example.org" not in html


def test_body_stored_as_submitted_and_sanitized(app, client, post_id):
    body = 'Hi <b>there</b> <script>alert(1)</script> <a href="javascript:x">y</a>\n\nhttps://example.org'
    client.post(f"/posts/{post_id}/comments", data={**GUEST, "body": body})
    with app.app_context():
        c = only_comment(app)
        assert c.body_source == body
        assert "<script" not in c.body_html and "javascript:" not in c.body_html
        assert "<b>there</b>" in c.body_html
        assert 'rel="nofollow ugc noopener"' in c.body_html
        assert c.sanitizer_report  # what was removed is recorded ...
        assert "sanitized" in [r.rule for r in c.reasons]  # ... and is a hold reason


def test_comment_without_the_form_timestamp_is_held_not_spammed(app, client, post_id):
    client.post(f"/posts/{post_id}/comments", data=GUEST)
    with app.app_context():
        comment = only_comment(app)
        assert comment.status is Status.PENDING
        assert {r.rule for r in comment.reasons} == {"new comment", "no-timestamp"}


@pytest.mark.parametrize("app_config", [{"MODERATION_MIN_SUBMIT_SECONDS": 3}], indirect=True)
def test_form_sent_back_at_once_or_with_forged_timestamp_is_spam(app, client, post_id):
    token = rendered_at(client, post_id)
    client.post(f"/posts/{post_id}/comments", data={**GUEST, "rendered_at": token})
    client.post(
        f"/posts/{post_id}/comments",
        data={**GUEST, "body": "second", "rendered_at": token[:-4] + "AAAA"},
    )
    with app.app_context():
        comments = db.session.scalars(select(Comment)).all()
        assert [c.status for c in comments] == [Status.SPAM, Status.SPAM]
        assert all("too-fast" in {r.rule for r in c.reasons} for c in comments)


def test_nul_bytes_are_rejected_with_400(app, client, post_id):
    resp = client.post(f"/posts/{post_id}/comments", data={**GUEST, "body": "a\x00b"})
    assert resp.status_code == 400


def test_invalid_utf8_is_rejected_with_400(app, client, post_id):
    resp = client.post(
        f"/posts/{post_id}/comments",
        data=b"author_name=Ann&author_email=a%40b.org&body=%ff%fe",
        content_type="application/x-www-form-urlencoded",
    )
    assert resp.status_code == 400


def test_body_over_the_limit_is_a_form_error(app, client, post_id):
    resp = client.post(f"/posts/{post_id}/comments", data={**GUEST, "body": "x" * 10_001})
    assert resp.status_code == 422
    assert "limited to 10000 characters" in resp.get_data(as_text=True)


def test_body_is_nfc_normalized_and_control_chars_stripped(app, client, post_id):
    client.post(f"/posts/{post_id}/comments", data={**GUEST, "body": "Cafe\u0301\x07 ok"})
    with app.app_context():
        assert "Caf\u00e9 ok" in only_comment(app).body_html


def test_unknown_post_is_404(app, client):
    assert client.post("/posts/424242/comments", data=GUEST).status_code == 404


def test_remember_me_cookie_only_when_ticked(app, client, post_id):
    client.post(f"/posts/{post_id}/comments", data=GUEST)
    assert client.get_cookie("comment_author") is None
    client.post(f"/posts/{post_id}/comments", data={**GUEST, "body": "Again", "remember": "y"})
    cookie = client.get_cookie("comment_author")
    assert cookie is not None and "ann@example.org" not in cookie.value  # signed, not plain
    page = client.get(f"/posts/{post_id}/a-post").get_data(as_text=True)
    assert 'value="ann@example.org"' in page and 'value="Ann"' in page
    client.set_cookie("comment_author", cookie.value[:-3] + "xyz")  # tampered: ignored
    assert 'value="ann@example.org"' not in client.get(f"/posts/{post_id}/a-post").get_data(
        as_text=True
    )


def test_double_submission_stores_one_comment(app, client, post_id):
    first = client.post(f"/posts/{post_id}/comments", data=GUEST)
    second = client.post(f"/posts/{post_id}/comments", data=GUEST)
    assert first.status_code == second.status_code == 302
    assert first.headers["Location"] == second.headers["Location"]
    with app.app_context():
        assert len(db.session.scalars(select(Comment)).all()) == 1


# Threading -------------------------------------------------------------------


def _tree(app, post_id):
    with app.app_context():
        post = db.session.get(type(make_post()), post_id)
        a = make_comment(post, body="root A")
        b = make_comment(post, parent=a, body="reply B")
        c = make_comment(post, parent=b, body="reply C")
        d = make_comment(post, body="root D")
        db.session.commit()
        return a.id, b.id, c.id, d.id


def test_thread_renders_in_display_order_nested(app, client, post_id):
    a, b, c, d = _tree(app, post_id)
    html = client.get(f"/posts/{post_id}/a-post").get_data(as_text=True)
    order = [int(m) for m in re.findall(r'<li class="comment[^"]*" id="comment-(\d+)"', html)]
    assert order == [a, b, c, d]
    # nested lists: C sits inside B's children list, which sits inside A's
    a_block = html[html.index(f'id="comment-{a}"') : html.index(f'id="comment-{d}"')]
    assert a_block.count('<ol class="children">') == 2
    assert f'href="/posts/{post_id}/a-post#comment-{c}"' in html  # permalink on the date
    assert "4 Responses" in html


def test_reply_attaches_to_parent_in_same_post(app, client, post_id):
    a, *_ = _tree(app, post_id)
    resp = client.post(f"/posts/{post_id}/comments", data={**GUEST, "parent_id": str(a)})
    assert resp.status_code == 302
    with app.app_context():
        reply = db.session.scalars(select(Comment).order_by(Comment.id.desc())).first()
        assert reply.parent_id == a and reply.depth == 1
        assert reply.path.startswith(db.session.get(Comment, a).path + "/")


def test_reply_beyond_max_depth_attaches_at_the_deepest_level(app, client, post_id):
    with app.app_context():
        post = db.session.get(type(make_post()), post_id)
        chain = [make_comment(post)]
        for _ in range(4):
            chain.append(make_comment(post, parent=chain[-1]))
        db.session.commit()
        deepest, its_parent = chain[-1].id, chain[-2].id
        assert chain[-1].depth == 4
    client.post(f"/posts/{post_id}/comments", data={**GUEST, "parent_id": str(deepest)})
    with app.app_context():
        reply = db.session.scalars(select(Comment).order_by(Comment.id.desc())).first()
        assert reply.depth == 4 and reply.parent_id == its_parent


@pytest.mark.parametrize("status", [Status.SPAM, Status.REJECTED, Status.PENDING])
def test_reply_to_unavailable_parent_is_a_form_error(app, client, post_id, status):
    with app.app_context():
        post = db.session.get(type(make_post()), post_id)
        parent_id = make_comment(post, status=status).id
        db.session.commit()
    resp = client.post(f"/posts/{post_id}/comments", data={**GUEST, "parent_id": str(parent_id)})
    assert resp.status_code == 422
    with app.app_context():
        assert db.session.scalar(select(Comment).where(Comment.parent_id == parent_id)) is None


def test_reply_to_parent_in_another_post_or_missing_parent_is_refused(app, client, post_id):
    with app.app_context():
        other = make_post()
        foreign = make_comment(other).id
        db.session.commit()
    for parent in (foreign, 999999):
        resp = client.post(f"/posts/{post_id}/comments", data={**GUEST, "parent_id": str(parent)})
        assert resp.status_code == 422
    with app.app_context():
        assert len(db.session.scalars(select(Comment)).all()) == 1


def test_guest_may_reply_to_own_pending_comment(app, client, post_id):
    client.post(f"/posts/{post_id}/comments", data=GUEST)
    with app.app_context():
        mine = only_comment(app).id
    resp = client.post(
        f"/posts/{post_id}/comments", data={**GUEST, "body": "follow-up", "parent_id": str(mine)}
    )
    assert resp.status_code == 302
    page = client.get(f"/posts/{post_id}/a-post").get_data(as_text=True)
    assert "follow-up" in page and page.count('class="awaiting"') == 2
    # another guest may not reply to it
    stranger = app.test_client()
    resp = stranger.post(
        f"/posts/{post_id}/comments",
        data={**GUEST, "author_name": "Eve", "body": "x", "parent_id": str(mine)},
    )
    assert resp.status_code == 422


def test_reply_link_prefills_parent_and_cancel_link_exists(app, client, post_id):
    a, *_ = _tree(app, post_id)
    html = client.get(f"/posts/{post_id}/a-post?reply_to={a}").get_data(as_text=True)
    assert f'name="parent_id" type="hidden" value="{a}"' in html
    assert "Cancel reply" in html and "Reply to " in html
    for hostile in ("abc", "-1", str(2**63), "\u0661"):
        resp = client.get(f"/posts/{post_id}/a-post", query_string={"reply_to": hostile})
        assert resp.status_code == 400, hostile


def test_post_page_query_count_is_constant_for_10_and_500_comments(app, client, post_id):
    def add(n):
        with app.app_context():
            post = db.session.get(type(make_post()), post_id)
            parents = []
            for i in range(n):
                parent = parents[i % len(parents)] if parents and i % 3 else None
                c = make_comment(post, parent=parent if parent and parent.depth < 4 else None)
                parents.append(c)
            db.session.commit()

    add(10)
    with count_queries(app) as small:
        assert client.get(f"/posts/{post_id}/a-post").status_code == 200
    add(490)
    with count_queries(app) as large:
        html = client.get(f"/posts/{post_id}/a-post").get_data(as_text=True)
    assert "500 Responses" in html
    assert len(large) == len(small), (small, large)


def test_threads_paginate_by_top_level_comment_keeping_replies(app, client, post_id):
    app.config["COMMENT_THREADS_PER_PAGE"] = 2
    with app.app_context():
        post = db.session.get(type(make_post()), post_id)
        roots = [make_comment(post, body=f"root {i}") for i in range(5)]
        make_comment(post, parent=roots[1], body="reply to root 1")
        make_comment(post, parent=roots[2], body="reply to root 2")
        db.session.commit()
    p1 = client.get(f"/posts/{post_id}/a-post").get_data(as_text=True)
    p2 = client.get(f"/posts/{post_id}/a-post?page=2").get_data(as_text=True)
    p3 = client.get(f"/posts/{post_id}/a-post?page=3").get_data(as_text=True)
    assert "root 0" in p1 and "root 1" in p1 and "reply to root 1" in p1 and "root 2" not in p1
    assert "root 2" in p2 and "reply to root 2" in p2 and "root 4" not in p2
    assert "root 4" in p3
    assert all("7 Responses" in p for p in (p1, p2, p3))
    assert client.get(f"/posts/{post_id}/a-post?page=4").status_code == 404


def test_approved_reply_under_held_parent_is_neither_shown_nor_counted(app, client, post_id):
    from forum.services.tree import refresh_visibility

    a, b, c, d = _tree(app, post_id)
    with app.app_context():
        parent = db.session.get(Comment, a)
        parent.status = Status.REJECTED
        refresh_visibility(parent)
        db.session.commit()
    html = client.get(f"/posts/{post_id}/a-post").get_data(as_text=True)
    assert "1 Response" in html and "reply B" not in html and "reply C" not in html
    with app.app_context():
        parent = db.session.get(Comment, a)
        parent.status = Status.APPROVED
        refresh_visibility(parent)
        db.session.commit()
    assert "4 Responses" in client.get(f"/posts/{post_id}/a-post").get_data(as_text=True)


# Closing, editing, deleting ------------------------------------------------------


def test_closed_post_has_no_form_and_refuses_posts(app, client, post_id):
    with app.app_context():
        db.session.get(type(make_post()), post_id).comments_open = False
        db.session.commit()
    html = client.get(f"/posts/{post_id}/a-post").get_data(as_text=True)
    assert "Comments are closed." in html and 'id="comment-form"' not in html
    assert client.post(f"/posts/{post_id}/comments", data=GUEST).status_code == 403


def test_comments_close_automatically_after_n_days(app, client, post_id):
    app.config["COMMENT_CLOSE_AFTER_DAYS"] = 3
    with app.app_context():
        db.session.get(type(make_post()), post_id).created_at = utcnow() - timedelta(days=4)
        db.session.commit()
    assert client.post(f"/posts/{post_id}/comments", data=GUEST).status_code == 403


def test_banned_member_cannot_comment(app, client, post_id):
    with app.app_context():
        uid = make_user(is_banned=True).id
        db.session.commit()
    login_as(client, uid)
    assert client.post(f"/posts/{post_id}/comments", data={"body": "hi"}).status_code == 403


def _own_comment(app, post_id, minutes_ago=0, status=Status.APPROVED):
    with app.app_context():
        user = make_user()
        post = db.session.get(type(make_post()), post_id)
        c = make_comment(
            post, user=user, status=status, created_at=utcnow() - timedelta(minutes=minutes_ago)
        )
        db.session.commit()
        return user.id, c.id


def test_member_edits_own_comment_within_window(app, client, post_id):
    uid, cid = _own_comment(app, post_id)
    login_as(client, uid)
    assert client.get(f"/comments/{cid}/edit").status_code == 200
    resp = client.post(f"/comments/{cid}/edit", data={"body": "Better words"})
    assert resp.status_code == 302
    with app.app_context():
        c = db.session.get(Comment, cid)
        assert "Better words" in c.body_html and c.edited_at is not None
        assert c.status is Status.APPROVED


def test_edit_of_approved_comment_is_rechecked_and_may_be_held(app, client, post_id):
    uid, cid = _own_comment(app, post_id)
    login_as(client, uid)
    client.post(
        f"/comments/{cid}/edit",
        data={"body": "see https://a.example.org and https://b.example.org"},
    )
    with app.app_context():
        c = db.session.get(Comment, cid)
        assert c.status is Status.PENDING and not c.visible
        assert {"edited", "links"} <= {r.rule for r in c.reasons}


def test_edit_after_window_or_by_someone_else_is_403(app, client, post_id):
    uid, old = _own_comment(app, post_id, minutes_ago=11)
    login_as(client, uid)
    assert client.post(f"/comments/{old}/edit", data={"body": "late"}).status_code == 403
    _, theirs = _own_comment(app, post_id)
    assert client.post(f"/comments/{theirs}/edit", data={"body": "mine now"}).status_code == 403
    assert client.post(f"/comments/{theirs}/delete").status_code == 403


def test_member_deletes_own_comment_without_replies(app, client, post_id):
    uid, cid = _own_comment(app, post_id)
    login_as(client, uid)
    assert client.post(f"/comments/{cid}/delete").status_code == 302
    with app.app_context():
        assert db.session.get(Comment, cid) is None


def test_delete_keeps_others_replies(app, client, post_id):
    uid, cid = _own_comment(app, post_id)
    with app.app_context():
        post = db.session.get(type(make_post()), post_id)
        make_comment(post, parent=db.session.get(Comment, cid))
        db.session.commit()
    login_as(client, uid)
    client.post(f"/comments/{cid}/delete")
    with app.app_context():
        assert db.session.get(Comment, cid) is not None


@pytest.fixture
def app_config(request):
    return getattr(request, "param", {})


@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": True}], indirect=True)
def test_comment_without_csrf_token_is_refused_and_text_kept(app, client, post_id):
    resp = client.post(f"/posts/{post_id}/comments", data={**GUEST, "body": "my long essay"})
    assert resp.status_code == 400
    assert "my long essay" in resp.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalars(select(Comment)).first() is None
    page = client.get(f"/posts/{post_id}/a-post").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    resp = client.post(f"/posts/{post_id}/comments", data={**GUEST, "csrf_token": token})
    assert resp.status_code == 302


@pytest.mark.parametrize("reply", [False, True])
def test_a_stored_comment_is_in_the_session_as_its_row_reads(app, post_id, reply):
    """submit_comment stores a comment with Core statements, not the unit of work: what it
    hands back must be the object a load of the row would give. Every column equals the row
    read back in a new session, reading them runs no statement, and a later change to the
    object is saved like any other (it is in the session, not a copy beside it)."""
    columns = [column.key for column in Comment.__table__.columns]
    with app.app_context():
        post = db.session.get(Post, post_id)
        parent = make_comment(post) if reply else None
        data = comment_service.CommentInput(
            body="Hello *there*",
            parent_id=parent.id if parent else None,
            author_name="Ann",
            author_email="ann@example.org",
            ip="192.0.2.1",
            body_format=BodyFormat.MARKDOWN,
        )
        comment = comment_service.submit_comment(post, data, settings_service.load())
        with count_queries(app) as statements:
            held = {key: getattr(comment, key) for key in columns}
        assert statements == []
        assert comment in db.session and not db.session.is_modified(comment)
        assert held["path"].endswith(f"{comment.id:010d}") and held["status"] is Status.PENDING
        db.session.commit()
        comment_id = comment.id
    with app.app_context():
        stored = db.session.get(Comment, comment_id)
        assert {key: getattr(stored, key) for key in columns} == held
        assert [reason.rule for reason in stored.reasons] == ["new comment"]
        assert stored.parent_id == (parent_id := held["parent_id"]) and (
            parent_id is None or stored.parent.depth == stored.depth - 1
        )
    with app.app_context():
        stored = db.session.get(Comment, comment_id)
        stored.author_name = "Bea"
        db.session.commit()
    with app.app_context():
        assert db.session.get(Comment, comment_id).author_name == "Bea"
