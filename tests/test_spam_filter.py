"""The spam filter: features, scoring, learning and unlearning, the rule, the commands, views."""

from __future__ import annotations

import csv
import math
import os
import random
import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from forum.extensions import db
from forum.models import (
    Comment,
    HoldReason,
    ModerationAction,
    Role,
    SpamFeature,
    SpamLabel,
    SpamLesson,
    Status,
)
from forum.services import (
    moderation,
    moderation_rules,
    rule_stats,
    spam_features,
    spam_filter,
    undo,
)
from forum.services import settings as settings_service
from forum.services.comments import CommentInput, submit_comment
from forum.services.settings import Settings
from tests.factories import make_comment, make_post, make_user
from tests.helpers import count_queries, login_as

YOUTUBE = Path(os.environ.get("FORUM_YOUTUBE_SPAM", "/work/shared/data/youtube-spam"))

SPAM_OPENERS = ["check out my", "subscribe to my", "please visit my", "go see my"]
SPAM_THINGS = ["channel", "new video", "page", "music"]
SPAM_DOMAINS = ["cheap-pills.example", "free-gift.example", "win-now.example"]
HAM_WORDS = ["love", "song", "chorus", "voice", "years", "dance", "video", "memories"]
HAM_OPENERS = ["i still", "this is", "who else", "my kids"]


def spam_text(rng: random.Random) -> str:
    return (
        f"{rng.choice(SPAM_OPENERS)} {rng.choice(SPAM_THINGS)} "
        f"http://{rng.choice(SPAM_DOMAINS)}/{rng.randrange(1000)} thanks!!"
    )


def ham_text(rng: random.Random) -> str:
    words = " ".join(rng.sample(HAM_WORDS, 4))
    return f"{rng.choice(HAM_OPENERS)} {words} after {rng.randrange(2, 20)} years"


def data(text: str, name: str = "Ann", email: str = "", domains=()) -> spam_filter.FeatureInput:
    return spam_filter.FeatureInput(
        body=text, author_name=name, author_email=email, link_domains=tuple(domains)
    )


def teach_corpus(spam: int = 25, ham: int = 25, start: int = 10_000) -> None:
    """Lessons for comments that need not exist (like an import's history)."""
    rng = random.Random(7)
    wanted = []
    for i in range(max(spam, ham)):
        if i < spam:
            wanted.append((start + 2 * i, SpamLabel.SPAM, data(spam_text(rng))))
        if i < ham:
            wanted.append((start + 2 * i + 1, SpamLabel.HAM, data(ham_text(rng))))
    spam_filter.teach(wanted)


def model_rows() -> dict[int, tuple[float, int, int]]:
    return {
        row.key: (row.weight, row.spam, row.ham) for row in db.session.scalars(select(SpamFeature))
    }


def lesson(comment_id: int) -> str | None:
    row = db.session.get(SpamLesson, comment_id)
    return row.label.value if row else None


@pytest.fixture
def mod(db_session):
    return make_user(Role.MODERATOR)


# Features ---------------------------------------------------------------------------


def test_features_cover_text_links_and_author():
    features = spam_filter.extract(
        spam_filter.FeatureInput(
            body="Check out my channel at http://spam.example/x",
            author_name="Bot 2000",
            author_email="bot@mailinator.example",
            author_url="https://www.shop.example/buy",
            link_domains=("spam.example",),
            link_count=1,
            removed=("script",),
        )
    )
    labels = set(features.values())
    for expected in (
        "phrase: check out my",
        "word: channel",
        "links to spam.example",
        "email at mailinator.example",
        "author website shop.example",
        "author name: bot",
        "sanitizer removed script",
    ):
        assert expected in labels
    assert 0 not in features  # the model's own row
    # Character 4-grams are there, unlabelled: never shown as a reason.
    assert sum(1 for label in labels if label == "") >= 1
    assert len(features) > 40


def test_features_hash_as_feature_key_does():
    """extract() inlines the hash: the stored model's keys must not move."""
    keys = spam_filter.extract(data("Free money NOW"))
    for name in ("w:free", "b:free money", "t:free money now", "c: fre", "links:0", "upper:1"):
        assert spam_features.feature_key(name) in keys, name
    assert spam_features.feature_key("w:free") == -5799764159912392283  # blake2b-64, as stored


