"""Moderation actions called directly: statuses, visibility, the log, idempotency, undo."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from forum.extensions import db
from forum.models import (
    Ban,
    BanKind,
    Comment,
    Flag,
    HoldReason,
    ModerationAction,
    Role,
    Status,
    User,
)
from forum.services import bans, moderation, queue, rule_stats, threads, undo
from forum.services import settings as settings_service
from forum.services.comments import CommentInput, submit_comment
from tests.factories import make_comment, make_post, make_user


@pytest.fixture
def mod(db_session):
    return make_user(Role.MODERATOR)


def statuses(*comments) -> list[str]:
    return [db.session.get(Comment, c.id).status.value for c in comments]


def log_rows(**where) -> list[ModerationAction]:
    stmt = select(ModerationAction).order_by(ModerationAction.id)
    for key, value in where.items():
        stmt = stmt.where(getattr(ModerationAction, key) == value)
    return list(db.session.scalars(stmt))


def responses(post) -> int:
    return threads.thread_page(post.id, 1, 50).total


# One action -------------------------------------------------------------------------

TRANSITIONS = [
    ("approve", Status.PENDING, Status.APPROVED),
    ("approve", Status.SPAM, Status.APPROVED),
    ("approve", Status.REJECTED, Status.APPROVED),
    ("reject", Status.PENDING, Status.REJECTED),
    ("reject", Status.APPROVED, Status.REJECTED),
    ("reject", Status.SPAM, Status.REJECTED),
    ("spam", Status.PENDING, Status.SPAM),
    ("spam", Status.APPROVED, Status.SPAM),
    ("spam", Status.REJECTED, Status.SPAM),
    ("restore", Status.APPROVED, Status.PENDING),
    ("restore", Status.SPAM, Status.PENDING),
    ("restore", Status.REJECTED, Status.PENDING),
]


@pytest.mark.parametrize(("action", "start", "end"), TRANSITIONS)
def test_action_changes_status_logs_once_and_is_idempotent(mod, action, start, end):
    post = make_post()
    comment = make_comment(post, status=start)
    first = moderation.decide(action, [comment], mod, note="because")
    assert first.changed == [comment.id]
    assert comment.status is end
    assert comment.moderated_by_id == mod.id and comment.moderated_at is not None
    second = moderation.decide(action, [comment], mod)
    assert second.changed == [] and second.unchanged == [comment.id]
    rows = log_rows(comment_id=comment.id)
    assert [(r.action, r.from_status, r.to_status, r.note, r.moderator_id) for r in rows] == [
        (action, start.value, end.value, "because", mod.id)
    ]
    assert rows[0].batch == first.batch and rows[0].created_at is not None


@pytest.mark.parametrize(("action", "start", "end"), TRANSITIONS)
def test_undo_reverts_exactly_once(mod, action, start, end):
    post = make_post()
    comment = make_comment(post, status=start)
    outcome = moderation.decide(action, [comment], mod)
    undone = undo.undo(outcome.batch, mod)
    assert undone.changed == [comment.id]
    assert comment.status is start
    again = undo.undo(outcome.batch, mod)
    assert again.changed == [] and comment.status is start
    assert [r.action for r in log_rows(comment_id=comment.id)] == [action, "undo"]


@pytest.mark.parametrize("start", [Status.PENDING, Status.APPROVED])
def test_delete_is_refused_unless_spam_or_rejected(mod, start):
    comment = make_comment(make_post(), status=start)
    outcome = moderation.decide("delete", [comment], mod)
    assert outcome.refused == [comment.id] and outcome.changed == []
    assert db.session.get(Comment, comment.id) is not None
    assert log_rows() == []


def test_unknown_action_is_an_error(mod):
    with pytest.raises(moderation.ModerationError):
        moderation.decide("publish", [], mod)


# Threads and "N Responses" -------------------------------------------------------------


def test_spamming_a_parent_withholds_its_approved_replies_until_restored(mod):
    post = make_post()
    parent = make_comment(post)
    child = make_comment(post, parent=parent)
    grandchild = make_comment(post, parent=child)
    make_comment(post)
    assert responses(post) == 4
    outcome = moderation.decide("spam", [parent], mod)
    assert [c.visible for c in (parent, child, grandchild)] == [False, False, False]
    assert child.status is Status.APPROVED  # withheld, not changed
    assert responses(post) == 1
    undo.undo(outcome.batch, mod)
    assert [c.visible for c in (parent, child, grandchild)] == [True, True, True]
    assert responses(post) == 4


def test_restoring_to_pending_keeps_replies_hidden_until_approved(mod):
    post = make_post()
    parent = make_comment(post, status=Status.REJECTED)
    child = make_comment(post, parent=parent)
    assert not child.visible
    moderation.decide("restore", [parent], mod)
    assert not child.visible and responses(post) == 0
    moderation.decide("approve", [parent], mod)
    assert child.visible and responses(post) == 2


def test_approving_a_reply_offers_its_pending_ancestors(mod):
    post = make_post()
    root = make_comment(post, status=Status.PENDING)
    middle = make_comment(post, parent=root, status=Status.PENDING)
    leaf = make_comment(post, parent=middle, status=Status.PENDING)
    outcome = moderation.decide("approve", [leaf], mod)
    assert outcome.pending_parents == [root.id, middle.id]
    assert not leaf.visible  # approved, but its ancestors are not
    both = moderation.decide("approve", [root, middle], mod)
    assert both.pending_parents == []
    assert [c.visible for c in (root, middle, leaf)] == [True, True, True]


def test_bulk_approve_of_a_parent_and_its_reply_shows_both(mod):
    post = make_post()
    root = make_comment(post, status=Status.PENDING)
    reply = make_comment(post, parent=root, status=Status.PENDING)
    lone = make_comment(post, status=Status.PENDING)
    outcome = moderation.decide(
        "approve", moderation.load_comments([reply.id, root.id, lone.id]), mod
    )
    assert sorted(outcome.changed) == sorted([root.id, reply.id, lone.id])
    assert responses(post) == 3


def test_bulk_mixed_statuses_reports_each(mod):
    post = make_post()
    pending = make_comment(post, status=Status.PENDING)
    approved = make_comment(post)
    outcome = moderation.decide("delete", [pending, approved], mod)
    assert sorted(outcome.refused) == sorted([pending.id, approved.id])
    outcome = moderation.decide("approve", [pending, approved], mod)
    assert outcome.changed == [pending.id] and outcome.unchanged == [approved.id]
    assert "1 already done" in outcome.message


def test_bulk_undo_reverts_the_whole_batch_but_not_later_changes(mod):
    post = make_post()
    a, b, c = (make_comment(post, status=Status.PENDING) for _ in range(3))
    outcome = moderation.decide("approve", [a, b, c], mod)
    other = make_user(Role.MODERATOR)
    moderation.decide("spam", [b], other)  # someone changed b since
    undone = undo.undo(outcome.batch, mod)
    assert sorted(undone.changed) == sorted([a.id, c.id]) and undone.refused == [b.id]
    assert statuses(a, b, c) == ["pending", "spam", "pending"]


def test_undo_of_an_unknown_batch_or_an_undo_is_an_error(mod):
    comment = make_comment(make_post(), status=Status.PENDING)
    outcome = moderation.decide("approve", [comment], mod)
    undone = undo.undo(outcome.batch, mod)
    for batch in ["0" * 30, undone.batch, ""]:
        with pytest.raises(moderation.ModerationError):
            undo.undo(batch, mod)


# Deleting for good ----------------------------------------------------------------------


def test_delete_removes_a_spam_thread_and_undo_puts_it_back(mod, db_session):
    post = make_post()
    root = make_comment(post, status=Status.SPAM, reasons=["links"])
    reply = make_comment(post, parent=root)
    ids = (root.id, reply.id)
    snapshot = (root.body_source, root.path, reply.path, reply.created_at)
    outcome = moderation.decide("delete", [root], mod)
    db.session.commit()
    assert outcome.changed == [root.id]
    assert db.session.scalar(select(func.count(Comment.id))) == 0
    assert [r.comment_id for r in log_rows(action="delete")] == list(ids)
    db.session.expire_all()
    undone = undo.undo(outcome.batch, mod)
    db.session.commit()
    assert sorted(undone.changed) == sorted(ids)
    back_root, back_reply = (db.session.get(Comment, i) for i in ids)
    assert (
        back_root.body_source,
        back_root.path,
        back_reply.path,
        back_reply.created_at,
    ) == snapshot
    assert back_root.status is Status.SPAM and [r.rule for r in back_root.reasons] == ["links"]
    assert not back_reply.visible


def test_deleting_a_reply_and_its_parent_together(mod):
    post = make_post()
    root = make_comment(post, status=Status.REJECTED)
    reply = make_comment(post, parent=root, status=Status.SPAM)
    outcome = moderation.decide("delete", [reply, root], mod)
    assert sorted(outcome.changed) == sorted([root.id, reply.id])
    assert db.session.scalar(select(func.count(Comment.id))) == 0


# Edit, reply ------------------------------------------------------------------------------


def test_edit_then_approve_resanitizes_logs_and_undoes(mod, db_session):
    post = make_post()
    comment = make_comment(post, status=Status.PENDING, body="Buy <script>x</script> now")
    before = (comment.body_source, comment.body_html, comment.body_hash)
    settings = settings_service.load()
    outcome = moderation.edit_and_approve(comment, "Hello <b>there</b>", mod, settings)
    assert comment.status is Status.APPROVED and comment.visible
    assert "<b>there</b>" in comment.body_html and comment.edited_at is not None
    assert [r.action for r in log_rows(comment_id=comment.id)] == ["edit", "approve"]
    again = moderation.edit_and_approve(comment, "Hello <b>there</b>", mod, settings)
    assert again.changed == []
    undo.undo(outcome.batch, mod)
    assert comment.status is Status.PENDING
    assert (comment.body_source, comment.body_html, comment.body_hash) == before


@pytest.mark.parametrize("body", ["", "   ", "\n\t"])
def test_edit_refuses_an_empty_body(mod, body):
    comment = make_comment(make_post(), status=Status.PENDING)
    with pytest.raises(moderation.ModerationError):
        moderation.edit_and_approve(comment, body, mod, settings_service.load())
    assert comment.status is Status.PENDING


def test_approve_and_reply_publishes_the_moderators_reply_under_it(mod, db_session):
    post = make_post()
    comment = make_comment(post, status=Status.PENDING)
    settings = settings_service.load()
    outcome = moderation.approve_and_reply(comment, "Thanks, welcome!", mod, settings)
    reply = db.session.get(Comment, outcome.extra["reply_id"])
    assert comment.status is Status.APPROVED
    assert reply.parent_id == comment.id and reply.user_id == mod.id
    assert reply.status is Status.APPROVED and reply.visible
    assert responses(post) == 2
    again = moderation.approve_and_reply(comment, "Thanks, welcome!", mod, settings)
    assert again.changed == [] and responses(post) == 2
    undo.undo(outcome.batch, mod)
    assert db.session.get(Comment, reply.id) is None
    assert comment.status is Status.PENDING and responses(post) == 0


# Bans ---------------------------------------------------------------------------------------


def guest_comment(post, status=Status.PENDING, email="spam@example.net", ip="203.0.113.5", **kw):
    return make_comment(post, status=status, author_email=email, ip=ip, **kw)


def test_ban_by_email_spams_pending_comments_and_undo_lifts_it(mod):
    post = make_post()
    first = guest_comment(post)
    second = guest_comment(post, ip="203.0.113.6")
    published = guest_comment(post, status=Status.APPROVED)
    bystander = guest_comment(post, email="ok@example.net")
    outcome = bans.ban_author(first, [BanKind.EMAIL], mod, "spammer")
    assert sorted(outcome.changed) == sorted([first.id, second.id])
    assert statuses(first, second, published, bystander) == ["spam", "spam", "approved", "pending"]
    assert [(b.kind, b.value) for b in db.session.scalars(select(Ban))] == [
        (BanKind.EMAIL, "spam@example.net")
    ]
    again = bans.ban_author(first, [BanKind.EMAIL], mod)
    assert again.changed == [] and db.session.scalar(select(func.count(Ban.id))) == 1
    undo.undo(outcome.batch, mod)
    assert statuses(first, second) == ["pending", "pending"]
    assert db.session.scalar(select(func.count(Ban.id))) == 0


def test_ban_and_remove_everything_also_takes_approved_comments(mod):
    post = make_post()
    held = guest_comment(post)
    published = guest_comment(post, status=Status.APPROVED, ip="203.0.113.77")
    reply = make_comment(post, parent=published)
    outcome = bans.ban_author(held, [BanKind.IP], mod, remove_everything=True)
    assert statuses(held, published) == ["spam", "approved"]  # other IP: not caught
    outcome = bans.ban_author(held, [BanKind.EMAIL], mod, remove_everything=True)
    assert statuses(held, published) == ["spam", "spam"] and not reply.visible
    assert published.id in outcome.changed


def test_ban_account_marks_the_user_banned(mod):
    post = make_post()
    member = make_user()
    comment = make_comment(post, user=member, status=Status.PENDING)
    outcome = bans.ban_author(comment, [BanKind.ACCOUNT], mod)
    assert member.is_banned and comment.status is Status.SPAM
    undo.undo(outcome.batch, mod)
    assert not member.is_banned


@pytest.mark.parametrize("role", [Role.MODERATOR, Role.ADMIN])
def test_moderators_cannot_be_banned_from_the_queue(mod, role):
    other = make_user(role)
    comment = make_comment(make_post(), user=other)
    with pytest.raises(moderation.ModerationError):
        bans.ban_author(comment, [BanKind.ACCOUNT, BanKind.EMAIL], mod)


def test_ban_without_anything_to_ban_is_an_error(mod):
    comment = make_comment(make_post(), author_email="", ip="")
    with pytest.raises(moderation.ModerationError):
        bans.ban_author(comment, [BanKind.ACCOUNT, BanKind.EMAIL, BanKind.IP], mod)


def test_sweep_catches_what_arrived_while_the_ban_ran(mod, db_session):
    post = make_post()
    first = guest_comment(post)
    outcome = bans.ban_author(first, [BanKind.EMAIL], mod)
    db.session.commit()
    # Checked by the rules before the ban was committed, stored after the first sweep:
    late = guest_comment(post)
    db.session.commit()
    values = [(BanKind(k), v) for k, v in outcome.extra["ban_values"]]
    swept = bans.sweep_banned(values, mod, batch=outcome.batch)
    assert swept.changed == [late.id] and late.status is Status.SPAM
    # And anything submitted afterwards is rejected by the rules themselves.
    settings = settings_service.load()
    after = submit_comment(
        post,
        CommentInput(body="again", author_name="X", author_email="spam@example.net"),
        settings,
    )
    assert after.status is Status.REJECTED and [r.rule for r in after.reasons][0] == "banned"
    undo.undo(outcome.batch, mod)  # one undo reverts the ban and both sweeps
    assert statuses(first, late) == ["pending", "pending"]


# Flags are answered by a decision ----------------------------------------------------------


def test_a_decision_resolves_open_flags(mod):
    post = make_post()
    comment = make_comment(post)
    reader = make_user()
    db.session.add(Flag(comment_id=comment.id, user_id=reader.id, reason="spam"))
    db.session.flush()
    other = make_user()
    moderation.decide("spam", [comment], mod)
    assert db.session.scalar(select(Flag.resolved)) is True
    moderation.decide("approve", [comment], mod)
    db.session.add(Flag(comment_id=comment.id, user_id=other.id, reason="abuse"))
    db.session.flush()
    kept = moderation.decide("approve", [comment], mod)  # keep it: the flags are dismissed
    assert kept.changed == [comment.id] and comment.status is Status.APPROVED
    assert db.session.scalar(select(func.count(Flag.id)).where(Flag.resolved.is_(False))) == 0
    assert log_rows(comment_id=comment.id)[-1].action == "dismiss-flags"
    assert moderation.decide("approve", [comment], mod).changed == []


# Groups and rule statistics ------------------------------------------------------------------


def test_groups_by_each_kind(mod):
    post = make_post()
    for _ in range(3):
        make_comment(post, status=Status.PENDING, ip="203.0.113.1", body="Same text here",
                     author_email="a@example.net", link_domain="spam.example")  # fmt: skip
    make_comment(post, status=Status.PENDING, ip="203.0.113.2", body="Other")
    make_comment(post, status=Status.APPROVED, ip="203.0.113.1")
    by_ip = queue.groups("ip")
    assert [(g.value, g.count) for g in by_ip] == [("203.0.113.1", 3), ("203.0.113.2", 1)]
    assert by_ip[0].sample is not None
    assert queue.groups("domain")[0].value == "spam.example"
    assert queue.groups("email")[0].count == 3
    text = queue.groups("text")
    assert text[0].count == 3 and "Same text" in text[0].sample.body_source
    ids = queue.group_members("ip", "203.0.113.1", Status.PENDING)
    assert len(ids) == 3


def test_rule_statistics_count_what_moderators_decided(mod):
    post = make_post()
    approved = make_comment(post, status=Status.PENDING, reasons=["links", "new comment"])
    spammed = make_comment(post, status=Status.PENDING, reasons=["links"])
    make_comment(post, status=Status.PENDING, reasons=["links"])
    make_comment(post, status=Status.SPAM, reasons=["honeypot"])  # the rules alone
    moderation.decide("approve", [approved], mod)
    moderation.decide("spam", [spammed], mod)
    stats = {s.rule: s for s in rule_stats.rule_statistics()}
    links = stats["links"]
    assert (links.held, links.pending, links.approved, links.removed) == (3, 1, 1, 1)
    assert links.approval_rate == 0.5
    assert stats["new comment"].approval_rate == 1.0
    assert (stats["honeypot"].held, stats["honeypot"].automatic) == (1, 1)
    assert stats["hold-word"].held == 0 and stats["hold-word"].approval_rate is None


def test_held_reasons_are_kept_after_a_decision(mod):
    comment = make_comment(make_post(), status=Status.PENDING, reasons=["links"])
    moderation.decide("approve", [comment], mod)
    assert db.session.scalar(select(func.count(HoldReason.id))) == 1


def test_actions_never_commit(mod, db_session):
    comment = make_comment(make_post(), status=Status.PENDING)
    db.session.commit()
    moderation.decide("approve", [comment], mod)
    db.session.rollback()
    assert db.session.get(Comment, comment.id).status is Status.PENDING
    assert db.session.scalar(select(func.count(ModerationAction.id))) == 0
    assert db.session.get(User, mod.id) is not None
