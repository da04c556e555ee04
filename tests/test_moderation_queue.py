"""The dashboard's query builders: tabs, filters, search, keyset pages, counts, history."""

from __future__ import annotations

from datetime import timedelta

import pytest

from forum.extensions import db
from forum.models import Flag, Status, utcnow
from forum.services import queue
from forum.services.queue import Cursor, QueueFilter
from tests.factories import make_comment, make_post, make_user


def ids(page) -> list[int]:
    return [c.id for c in page.items]


def test_each_tab_lists_its_status_and_flagged_lists_open_flags(db_session):
    post = make_post()
    made = {s: make_comment(post, status=s) for s in Status}
    flagged = made[Status.APPROVED]
    resolved = make_comment(post)
    reader = make_user()
    db.session.add(Flag(comment_id=flagged.id, user_id=reader.id, reason="spam"))
    db.session.add(Flag(comment_id=resolved.id, user_id=reader.id, reason="spam", resolved=True))
    db.session.flush()
    for status, comment in made.items():
        page = queue.queue_page(QueueFilter(tab=status.value), 10)
        assert ids(page) == (
            [comment.id, resolved.id][::-1] if status is Status.APPROVED else [comment.id]
        )
    flagged_page = queue.queue_page(QueueFilter(tab="flagged"), 10)
    assert ids(flagged_page) == [flagged.id]
    assert [f.reason for f in flagged_page.flags[flagged.id]] == ["spam"]
    # Every tab shows an item's open flags (and only open ones).
    approved_page = queue.queue_page(QueueFilter(tab="approved"), 10)
    assert {i: [f.reason for f in fs] for i, fs in approved_page.flags.items()} == {
        flagged.id: ["spam"]
    }
    assert queue.queue_page(QueueFilter(tab="pending"), 10).flags == {}
    assert queue.tab_counts() == {
        "pending": 1, "approved": 2, "spam": 1, "rejected": 1, "flagged": 1,
    }  # fmt: skip


@pytest.mark.parametrize("bad", [{"tab": "deleted"}, {"order": "random"}, {"group": "name"}])
def test_filters_refuse_unknown_tabs_orders_and_groups(bad):
    with pytest.raises(ValueError):
        QueueFilter(**bad)


@pytest.fixture
def mixed(db_session):
    """Pending comments on two posts by a member and guests, one minute apart."""
    start = utcnow() - timedelta(hours=1)
    one, two = make_post(), make_post()
    member = make_user(username="member1")
    rows = [
        (one, {"user": member, "body": "I like turtles"}),
        (one, {"author_name": "Ann", "author_email": "ann@example.org", "body": "100% sure"}),
        (two, {"author_name": "Bob", "author_email": "bob@example.org", "body": "under_score"}),
        (two, {"author_name": "Ann", "author_email": "ann@example.org", "body": "turtles again"}),
    ]
    made = []
    for n, (post, kw) in enumerate(rows):
        made.append(
            make_comment(
                post, status=Status.PENDING, created_at=start + timedelta(minutes=n),
                ip=f"203.0.113.{n % 2}", **kw,
            )
        )  # fmt: skip
    db.session.flush()
    return {"posts": (one, two), "member": member, "comments": made}


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({}, [3, 2, 1, 0]),
        ({"order": "oldest"}, [0, 1, 2, 3]),
        ({"post": 0}, [1, 0]),
        ({"post": 1, "order": "oldest"}, [2, 3]),
        ({"author": "ann@example.org"}, [3, 1]),
        ({"author": "ANN@example.org"}, [3, 1]),
        ({"author": "Bob"}, [2]),
        ({"author": "member"}, [0]),  # "user:<id>"
        ({"author": "nobody@example.org"}, []),
        ({"q": "turtles"}, [3, 0]),
        ({"q": "TURTLES"}, [3, 0]),
        ({"q": "bob@"}, [2]),
        ({"q": "ann"}, [3, 1]),
        ({"q": "%"}, [1]),  # LIKE wildcards are matched literally
        ({"q": "_"}, [2]),
        ({"q": "\\"}, []),
        ({"q": "turtles", "post": 1}, [3]),
        ({"group": "ip", "value": "203.0.113.0"}, [2, 0]),
    ],
)
def test_filters_and_search(mixed, kw, expected):
    kw = dict(kw)
    if "post" in kw:
        kw["post_id"] = mixed["posts"][kw.pop("post")].id
    if kw.get("author") == "member":
        kw["author"] = f"user:{mixed['member'].id}"
    page = queue.queue_page(QueueFilter(**kw), 10)
    assert ids(page) == [mixed["comments"][i].id for i in expected]