def test_features_are_stable_and_case_insensitive():
    one = spam_filter.extract(data("Free money now"))
    two = spam_filter.extract(data("free money Now"))
    assert set(one) == set(two)
    assert spam_features.feature_key("w:free") == spam_features.feature_key("w:free")


@pytest.mark.parametrize(
    ("text", "label", "present"),
    [
        ("call 0871 230 0220 now", "a long number (a phone number?)", True),
        ("won in 2014 and 2015", "a long number (a phone number?)", False),
        ("claim your £1000 prize", "an amount of money", True),
        ("win 500 dollars", "an amount of money", True),
        ("500 people liked this", "an amount of money", False),
    ],
)
def test_numbers_that_generalise(text, label, present):
    assert (label in spam_filter.extract(data(text)).values()) is present


def test_plain_text_urls_count_as_links():
    labels = set(spam_filter.extract(data("see www.pills.example/cheap today")).values())
    assert "links to pills.example" in labels


# Scoring and learning ---------------------------------------------------------------


def test_empty_model_scores_one_half_and_is_not_ready(db_session):
    verdict = spam_filter.score(data("hello there"), min_decisions=5)
    assert verdict.score == 0.5 and not verdict.ready and verdict.reasons == []


def test_learned_spam_scores_high_and_ham_low_with_reasons(db_session):
    teach_corpus()
    spam = spam_filter.score(
        data("check out my channel http://free-gift.example/9 thanks!!"), min_decisions=20
    )
    ham = spam_filter.score(data("i still love this song and the chorus"), min_decisions=20)
    assert spam.ready and ham.ready
    assert spam.score > 0.8 > 0.3 > ham.score
    labels = [label for label, _ in spam.reasons]
    assert labels[0] == "links to a domain seen only in spam (free-gift.example)"
    assert all(labels) and all(weight > 0 for _, weight in spam.reasons)
    assert all(weight < 0 for _, weight in ham.reasons)
    assert 0 < len(spam.reasons) <= spam_filter.MAX_REASONS


def test_a_domain_seen_only_in_spam_is_named_so(db_session):
    teach_corpus()
    verdict = spam_filter.score(
        data("hello http://cheap-pills.example/1", domains=["cheap-pills.example"]), 20
    )
    assert any("seen only in spam" in label for label, _ in verdict.reasons)


def test_unlearning_gives_back_the_exact_model(db_session):
    teach_corpus(5, 5)
    before = model_rows()
    spam_filter.teach([(1, SpamLabel.SPAM, data("buy cheap pills at pills.example"))])
    assert model_rows() != before
    spam_filter.teach([(1, None, None)])
    after = model_rows()
    for key, (weight, spam, ham) in after.items():
        old = before.get(key, (0.0, 0, 0))
        assert math.isclose(weight, old[0], abs_tol=1e-9) and (spam, ham) == old[1:]
    assert db.session.get(SpamLesson, 1) is None


def test_weights_are_stored_as_the_exact_numbers_learned(db_session):
    # On PostgreSQL the upsert sends its arrays as text literals: every number must read
    # back bit for bit (keys over the whole 64-bit range, any float).
    teach_corpus(3, 3)
    lesson_1 = data("buy cheap pills at pills.example now")
    spam_filter.teach([(1, SpamLabel.SPAM, lesson_1)])
    stored = db.session.get(SpamLesson, 1)
    features = spam_features.extract(lesson_1)
    assert sorted(stored.features) == sorted(features) and stored.step != 0
    rows = spam_filter._weights(features)
    assert set(rows) == set(features)
    for key in features:
        weight = db.session.scalar(select(SpamFeature.weight).where(SpamFeature.key == key))
        assert rows[key][0] == weight
    awkward = [0.1, 1 / 3, -2.5e-7, 1e-300, 123456789.12345679, -(2.0**60) / 3]
    keys = [-(2**63), -1, 2**63 - 1, *range(10, 16)]
    spam_filter._apply({key: [awkward[i % len(awkward)], 0, 0] for i, key in enumerate(keys)})
    found = spam_filter._weights(keys)
    assert [found[key][0] for key in keys] == [awkward[i % len(awkward)] for i in range(len(keys))]


