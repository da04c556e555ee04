"""`forum export` and `forum import-json`: the whole forum out and back, exactly."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from forum.extensions import db
from forum.models import (
    Ban,
    BanKind,
    Comment,
    CommentKind,
    Flag,
    ModerationAction,
    Post,
    Role,
    Status,
    User,
)
from forum.services import bans, moderation, undo
from forum.services import posts as post_service
from forum.services import settings as settings_service
from forum.tools import transfer, wxr
from tests.factories import make_comment, make_post, make_user

BLOG = Path(__file__).parent / "data" / "wxr" / "hedgerow-blog.xml"
DOC = Path(__file__).parent.parent / "docs" / "export-format.md"
T0 = datetime(2025, 1, 6, 9, 30, 15, 123456, tzinfo=UTC)


def build_forum() -> dict[str, int]:
    """Members, tags, threads in every status with reasons, moderation history, a WXR import."""
    admin = make_user(Role.ADMIN, username="admin")
    mod = make_user(Role.MODERATOR, username="mod")
    member = make_user(username="member", last_login_at=T0)
    make_user(username="banned", is_banned=True)
    post = make_post(admin, title="Café talk", body="Hello <b>all</b>\n\nSecond paragraph.")
    post.tags = post_service.get_or_create_tags(["news", "Café", "meta"])
    quiet = make_post(mod, title="Closed", comments_open=False)
    root = make_comment(post, user=member, created_at=T0)
    reply = make_comment(
        post,
        parent=root,
        author_url="https://guest.example",
        ip="192.0.2.1",
        created_at=T0 + timedelta(minutes=1),
    )
    held = make_comment(
        post,
        parent=reply,
        status=Status.PENDING,
        reasons=["links", "new"],
        body="Two links http://a.example http://b.example <script>x</script>",
    )
    make_comment(post, status=Status.SPAM, reasons=["blocked word"], body="cheap pills")
    rejected = make_comment(post, status=Status.REJECTED)
    make_comment(post, parent=rejected)  # approved, but hidden under its rejected parent
    make_comment(
        post,
        kind=CommentKind.PINGBACK,
        author_name="A blog",
        author_url="https://blog.example/post",
    )
    doomed = make_comment(quiet, status=Status.SPAM, notify_on_reply=True)
    make_comment(quiet, parent=doomed, status=Status.SPAM)
    to_edit = make_comment(quiet, status=Status.PENDING, body="Frist!")
    troll = make_comment(
        quiet, status=Status.PENDING, author_email="troll@example.net", ip="203.0.113.66"
    )
    db.session.add(Flag(comment_id=root.id, user_id=mod.id, reason="off-topic", note="hmm"))
    settings_service.save({"max_depth": 3, "hold_words": ["casino", "loan"]})
    db.session.flush()
    settings = settings_service.load()
    moderation.decide("approve", [held], mod, note="links are fine", now=T0)
    moderation.decide("delete", [doomed], mod, note="junk", now=T0)
    moderation.edit_and_approve(to_edit, "First!", mod, settings, note="typo", now=T0)
    bans.ban_author(troll, [BanKind.EMAIL, BanKind.IP], mod, reason="trolling", now=T0)
    with open(BLOG, "rb") as stream:
        wxr.import_wxr(stream)
    db.session.commit()
    return {"post": post.id, "root": root.id}


def export_text() -> str:
    out = io.StringIO()
    transfer.export_json(out)
    return out.getvalue()


def empty_database() -> None:
    db.session.remove()
    db.drop_all()
    db.create_all()


def thread_of(client, post_id: int) -> tuple[list[str], str]:
    html = client.get(f"/posts/{post_id}", follow_redirects=True).get_data(as_text=True)
    count = re.search(r"\d+ Responses?", html).group(0)
    return re.findall(r'id="(comment-\d+)"', html), count


def test_export_then_import_json_round_trips_the_whole_forum_exactly(app, client, tmp_path):
    with app.app_context():
        ids = build_forum()
        first = tmp_path / "first.json"
        counts_before = {
            m.__name__: db.session.scalar(select(func.count()).select_from(m))
            for m in (User, Post, Comment, ModerationAction, Ban, Flag)
        }
    runner = app.test_cli_runner()
    result = runner.invoke(args=["forum", "export", str(first)])
    assert result.exit_code == 0, result.output
    assert f"{counts_before['User']} users" in result.output
    page_before = thread_of(client, ids["post"])
    assert len(page_before[0]) == 4 and page_before[1] == "4 Responses"
    document = json.loads(first.read_text(encoding="utf-8"))
    assert {row["action"] for row in document["moderation_actions"]} >= {
        "approve",
        "delete",
        "edit",
        "ban",
    }

    with app.app_context():
        empty_database()
    result = runner.invoke(args=["forum", "import-json", str(first)])
    assert result.exit_code == 0, result.output
    second = tmp_path / "second.json"
    assert runner.invoke(args=["forum", "export", str(second)]).exit_code == 0
    assert second.read_bytes() == first.read_bytes()

    assert thread_of(client, ids["post"]) == page_before
    assert client.get(f"/comments/{ids['root']}").status_code == 302
    with app.app_context():
        assert {
            m.__name__: db.session.scalar(select(func.count()).select_from(m))
            for m in (User, Post, Comment, ModerationAction, Ban, Flag)
        } == counts_before
        assert db.session.scalar(select(func.count()).where(User.password_hash.is_not(None))) == 0
        # New rows continue after the imported ids (PostgreSQL sequences were moved on).
        post = db.session.get(Post, ids["post"])
        newest = make_comment(post, parent=db.session.get(Comment, ids["root"]))
        user = make_user()
        db.session.commit()
        assert newest.id > max(c["id"] for c in json.loads(first.read_text())["comments"])
        assert user.id > counts_before["User"] and newest.visible


def test_undo_still_works_after_a_round_trip(app):
    with app.app_context():
        build_forum()
        text = export_text()
        empty_database()
        transfer.import_json(io.StringIO(text))
        db.session.commit()
        deletion = db.session.scalars(
            select(ModerationAction)
            .where(ModerationAction.action == "delete")
            .order_by(ModerationAction.id)
        ).first()
        mod = db.session.scalars(select(User).where(User.username == "mod")).one()
        outcome = undo.undo(deletion.batch, mod)
        db.session.commit()
        assert len(outcome.changed) == 2
        restored = db.session.get(Comment, deletion.comment_id)
        assert restored.status is Status.SPAM and restored.notify_on_reply is True


def test_export_has_no_secrets_and_members_come_back_without_passwords(app):
    with app.app_context():
        make_user(username="ann")
        db.session.commit()
        hashes = set(db.session.scalars(select(User.password_hash)))
        text = export_text()
    assert "password" not in text and "session_token" not in text
    assert not any(h in text for h in hashes)


def test_export_to_standard_output(app):
    with app.app_context():
        make_user(username="ann")
        db.session.commit()
    result = app.test_cli_runner().invoke(args=["forum", "export", "-"])
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["format"] == "forum-export" and document["version"] == 1
    assert [u["username"] for u in document["users"]] == ["ann"]


def test_import_json_refuses_a_database_with_data(app, tmp_path):
    path = tmp_path / "forum.json"
    with app.app_context():
        make_user()
        db.session.commit()
        path.write_text(export_text())
    result = app.test_cli_runner().invoke(args=["forum", "import-json", str(path)])
    assert result.exit_code == 1
    assert "the database is not empty" in result.output


def minimal_document(**changes) -> dict:
    """A valid export of one member, one post and two comments, with changes applied."""
    when = "2025-01-06T09:30:15+00:00"
    comment = {
        "id": 1,
        "post_id": 1,
        "parent_id": None,
        "kind": "comment",
        "user_id": None,
        "author_name": "Ann",
        "author_email": "ann@example.org",
        "author_url": "",
        "ip": "",
        "user_agent": "",
        "body_source": "Hi",
        "body_html": "<p>Hi</p>",
        "body_hash": "",
        "link_domain": "",
        "status": "approved",
        "sanitizer_report": [],
        "created_at": when,
        "edited_at": None,
        "moderated_at": None,
        "moderated_by_id": None,
        "notify_on_decision": False,
        "notify_on_reply": False,
        "import_key": None,
        "reasons": [],
    }
    document = {
        "format": "forum-export",
        "version": 1,
        "settings": [],
        "users": [
            {
                "id": 1,
                "username": "ann",
                "email": "ann@example.org",
                "role": "admin",
                "is_banned": False,
                "created_at": when,
                "last_login_at": None,
                "import_key": None,
            }
        ],
        "tags": [],
        "posts": [
            {
                "id": 1,
                "author_id": 1,
                "title": "T",
                "slug": "t",
                "body_source": "B",
                "body_html": "<p>B</p>",
                "created_at": when,
                "updated_at": when,
                "comments_open": True,
                "import_key": None,
                "tags": [],
            }
        ],
        "comments": [comment, {**comment, "id": 2, "parent_id": 1}],
        "moderation_actions": [],
        "flags": [],
        "bans": [],
    }
    for path, value in changes.items():
        *keys, last = path.split("__")
        target = document
        for key in keys:
            target = target[int(key)] if key.isdigit() else target[key]
        if value is KeyError:
            del target[int(last) if last.isdigit() else last]
        else:
            target[int(last) if last.isdigit() else last] = value
    return document


def test_minimal_document_imports(app):
    with app.app_context():
        transfer.import_json(io.StringIO(json.dumps(minimal_document())))
        db.session.commit()
        reply = db.session.get(Comment, 2)
        assert reply.path == "0000000001/0000000002" and reply.depth == 1 and reply.visible
        assert db.session.get(User, 1).email_key == "ann@example.org"


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"format": "something"}, "not a forum export"),
        ({"version": 2}, "unsupported version 2"),
        ({"extras": []}, "unknown sections: extras"),
        ({"comments__0__status": "maybe"}, "comments[0].status: 'maybe' is not one of"),
        ({"comments__0__created_at": "yesterday"}, "comments[0].created_at"),
        ({"comments__0__created_at": "2025-01-06T09:30:15"}, "not a date with a time zone"),
        ({"comments__1__parent_id": 7}, "comment 2: parent 7 is not a comment of its post"),
        ({"comments__0__parent_id": 2}, "is in a loop"),
        ({"comments__0__post_id": 9}, "post 9 is not in the file"),
        ({"comments__0__reasons": KeyError}, "comments[0]: missing reasons"),
        ({"users__0__password_hash": "x"}, "users[0]: unknown password_hash"),
        ({"users__0__username": "x" * 31}, "longer than 30 characters"),
        ({"users__0__is_banned": "no"}, "is not true or false"),
        ({"posts__0__author_id": 5}, "contradicts itself"),
        ({"comments__0__author_url": "javascript:alert(1)"}, "not an http(s) address"),
        ({"posts__0__tags": ["a"]}, "tags should be a list of ids"),
    ],
)
def test_import_json_rejects_broken_documents_and_imports_nothing(app, changes, problem):
    with app.app_context():
        with pytest.raises(transfer.TransferError) as caught:
            transfer.import_json(io.StringIO(json.dumps(minimal_document(**changes))))
        db.session.rollback()
        assert problem in str(caught.value)
        assert db.session.scalar(select(func.count(User.id))) == 0


def test_import_json_reports_bad_json_with_its_line(app, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"format": "forum-export",\n"version": 1,\n"users": [}\n')
    result = app.test_cli_runner().invoke(args=["forum", "import-json", str(path)])
    assert result.exit_code == 1
    assert "line 3: not JSON" in result.output and "Nothing was imported." in result.output


def test_unsafe_html_in_a_document_is_sanitized_again(app):
    evil = '<p>Hi<img src=x onerror="alert(1)"></p>'
    document = minimal_document(
        comments__0__body_html=evil,
        posts__0__body_html="<script>alert(1)</script>",
        moderation_actions=[
            {
                "id": 1,
                "comment_id": 1,
                "moderator_id": 1,
                "action": "edit",
                "from_status": "approved",
                "to_status": "approved",
                "note": "",
                "batch": "b",
                "created_at": "2025-01-06T09:30:15+00:00",
                "data": {
                    "before": {"body_source": "Hi", "body_html": evil, "author_url": "javascript:x"}
                },
            }
        ],
    )
    with app.app_context():
        transfer.import_json(io.StringIO(json.dumps(document)))
        db.session.commit()
        assert db.session.get(Comment, 1).body_html == "<p>Hi</p>"
        assert db.session.get(Post, 1).body_html == "<p>B</p>"
        before = db.session.get(ModerationAction, 1).data["before"]
        assert before == {"body_source": "Hi", "body_html": "<p>Hi</p>", "author_url": ""}


def test_every_column_is_exported_or_deliberately_left_out_and_documented():
    doc = DOC.read_text(encoding="utf-8")
    for section in transfer.SECTIONS:
        columns = {c.key for c in section.model.__table__.columns}
        assert set(section.exported) | section.left_out == columns, section.name
        assert not set(section.exported) & section.left_out
        assert f"### `{section.name}`" in doc
        for name in [*section.exported, *section.nested, *section.left_out]:
            assert f"`{name}`" in doc, f"{section.name}.{name} is not in {DOC.name}"
