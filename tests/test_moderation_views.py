"""The dashboard through the test client: pages, actions, JSON, undo, hostile input."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from forum.extensions import db
from forum.models import Ban, Comment, ModerationAction, Post, Role, Setting, Status
from tests.factories import make_comment, make_post, make_user
from tests.helpers import count_queries, item_html, login_as

JSON = {"Accept": "application/json"}


@pytest.fixture
def ids(app):
    """A moderator and an admin; a post with a thread and a queue."""
    with app.app_context():
        moderator = make_user(Role.MODERATOR, username="mod")
        admin = make_user(Role.ADMIN, username="boss")
        post = make_post(admin, title="Queue post")
        parent = make_comment(post, status=Status.PENDING, body="The parent comment text")
        reply = make_comment(
            post,
            parent=parent,
            status=Status.PENDING,
            body='Reply with <a href="http://x.example">a link</a> <script>bad()</script>',
            author_name="Rita",
            author_email="rita@example.org",
            author_url="https://rita.example",
            ip="203.0.113.9",
            reasons=["links", "sanitized"],
            sanitizer_report=["tag <script>"],
        )
        spam = make_comment(post, status=Status.SPAM)
        approved = make_comment(post)
        db.session.commit()
        return {
            "mod": moderator.id,
            "admin": admin.id,
            "post": post.id,
            "slug": post.slug,
            "parent": parent.id,
            "reply": reply.id,
            "spam": spam.id,
            "approved": approved.id,
        }


@pytest.fixture
def mod_client(client, ids):
    login_as(client, ids["mod"])
    return client


def status_of(app, comment_id):
    with app.app_context():
        comment = db.session.get(Comment, comment_id)
        return comment.status.value if comment else None


def log_count(app, **where) -> int:
    with app.app_context():
        stmt = select(func.count(ModerationAction.id))
        for key, value in where.items():
            stmt = stmt.where(getattr(ModerationAction, key) == value)
        return db.session.scalar(stmt)


# Pages ------------------------------------------------------------------------------------


def test_queue_shows_everything_about_a_held_comment(mod_client, ids):
    html = mod_client.get("/moderation/").get_data(as_text=True)
    item = item_html(html, ids["reply"])
    assert "Queue post" in item  # the post
    assert "In reply to" in item and "The parent comment text" in item
    assert not re.search(r"In reply to <strong>[^<]*</strong>\s+:", item)  # no stray space
    for text in ("Rita", "rita@example.org", "https://rita.example", "203.0.113.9", "guest"):
        assert text in item
    assert "links" in item and "sanitized" in item  # why it was held
    # The text as readers see it: the sanitized HTML as markup, its link marked.
    body = re.search(r'<div class="comment-text item-body">(.*?)</div>', item, re.S)
    assert body, item
    assert '<a href="http://x.example" rel="nofollow ugc noopener">a link</a>' in body[1]
    assert "<script>bad()</script>" not in item  # the raw text is escaped ...
    assert "&lt;script&gt;bad()&lt;/script&gt;" in item  # ... behind a toggle
    assert "<details" in item and "The sanitizer removed: tag &lt;script&gt;" in item
    # Rita's history, counted by her address: her one held comment, not the queue's two.
    assert "0 approved, 1 pending, 0 spam, 0 rejected" in re.sub(r"<[^>]+>", "", item)
    for label in ("Approve", "Reject", "Spam"):
        assert f">{label}</button>" in item
    assert 'id="count-pending">2<' in html and 'id="count-spam">1<' in html
    for key in ("j", "k", "a", "s", "r", "u", "x"):
        assert f"<kbd>{key}</kbd>" in html


def test_queue_page_links_its_own_css_and_js_without_inline_script(mod_client):
    html = mod_client.get("/moderation/").get_data(as_text=True)
    assert "css/moderation.css" in html and "js/moderation.js" in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert " style=" not in html and "onclick" not in html


@pytest.mark.parametrize(
    "url",
    ["/moderation/?tab=approved", "/moderation/?tab=spam", "/moderation/?tab=rejected",
     "/moderation/?tab=flagged", "/moderation/?order=oldest", "/moderation/?q=parent",
     "/moderation/?group=ip&value=203.0.113.9", "/moderation/groups",
     "/moderation/groups?kind=text",
     "/moderation/groups?kind=domain&status=spam", "/moderation/log", "/moderation/rules",
     "/moderation/bans", "/moderation/log?action=approve&moderator=mod&comment=1"],
)  # fmt: skip
def test_pages_render(mod_client, url):
    assert mod_client.get(url).status_code == 200


def test_item_page_has_edit_reply_and_ban(mod_client, ids):
    html = mod_client.get(f"/moderation/comments/{ids['reply']}").get_data(as_text=True)
    for form in ("edit-form", "reply-form", "ban-form"):
        assert f'id="{form}"' in html


def seed_queue(count: int, start: int = 0) -> None:
    """Held replies under approved parents on five posts, some by members."""
    posts = [make_post() for _ in range(5)]
    for n in range(start, start + count):
        post = posts[n % 5]
        parent = make_comment(post, author_email=f"p{n}@example.org")
        make_comment(
            post, parent=parent, status=Status.PENDING, reasons=["links", "new comment"],
            author_email=f"a{n}@example.org", user=make_user() if n % 3 == 0 else None,
        )  # fmt: skip
    db.session.commit()


def test_queue_runs_a_constant_number_of_queries(app, client):
    with app.app_context():
        moderator_id = make_user(Role.MODERATOR).id
        seed_queue(10)
    login_as(client, moderator_id)
    client.get("/moderation/")  # warm up

    def measure(per_page: int) -> int:
        with count_queries(app) as statements:
            resp = client.get(f"/moderation/?per_page={per_page}")
        assert resp.status_code == 200
        assert resp.get_data(as_text=True).count('class="queue-item ') == min(per_page, total)
        return len(statements)

    total = 10
    small_queue = measure(10)
    with app.app_context():
        seed_queue(190, start=10)
    total = 200
    assert measure(10) == small_queue  # the queue grew twentyfold
    assert measure(200) == small_queue  # the page grew twentyfold
    assert small_queue <= 16


# Actions ----------------------------------------------------------------------------------


def test_approve_as_a_form_redirects_back_with_an_undo_notice(app, mod_client, ids):
    resp = mod_client.post(
        f"/moderation/comments/{ids['parent']}/approve", data={"next": "/moderation/?tab=pending"}
    )
    assert resp.status_code == 302 and resp.headers["Location"] == "/moderation/?tab=pending"
    assert status_of(app, ids["parent"]) == "approved"
    html = mod_client.get("/moderation/").get_data(as_text=True)
    assert "Approved 1 comment." in html and 'id="undo-button"' in html
    batch = re.search(r'name="batch" value="([0-9a-f]{30})"', html).group(1)
    assert "Approved 1 comment." not in mod_client.get("/moderation/").get_data(as_text=True)
    resp = mod_client.post("/moderation/undo", data={"batch": batch})
    assert resp.status_code == 302
    assert status_of(app, ids["parent"]) == "pending"


def test_approving_twice_changes_nothing_and_logs_once(app, mod_client, ids):
    url = f"/moderation/comments/{ids['parent']}/approve"
    first = mod_client.post(url, headers=JSON)
    second = mod_client.post(url, headers=JSON)
    assert first.status_code == second.status_code == 200
    assert first.json["changed"] == [ids["parent"]] and first.json["batch"]
    assert second.json["changed"] == [] and second.json["batch"] is None
    assert log_count(app, comment_id=ids["parent"]) == 1


def test_json_answer_carries_counts_and_the_parent_offer(app, mod_client, ids):
    resp = mod_client.post(f"/moderation/comments/{ids['reply']}/approve", headers=JSON)
    data = resp.json
    assert data["ok"] and data["message"] == "Approved 1 comment."
    assert data["pending_parents"] == [ids["parent"]]
    assert data["counts"]["pending"] == 1 and data["counts"]["approved"] == 2
    # The thread page still shows neither: the parent waits.
    page = mod_client.get(f"/posts/{ids['post']}/{ids['slug']}").get_data(as_text=True)
    assert "1 Response" in page
    resp = mod_client.post(
        "/moderation/bulk", data={"action": "approve", "ids": data["pending_parents"]}, headers=JSON
    )
    assert resp.json["changed"] == [ids["parent"]]
    page = mod_client.get(f"/posts/{ids['post']}/{ids['slug']}").get_data(as_text=True)
    assert "3 Responses" in page


def test_no_js_offer_to_approve_the_parent(mod_client, ids):
    mod_client.post(f"/moderation/comments/{ids['reply']}/approve")
    html = mod_client.get("/moderation/").get_data(as_text=True)
    assert 'id="offer-parents"' in html and f'name="ids" value="{ids["parent"]}"' in html


def test_bulk_whole_page_without_javascript(app, mod_client, ids):
    resp = mod_client.post(
        "/moderation/bulk",
        data={"action": "spam", "all_on_page": "y", "page_ids": [ids["parent"], ids["reply"]]},
    )
    assert resp.status_code == 302
    assert status_of(app, ids["parent"]) == status_of(app, ids["reply"]) == "spam"


def test_bulk_with_nothing_selected_is_a_message_not_an_error(mod_client, ids):
    resp = mod_client.post("/moderation/bulk", data={"action": "approve"}, follow_redirects=True)
    assert resp.status_code == 200 and "Select at least one comment" in resp.get_data(as_text=True)
    assert (
        mod_client.post("/moderation/bulk", data={"action": "approve"}, headers=JSON).status_code
        == 400
    )


def test_delete_and_undo_through_the_views(app, mod_client, ids):
    resp = mod_client.post(f"/moderation/comments/{ids['spam']}/delete", headers=JSON)
    assert resp.status_code == 200 and resp.json["batch"]
    assert status_of(app, ids["spam"]) is None
    assert (
        mod_client.post("/moderation/undo", data={"batch": resp.json["batch"]}).status_code == 302
    )
    assert status_of(app, ids["spam"]) == "spam"


def test_edit_then_approve(app, mod_client, ids):
    resp = mod_client.post(
        f"/moderation/comments/{ids['reply']}/edit",
        data={"body": "Cleaned up text", "note": "tidied"},
    )
    assert resp.status_code == 302
    with app.app_context():
        comment = db.session.get(Comment, ids["reply"])
        assert comment.status is Status.APPROVED and comment.body_source == "Cleaned up text"
        assert comment.sanitizer_report == []


def test_edit_with_an_empty_body_shows_the_form_again(app, mod_client, ids):
    resp = mod_client.post(f"/moderation/comments/{ids['reply']}/edit", data={"body": "   "})
    assert resp.status_code == 422
    assert status_of(app, ids["reply"]) == "pending"


def test_approve_and_reply(app, mod_client, ids):
    resp = mod_client.post(f"/moderation/comments/{ids['parent']}/reply", data={"body": "Welcome!"})
    assert resp.status_code == 302
    with app.app_context():
        reply = db.session.scalars(select(Comment).where(Comment.user_id == ids["mod"])).one()
        assert reply.parent_id == ids["parent"] and reply.visible
    assert status_of(app, ids["parent"]) == "approved"


def test_ban_from_the_queue_spams_the_authors_pending_comments(app, mod_client, ids):
    resp = mod_client.post(
        f"/moderation/comments/{ids['reply']}/ban", data={"email": "y", "ip": "y", "reason": "bot"}
    )
    assert resp.status_code == 302
    assert status_of(app, ids["reply"]) == "spam"
    with app.app_context():
        assert {(b.kind.value, b.value) for b in db.session.scalars(select(Ban))} == {
            ("email", "rita@example.org"),
            ("ip", "203.0.113.9"),
        }
    html = mod_client.get("/moderation/bans").get_data(as_text=True)
    assert "rita@example.org" in html


def test_ban_with_nothing_chosen_shows_the_form_again(mod_client, ids):
    resp = mod_client.post(f"/moderation/comments/{ids['reply']}/ban", data={})
    assert resp.status_code == 422 and "Choose an account" in resp.get_data(as_text=True)


def test_group_action_spams_a_whole_group(app, mod_client, ids):
    resp = mod_client.post(
        "/moderation/groups/action",
        data={"kind": "ip", "value": "203.0.113.9", "status": "pending", "action": "spam"},
    )
    assert resp.status_code == 302
    assert status_of(app, ids["reply"]) == "spam" and status_of(app, ids["parent"]) == "pending"


def test_ban_a_whole_group_from_the_groups_page(app, mod_client, ids):
    html = mod_client.get("/moderation/groups?kind=ip").get_data(as_text=True)
    action = re.search(r'<form method="post" action="([^"]+/ban)" class="group-ban">', html).group(
        1
    )
    resp = mod_client.post(
        action, data={"ip": "y", "remove_everything": "y", "next": "/moderation/groups"}
    )
    assert resp.status_code == 302 and resp.headers["Location"] == "/moderation/groups"
    assert status_of(app, ids["reply"]) == "spam"
    with app.app_context():
        assert [(b.kind.value, b.value) for b in db.session.scalars(select(Ban))] == [
            ("ip", "203.0.113.9")
        ]


def test_lift_a_ban(app, mod_client, ids):
    mod_client.post(f"/moderation/comments/{ids['reply']}/ban", data={"email": "y"})
    with app.app_context():
        ban_id = db.session.scalar(select(Ban.id))
    assert mod_client.post(f"/moderation/bans/{ban_id}/lift").status_code == 302
    with app.app_context():
        assert db.session.scalar(select(func.count(Ban.id))) == 0
    assert log_count(app, action="unban") == 1


# Settings, rules, log ----------------------------------------------------------------------


def test_settings_are_for_admins(app, client, ids):
    login_as(client, ids["mod"])
    assert client.get("/moderation/settings").status_code == 403
    assert client.post("/moderation/settings", data={"max_links": "5"}).status_code == 403
    login_as(client, ids["admin"])
    html = client.get("/moderation/settings").get_data(as_text=True)
    assert 'name="hold_words"' in html
    data = {
        "moderation_mode": "all", "max_links": "4", "hold_words": "casino\npoker",
        "block_words": "",
        "hold_on_sanitized": "y", "min_submit_seconds": "2", "flags_to_requeue": "2",
        "digest_minutes": "30", "max_depth": "4", "threads_per_page": "20",
        "edit_window_minutes": "5", "close_after_days": "0", "comment_max_length": "5000",
        "duplicate_window_seconds": "60",
    }  # fmt: skip
    assert client.post("/moderation/settings", data=data).status_code == 302
    with app.app_context():
        stored = {s.key: s.value for s in db.session.scalars(select(Setting))}
    assert stored["moderation_mode"] == "all" and stored["hold_words"] == ["casino", "poker"]
    assert stored["max_links"] == 4
    bad = dict(data, max_links="-1", moderation_mode="sometimes")
    assert client.post("/moderation/settings", data=bad).status_code == 422


def test_rule_statistics_page(mod_client, ids):
    mod_client.post(f"/moderation/comments/{ids['reply']}/approve")
    html = mod_client.get("/moderation/rules").get_data(as_text=True)
    row = html[html.index('data-rule="links"') :]
    row = row[: row.index("</tr>")]
    assert '<td class="held">1</td>' in row and '<td class="approved">1</td>' in row


def test_audit_log_filters(mod_client, ids):
    mod_client.post(f"/moderation/comments/{ids['reply']}/spam")
    mod_client.post(f"/moderation/comments/{ids['parent']}/approve")
    html = mod_client.get("/moderation/log?action=spam").get_data(as_text=True)
    assert html.count('class="log-entry"') == 1
    html = mod_client.get(f"/moderation/log?comment={ids['parent']}").get_data(as_text=True)
    assert html.count('class="log-entry"') == 1 and "approve" in html
    html = mod_client.get("/moderation/log?moderator=MOD").get_data(as_text=True)
    assert html.count('class="log-entry"') == 2
    assert (
        mod_client.get("/moderation/log?moderator=nobody")
        .get_data(as_text=True)
        .count('class="log-entry"')
        == 0
    )


# The queue loads further pages for the script ------------------------------------------------


def test_json_pages_for_the_script(app, mod_client, ids):
    with app.app_context():
        post = db.session.get(Post, ids["post"])
        for _ in range(5):
            make_comment(post, status=Status.PENDING)
        db.session.commit()
    first = mod_client.get("/moderation/?per_page=3", headers=JSON).json
    assert first["html"].count('class="queue-item ') == 3 and first["next_url"]
    second = mod_client.get(first["next_url"], headers=JSON).json
    assert second["html"].count('class="queue-item ') == 3
    third = mod_client.get(second["next_url"], headers=JSON).json
    assert third["html"].count('class="queue-item ') == 1 and third["next_url"] is None
    assert first["counts"]["pending"] == 7


# Hostile input --------------------------------------------------------------------------------

HOSTILE_POSTS = [
    ("/moderation/bulk", {"action": "approve", "ids": "abc"}, 400),
    ("/moderation/bulk", {"action": "approve", "ids": "1.5"}, 400),
    ("/moderation/bulk", {"action": "approve", "ids": "-1"}, 400),
    ("/moderation/bulk", {"action": "approve", "ids": "１２"}, 400),  # full-width digits
    ("/moderation/bulk", {"action": "approve", "ids": "9" * 40}, 400),
    ("/moderation/bulk", {"action": "approve", "ids": [str(i) for i in range(501)]}, 400),
    ("/moderation/bulk", {"action": "publish", "ids": "1"}, 400),
    ("/moderation/bulk", {"action": "", "ids": "1"}, 400),
    ("/moderation/bulk", {"ids": "1"}, 400),
    ("/moderation/bulk", {"action": "approve", "ids": "999999"}, 404),
    ("/moderation/bulk", {"action": "approve", "ids": "1", "reason": "not a preset"}, 400),
    ("/moderation/bulk", {"action": "approve", "ids": "1", "note": "x" * 501}, 400),
    ("/moderation/bulk", {"action": "approve", "ids": "0"}, 400),
    ("/moderation/bulk", {"action": "approve", "ids": str(2**31 - 1)}, 404),
    ("/moderation/bulk", {"action": "approve", "ids": str(2**31)}, 400),
    ("/moderation/bulk", {"action": "approve", "ids": str(2**63)}, 400),
    ("/moderation/bulk", {"action": "approve", "ids": "\u0661"}, 400),
    ("/moderation/comments/999999/approve", {}, 404),
    ("/moderation/comments/99999999999999999999999/approve", {}, 404),
    ("/moderation/comments/9223372036854775808/spam", {}, 404),
    ("/moderation/comments/abc/approve", {}, 404),
    ("/moderation/comments/1/publish", {}, 404),
    ("/moderation/comments/999999/edit", {"body": "x"}, 404),
    ("/moderation/comments/1/edit", {}, 422),
    ("/moderation/comments/1/edit", {"body": "x" * 50_001}, 422),
    ("/moderation/comments/1/edit", {"body": "ok", "reason": "made up"}, 422),
    ("/moderation/comments/1/reply", {"body": ""}, 422),
    ("/moderation/comments/1/reply", {}, 422),
    ("/moderation/comments/1/ban", {}, 422),
    ("/moderation/comments/1/ban", {"email": "y", "reason": "x" * 301}, 400),
    ("/moderation/comments/999999/reply", {"body": "x"}, 404),
    ("/moderation/comments/999999/ban", {"email": "y"}, 404),
    ("/moderation/undo", {"batch": "nope"}, 400),
    ("/moderation/undo", {}, 400),
    ("/moderation/undo", {"batch": "0" * 30}, 404),
    ("/moderation/groups/action", {"kind": "name", "value": "x", "action": "spam"}, 400),
    ("/moderation/groups/action", {"kind": "ip", "action": "spam"}, 400),
    ("/moderation/groups/action", {"kind": "ip", "value": "x", "action": "explode"}, 400),
    (
        "/moderation/groups/action",
        {"kind": "ip", "value": "x", "status": "gone", "action": "spam"},
        400,
    ),
    ("/moderation/bans/999999/lift", {}, 404),
]


@pytest.mark.parametrize(("url", "data", "code"), HOSTILE_POSTS)
@pytest.mark.parametrize("headers", [{}, JSON], ids=["form", "json"])
def test_hostile_posts_are_4xx_never_500(app, mod_client, ids, url, data, code, headers):
    before = log_count(app)
    resp = mod_client.post(url, data=data, headers=headers)
    assert resp.status_code == code, resp.get_data(as_text=True)[:500]
    assert log_count(app) == before


@pytest.mark.parametrize("action", ["delete"])
@pytest.mark.parametrize("which", ["parent", "approved"])
def test_actions_on_comments_of_other_statuses_are_400(app, mod_client, ids, action, which):
    resp = mod_client.post(f"/moderation/comments/{ids[which]}/{action}")
    assert resp.status_code == 400
    assert status_of(app, ids[which]) is not None


@pytest.mark.parametrize(
    "query",
    ["tab=deleted", "order=random", "post=abc", "post=-1", "post=0", "post=99999999999999999999",
     "per_page=0", "per_page=201",
     "per_page=x", "group=name&value=x", "after=garbage", "before=2024-01-01~x"],
)  # fmt: skip
def test_hostile_queue_queries_are_4xx(mod_client, ids, query):
    assert mod_client.get(f"/moderation/?{query}").status_code in (400, 404)


@pytest.mark.parametrize(
    "url",
    ["/moderation/log?action=drop", "/moderation/comments/99999999999999999999",
     "/moderation/groups?kind=name", "/moderation/groups?status=deleted",
     "/moderation/comments/999999"],
)  # fmt: skip
def test_hostile_page_queries_are_404(mod_client, ids, url):
    assert mod_client.get(url).status_code == 404


@pytest.mark.parametrize(
    "query", ["comment=x", "before=-5", "comment=99999999999999999999", "comment=%D9%A1"]
)
def test_impossible_numbers_in_the_log_query_are_400(mod_client, ids, query):
    assert mod_client.get(f"/moderation/log?{query}").status_code == 400


@pytest.mark.parametrize(
    "target",
    ["https://evil.example/", "//evil.example", "/\\evil", "javascript:alert(1)", "/posts/1"],
)
def test_next_never_leaves_the_dashboard(mod_client, ids, target):
    resp = mod_client.post(f"/moderation/comments/{ids['parent']}/approve", data={"next": target})
    assert resp.status_code == 302 and resp.headers["Location"] == "/moderation/"


def test_search_with_huge_and_odd_text_is_fine(mod_client, ids):
    for q in ["x" * 5000, "%_%", "' OR 1=1 --", "\u202e", "<script>"]:
        for name in ("q", "author"):
            assert mod_client.get("/moderation/", query_string={name: q}).status_code == 200
    # NUL bytes (which PostgreSQL refuses): a 400 from the site-wide check, or ignored.
    for url in ["/moderation/?q=a%00b", "/moderation/?author=%00",
                "/moderation/?group=ip&value=%00", "/moderation/log?moderator=%00"]:  # fmt: skip
        assert mod_client.get(url).status_code in (200, 400)


# CSRF ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": True}])
def test_actions_need_the_csrf_token_in_the_form_or_header(app, client, ids):
    login_as(client, ids["mod"])
    url = f"/moderation/comments/{ids['parent']}/approve"
    assert client.post(url).status_code == 400
    assert client.post(url, headers={"X-CSRFToken": "forged", **JSON}).status_code == 400
    assert status_of(app, ids["parent"]) == "pending"
    html = client.get("/moderation/").get_data(as_text=True)
    token = re.search(r'data-csrf="([^"]+)"', html).group(1)
    resp = client.post(url, headers={"X-CSRFToken": token, **JSON})
    assert resp.status_code == 200 and resp.json["changed"] == [ids["parent"]]
    resp = client.post(f"/moderation/comments/{ids['reply']}/spam", data={"csrf_token": token})
    assert resp.status_code == 302 and status_of(app, ids["reply"]) == "spam"