def test_teaching_the_same_label_twice_changes_nothing(db_session):
    assert spam_filter.teach([(1, SpamLabel.HAM, data("nice song"))]) == 1
    before = model_rows()
    assert spam_filter.teach([(1, SpamLabel.HAM, data("nice song"))]) == 0
    assert model_rows() == before


def test_relabelling_moves_the_counts(db_session):
    spam_filter.teach([(1, SpamLabel.HAM, data("nice song"))])
    spam_filter.teach([(1, SpamLabel.SPAM, data("nice song"))])
    state = spam_filter.state()
    assert (state.spam_lessons, state.ham_lessons) == (1, 0)
    assert lesson(1) == "spam"


def test_model_size_is_bounded(app, db_session):
    app.config["SPAM_MAX_FEATURES"] = 300
    rng = random.Random(3)
    for i in range(40):
        words = " ".join(f"w{rng.randrange(10**6)}" for _ in range(12))
        spam_filter.teach([(i + 1, SpamLabel.HAM if i % 2 else SpamLabel.SPAM, data(words))])
    assert spam_filter.prune(300) > 0
    assert spam_filter.state().features < 300
    assert db.session.get(SpamFeature, spam_filter.MODEL_KEY) is not None


# The rule ---------------------------------------------------------------------------

RULE_CASES = [
    # score, ready, spam threshold, hold threshold, expected status or None
    (0.95, True, 0.9, 0.5, Status.SPAM),
    (0.90, True, 0.9, 0.5, Status.SPAM),
    (0.89, True, 0.9, 0.5, Status.PENDING),
    (0.50, True, 0.9, 0.5, Status.PENDING),
    (0.49, True, 0.9, 0.5, None),
    (0.99, False, 0.9, 0.5, None),  # cold start: it only shows its score
    (0.99, True, 1.0, 0.5, Status.PENDING),  # spam threshold 1: never spam
    (0.99, True, 1.0, 1.0, None),  # both off
    (0.60, True, 0.5, 0.5, Status.SPAM),
]


@pytest.mark.parametrize(("score", "ready", "spam_at", "hold_at", "expected"), RULE_CASES)
def test_classifier_rule_thresholds(score, ready, spam_at, hold_at, expected):
    settings = Settings(spam_threshold=spam_at, spam_hold_threshold=hold_at)
    sub = moderation_rules.Submission(body="x", spam_score=score, spam_ready=ready)
    found = moderation_rules.classifier_reason(sub, settings)
    assert (found[0] if found else None) == expected
    if found:
        assert found[1] == "classifier" and f"{score:.2f}" in found[2]


def test_the_weights_read_on_the_driver_is_counted_with_its_keys(app, db_session):
    """_weights sends its SELECT on a driver cursor; the statement counters still see it,
    with the keys the driver got."""
    data = spam_features.FeatureInput(body="cheap pills at example dot com, buy now")
    keys = spam_features.extract(data)
    with count_queries(app) as statements:
        spam_filter.score(data, min_decisions=1)
    reads = [s for s in statements if "FROM spam_feature" in s]
    assert len(reads) == 1
    if db.engine.dialect.name == "sqlite":
        # Every feature and the model's row, padded to a multiple of KEYS_STEP.
        marks = reads[0].count("?")
        assert marks % spam_filter.KEYS_STEP == 0
        assert 0 <= marks - (len(keys) + 1) < spam_filter.KEYS_STEP


def test_the_weights_read_is_a_few_statements_whatever_the_count_of_keys(app, db_session):
    """On SQLite the IN list is padded with its last key to a multiple of KEYS_STEP, so the
    driver prepares a few statements in all instead of one per count of keys; the repeats
    read nothing twice and no key that was not asked for comes back."""
    stored = {key: (key / 100, key % 3, key % 5) for key in range(1, 71)}
    db.session.add_all(
        SpamFeature(key=key, weight=w, spam=s, ham=h) for key, (w, s, h) in stored.items()
    )
    db.session.flush()
    for n in (1, 63, 64, 65, 70, 200, spam_filter.CHUNK + 1):
        wanted = [*range(n, 0, -1), 5]  # any order, a repeat of its own
        assert spam_filter._weights(wanted) == {k: stored[k] for k in wanted if k in stored}
    with count_queries(app) as statements:
        for n in range(1, 2 * spam_filter.KEYS_STEP + 2):
            spam_filter._weights(range(1, n + 1))
    assert len(set(statements)) == (3 if db.engine.dialect.name == "sqlite" else 1)


