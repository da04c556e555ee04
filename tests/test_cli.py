"""`flask forum ...` commands."""

from __future__ import annotations

from sqlalchemy import func, select

from forum.extensions import db
from forum.models import Comment, Post, Role, Status, User
from forum.services import moderation_rules
from forum.services import settings as settings_service


def test_create_user_with_role(app):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=[
            "forum",
            "create-user",
            "Mod_1",
            "--email",
            "Mod@Example.org",
            "--password",
            "a-long-enough-pass",
            "--role",
            "moderator",
        ]
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        user = db.session.scalars(select(User)).one()
        assert user.role is Role.MODERATOR and user.email_key == "mod@example.org"


def test_create_user_password_from_stdin_and_prompt(app):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["forum", "create-user", "stdin_user", "--email", "s@example.org", "--password", "-"],
        input="from-standard-input\n",
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        args=["forum", "create-user", "prompted", "--email", "p@example.org"],
        input="prompted-password\nprompted-password\n",
    )
    assert result.exit_code == 0, result.output
    from forum.services.accounts import authenticate

    with app.app_context():
        assert authenticate("stdin_user", "from-standard-input") is not None
        assert authenticate("PROMPTED", "prompted-password") is not None


def test_create_user_refuses_duplicates_bad_names_and_weak_passwords(app):
    runner = app.test_cli_runner()
    ok = [
        "forum",
        "create-user",
        "ann",
        "--email",
        "ann@example.org",
        "--password",
        "long-password-1",
    ]
    assert runner.invoke(args=ok).exit_code == 0
    dup = [
        "forum",
        "create-user",
        "ANN",
        "--email",
        "x@example.org",
        "--password",
        "long-password-1",
    ]
    assert runner.invoke(args=dup).exit_code != 0
    dup_mail = [
        "forum",
        "create-user",
        "ann2",
        "--email",
        "ANN@example.org",
        "--password",
        "long-password-1",
    ]
    assert runner.invoke(args=dup_mail).exit_code != 0
    bad = [
        "forum",
        "create-user",
        "a b",
        "--email",
        "b@example.org",
        "--password",
        "long-password-1",
    ]
    assert runner.invoke(args=bad).exit_code != 0
    weak = ["forum", "create-user", "bob", "--email", "bob@example.org", "--password", "short"]
    assert runner.invoke(args=weak).exit_code != 0
    with app.app_context():
        assert db.session.scalar(select(func.count(User.id))) == 1


def test_demo_loads_threads_with_pending_and_spam_once(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["forum", "demo"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert db.session.scalar(select(func.count(Post.id))) >= 3
        statuses = dict(
            db.session.execute(select(Comment.status, func.count()).group_by(Comment.status)).all()
        )
        assert statuses[Status.PENDING] >= 3 and statuses[Status.SPAM] >= 1
        assert db.session.scalar(select(func.max(Comment.depth))) >= 3
        total = db.session.scalar(select(func.count(Comment.id)))
    again = runner.invoke(args=["forum", "demo"])
    assert again.exit_code == 0 and "already" in again.output
    with app.app_context():
        assert db.session.scalar(select(func.count(Comment.id))) == total


def test_demo_front_page_shows_counts_and_tags(app, client):
    app.test_cli_runner().invoke(args=["forum", "demo"])
    html = client.get("/").get_data(as_text=True)
    assert "Welcome to the forum" in html and "announcements" in html
    assert "7 Responses" in html  # the welcome post: 7 approved, 1 pending, 1 spam


def test_demo_queue_adds_mixed_held_comments_with_reasons(app):
    runner = app.test_cli_runner()
    runner.invoke(args=["forum", "demo"])
    result = runner.invoke(args=["forum", "demo-queue", "--count", "60"])
    assert result.exit_code == 0, result.output
    from forum.models import HoldReason

    with app.app_context():
        pending = db.session.scalar(
            select(func.count(Comment.id)).where(Comment.status == Status.PENDING)
        )
        assert pending >= 50
        rules = set(db.session.scalars(select(HoldReason.rule).distinct()))
        assert {"new comment", "links", "sanitized"} <= rules


def test_demo_comments_go_through_the_real_rules(app):
    """The demo holds comments with the reasons the rules give, not reasons made up: with
    moderation off, no comment is held for being new."""
    with app.app_context():
        settings_service.save({"moderation_mode": "off"})
        db.session.commit()
    assert app.test_cli_runner().invoke(args=["forum", "demo"]).exit_code == 0
    with app.app_context():
        held = db.session.scalars(select(Comment).where(Comment.status != Status.APPROVED)).all()
        rules = {r.rule for c in held for r in c.reasons}
        assert rules and rules <= set(moderation_rules.RULE_LABELS)
        assert "new comment" not in rules
        script = db.session.scalars(
            select(Comment).where(Comment.body_source.contains("Is this filtered?"))
        ).one()
        assert "sanitized" in {r.rule for r in script.reasons}
        assert "<script" not in script.body_html
