"""The queue's maintained counters (services/counters.py) always equal a full count.

A hypothesis state machine runs any sequence of what changes a comment's status or
existence (submit held or not, approve, reject, spam, restore, delete, undo, ban sweeps,
flags up to a requeue, an edit that requeues, an abandoned transaction) and checks after
each step that every counter, every author's history (counts by status, first comment)
and what the tabs and the badge read equal a count of the comments themselves. Other
tests cover the bulk writers (imports, the rebuild).
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import delete, insert, select, update

from forum.extensions import db
from forum.models import (
    AuthorCounter,
    Ban,
    BanKind,
    Comment,
    Flag,
    ModerationAction,
    OutboxMail,
    Post,
    QueueCounter,
    Role,
    SpamFeature,
    SpamLesson,
    Status,
    User,
)
from forum.services import author_counts, bans, counters, flags, moderation, queue, undo
from forum.services import comments as comment_service
from forum.services.settings import Settings
from tests.factories import make_comment, make_post, make_user
from tests.helpers import count_queries, make_test_app, postgres_database

ACTIONS = ("approve", "reject", "spam", "restore", "delete")
HOLD_ALL = Settings(moderation_mode="all", min_submit_seconds=0, hold_words=("holdme",))
HOLD_NONE = Settings(
    moderation_mode="off", min_submit_seconds=0, hold_words=("holdme",), flags_to_requeue=2
)


def assert_counts_true() -> None:
    full = counters.full_count()
    assert counters.stored() == full
    assert counters.stored_authors() == author_counts.full_count()
    tabs = queue.tab_counts()
    assert tabs == {tab: full.get((counters.ALL, tab), 0) for tab in queue.TABS}
    assert queue.pending_count() == tabs["pending"]


class CounterMachine(RuleBasedStateMachine):
    """Run inside an app context; ids of the accounts and post come from `world`."""

    world: dict = {}
    comments = Bundle("comments")
    batches = Bundle("batches")

    def __init__(self) -> None:
        super().__init__()
        self.numbers = itertools.count()
        # Each example starts from an empty queue: what it does alone decides its steps.
        for model in (
            SpamLesson,
            SpamFeature,
            OutboxMail,
            Ban,
            ModerationAction,
            QueueCounter,
            AuthorCounter,
        ):
            db.session.execute(delete(model))
        db.session.execute(delete(Comment))  # with their flags and hold reasons
        db.session.commit()

    def user(self, name: str) -> User:
        return db.session.get(User, self.world[name])

    def post(self):
        return db.session.get(Post, self.world["post"])

    @rule(
        target=comments,
        held=st.booleans(),
        guest=st.sampled_from(["a", "b", "c", None]),
        parent=st.none() | comments,
    )
    def submit(self, held, guest, parent):
        n = next(self.numbers)
        data = comment_service.CommentInput(
            body=f"Comment {n} of the machine.",
            parent_id=parent,
            author_name=f"Guest {guest}",
            author_email=f"{guest}@example.net",
            ip=f"10.0.0.{ord(guest) if guest else 1}",
            seconds_to_submit=60,
        )
        try:
            comment = comment_service.submit_comment(
                self.post(),
                data,
                HOLD_ALL if held else HOLD_NONE,
                user=None if guest else self.user("member"),
            )
        except comment_service.CommentError:
            db.session.rollback()
            return -1
        db.session.flush()
        comment_id = comment.id
        db.session.commit()
        return comment_id

    @rule(target=batches, action=st.sampled_from(ACTIONS), chosen=st.lists(comments, max_size=3))
    def decide(self, action, chosen):
        outcome = moderation.decide(action, moderation.load_comments(chosen), self.user("mod"))
        db.session.commit()
        return outcome.batch

    @rule(batch=consumes(batches))
    def undo(self, batch):
        try:
            undo.undo(batch, self.user("mod"))
        except moderation.ModerationError:
            db.session.rollback()
            return
        db.session.commit()

    @rule(target=batches, chosen=comments, everything=st.booleans())
    def ban(self, chosen, everything):
        comment = db.session.get(Comment, chosen)
        if comment is None:
            return "none"
        try:
            outcome = bans.ban_author(
                comment, [BanKind.EMAIL], self.user("mod"), remove_everything=everything
            )
        except bans.BanError:
            db.session.rollback()
            return "none"
        db.session.commit()
        return outcome.batch

    @rule(chosen=comments, reader=st.sampled_from(["r1", "r2", "r3"]))
    def flag(self, chosen, reader):
        comment = db.session.get(Comment, chosen)
        if comment is None:
            return
        try:
            flags.flag_comment(comment, self.user(reader), "spam", "", HOLD_NONE)
        except flags.FlagError:
            db.session.rollback()
            return
        db.session.commit()

    @rule(chosen=comments, hold=st.booleans())
    def member_edit(self, chosen, hold):
        comment = db.session.get(Comment, chosen)
        if comment is None or comment.user_id != self.world["member"]:
            return
        body = "An edit, holdme." if hold else f"An edit {next(self.numbers)}."
        try:
            comment_service.edit_comment(comment, body, self.user("member"), HOLD_NONE)
        except comment_service.CommentError:
            db.session.rollback()
            return
        db.session.commit()

    @rule(action=st.sampled_from(ACTIONS), chosen=st.lists(comments, max_size=3))
    def abandoned(self, action, chosen):
        """A decision whose transaction rolls back changes no counter."""
        moderation.decide(action, moderation.load_comments(chosen), self.user("mod"))
        queue.tab_counts()  # written mid-transaction, then rolled back
        db.session.rollback()

    @invariant()
    def counters_equal_a_full_count(self):
        assert_counts_true()


@pytest.fixture
def world(db_session):
    ids = {
        "mod": make_user(Role.MODERATOR).id,
        "member": make_user().id,
        "r1": make_user().id,
        "r2": make_user().id,
        "r3": make_user().id,
    }
    db.session.flush()
    ids["post"] = make_post(db.session.get(User, ids["mod"])).id
    db.session.commit()
    return ids


def test_counters_equal_a_full_count_after_any_sequence(world):
    CounterMachine.world = world
    run_state_machine_as_test(
        CounterMachine,
        settings=settings(
            max_examples=20,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )


# The writers outside the state machine -----------------------------------------------


def test_a_savepoint_rolled_back_takes_its_counts_with_it(world):
    post = db.session.get(Post, world["post"])
    savepoint = db.session.begin_nested()
    make_comment(post, status=Status.PENDING)
    db.session.flush()
    savepoint.rollback()
    make_comment(post, status=Status.SPAM)
    db.session.commit()
    assert (
        counters.stored()
        == counters.full_count()
        == {
            (post.id, "spam"): 1,
            (counters.ALL, "spam"): 1,
        }
    )


def test_per_post_pending_counts_and_the_post_filter(world):
    post = db.session.get(Post, world["post"])
    other = make_post(db.session.get(User, world["mod"]), title="Other")
    for _ in range(3):
        make_comment(post, status=Status.PENDING)
    make_comment(other, status=Status.APPROVED)
    db.session.commit()
    assert queue.pending_by_post([post.id, other.id]) == {post.id: 3}
    rows = {row[0]: row[2] for row in queue.posts_for_filter()}
    assert rows == {post.id: 3, other.id: 0}


def test_rebuild_repairs_counters_a_bulk_update_bypassed(app, world):
    post = db.session.get(Post, world["post"])
    comments = [make_comment(post, status=Status.PENDING) for _ in range(4)]
    reader = db.session.get(User, world["r1"])
    db.session.add(Flag(comment_id=comments[0].id, user_id=reader.id, reason="spam"))
    db.session.commit()
    # A statement that says nothing to the counters (what a writer must never do):
    db.session.execute(update(Comment).values(status=Status.SPAM))
    db.session.execute(update(QueueCounter).values(n=QueueCounter.n + 7))
    db.session.commit()
    assert counters.stored() != counters.full_count()
    result = app.test_cli_runner().invoke(args=["forum", "rebuild-counters"])
    assert result.exit_code == 0, result.output
    assert "4 spam" in result.output and "1 flagged" in result.output
    db.session.expire_all()
    assert_counts_true()
    assert queue.tab_counts()["spam"] == 4 and queue.tab_counts()["flagged"] == 1


def test_deleting_a_subtree_counts_the_replies_the_database_removes(world):
    mod = db.session.get(User, world["mod"])
    post = db.session.get(Post, world["post"])
    root = make_comment(post, status=Status.SPAM)
    db.session.flush()
    reply = make_comment(post, parent=root, status=Status.PENDING)
    db.session.flush()
    make_comment(post, parent=reply, status=Status.APPROVED)
    db.session.add(Flag(comment_id=reply.id, user_id=world["r1"], reason="spam"))
    db.session.commit()
    assert counters.total(counters.FLAGGED) == 1
    outcome = moderation.decide("delete", [root], mod)
    db.session.commit()
    assert db.session.scalar(select(Comment.id).where(Comment.post_id == post.id)) is None
    assert_counts_true()
    assert counters.stored() == {}
    undo.undo(outcome.batch, mod)
    db.session.commit()
    assert_counts_true()
    assert queue.tab_counts()["pending"] == 1


def test_interleaved_transactions_lose_no_update(tmp_path):
    """Two moderators' transactions overlap: both change statuses before either commits;
    `n = n + delta` at commit keeps both (read-modify-write would keep one). On PostgreSQL
    in both runs: SQLite has one writer at a time, so its transactions cannot overlap."""
    with postgres_database("counters") as url, make_test_app(url, tmp_path).app_context():
        _interleave()
        db.session.remove()
        db.engine.dispose()


def _interleave() -> None:
    post = make_post(make_user(Role.MEMBER))
    first, second = (make_comment(post, status=Status.PENDING) for _ in range(2))
    db.session.commit()
    ids = first.id, second.id
    one, two = db.session.session_factory(), db.session.session_factory()
    try:
        for session, comment_id in ((one, ids[0]), (two, ids[1])):
            session.get(Comment, comment_id).status = Status.APPROVED
            session.flush()
        one.commit()
        two.commit()
    finally:
        one.close()
        two.close()
    db.session.expire_all()
    assert_counts_true()
    assert queue.tab_counts()["approved"] == 2 and queue.pending_count() == 0


# Each author's history (AuthorCounter) ------------------------------------------------


def history_of(comment: Comment) -> queue.History:
    return queue.author_histories([comment])[queue.author_key(comment)]


def test_an_authors_first_comment_deleted_and_put_back_moves_first_seen(world):
    mod = db.session.get(User, world["mod"])
    post = db.session.get(Post, world["post"])
    start = datetime(2026, 1, 1, tzinfo=UTC)
    first, second, third = (
        make_comment(
            post,
            status=Status.SPAM,
            author_email="wave@example.net",
            created_at=start + timedelta(days=day),
        )
        for day in (0, 1, 2)
    )
    db.session.commit()
    assert history_of(third) == queue.History(0, 0, 3, 0, start)
    outcome = moderation.decide("delete", [first], mod)
    db.session.commit()
    assert history_of(third) == queue.History(0, 0, 2, 0, start + timedelta(days=1))
    undo.undo(outcome.batch, mod)
    db.session.commit()
    assert history_of(third) == queue.History(0, 0, 3, 0, start)
    ids = [first.id, second.id, third.id]  # the first was put back as a new object
    moderation.decide("delete", moderation.load_comments(ids), mod)
    db.session.commit()
    assert queue.author_histories([third]) == {}  # no comment left: no row
    assert_counts_true()


def test_a_comment_given_to_another_author_moves_between_their_histories(world):
    post = db.session.get(Post, world["post"])
    member = db.session.get(User, world["member"])
    start = datetime(2026, 1, 1, tzinfo=UTC)
    guest = {"author_email": "g@example.net"}
    early = make_comment(post, status=Status.PENDING, created_at=start, **guest)
    make_comment(post, status=Status.APPROVED, **guest)
    make_comment(post, status=Status.APPROVED, user=member)
    db.session.commit()
    early.user_id = member.id  # e.g. a guest's comment claimed by the account it was
    db.session.commit()
    db.session.expire_all()
    histories = queue.author_histories(db.session.scalars(select(Comment)).all())
    guest, account = histories["email:g@example.net"], histories[f"user:{member.id}"]
    assert (guest.approved, guest.pending, guest.first_seen != start) == (1, 0, True)
    assert (account.approved, account.pending, account.first_seen) == (1, 1, start)
    assert_counts_true()


def test_the_bulk_writers_keep_the_histories(app, world):
    """The importers (a bulk insert each), the Disqus placeholder (a bulk status change),
    then the rebuild command, which also mends rows a writer left wrong."""
    from tests.test_disqus import EXPORT
    from tests.test_wxr import BLOG

    runner = app.test_cli_runner()
    for args in (["import-wxr", str(BLOG)], ["import-disqus", str(EXPORT)]):
        assert runner.invoke(args=["forum", *args]).exit_code == 0
    db.session.expire_all()
    assert len(counters.stored_authors()) > 5
    assert_counts_true()
    db.session.execute(update(AuthorCounter).values(pending=AuthorCounter.pending + 3))
    db.session.commit()
    assert counters.stored_authors() != author_counts.full_count()
    result = runner.invoke(args=["forum", "rebuild-counters"])
    assert result.exit_code == 0 and "authors' histories" in result.output, result.output
    db.session.expire_all()
    assert_counts_true()


def test_a_spam_wave_costs_the_history_one_row(app, world):
    """20,000 comments from one address: the page reads its author's row by key, never
    their comments (counting them cost 50 ms of every dashboard page; bench/NOTES.md)."""
    post = db.session.get(Post, world["post"])
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [
        {
            "post_id": post.id,
            "kind": "comment",
            "depth": 0,
            "path": f"{i:010d}",
            "author_name": "Wave",
            "author_email": "wave@example.net",
            "body_source": "buy",
            "body_html": "<p>buy</p>",
            "body_hash": "",
            "status": Status.PENDING,
            "created_at": start + timedelta(seconds=i),
        }
        for i in range(20_000)
    ]
    db.session.execute(insert(Comment), rows)
    counters.inserted(rows)
    db.session.commit()
    newest = db.session.scalars(select(Comment).order_by(Comment.id.desc()).limit(1)).one()
    with count_queries(app) as statements:
        history = history_of(newest)
    assert history == queue.History(0, 20_000, 0, 0, start)
    assert len(statements) == 1 and "FROM author_counter" in statements[0]
    assert "FROM comment" not in statements[0]