def test_settings_store_the_thresholds(db_session):
    settings_service.save(
        {"spam_threshold": "0.7", "spam_hold_threshold": 2, "spam_min_decisions": 3}
    )
    loaded = settings_service.load()
    assert (loaded.spam_threshold, loaded.spam_hold_threshold) == (0.7, 1.0)
    assert loaded.spam_min_decisions == 3


def guest(body: str, n: int = 1) -> CommentInput:
    return CommentInput(
        body=body, author_name=f"Guest {n}", author_email=f"g{n}@example.net", ip="192.0.2.1"
    )


def test_submit_scores_every_comment_and_the_rule_decides(db_session):
    post = make_post()
    settings = Settings(moderation_mode="off", max_links=0, spam_min_decisions=20)
    cold = submit_comment(post, guest("check out my channel http://win-now.example/1"), settings)
    assert cold.spam_score == 0.5 and cold.status is Status.APPROVED  # cold start
    teach_corpus()
    spam = submit_comment(
        post, guest("check out my new video http://win-now.example/2 thanks!!", 2), settings
    )
    assert spam.status is Status.SPAM and spam.spam_score >= settings.spam_threshold
    assert [r.rule for r in spam.reasons] == ["classifier"]
    assert spam.spam_reasons and spam.moderated_at is not None
    ham = submit_comment(post, guest("who else love the chorus after 10 years", 3), settings)
    assert ham.status is Status.APPROVED and ham.spam_score < 0.5
    held = Settings(moderation_mode="off", max_links=0, spam_threshold=1.0, spam_hold_threshold=0.5)
    pending = submit_comment(post, guest("subscribe to my page http://win-now.example/3", 4), held)
    assert pending.status is Status.PENDING and pending.reasons[0].rule == "classifier"


def test_a_moderator_is_scored_but_never_decided_by_it(db_session):
    teach_corpus()
    admin = make_user(Role.ADMIN)
    comment = submit_comment(
        make_post(),
        CommentInput(body="check out my channel http://win-now.example/4 thanks!!"),
        Settings(),
        user=admin,
    )
    assert comment.status is Status.APPROVED and comment.spam_score > 0.5


# Learning from decisions ------------------------------------------------------------


def test_approve_teaches_ham_spam_teaches_spam_reject_teaches_nothing(db_session, mod):
    post = make_post()
    a, b, c = (make_comment(post, status=Status.PENDING) for _ in range(3))
    moderation.decide("approve", [a], mod)
    moderation.decide("spam", [b], mod)
    moderation.decide("reject", [c], mod)
    assert (lesson(a.id), lesson(b.id), lesson(c.id)) == ("ham", "spam", None)
    state = spam_filter.state()
    assert (state.spam_lessons, state.ham_lessons) == (1, 1)
    moderation.decide("reject", [a], mod)  # a judgement on content: the ham lesson stays
    assert lesson(a.id) == "ham"


def test_undo_takes_the_lesson_back(db_session, mod):
    post = make_post()
    comment = make_comment(post, status=Status.PENDING, body="buy pills at pills.example")
    before = model_rows()
    outcome = moderation.decide("spam", [comment], mod)
    assert lesson(comment.id) == "spam"
    undo.undo(outcome.batch, mod)
    assert lesson(comment.id) is None
    for key, (weight, spam, ham) in model_rows().items():
        old = before.get(key, (0.0, 0, 0))
        assert math.isclose(weight, old[0], abs_tol=1e-9) and (spam, ham) == old[1:]


def test_undo_of_a_change_of_mind_gives_back_the_first_lesson(db_session, mod):
    post = make_post()
    comment = make_comment(post, status=Status.PENDING)
    moderation.decide("approve", [comment], mod)
    second = moderation.decide("spam", [comment], mod)
    assert lesson(comment.id) == "spam"
    undo.undo(second.batch, mod)
    assert lesson(comment.id) == "ham"
    assert db.session.get(Comment, comment.id).status is Status.APPROVED


