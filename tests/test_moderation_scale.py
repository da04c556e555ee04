"""The queue with 100,000 pending comments: every page is an index range scan, and fast."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import event, insert, select, text

from forum.extensions import db
from forum.models import PATH_SEGMENT_WIDTH, Comment, HoldReason, Role, Status, utcnow
from forum.services import counters, queue
from forum.services.queue import Cursor, QueueFilter
from tests.factories import make_post, make_user
from tests.helpers import count_queries, login_as, work_done

PENDING = 100_000
BATCH = 5_000
# Wall-clock limits are generous (machines are shared); the proof that a page does not
# grow with the queue is the plan and the work counted below.
BUDGET_SECONDS = 1.0

pytestmark = pytest.mark.slow


@pytest.fixture
def big_queue(app):
    """100,000 pending comments over 30 days on ten posts, plus a moderator."""
    with app.app_context():
        moderator = make_user(Role.MODERATOR)
        posts = [make_post().id for _ in range(10)]
        db.session.commit()
        start = utcnow() - timedelta(days=30)
        step = timedelta(days=30) / PENDING
        for first in range(1, PENDING + 1, BATCH):
            rows, reasons = [], []
            for n in range(first, min(first + BATCH, PENDING + 1)):
                rows.append({
                    "id": n, "post_id": posts[n % 10], "path": f"{n:0{PATH_SEGMENT_WIDTH}d}",
                    "author_name": f"Guest {n % 5000}", "author_email": f"g{n % 5000}@example.net",
                    "ip": f"198.51.{n % 200}.{n % 250}", "body_source": f"Held comment {n}",
                    "body_html": f"<p>Held comment {n}</p>", "body_hash": f"{n:064x}",
                    "status": Status.PENDING, "visible": False, "created_at": start + step * n,
                    "sanitizer_report": [],
                })  # fmt: skip
                reasons.append({"comment_id": n, "rule": "new comment", "detail": ""})
            db.session.execute(insert(Comment), rows)
            db.session.execute(insert(HoldReason), reasons)
            counters.inserted(rows)  # what every bulk writer does (services/counters.py)
        db.session.commit()
        db.session.execute(text("ANALYZE"))  # planner statistics, as a live database has
        db.session.commit()
        return {"moderator": moderator.id, "posts": posts}


def timed(fn):
    began = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - began


def check_timings(big_queue) -> None:
    f = QueueFilter()
    first, first_time = timed(lambda: queue.queue_page(f, 25))
    assert len(first.items) == 25 and first.items[0].id == PENDING
    # A cursor near the end of the queue: the oldest comments.
    deep_cursor = Cursor(db.session.get(Comment, 30).created_at, 30)
    deep, deep_time = timed(lambda: queue.queue_page(f, 25, after=deep_cursor))
    assert [c.id for c in deep.items] == list(range(29, 4, -1))
    halfway = Cursor(db.session.get(Comment, PENDING // 2).created_at, PENDING // 2)
    middle, middle_time = timed(
        lambda: queue.queue_page(QueueFilter(order="oldest"), 200, after=halfway)
    )
    assert middle.items[0].id == PENDING // 2 + 1 and len(middle.items) == 200
    post, post_time = timed(
        lambda: queue.queue_page(QueueFilter(post_id=big_queue["posts"][3]), 25, after=deep_cursor)
    )
    counts, counts_time = timed(queue.tab_counts)
    assert counts["pending"] == PENDING
    times = {"first": first_time, "deep": deep_time, "200 oldest": middle_time,
             "post": post_time, "counts": counts_time}  # fmt: skip
    assert max(times.values()) < BUDGET_SECONDS, times


def page_statement(f: QueueFilter, after: Cursor | None) -> tuple[str, object]:
    """The SQL and parameters of the items query of one queue page."""
    captured = []

    def grab(_conn, _cursor, statement, parameters, _context, _many):
        if statement.lstrip().startswith("SELECT") and "ORDER BY comment.created_at" in statement:
            captured.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", grab)
    try:
        queue.queue_page(f, 25, after=after)
    finally:
        event.remove(db.engine, "before_cursor_execute", grab)
    return captured[0]


def check_index_range_scan(order: str) -> None:
    """The page query uses the status index, never sorts, and works as hard at any depth."""
    f = QueueFilter(order=order)
    work = {}
    for at in (None, 30, PENDING // 2, PENDING - 30):
        after = Cursor(db.session.get(Comment, at).created_at, at) if at else None
        statement, parameters = page_statement(f, after)
        work[at] = work_done(statement, parameters)
    # The plan of the first page: sorting there would sort the whole queue. (At the far
    # end, PostgreSQL may hash-join the last few rows and sort those; the work check
    # below shows it reads no more for it.)
    statement, parameters = page_statement(f, None)
    sqlite = db.engine.dialect.name == "sqlite"
    raw = db.session.connection().connection.dbapi_connection.cursor()
    raw.execute(("EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN ") + statement, parameters)
    rows = raw.fetchall()
    plan = " ".join(str(row[-1]) for row in rows)
    assert "ix_comment_status_created" in plan, plan
    # No sort of the queue: the page's ids come in the index's order (LIMIT on the index
    # scan); only the page's own rows may be sorted, above that (SQLite: at the top level).
    if sqlite:
        assert all(row[1] == 0 for row in rows if "TEMP B-TREE" in row[-1]), plan
    else:
        lines = [str(row[-1]) for row in rows]
        limit = next(i for i, line in enumerate(lines) if "Limit" in line)
        assert not any("Sort" in line for line in lines[limit:]), plan
    # The same small amount of work at the start, the middle and the end of the queue.
    assert max(work.values()) <= 2 * min(work.values()) + 5, work
    # About one page of rows (PostgreSQL), about a thousand steps (SQLite; a scan of the
    # queue takes millions).
    assert max(work.values()) <= (50 if sqlite else 3 * 26), work


def check_dashboard(app, client, big_queue) -> None:
    login_as(client, big_queue["moderator"])
    client.get("/moderation/")
    with count_queries(app) as statements:
        resp, elapsed = timed(lambda: client.get("/moderation/?per_page=50"))
    assert resp.status_code == 200
    assert len(statements) <= 16
    assert elapsed < 4 * BUDGET_SECONDS, elapsed
    with app.app_context():
        oldest = db.session.scalar(select(Comment.created_at).where(Comment.id == 40))
    deep = Cursor(oldest, 40).encode()
    resp, elapsed = timed(lambda: client.get("/moderation/", query_string={"after": deep}))
    assert resp.status_code == 200 and 'id="item-39"' in resp.get_data(as_text=True)
    assert elapsed < 4 * BUDGET_SECONDS, elapsed


def test_the_queue_at_100k_pending(app, client, big_queue):
    """One seeding of 100,000 rows, then every check (seeding is most of the time)."""
    with app.app_context():
        check_timings(big_queue)
        check_index_range_scan("newest")
        check_index_range_scan("oldest")
    check_dashboard(app, client, big_queue)
