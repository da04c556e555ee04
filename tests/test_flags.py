"""Readers flag approved comments; at the threshold a comment goes back to the queue."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from forum.extensions import db
from forum.models import Comment, Flag, ModerationAction, Role, Status
from forum.services import flags, moderation
from forum.services.settings import Settings
from tests.factories import make_comment, make_post, make_user
from tests.helpers import login_as


@pytest.fixture
def world(app):
    with app.app_context():
        author = make_user()
        post = make_post(make_user(Role.ADMIN), title="Flag post")
        comment = make_comment(post, user=author, body="Something to flag")
        reply = make_comment(post, parent=comment)
        readers = [make_user() for _ in range(4)]
        db.session.commit()
        return {
            "post": post.id,
            "slug": post.slug,
            "comment": comment.id,
            "reply": reply.id,
            "author": author.id,
            "readers": [r.id for r in readers],
            "banned": make_banned(),
            "moderator": make_moderator(),
        }


def make_banned() -> int:
    user = make_user(is_banned=True)
    db.session.commit()
    return user.id


def make_moderator() -> int:
    user = make_user(Role.MODERATOR)
    db.session.commit()
    return user.id


def flag_as(client, user_id, comment_id, **data):
    login_as(client, user_id)
    return client.post(f"/comments/{comment_id}/flag", data={"reason": "abuse", **data})


def flag_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(Flag.id)))


def test_flag_form_and_one_flag_per_reader(app, client, world):
    login_as(client, world["readers"][0])
    page = client.get(f"/comments/{world['comment']}/flag")
    assert page.status_code == 200 and "Something to flag" in page.get_data(as_text=True)
    resp = flag_as(client, world["readers"][0], world["comment"], note="rude")
    assert resp.status_code == 302
    again = flag_as(client, world["readers"][0], world["comment"])
    assert again.status_code == 302
    assert flag_count(app) == 1
    follow = client.get(f"/comments/{world['comment']}/flag", follow_redirects=True)
    assert "already flagged" in follow.get_data(as_text=True)
    with app.app_context():
        flag = db.session.scalars(select(Flag)).one()
        assert (flag.reason, flag.note, flag.resolved) == ("abuse", "rude", False)


def test_flag_link_shows_for_signed_in_readers_on_others_comments(app, client, world):
    url = f"/posts/{world['post']}/{world['slug']}"
    flag_link = f"/comments/{world['comment']}/flag"
    assert flag_link not in client.get(url).get_data(as_text=True)
    login_as(client, world["author"])
    assert flag_link not in client.get(url).get_data(as_text=True)
    login_as(client, world["readers"][0])
    assert flag_link in client.get(url).get_data(as_text=True)
    login_as(client, world["banned"])
    assert flag_link not in client.get(url).get_data(as_text=True)


def test_who_may_not_flag(app, client, world):
    resp = client.get(f"/comments/{world['comment']}/flag")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    assert flag_as(client, world["author"], world["comment"]).status_code == 403
    assert flag_as(client, world["banned"], world["comment"]).status_code == 403
    assert flag_count(app) == 0


@pytest.mark.parametrize("status", [Status.PENDING, Status.SPAM, Status.REJECTED])
def test_only_visible_comments_can_be_flagged(app, client, world, status):
    with app.app_context():
        hidden = make_comment(db.session.get(Comment, world["comment"]).post, status=status)
        db.session.commit()
        hidden_id = hidden.id
    assert flag_as(client, world["readers"][0], hidden_id).status_code == 404
    assert flag_as(client, world["readers"][0], 999999).status_code == 404


@pytest.mark.parametrize(
    "data",
    [{"reason": "boring"}, {"reason": ""}, {"reason": "abuse", "note": "x" * 501}],
)
def test_bad_flag_forms_are_422(app, client, world, data):
    login_as(client, world["readers"][0])
    resp = client.post(f"/comments/{world['comment']}/flag", data=data)
    assert resp.status_code == 422
    assert flag_count(app) == 0


def test_third_flag_sends_the_comment_back_to_the_queue_with_the_flags_as_reasons(
    app, client, world
):
    for reader, note in zip(world["readers"][:3], ["rude", "", "mean"], strict=True):
        assert flag_as(client, reader, world["comment"], note=note).status_code == 302
    with app.app_context():
        comment = db.session.get(Comment, world["comment"])
        assert comment.status is Status.PENDING and not comment.visible
        assert [(r.rule, r.detail) for r in comment.reasons] == [
            ("flag", "abuse: rude"),
            ("flag", "abuse"),
            ("flag", "abuse: mean"),
        ]
        assert not db.session.get(Comment, world["reply"]).visible  # withheld with it
        entry = db.session.scalars(select(ModerationAction)).one()
        assert (entry.action, entry.from_status, entry.to_status) == (
            "requeue",
            "approved",
            "pending",
        )
    page = client.get(f"/posts/{world['post']}/{world['slug']}").get_data(as_text=True)
    assert "0 Responses" in page
    # The moderators see it in the Pending and Flagged tabs, and approving it closes the flags.
    login_as(client, world["moderator"])
    html = client.get("/moderation/?tab=flagged").get_data(as_text=True)
    assert f'id="item-{world["comment"]}"' in html and "Flagged <strong>abuse</strong>" in html
    assert 'id="count-flagged">1<' in html
    client.post(f"/moderation/comments/{world['comment']}/approve")
    html = client.get("/moderation/?tab=flagged").get_data(as_text=True)
    assert 'id="count-flagged">0<' in html
    page = client.get(f"/posts/{world['post']}/{world['slug']}").get_data(as_text=True)
    assert "2 Responses" in page


@pytest.mark.parametrize(("threshold", "flags_given", "requeued"), [
    (1, 1, True), (2, 1, False), (2, 2, True), (0, 4, False), (5, 4, False),
])  # fmt: skip
def test_threshold_is_a_setting(db_session, threshold, flags_given, requeued):
    post = make_post()
    comment = make_comment(post)
    settings = Settings(flags_to_requeue=threshold)
    for _ in range(flags_given):
        flags.flag_comment(comment, make_user(), "spam", "", settings)
    assert comment.status is (Status.PENDING if requeued else Status.APPROVED)


def test_resolved_flags_do_not_count_again(db_session):
    post = make_post()
    comment = make_comment(post)
    settings = Settings(flags_to_requeue=2)
    moderator = make_user(Role.MODERATOR)
    flags.flag_comment(comment, make_user(), "spam", "", settings)
    flags.flag_comment(comment, make_user(), "spam", "", settings)
    assert comment.status is Status.PENDING
    moderation.decide("approve", [comment], moderator)  # a moderator keeps it
    flags.flag_comment(comment, make_user(), "abuse", "", settings)
    assert comment.status is Status.APPROVED
    assert flags.open_flag_count(comment.id) == 1


def test_flag_service_refuses_the_author_and_bad_reasons(db_session):
    author = make_user()
    comment = make_comment(make_post(), user=author)
    with pytest.raises(flags.FlagError):
        flags.flag_comment(comment, author, "spam", "", Settings())
    with pytest.raises(flags.FlagError):
        flags.flag_comment(comment, make_user(), "boring", "", Settings())
    reader = make_user()
    flags.flag_comment(comment, reader, "spam", "", Settings())
    with pytest.raises(flags.AlreadyFlagged):
        flags.flag_comment(comment, reader, "spam", "", Settings())