def test_restore_after_the_filter_spammed_it_is_a_correction(db_session, mod):
    teach_corpus()
    post = make_post()
    settings = Settings(moderation_mode="off", max_links=0)
    comment = submit_comment(
        post, guest("check out my channel http://win-now.example/5 thanks!!"), settings
    )
    assert comment.status is Status.SPAM
    assert lesson(comment.id) == "spam"  # the filter's own decision, until corrected
    outcome = moderation.decide("restore", [comment], mod)
    assert lesson(comment.id) == "ham"
    stat = next(s for s in rule_stats.rule_statistics() if s.rule == "classifier")
    assert (stat.held, stat.corrected, stat.pending) == (1, 1, 1)
    undo.undo(outcome.batch, mod)
    assert lesson(comment.id) == "spam"


def test_restore_after_a_moderator_spammed_it_withdraws_the_lesson(db_session, mod):
    comment = make_comment(make_post(), status=Status.PENDING)
    moderation.decide("spam", [comment], mod)
    moderation.decide("restore", [comment], mod)
    assert lesson(comment.id) is None


def test_a_decision_log_entry_keeps_the_lesson_before(db_session, mod):
    comment = make_comment(make_post(), status=Status.PENDING)
    moderation.decide("approve", [comment], mod)
    moderation.decide("spam", [comment], mod)
    entries = db.session.scalars(
        select(ModerationAction).where(ModerationAction.comment_id == comment.id)
    ).all()
    assert [e.data.get("spam_lesson") for e in entries] == [None, "ham"]


def test_deleting_spam_for_good_keeps_what_it_taught(db_session, mod):
    comment = make_comment(make_post(), status=Status.PENDING)
    moderation.decide("spam", [comment], mod)
    moderation.decide("delete", [comment], mod)
    assert spam_filter.state().spam_lessons == 1


# Training from the database ----------------------------------------------------------


def test_train_learns_every_decided_comment_once(db_session):
    post = make_post()
    approved = make_comment(post, status=Status.APPROVED)
    imported_spam = make_comment(post, status=Status.SPAM, body="cheap pills here")
    pending = make_comment(post, status=Status.PENDING)
    rejected = make_comment(post, status=Status.REJECTED)
    assert spam_filter.train_from_database() == 2
    assert [lesson(c.id) for c in (approved, imported_spam, pending, rejected)] == [
        "ham",
        "spam",
        None,
        None,
    ]
    assert spam_filter.train_from_database() == 0
    spam_filter.reset()
    assert spam_filter.state() == spam_filter.ModelState(0, 0, 0)
    assert spam_filter.train_from_database() == 2
    assert spam_filter.state().features > 0


# Commands ---------------------------------------------------------------------------


def write_csv(path: Path, n: int = 120) -> Path:
    rng = random.Random(11)
    with open(path, "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["when", "who", "text", "class"])
        for i in range(n):
            spam = i % 2 == 0
            writer.writerow(
                [
                    f"2024-01-01T00:{i // 60:02d}:{i % 60:02d}" if i % 7 else "",
                    f"user{i}",
                    spam_text(rng) if spam else ham_text(rng),
                    "spam" if spam else "ham",
                ]
            )
    return path


def test_spam_eval_replays_a_file_without_touching_the_forum(app, tmp_path):
    path = write_csv(tmp_path / "labelled.csv")
    result = app.test_cli_runner().invoke(
        args=[
            "forum", "spam-eval", str(path), "--text", "text", "--label", "class",
            "--author", "who", "--date", "when",
        ]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    auc = float(re.search(r"ROC AUC: ([0-9.]+)", result.output).group(1))
    assert auc > 0.95
    assert "spam caught" in result.output and "legitimate wrongly caught" in result.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(SpamFeature)) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--text", "nope", "--label", "class"], "no column nope"),
        (["--text", "text", "--label", "who"], "label"),
    ],
)
def test_spam_eval_refuses_bad_columns(app, tmp_path, args, message):
    path = write_csv(tmp_path / "labelled.csv")
    result = app.test_cli_runner().invoke(args=["forum", "spam-eval", str(path), *args])
    assert result.exit_code != 0 and message in result.output