def test_history_counts_every_author_on_the_page(mixed):
    post = mixed["posts"][0]
    make_comment(post, author_name="Ann", author_email="ann@example.org", status=Status.SPAM,
                 created_at=utcnow() - timedelta(days=30))  # fmt: skip
    make_comment(post, author_name="Ann", author_email="ann@example.org")
    make_comment(post, user=mixed["member"], status=Status.REJECTED)
    page = queue.queue_page(QueueFilter(), 10)
    ann = page.histories["email:ann@example.org"]
    assert (ann.approved, ann.pending, ann.spam, ann.rejected) == (1, 2, 1, 0)
    assert ann.first_seen < mixed["comments"][1].created_at - timedelta(days=29)
    member = page.histories[f"user:{mixed['member'].id}"]
    assert (member.approved, member.pending, member.rejected) == (0, 1, 1)
    assert page.histories["email:bob@example.org"].pending == 1


@pytest.mark.parametrize("order", ["newest", "oldest"])
@pytest.mark.parametrize("per_page", [1, 3, 7, 50])
def test_keyset_pages_cover_every_item_once_forwards_and_backwards(db_session, order, per_page):
    post = make_post()
    same_time = utcnow() - timedelta(minutes=5)
    made = [
        make_comment(post, status=Status.PENDING, created_at=same_time if n % 3 else None)
        for n in range(10)
    ]  # several share one timestamp: the id breaks the tie
    f = QueueFilter(order=order)
    pages, after = [], None
    while True:
        page = queue.queue_page(f, per_page, after=after)
        pages.append(ids(page))
        if not page.next_cursor:
            break
        after = Cursor.decode(page.next_cursor)
    seen = [i for p in pages for i in p]
    key = sorted(made, key=lambda c: (c.created_at, c.id), reverse=order == "newest")
    assert seen == [c.id for c in key]
    assert all(len(p) == per_page for p in pages[:-1])
    # Back again: "before" the first item of each page is the page before it.
    after = None
    for number, items in enumerate(pages):
        page = queue.queue_page(f, per_page, after=after)
        assert ids(page) == items
        assert (page.prev_cursor is None) == (number == 0)
        if number:
            previous = queue.queue_page(f, per_page, before=Cursor.decode(page.prev_cursor))
            assert ids(previous) == pages[number - 1]
            assert previous.next_cursor is not None
            assert (previous.prev_cursor is None) == (number == 1)
        after = Cursor.decode(page.next_cursor) if page.next_cursor else None


@pytest.mark.parametrize(
    "raw",
    ["", "x", "2024-01-01", "2024-01-01T00:00:00~", "2024-01-01T00:00:00~abc",
     "2024-01-01T00:00:00~1", "not-a-date~1", "2024-13-01T00:00:00+00:00~1",
     "2024-01-01T00:00:00+00:00~-1", "2024-01-01T00:00:00+00:00~" + "9" * 40],
)  # fmt: skip
def test_hostile_cursors_are_refused(raw):
    with pytest.raises(queue.BadCursor):
        Cursor.decode(raw)


def test_cursor_round_trip(db_session):
    comment = make_comment(make_post())
    cursor = Cursor.of(comment)
    assert Cursor.decode(cursor.encode()) == cursor


def test_a_filter_of_the_same_shape_reuses_its_statement_with_its_own_values(mixed):
    """The items' statement is built once per shape (tab, filters, order, cursor) and
    takes the values as parameters: two authors, two pages, each with its own rows."""
    by_ann = QueueFilter(author="ann@example.org")
    ann = queue.queue_page(by_ann, 1)
    built = queue._items_statement.cache_info().misses
    bob = queue.queue_page(QueueFilter(author="bob@example.org"), 1)
    assert queue._items_statement.cache_info().misses == built
    after = queue.queue_page(by_ann, 1, after=Cursor.of(ann.items[0]))
    assert ids(ann) == [mixed["comments"][3].id] and ids(bob) == [mixed["comments"][2].id]
    assert ids(after) == [mixed["comments"][1].id]
