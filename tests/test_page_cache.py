"""The render cache never shows a page older than the latest change a reader could see.

Each freshness test renders a page (twice: the second one comes from the cache), makes
one kind of change through the services the views use, and checks that the next page
equals a render with the cache turned off and shows the change. Then: conditional GET,
the byte budget, the Redis backend, and a comment posted from a cached page.
"""

from __future__ import annotations

import dataclasses
import os
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import redis
from sqlalchemy import event, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session as OrmSession

from forum.cache import Entry, MemoryCache, NoCache, RedisCache
from forum.extensions import db, driver_load
from forum.models import BanKind, Comment, Flag, Post, Role, Setting, Status, Tag, User
from forum.services import bans, comments, counters, moderation, undo, versions
from forum.services import settings as settings_service
from tests.factories import make_comment, make_post, make_user
from tests.helpers import count_queries, empty_database, login_as, make_test_app

REDIS_URL = os.environ.get("FORUM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
TOKENS = re.compile(r'(name="(?:csrf_token|rendered_at)"(?: type="hidden")? value=")[^"]*"')


def normalized(body: bytes) -> str:
    """A page without what differs on every request (the CSRF token, the form's stamp)."""
    return TOKENS.sub(r'\1"', body.decode())


def uncached(app, client, path: str):
    """The page rendered now, the cache turned off for this one request."""
    pc = app.extensions["page_cache"]
    app.extensions["page_cache"] = dataclasses.replace(pc, backend=NoCache())
    try:
        return client.get(path)
    finally:
        app.extensions["page_cache"] = pc


@pytest.fixture
def world(app):
    with app.app_context():
        admin = make_user(Role.ADMIN, username="root")
        moderator = make_user(Role.MODERATOR, username="mod")
        member = make_user(username="member")
        other = make_user(username="other")
        post = make_post(admin, title="Cached post")
        post.tags.append(Tag(name="Cached", slug="cached"))
        shown = make_comment(post, body="An approved comment", user=other)
        held = make_comment(post, status=Status.PENDING, body="A held comment")
        own = make_comment(post, body="The member's own comment", user=member)
        db.session.commit()
        return {
            "admin": admin.id,
            "moderator": moderator.id,
            "member": member.id,
            "other": other.id,
            "post": post.id,
            "path": f"/posts/{post.id}/{post.slug}",
            "shown": shown.id,
            "held": held.id,
            "own": own.id,
        }


def in_app(app, change: Callable[[dict], object], world: dict) -> None:
    with app.app_context():
        change(world)
        db.session.commit()


def moderator(world) -> User:
    return db.session.get(User, world["moderator"])


def decide(action: str, key: str) -> Callable[[dict], object]:
    def change(world):
        comment = db.session.get(Comment, world[key])
        moderation.decide(action, [comment], by=moderator(world))

    return change


def approve_held(world):
    comment = db.session.get(Comment, world["held"])
    world["batch"] = moderation.decide("approve", [comment], by=moderator(world)).batch


def spam_shown(world):
    comment = db.session.get(Comment, world["shown"])
    world["batch"] = moderation.decide("spam", [comment], by=moderator(world)).batch


def spam_and_delete(world):
    spam_shown(world)
    db.session.flush()
    comment = db.session.get(Comment, world["shown"])
    world["batch"] = moderation.decide("delete", [comment], moderator(world)).batch


def undo_batch(world):
    undo.undo(world["batch"], by=moderator(world))


def member_edit(world):
    comment = db.session.get(Comment, world["own"])
    member = db.session.get(User, world["member"])
    comments.edit_comment(comment, "Edited by its author", member, settings_service.load())


def moderator_edit(world):
    comment = db.session.get(Comment, world["held"])
    moderation.edit_and_approve(
        comment, "Edited by a moderator", moderator(world), settings_service.load()
    )


def ban_sweep(world):
    comment = db.session.get(Comment, world["shown"])
    bans.ban_author(comment, [BanKind.ACCOUNT], moderator(world), remove_everything=True)


def setting(world):
    settings_service.save({"threads_per_page": 1})


def close_after_days(world):
    settings_service.save({"close_after_days": 1})
    db.session.get(Post, world["post"]).created_at -= timedelta(days=3)


def post_edit(world):
    post = db.session.get(Post, world["post"])
    post.body_html = "<p>A new post body</p>"


def comments_closed(world):
    db.session.get(Post, world["post"]).comments_open = False


def author_renamed(world):
    db.session.get(User, world["admin"]).display_name = "The Renamed Author"


def tag_renamed(world):
    db.session.scalar(select(Tag)).name = "Renamed tag"


def member_deleted_own(world):
    comment = db.session.get(Comment, world["own"])
    member = db.session.get(User, world["member"])
    comments.delete_own_comment(comment, member, settings_service.load())


CHANGES = {
    "approve": (decide("approve", "held"), "A held comment", True),
    "reject": (decide("reject", "shown"), "An approved comment", False),
    "spam": (decide("spam", "shown"), "An approved comment", False),
    "undo approve": (undo_batch, "A held comment", False),
    "undo spam": (undo_batch, "An approved comment", True),
    "edit by member": (member_edit, "Edited by its author", True),
    "edit by moderator": (moderator_edit, "Edited by a moderator", True),
    "delete by member": (member_deleted_own, "own comment", False),
    "ban sweep": (ban_sweep, "An approved comment", False),
    "setting": (setting, "Comments page 1 of", True),
    "auto close": (close_after_days, "Comments are closed.", True),
    "post edit": (post_edit, "A new post body", True),
    "comments closed": (comments_closed, "Comments are closed.", True),
    "author renamed": (author_renamed, "The Renamed Author", True),
}


# Changes that need an earlier one to undo: made before the first render.
SETUP = {"undo approve": approve_held, "undo spam": spam_shown}


@pytest.mark.parametrize("viewer", ["anonymous", "member"])
@pytest.mark.parametrize("kind", list(CHANGES))
def test_no_cached_thread_page_outlives_a_change(app, world, kind, viewer):
    change, text, shown_after = CHANGES[kind]
    if kind in SETUP:
        in_app(app, SETUP[kind], world)
    client = app.test_client()
    if viewer == "member":
        login_as(client, world["member"])
    path = world["path"]
    first = client.get(path)
    assert first.status_code == 200
    assert normalized(client.get(path).data) == normalized(first.data)  # from the cache
    assert (text in first.data.decode()) is not shown_after
    in_app(app, change, world)
    after = client.get(path)
    assert normalized(after.data) == normalized(uncached(app, client, path).data)
    assert (text in after.data.decode()) is shown_after


# The changes each of these pages shows.
SHOWN_ON = {
    "/": ("approve", "spam", "edit by moderator", "post edit", "author renamed"),
    "/tags/cached": ("approve", "spam", "edit by moderator", "post edit", "author renamed"),
    "/feed.atom": ("post edit", "author renamed"),
    "/comments/feed.atom": ("approve", "spam", "edit by moderator"),
    "/posts/{post}/feed.atom": ("approve", "spam", "edit by moderator"),
}


@pytest.mark.parametrize(
    "path",
    ["/", "/tags/cached", "/feed.atom", "/comments/feed.atom", "/posts/{post}/feed.atom"],
)
@pytest.mark.parametrize(
    "kind", ["approve", "spam", "edit by moderator", "post edit", "author renamed"]
)
def test_no_cached_list_or_feed_outlives_a_change(app, world, path, kind):
    change, _text, _shown = CHANGES[kind]
    shown = kind in SHOWN_ON[path]
    path = path.format(post=world["post"])
    client = app.test_client()
    before = client.get(path).data
    assert client.get(path).data == before
    in_app(app, change, world)
    after = client.get(path)
    assert after.data == uncached(app, client, path).data
    assert (after.data != before) is shown


@pytest.mark.parametrize("viewer", ["anonymous", "member"])
def test_tag_rename_reaches_the_front_page_and_the_tag_page(app, world, viewer):
    client = app.test_client()
    if viewer == "member":
        login_as(client, world["member"])
    for path in ("/", "/tags/cached"):
        assert "Renamed tag" not in client.get(path).text
    in_app(app, tag_renamed, world)
    for path in ("/", "/tags/cached"):
        page = client.get(path)
        assert "Renamed tag" in page.text
        assert normalized(page.data) == normalized(uncached(app, client, path).data)
        assert ("ETag" in page.headers) is (viewer == "anonymous")


def test_a_new_comment_with_moderation_off_shows_at_once(app, world):
    in_app(app, lambda w: settings_service.save({"moderation_mode": "off"}), world)
    client = app.test_client()
    path = world["path"]
    stamp = form_values(client.get(path).text)["rendered_at"]
    response = client.post(
        f"/posts/{world['post']}/comments",
        data={
            "body": "Straight through",
            "author_name": "Ann",
            "author_email": "a@example.org",
            "rendered_at": stamp,
        },
    )
    assert response.status_code == 302
    assert "Your comment is published" in client.get(path).text  # the flash, rendered
    page = client.get(path)
    assert "Straight through" in page.text
    assert normalized(page.data) == normalized(uncached(app, client, path).data)


def test_guest_sees_own_pending_comment_then_others_do_not(app, world):
    guest, reader = app.test_client(), app.test_client()
    path = world["path"]
    guest.get(path), reader.get(path)
    guest.post(
        f"/posts/{world['post']}/comments",
        data={"body": "Held for me", "author_name": "Ann", "author_email": "a@example.org"},
    )
    guest.get(path)  # the flash is shown once, on a page rendered for this guest only
    assert "Held for me" in guest.get(path).text
    assert "Held for me" not in reader.get(path).text


def test_a_cached_page_costs_one_query_for_an_anonymous_reader(app, world):
    client = app.test_client()
    client.get(world["path"])
    with count_queries(app) as statements:
        assert client.get(world["path"]).status_code == 200
    assert len(statements) == 1, statements  # the versions


@pytest.mark.parametrize("path", ["thread", "/", "/tags/cached", "/feed.atom"])
def test_a_cached_page_never_opens_the_orm_session(app, world, path):
    """The versions are read on a connection of their own when nothing else needs the
    database: the session's begin, close and rollback cost more than the query."""
    path = world["path"] if path == "thread" else path
    client = app.test_client()
    client.get(path)
    begun = []

    def record(session, _transaction, _connection) -> None:
        begun.append(session)

    event.listen(OrmSession, "after_begin", record)
    try:
        assert client.get(path).status_code == 200
    finally:
        event.remove(OrmSession, "after_begin", record)
    assert begun == []


def test_inside_a_transaction_the_versions_come_from_its_snapshot(app, world):
    """What a page renders after reading the versions is read in the same transaction."""
    used = []

    def record(conn, *_args) -> None:
        used.append(conn)

    with app.test_request_context("/"):
        db.session.get(Post, world["post"])  # the session's transaction is open
        mine = db.session.connection()
        event.listen(db.engine, "before_cursor_execute", record)
        try:
            versions.current(world["post"])
        finally:
            event.remove(db.engine, "before_cursor_execute", record)
    assert used == [mine]


def test_a_kept_page_reads_its_versions_on_the_driver_and_the_counters_see_it(app, world):
    """Outside a transaction the versions are read on a pooled connection's own cursor
    (extensions.driver_read): the same values as in a transaction, and the statement
    counters still see that one statement."""
    client = app.test_client()
    client.get(world["path"])  # kept from here
    with count_queries(app) as statements:
        assert client.get(world["path"]).status_code == 200
    assert len(statements) == 1 and "page_version" in statements[0]
    with app.app_context():
        on_the_driver = versions.current(world["post"])
        db.session.get(Post, world["post"])  # the session's transaction is open
        assert versions.current(world["post"]) == on_the_driver
        comment = make_comment(db.session.get(Post, world["post"]), status=Status.APPROVED)
        db.session.commit()
        assert comment.id and versions.current(world["post"]).post > on_the_driver.post


def test_a_members_kept_page_opens_no_transaction_and_sees_a_ban_at_once(app, world):
    """A member's kept page reads the user and the versions on the driver (no BEGIN, no
    ROLLBACK: extensions.driver_load), and the counters see both statements. What the page
    depends on about the user is still read on every request: a ban shows at once."""
    client = app.test_client()
    login_as(client, world["member"])
    client.get(world["path"])  # kept from here
    with app.app_context():
        engine = db.engine
    began = []

    def begin(connection) -> None:
        began.append(connection)

    event.listen(engine, "begin", begin)
    try:
        with count_queries(app) as statements:
            page = client.get(world["path"])
    finally:
        event.remove(engine, "begin", begin)
    assert page.status_code == 200 and "The member's own comment" in page.text
    assert began == [] and len(statements) == 2
    assert any('FROM "user"' in s or "FROM user" in s for s in statements)
    with app.app_context():
        db.session.get(User, world["member"]).is_banned = True
        db.session.commit()
    assert "Your account may not comment" in client.get(world["path"]).text


def test_a_user_read_on_the_driver_is_the_user_the_orm_loads(app, world):
    """Every column converted as the ORM converts it (an enum, a boolean, UTC datetimes),
    and the entity is in the session like a loaded one: changes to it are flushed."""
    with app.app_context():
        db.session.get(User, world["moderator"]).last_login_at = datetime(2026, 1, 2, tzinfo=UTC)
        db.session.commit()
    columns = [c.key for c in sa_inspect(User).column_attrs]
    with app.test_request_context():
        loaded = db.session.get(User, world["moderator"])
        expected = {key: getattr(loaded, key) for key in columns}
        db.session.rollback()
        db.session.expunge_all()
        read = driver_load(User, world["moderator"])
        assert {key: getattr(read, key) for key in columns} == expected
        assert read.role is Role.MODERATOR and read.is_banned is False
        assert read.last_login_at == datetime(2026, 1, 2, tzinfo=UTC)
        assert db.session.get(User, world["moderator"]) is read  # in the identity map
        read.display_name = "Changed on the driver's entity"
        db.session.commit()
        assert driver_load(User, 10**9) is None
    with app.app_context():
        assert db.session.get(User, world["moderator"]).display_name == (
            "Changed on the driver's entity"
        )


def test_a_write_loads_its_user_in_its_own_transaction(app, world):
    """A POST reads the user in the transaction it writes in (on SQLite, the write lock's),
    never on the driver: a ban or a role change cannot land between the two. A page read
    opens none."""
    from forum.auth.views import load_user

    for method, in_transaction in (("POST", True), ("GET", False), ("HEAD", False)):
        with app.test_request_context("/", method=method):
            user = load_user(f"{world['member']}:")
            assert user is not None and user.id == world["member"]
            assert db.session().holds_connection() is in_transaction, method


def test_a_page_that_closes_by_itself_expires_then_and_stays_cached_after(app, world, monkeypatch):
    import time as real_time

    with app.app_context():
        settings_service.save({"close_after_days": 1})
        post = db.session.get(Post, world["post"])
        closes = post.created_at.timestamp() + 86400
        db.session.commit()
    client = app.test_client()
    assert "Comments are closed." not in client.get(world["path"]).text
    monkeypatch.setattr(real_time, "time", lambda: closes + 1)
    later = datetime.fromtimestamp(closes + 1, UTC)
    monkeypatch.setattr("forum.services.comments.utcnow", lambda: later)
    assert "Comments are closed." in client.get(world["path"]).text
    with count_queries(app) as statements:
        assert "Comments are closed." in client.get(world["path"]).text
    assert len(statements) == 1


def test_moderators_and_flashes_are_never_served_from_the_cache(app, world):
    client = app.test_client()
    login_as(client, world["moderator"])
    client.get(world["path"])
    with count_queries(app) as statements:
        client.get(world["path"])
    assert len(statements) > 3


# Conditional GET -------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["{path}", "/", "/feed.atom", "/posts/{post}/feed.atom"])
def test_unchanged_page_answers_304_and_a_change_200(app, world, path):
    path = path.format(path=world["path"], post=world["post"])
    client = app.test_client()
    first = client.get(path)
    etag = first.headers["ETag"]
    assert etag.startswith('W/"')
    again = client.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.data == b""
    in_app(app, decide("approve", "held"), world)
    changed = client.get(path, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag


def test_last_modified_only_once_its_second_has_passed(app, world, monkeypatch):
    in_app(app, decide("approve", "held"), world)
    client = app.test_client()
    response = client.get("/feed.atom")
    if "Last-Modified" not in response.headers:  # the change was this very second
        import time

        time.sleep(1.05)
        response = client.get("/feed.atom")
    since = response.headers["Last-Modified"]
    assert client.get("/feed.atom", headers={"If-Modified-Since": since}).status_code == 304
    in_app(app, decide("spam", "shown"), world)
    assert client.get("/feed.atom", headers={"If-Modified-Since": since}).status_code == 200


def test_members_get_no_validators_and_never_a_304(app, world):
    client = app.test_client()
    login_as(client, world["member"])
    first = client.get(world["path"])
    assert "ETag" not in first.headers
    assert client.get(world["path"], headers={"If-None-Match": "*"}).status_code == 200


def test_signing_in_never_revalidates_the_anonymous_page(app, world):
    client = app.test_client()
    etag = client.get(world["path"]).headers["ETag"]
    login_as(client, world["member"])
    page = client.get(world["path"], headers={"If-None-Match": etag})
    assert page.status_code == 200
    assert "Commenting as" in page.text


def test_a_page_with_a_flash_is_rendered_with_it(app, world):
    client = app.test_client()
    etag = client.get(world["path"]).headers["ETag"]
    with client.session_transaction() as sess:
        sess["_flashes"] = [("info", "A message for you")]
    page = client.get(world["path"], headers={"If-None-Match": etag})
    assert page.status_code == 200
    assert "A message for you" in page.text


# With CSRF on: the token and the stamp filled in per request -----------------------------


@pytest.fixture
def csrf_app(database_url, tmp_path):
    app = make_test_app(
        database_url, tmp_path, WTF_CSRF_ENABLED=True, MODERATION_MIN_SUBMIT_SECONDS=3
    )
    if database_url is None:
        with app.app_context():
            db.create_all()
    yield app
    empty_database(app, database_url)


def form_values(page: str) -> dict[str, str]:
    return dict(re.findall(r'name="(csrf_token|rendered_at)" type="hidden" value="([^"]*)"', page))


def test_a_guest_comments_from_a_cached_page(csrf_app, monkeypatch):
    app = csrf_app
    with app.app_context():
        post = make_post(make_user(Role.ADMIN), title="Token post")
        make_comment(post, body="Hello")
        db.session.commit()
        path, post_id = f"/posts/{post.id}/{post.slug}", post.id
    warm = app.test_client()
    warm.get(path)  # another reader fills the cache
    guest = app.test_client()
    with count_queries(app) as statements:
        page = guest.get(path)
    assert len(statements) == 1  # served from the cache
    values = form_values(page.text)
    assert values["csrf_token"] and values["rendered_at"]
    assert values != form_values(warm.get(path).text)  # each reader's own
    import time as real_time

    later = real_time.time() + 10
    monkeypatch.setattr("forum.posts.page.time.time", lambda: later)
    response = guest.post(
        f"/posts/{post_id}/comments",
        data={
            **values,
            "body": "From a cached page",
            "author_name": "Ann",
            "author_email": "ann@example.org",
        },
    )
    assert response.status_code == 302
    with app.app_context():
        comment = db.session.scalar(select(Comment).where(Comment.author_name == "Ann"))
        assert comment is not None
        assert comment.status is not Status.SPAM  # the stamp read as 10 s, not "too fast"
    # A 304 keeps the page whose token matches this session; another session gets 200.
    guest.get(path)  # the flash
    etag = guest.get(path).headers["ETag"]
    assert guest.get(path, headers={"If-None-Match": etag}).status_code == 304
    assert app.test_client().get(path, headers={"If-None-Match": etag}).status_code == 200


def test_no_marker_is_left_in_a_served_page(csrf_app):
    app = csrf_app
    with app.app_context():
        post = make_post(make_user(Role.ADMIN), title="Marker post")
        member = make_user(username="reader")
        db.session.commit()
        path, member_id = f"/posts/{post.id}/{post.slug}", member.id
    mark = app.extensions["page_cache"].mark
    anonymous, signed = app.test_client(), app.test_client()
    login_as(signed, member_id)
    for client in (anonymous, signed):
        for _ in range(2):
            page = client.get(path).text
            assert mark not in page
            assert form_values(page)["csrf_token"]


# Versions --------------------------------------------------------------------------------


def test_every_shown_change_bumps_in_the_same_transaction(app, world):
    with app.app_context():
        before = versions.current(world["post"])
        db.session.get(Comment, world["shown"]).author_name = "Renamed guest"
        db.session.flush()
        db.session.rollback()
        assert versions.current(world["post"]) == before  # rolled back with the change
        db.session.get(Comment, world["shown"]).author_name = "Renamed guest"
        db.session.commit()
        after = versions.current(world["post"])
        assert after.post[0] == before.post[0] + 1
        assert after.site[0] == before.site[0] + 1
        assert after.global_ == before.global_
        db.session.add(Setting(key="max_links", value=5))
        db.session.commit()
        assert versions.current(world["post"]).global_[0] == before.global_[0] + 1


def test_a_new_comment_bumps_its_post_and_the_site_not_everything(app, world):
    # Every cached page carries the GLOBAL version: a comment must not invalidate them all.
    client = app.test_client()
    stamp = form_values(client.get(world["path"]).text)["rendered_at"]
    with app.app_context():
        before = versions.current(world["post"])
    response = client.post(
        f"/posts/{world['post']}/comments",
        data={
            "body": "A new comment",
            "author_name": "Ann",
            "author_email": "a@example.org",
            "rendered_at": stamp,
        },
    )
    assert response.status_code == 302
    with app.app_context():
        after = versions.current(world["post"])
    assert after.post[0] == before.post[0] + 1
    assert after.site[0] == before.site[0] + 1
    assert after.global_ == before.global_


def test_a_sign_in_bumps_nothing(app, world):
    with app.app_context():
        before = versions.current(world["post"]), versions.queue_key()
        user = db.session.get(User, world["member"])
        user.last_login_at = user.created_at
        db.session.commit()
        assert (versions.current(world["post"]), versions.queue_key()) == before


def test_a_flag_bumps_the_dashboard_and_no_readers_page(app, world):
    with app.app_context():
        before = versions.current(world["post"]), versions.queue_key()
        db.session.add(Flag(comment_id=world["shown"], user_id=world["member"], reason="spam"))
        db.session.commit()
        assert versions.current(world["post"]) == before[0]
        assert versions.queue_key() != before[1]


def test_every_change_a_reader_sees_bumps_the_dashboard_too(app, world):
    with app.app_context():
        before = versions.queue_key()
        db.session.get(Comment, world["shown"]).author_name = "Renamed guest"
        db.session.commit()
        assert versions.queue_key() != before


def test_a_counters_rebuild_around_the_session_bumps_the_dashboard(app, world):
    """bench/datagen.py loads comments on a connection of its own, then rebuilds."""
    with app.app_context():
        before = versions.queue_key()
        db.session.close()
        with db.engine.begin() as connection:
            counters.rebuild_on(connection)
        assert versions.queue_key() != before


# The byte budget --------------------------------------------------------------------------


def entry(size: int) -> Entry:
    return Entry((b"x" * size,))


def test_lru_keeps_within_its_byte_budget_and_drops_the_oldest():
    cache = MemoryCache(max_bytes=10_000)
    for i in range(10):
        cache.set(f"k{i}", entry(2_000))
        assert cache.bytes <= 10_000
    assert cache.get("k0") is None
    assert cache.get("k9") is not None
    cache.get("k6")  # used: k7 is now the oldest
    cache.set("new", entry(2_000))
    assert cache.get("k6") is not None
    assert cache.get("k7") is None
    assert cache.bytes == sum(e.size for e in cache._entries.values())


def test_lru_refuses_an_entry_larger_than_a_quarter_of_the_budget():
    cache = MemoryCache(max_bytes=10_000)
    cache.set("small", entry(100))
    cache.set("huge", entry(5_000))
    assert cache.get("huge") is None
    assert cache.get("small") is not None


def test_entry_round_trips_and_fills():
    e = Entry((b"<p>", b"c", b"</p>", b"t", b""), {"slug": "s", "until": 1.5})
    again = Entry.loads(e.dumps())
    assert again == e
    assert again.fill({b"c": b"TOKEN", b"t": b"STAMP"}) == b"<p>TOKEN</p>STAMP"


def test_cache_off_with_a_zero_budget(database_url, tmp_path):
    app = make_test_app(database_url, tmp_path, PAGE_CACHE_BYTES=0)
    assert isinstance(app.extensions["page_cache"].backend, NoCache)


# Redis ---------------------------------------------------------------------------------------


def redis_url() -> str:
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as error:
        message = f"Redis not reachable at {REDIS_URL}: {error}"
        if os.environ.get("FORUM_REQUIRE_REDIS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def redis_apps(database_url, tmp_path):
    """Two apps (two workers) on one database, sharing one Redis cache."""
    url = redis_url()
    shared = database_url or f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    secret = f"redis-test-{uuid.uuid4().hex}"  # keys of this test only
    apps = [make_test_app(shared, tmp_path, CACHE_URL=url, SECRET_KEY=secret) for _ in (0, 1)]
    with apps[0].app_context():
        db.create_all()
    yield apps
    apps[0].extensions["page_cache"].backend.clear()
    with apps[1].app_context():  # the second worker's connections, closed before GC does
        db.session.remove()
        db.engine.dispose()
    if database_url is not None:
        empty_database(apps[0], database_url)
        return
    with apps[0].app_context():
        db.session.remove()
        db.drop_all()
        db.engine.dispose()


def test_redis_backend_is_shared_by_workers_and_stays_fresh(redis_apps):
    first, second = redis_apps
    assert isinstance(first.extensions["page_cache"].backend, RedisCache)
    with first.app_context():
        post = make_post(make_user(Role.ADMIN), title="Shared post")
        held = make_comment(post, status=Status.PENDING, body="Shared held")
        mod = make_user(Role.MODERATOR)
        db.session.commit()
        path, held_id, mod_id = f"/posts/{post.id}/{post.slug}", held.id, mod.id
    first.test_client().get(path)
    with count_queries(second) as statements:
        page = second.test_client().get(path)
    assert len(statements) == 1  # rendered by the other worker
    assert "Shared held" not in page.text
    with first.app_context():
        moderation.decide(
            "approve", [db.session.get(Comment, held_id)], db.session.get(User, mod_id)
        )
        db.session.commit()
    assert "Shared held" in second.test_client().get(path).text


def test_redis_down_is_a_miss_not_an_error(database_url, tmp_path):
    app = make_test_app(database_url, tmp_path, CACHE_URL="redis://127.0.0.1:1/0")
    if database_url is None:
        with app.app_context():
            db.create_all()
    try:
        with app.app_context():
            post = make_post(make_user(Role.ADMIN), title="No Redis")
            db.session.commit()
            path = f"/posts/{post.id}/{post.slug}"
        client = app.test_client()
        assert client.get(path).status_code == 200
        assert client.get(path).status_code == 200
    finally:
        empty_database(app, database_url)