def test_spam_train_and_rebuild_commands(app):
    with app.app_context():
        post = make_post()
        make_comment(post, status=Status.APPROVED)
        make_comment(post, status=Status.SPAM)
        db.session.commit()
    runner = app.test_cli_runner()
    result = runner.invoke(args=["forum", "spam-train"])
    assert result.exit_code == 0 and "Learned from 2 comments" in result.output
    assert "1 spam and 1 legitimate" in result.output
    result = runner.invoke(args=["forum", "spam-rebuild"])
    assert result.exit_code == 0 and "Rebuilt from 2 comments" in result.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(SpamLesson)) == 2


@pytest.mark.slow
@pytest.mark.skipif(not YOUTUBE.is_dir(), reason="the YouTube Spam Collection is not here")
def test_youtube_corpus_meets_the_targets(app):
    result = app.test_cli_runner().invoke(
        args=[
            "forum", "spam-eval", *sorted(str(p) for p in YOUTUBE.glob("*.csv")),
            "--text", "CONTENT", "--label", "label", "--author", "AUTHOR", "--date", "DATE",
        ]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert float(re.search(r"ROC AUC: ([0-9.]+)", result.output).group(1)) >= 0.97
    caught, wrong = re.search(
        r"spam caught ([0-9.]+)%, legitimate wrongly caught ([0-9.]+)%", result.output
    ).groups()
    assert float(caught) >= 75 and float(wrong) <= 1


# Views ------------------------------------------------------------------------------


@pytest.fixture
def scored(app):
    """A moderator, an admin, and three pending comments with scores 0.2, 0.9 and 0.6."""
    with app.app_context():
        mod = make_user(Role.MODERATOR)
        admin = make_user(Role.ADMIN)
        post = make_post()
        ids = {}
        for name, value in (("low", 0.2), ("high", 0.9), ("mid", 0.6)):
            comment = make_comment(post, status=Status.PENDING, body=f"comment {name}")
            comment.spam_score = value
            comment.spam_reasons = [["phrase: check out my", 0.42]]
            ids[name] = comment.id
        db.session.commit()
        return {"mod": mod.id, "admin": admin.id, **ids}


def test_queue_items_carry_their_score(client, scored):
    login_as(client, scored["mod"])
    html = client.get("/moderation/?order=score").get_data(as_text=True)
    found = re.findall(
        r'<li class="queue-item[^>]*data-id="(\d+)"[^>]*data-spam-score="([0-9.]+)"', html
    )
    assert [int(i) for i, _ in found] == [scored["high"], scored["mid"], scored["low"]]
    assert all(0 <= float(s) <= 1 for _, s in found)
    assert "phrase: check out my (+0.42)" in html
    item = client.get(f"/moderation/comments/{scored['high']}").get_data(as_text=True)
    assert 'data-spam-score="0.9000"' in item and "Spam score <strong>0.90</strong>" in item


def test_score_order_pages_and_refuses_a_date_cursor(client, scored):
    login_as(client, scored["mod"])
    first = client.get("/moderation/?order=score&per_page=1").get_data(as_text=True)
    next_url = re.search(r'rel="next" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    second = client.get(next_url).get_data(as_text=True)
    assert f'data-id="{scored["mid"]}"' in second and f'data-id="{scored["high"]}"' not in second
    date_cursor = "2024-01-01T00:00:00+00:00~5"
    assert client.get(f"/moderation/?order=score&after={date_cursor}").status_code == 400
    assert client.get("/moderation/?after=s0.5~3").status_code == 400
    assert client.get("/moderation/?order=score&after=snan~3").status_code == 400


def test_spam_everything_above_and_undo(app, client, scored):
    login_as(client, scored["mod"])
    resp = client.post("/moderation/spam-above", data={"threshold": "0.5", "next": "/moderation/"})
    assert resp.status_code == 302
    with app.app_context():
        statuses = {k: db.session.get(Comment, scored[k]).status for k in ("low", "mid", "high")}
        assert statuses == {"low": Status.PENDING, "mid": Status.SPAM, "high": Status.SPAM}
        assert lesson(scored["high"]) == "spam"
        batch = db.session.scalar(
            select(ModerationAction.batch).where(ModerationAction.comment_id == scored["high"])
        )
    assert client.post("/moderation/undo", data={"batch": batch}).status_code == 302
    with app.app_context():
        assert db.session.get(Comment, scored["high"]).status is Status.PENDING
        assert lesson(scored["high"]) is None
    assert client.post("/moderation/spam-above", data={"threshold": "2"}).status_code == 400
    resp = client.post("/moderation/spam-above", data={"threshold": "0.99"})
    assert resp.status_code == 302


def test_spam_filter_settings_and_rule_statistics_pages(app, client, scored):
    login_as(client, scored["admin"])
    html = client.get("/moderation/settings").get_data(as_text=True)
    assert 'name="spam_threshold"' in html and 'value="0.8"' in html
    resp = client.post(
        "/moderation/settings",
        data={"moderation_mode": "all", "max_links": "2", "min_submit_seconds": "0",
              "flags_to_requeue": "3", "digest_minutes": "15", "max_depth": "5",
              "threads_per_page": "50", "edit_window_minutes": "10", "close_after_days": "0",
              "comment_max_length": "10000", "duplicate_window_seconds": "60",
              "spam_threshold": "0.95", "spam_hold_threshold": "0.4",
              "spam_min_decisions": "10"},
    )  # fmt: skip
    assert resp.status_code == 302
    with app.app_context():
        loaded = settings_service.load()
        assert (loaded.spam_threshold, loaded.spam_hold_threshold) == (0.95, 0.4)
        assert loaded.spam_min_decisions == 10
        db.session.add(HoldReason(comment_id=scored["high"], rule="classifier", detail="0.90"))
        db.session.commit()
    bad = client.post("/moderation/settings", data={"spam_threshold": "1.5"})
    assert bad.status_code == 422
    rules = client.get("/moderation/rules").get_data(as_text=True)
    row = rules[rules.index('data-rule="classifier"') :]
    assert '<td class="held">1</td>' in row[: row.index("</tr>")]


def test_every_worker_scores_with_the_same_model_at_once(database_url, tmp_path):
    """Two apps (two engines, like two gunicorn workers) on one database."""
    from tests.helpers import empty_database, make_test_app

    url = database_url or f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    one = make_test_app(url, tmp_path / "one")
    two = make_test_app(url, tmp_path / "two")
    try:
        with one.app_context():
            db.create_all()
            before = spam_filter.score(data("cheap pills at pills.example"), 1).score
        with one.app_context():
            teach_corpus(3, 3)
            spam_filter.teach([(1, SpamLabel.SPAM, data("cheap pills at pills.example"))])
            db.session.commit()
        with two.app_context():
            after = spam_filter.score(data("cheap pills at pills.example"), 1)
            assert after.ready and after.score > before
            assert spam_filter.state().spam_lessons == 4
    finally:
        with two.app_context():
            db.session.remove()
            db.engine.dispose()
        empty_database(one, database_url)  # the file of a SQLite run goes with tmp_path


def test_replay_order_keeps_undated_rows_after_the_row_before(tmp_path):
    from forum.spam_cli import read_rows

    path = tmp_path / "rows.csv"
    path.write_text("d,t,l\n2024-03-01,c,0\n,d,1\n2024-01-01,a,spam\n,b,ham\n", encoding="utf-8")
    rows = read_rows((path,), "t", "l", None, "d")
    assert [(r.text, r.spam) for r in rows] == [
        ("a", True),
        ("b", False),
        ("c", False),
        ("d", True),
    ]


def test_spam_eval_reads_a_windows_1252_file_and_refuses_a_broken_one(app, tmp_path):
    rows = [("caf\u00e9 au lait, tr\u00e8s bon", "ham"), ("cheap \u20ac pills", "spam")] * 30
    good = tmp_path / "latin.csv"
    good.write_bytes(
        ("v1,v2\n" + "".join(f"{label},{body}\n" for body, label in rows)).encode("cp1252")
    )
    runner = app.test_cli_runner()
    result = runner.invoke(args=["forum", "spam-eval", str(good), "--text", "v2", "--label", "v1"])
    assert result.exit_code == 0, result.output
    assert "60 rows (30 spam)" in result.output
    broken = tmp_path / "broken.csv"
    broken.write_text('v1,v2\nham,"never closed\n', encoding="utf-8")
    result = runner.invoke(
        args=["forum", "spam-eval", str(broken), "--text", "v2", "--label", "v1"]
    )
    assert result.exit_code != 0 and "Traceback" not in result.output
