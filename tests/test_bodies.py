"""One writer of a comment's text: submit, a member's edit and a moderator's edit store the
same normalized text with the same derived columns.

Each test here failed before `apply_body`: the copies had drifted apart.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from forum.extensions import db
from forum.models import ModerationAction, Role, Status
from forum.services import comments as comment_service
from forum.services import moderation
from forum.services import settings as settings_service
from tests.factories import make_post, make_user

MULTILINE = "First line  \r\n\r\nSecond line with a café\r\n"


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield {
            "post": make_post(make_user(Role.ADMIN)),
            "member": make_user(username="writer"),
            "moderator": make_user(Role.MODERATOR, username="checker"),
            "settings": settings_service.load(),
        }


def submit(ctx, body: str, user=None):
    return comment_service.submit_comment(
        ctx["post"],
        comment_service.CommentInput(
            body=body, author_name="Ann", author_email="ann@example.org", ip="192.0.2.1"
        ),
        ctx["settings"],
        user=user,
    )


def test_a_members_edit_updates_the_link_domain(ctx):
    comment = submit(ctx, "No links at first.", user=ctx["member"])
    assert comment.link_domain == ""
    comment_service.edit_comment(
        comment, "Now see https://edited-in.example.com/page", ctx["member"], ctx["settings"]
    )
    assert comment.link_domain == "edited-in.example.com"
    assert comment_service.can_edit(comment, ctx["member"], ctx["settings"])


def test_every_writer_stores_the_same_normalized_text(ctx):
    submitted = submit(ctx, MULTILINE)
    edited = submit(ctx, "Something else entirely.", user=ctx["member"])
    comment_service.edit_comment(edited, MULTILINE, ctx["member"], ctx["settings"])
    expected = "First line  \n\nSecond line with a café"
    assert submitted.body_source == edited.body_source == expected
    assert submitted.body_hash == edited.body_hash
    assert submitted.body_html == edited.body_html


def test_save_and_approve_on_untouched_text_is_not_an_edit(ctx):
    comment = submit(ctx, MULTILINE)
    assert comment.status is Status.PENDING
    db.session.flush()
    # The textarea sends the text back as browsers do: CRLF line ends, as shown.
    sent_back = comment.body_source.replace("\n", "\r\n")
    moderation.edit_and_approve(comment, sent_back, ctx["moderator"], ctx["settings"])
    actions = db.session.scalars(
        select(ModerationAction.action).where(ModerationAction.comment_id == comment.id)
    ).all()
    assert actions == ["approve"]
    assert comment.status is Status.APPROVED and comment.edited_at is None


def test_text_stored_before_normalizing_is_no_edit_when_sent_back(ctx):
    comment = submit(ctx, "Old text")
    comment.body_source = "Old text\r\n"  # as stored by an older version
    outcome = moderation.edit_and_approve(comment, "Old text", ctx["moderator"], ctx["settings"])
    assert outcome.changed == [comment.id]
    actions = db.session.scalars(
        select(ModerationAction.action).where(ModerationAction.comment_id == comment.id)
    ).all()
    assert actions == ["approve"]


def test_a_moderators_real_edit_is_logged_and_sets_every_derived_column(ctx):
    comment = submit(ctx, "Before the edit")
    moderation.edit_and_approve(
        comment, "After: https://moderated.example.org", ctx["moderator"], ctx["settings"]
    )
    actions = db.session.scalars(
        select(ModerationAction.action)
        .where(ModerationAction.comment_id == comment.id)
        .order_by(ModerationAction.id)
    ).all()
    assert actions == ["edit", "approve"]
    assert comment.link_domain == "moderated.example.org"
    assert comment.body_source == "After: https://moderated.example.org"
    assert 'href="https://moderated.example.org"' in comment.body_html
