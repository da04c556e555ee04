"""The spam filter: a logistic regression over hashed features, taught by the moderators.

Every moderator decision is a lesson (approve: legitimate, spam: spam); a lesson can be
taken back exactly, because each one records the change it made to the weights. The
model lives in the database (`SpamFeature`, `SpamLesson`): every worker scores with the
same weights as soon as a decision is committed, and a lesson adds to the weights in one
upsert (`weight = weight + change`), so concurrent decisions never overwrite each other.
Nothing but hashed features and counts is stored (docs/spam-filter.md).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flask import current_app
from sqlalchemy import bindparam, delete, func, insert, select

from forum.extensions import db, told_listeners
from forum.models import Comment, HoldReason, Rule, SpamFeature, SpamLabel, SpamLesson, Status
from forum.services.spam_features import FeatureInput, extract, input_of

# Measured on the YouTube corpus (docs/spam-filter.md): larger steps learn from fewer
# decisions; the per-comment normalisation keeps long comments from dominating.
LEARNING_RATE = 3.0
BIAS_RATE = 0.3
# Train on error: a decision the model already got right by this margin changes no weight
# (it still counts as a lesson). Measured: fewer writes, and less overconfidence.
MARGIN = 0.1
MODEL_KEY = 0  # the row holding the bias and the lesson counts
PRUNE_EVERY = 200  # lessons between two checks of the model's size
CHUNK = 896  # keys per IN (...) list: under SQLite's 999 bound parameters
KEYS_STEP = 64  # a SQLite IN list's length is a multiple of this (CHUNK is one)
MAX_REASONS = 4
RULE = Rule.CLASSIFIER


@dataclass(frozen=True)
class Verdict:
    """A score from 0 (legitimate) to 1 (spam), and whether the filter may act on it."""

    score: float
    ready: bool
    reasons: list[list[Any]] = field(default_factory=list)  # [label, weight], strongest first


@dataclass(frozen=True)
class ModelState:
    spam_lessons: int
    ham_lessons: int
    features: int


# Scoring -----------------------------------------------------------------------


# Only placeholders are ever formatted into these statements, never a value.
SELECT_SQLITE = "SELECT key, weight, spam, ham FROM spam_feature WHERE key IN ({marks})"
SELECT_PG = "SELECT key, weight, spam, ham FROM spam_feature WHERE key = ANY(%s::bigint[])"


def _weights(keys: Iterable[int]) -> dict[int, tuple[float, int, int]]:
    """Weight, spam count and ham count of each key that is in the model.

    Plain driver SQL with one placeholder per key: SQLAlchemy's expanding IN costs more
    than the query itself for 300 keys. The statement counters are told (told_listeners).
    """
    wanted = sorted(set(keys))
    found: dict[int, tuple[float, int, int]] = {}
    connection = db.session.connection()
    cursor = connection.connection.cursor()  # the driver's own: plain tuples, one fetchall
    try:
        if connection.dialect.name == "postgresql":
            # One array parameter: the same statement every time, prepared once by psycopg.
            parameters = (_pg_array(wanted),)
            told_listeners(connection.engine, cursor, SELECT_PG, parameters)
            cursor.execute(SELECT_PG, parameters)
            found.update((key, (weight, spam, ham)) for key, weight, spam, ham in cursor.fetchall())
            return found
        for start in range(0, len(wanted), CHUNK):
            chunk = wanted[start : start + CHUNK]
            # Padded with its last key to a multiple of KEYS_STEP: a few statements in all,
            # each prepared once by the driver's statement cache, instead of a new one for
            # each count of keys (preparing 300-500 placeholders again was 2% of an
            # approval's instructions: bench/NOTES.md, session 13). IN ignores the repeats.
            chunk += chunk[-1:] * (-len(chunk) % KEYS_STEP)
            told_listeners(connection.engine, cursor, _select_sqlite(len(chunk)), chunk)
            cursor.execute(_select_sqlite(len(chunk)), chunk)
            found.update((key, (weight, spam, ham)) for key, weight, spam, ham in cursor.fetchall())
    finally:
        cursor.close()
    return found


@functools.lru_cache(maxsize=CHUNK + 1)
def _select_sqlite(n: int) -> str:
    """The SQLite statement for n keys, built once per n (building it cost a third of
    running it for a comment's 400 keys)."""
    return SELECT_SQLITE.format(marks=", ".join("?" * n))


def _pg_array(values: Iterable[int | float]) -> str:
    """An array parameter as PostgreSQL's text literal ('{1,2,3}', cast in the statement):
    psycopg dumps a list of 300 numbers one by one, four times slower (bench/NOTES.md).
    str() of an int, or of a float (its shortest exact form), reads back the same number."""
    return "{" + ",".join(map(str, values)) + "}"


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-35.0, min(35.0, z))))


def score(data: FeatureInput, min_decisions: int) -> Verdict:
    """Score a submission with the current model (one query) and name what weighed most."""
    features = extract(data)
    known = _weights([MODEL_KEY, *features])
    bias, spam_lessons, ham_lessons = known.pop(MODEL_KEY, (0.0, 0, 0))
    scale = 1.0 / math.sqrt(len(features))
    total = sum(weight for weight, _, _ in known.values())
    probability = _sigmoid(bias + scale * total)
    ready = min(spam_lessons, ham_lessons) >= max(min_decisions, 1)
    return Verdict(round(probability, 4), ready, _reasons(features, known, scale))


def _reasons(
    features: dict[int, str], known: dict[int, tuple[float, int, int]], scale: float
) -> list[list[Any]]:
    """The labelled features that pushed hardest, either way."""
    weighed = []
    for key, (weight, spam, ham) in known.items():
        label = features.get(key, "")
        if not label or abs(weight * scale) < 0.01:
            continue
        if label.startswith("links to ") and spam > 0 and ham <= 0 and weight > 0:
            label = f"links to a domain seen only in spam ({label.removeprefix('links to ')})"
        weighed.append([label, round(weight * scale, 2)])
    # A domain only spam ever linked to comes first; then by weight (the features of one
    # lesson share one step, so ties are common: the more telling kinds first).
    weighed.sort(key=lambda pair: (_telling(pair[0]) > 0, -abs(pair[1]), _telling(pair[0])))
    return weighed[:MAX_REASONS]


def _telling(label: str) -> float:
    """How much a kind of feature tells a moderator (lower: more)."""
    for rank, prefix in enumerate(
        ("links to a domain seen only", "links to ", "phrase: ", "email at", "author website")
    ):
        if label.startswith(prefix):
            return rank - (label.count(" ") if prefix == "phrase: " else 0) / 10
    return 9 if label.startswith("word: ") else 10


def decided_spam(verdict: Verdict, settings: Any) -> bool:
    """Whether this verdict sends a comment to Spam under these settings."""
    return (
        verdict.ready and settings.spam_threshold < 1 and verdict.score >= settings.spam_threshold
    )


def state() -> ModelState:
    """How much the model has learned, and its size (two small queries)."""
    row = db.session.get(SpamFeature, MODEL_KEY)
    count = db.session.scalar(select(func.count()).select_from(SpamFeature)) or 0
    return ModelState(
        max(row.spam, 0) if row else 0, max(row.ham, 0) if row else 0, max(count - 1, 0)
    )


# Learning ----------------------------------------------------------------------


def lessons_for(comment_ids: Sequence[int]) -> dict[int, SpamLesson]:
    """The lessons these comments taught, by comment id (one query per CHUNK ids)."""
    ids = sorted(set(comment_ids))
    return {
        lesson.comment_id: lesson
        for start in range(0, len(ids), CHUNK)
        for lesson in db.session.scalars(_LESSONS, {"ids": ids[start : start + CHUNK]})
    }


# Built once: binds only the comments' ids.
_LESSONS = select(SpamLesson).where(SpamLesson.comment_id.in_(bindparam("ids", expanding=True)))
_INSERT_LESSONS = insert(SpamLesson.__table__)


def teach(
    wanted: Sequence[tuple[int, SpamLabel | None, FeatureInput | None]],
    existing: Mapping[int, SpamLesson] | None = None,
) -> int:
    """Make each comment's lesson the given label (None: no lesson); returns lessons changed.

    A lesson that changes is first taken back (its recorded change subtracted), then
    learned again: one online logistic-regression step on the comment's features.
    `existing`: the comments' lessons as lessons_for() loaded them in this transaction
    (a caller that read them already saves the query).
    """
    if not wanted:
        return 0
    if existing is None:
        existing = lessons_for([comment_id for comment_id, _, _ in wanted])
    delta: dict[int, list[float]] = {}  # key -> [weight, spam, ham]

    def add(key: int, weight: float, label: SpamLabel | None, sign: int) -> None:
        row = delta.setdefault(key, [0.0, 0, 0])
        row[0] += weight
        if label is SpamLabel.SPAM:
            row[1] += sign
        elif label is SpamLabel.HAM:
            row[2] += sign

    to_learn: list[tuple[int, SpamLabel, dict[int, str]]] = []
    learned: list[dict[str, Any]] = []
    changed = 0
    taken_back = False
    for comment_id, label, data in wanted:
        old = existing.get(comment_id)
        if (old.label if old is not None else None) is label:
            continue
        changed += 1
        if old is not None:
            for key in old.features:
                add(key, -old.step, old.label, -1)
            add(MODEL_KEY, -old.bias_step, old.label, -1)
            db.session.delete(old)
            taken_back = True
        if label is not None and data is not None:
            to_learn.append((comment_id, label, extract(data)))
    if taken_back:
        # Gone now, not at the next autoflush: the lessons taken back are no longer there
        # for whatever reads them next, and new lessons may take their comments' ids.
        db.session.flush()
    lessons_before = 0
    if to_learn:
        keys = {MODEL_KEY} | {key for _, _, features in to_learn for key in features}
        loaded = _weights(keys)
        current = {key: values[0] for key, values in loaded.items()}
        lessons_before = sum(loaded.get(MODEL_KEY, (0.0, 0, 0))[1:])
        for key, values in delta.items():
            if key in keys:
                current[key] = current.get(key, 0.0) + values[0]
        for comment_id, label, features in to_learn:
            scale = 1.0 / math.sqrt(len(features))
            z = current.get(MODEL_KEY, 0.0) + scale * sum(current.get(k, 0.0) for k in features)
            error = (1.0 if label is SpamLabel.SPAM else 0.0) - _sigmoid(z)
            if abs(error) < MARGIN:
                features = {}  # right already: only the lesson count changes
                step = bias_step = 0.0
            else:
                step, bias_step = LEARNING_RATE * error * scale, BIAS_RATE * error
            for key in features:
                current[key] = current.get(key, 0.0) + step
                add(key, step, label, 1)
            current[MODEL_KEY] = current.get(MODEL_KEY, 0.0) + bias_step
            add(MODEL_KEY, bias_step, label, 1)
            learned.append(
                {
                    "comment_id": comment_id,
                    "label": label,
                    "step": step,
                    "bias_step": bias_step,
                    "features": sorted(features),
                }
            )
    if learned:  # on the table: the unit of work's flush of them cost more than this
        db.session.execute(_INSERT_LESSONS, learned)
    _apply(delta)
    model_change = delta.get(MODEL_KEY, [0.0, 0, 0])
    if _crossed_prune_mark(lessons_before, int(model_change[1] + model_change[2])):
        prune(current_app.config["SPAM_MAX_FEATURES"])
    return changed


UPSERT = (
    "INSERT INTO spam_feature (key, weight, spam, ham, seen_day) {source} "
    "ON CONFLICT (key) DO UPDATE SET weight = spam_feature.weight + excluded.weight, "
    "spam = spam_feature.spam + excluded.spam, ham = spam_feature.ham + excluded.ham, "
    "seen_day = excluded.seen_day"
)
UPSERT_PG = UPSERT.format(
    source="SELECT * FROM unnest(%s::bigint[], %s::float8[], %s::int[], %s::int[], %s::int[])"
)


def _apply(delta: dict[int, list[float]]) -> None:
    """Add the changes to the stored model in one upsert, keys in order (no deadlocks).

    Plain driver SQL: on SQLite one executemany (three times faster than SQLAlchemy
    building 300 parameter sets), on PostgreSQL one statement over arrays.
    """
    if not delta:
        return
    day = (datetime.now(UTC).date() - datetime(1970, 1, 1, tzinfo=UTC).date()).days
    rows = [(key, w, int(s), int(h), day) for key, (w, s, h) in sorted(delta.items())]
    connection = db.session.connection()
    if connection.dialect.name == "postgresql":
        # One statement over five arrays instead of one statement per row.
        columns = [_pg_array(column) for column in zip(*rows, strict=True)]
        connection.exec_driver_sql(UPSERT_PG, tuple(columns))
    else:
        connection.exec_driver_sql(UPSERT.format(source="VALUES (?, ?, ?, ?, ?)"), rows)


def _crossed_prune_mark(before: int, change: int) -> bool:
    """Whether the lesson count passed a multiple of PRUNE_EVERY."""
    return change > 0 and (before // PRUNE_EVERY) != ((before + change) // PRUNE_EVERY)


def prune(max_features: int) -> int:
    """Keep the model under max_features rows: the rarest, longest unseen go first."""
    count = db.session.scalar(select(func.count()).select_from(SpamFeature)) or 0
    if count <= max_features:
        return 0
    excess = count - int(max_features * 0.9)
    victims = (
        select(SpamFeature.key)
        .where(SpamFeature.key != MODEL_KEY)
        .order_by((SpamFeature.spam + SpamFeature.ham).asc(), SpamFeature.seen_day.asc())
        .limit(excess)
    )
    keys = list(db.session.scalars(victims))
    for start in range(0, len(keys), CHUNK):
        db.session.execute(
            delete(SpamFeature).where(SpamFeature.key.in_(keys[start : start + CHUNK]))
        )
    return len(keys)


# Decisions ---------------------------------------------------------------------


def label_for(action: str, from_status: Status, automatic: bool) -> SpamLabel | None | bool:
    """What a moderator's action teaches; False: it leaves the lesson as it is.

    Approve teaches legitimate, spam teaches spam. Reject judges content (rude, off
    topic), not spam, and teaches nothing. Restore withdraws the lesson of the decision it
    reverses, except after the filter itself sent the comment to Spam: that restore is a
    correction, and replaces the filter's own spam lesson with a legitimate one.
    """
    if action == "approve":
        return SpamLabel.HAM
    if action == "spam":
        return SpamLabel.SPAM
    if action == "restore":
        if from_status is Status.SPAM and automatic:
            return SpamLabel.HAM
        return None
    return False


def automatic_classifier_spam(comments: Sequence[Comment]) -> set[int]:
    """Those of these comments that the filter sent to Spam with no moderator since."""
    ids = [c.id for c in comments if c.status is Status.SPAM and c.moderated_by_id is None]
    if not ids:
        return set()
    return set(
        db.session.scalars(
            select(HoldReason.comment_id).where(
                HoldReason.comment_id.in_(ids[:CHUNK]), HoldReason.rule == RULE
            )
        )
    )


def learn_decisions(
    action: str,
    decided: Sequence[tuple[Comment, Status, bool]],
    existing: Mapping[int, SpamLesson] | None = None,
) -> int:
    """Teach what one moderator action on these comments (status before, automatic?) says;
    `existing` as for teach()."""
    wanted: list[tuple[int, SpamLabel | None, FeatureInput | None]] = []
    for comment, from_status, auto in decided:
        label = label_for(action, from_status, auto)
        if label is False:
            continue
        wanted.append((comment.id, label, input_of(comment) if label else None))
    return teach(wanted, existing)


def restore_lessons(comments: Sequence[tuple[Comment, str | None]]) -> int:
    """After an undo: give each comment back the lesson it had before the undone action."""
    # Undo walks a batch newest first: the last entry for a comment holds its oldest state.
    before = {c.id: (c, label) for c, label in comments}
    return teach(
        [
            (c.id, SpamLabel(label) if label else None, input_of(c) if label else None)
            for c, label in before.values()
        ]
    )


# Training from what the database holds ------------------------------------------


def training_select():
    """Decided comments the filter can learn from: approved and spam, oldest first.

    Spam the filter decided itself counts too, as it does when it decides: a lesson until
    a moderator corrects it (train on error keeps it from growing surer of itself).
    """
    return (
        select(Comment)
        .where(Comment.status.in_([Status.APPROVED, Status.SPAM]))
        .order_by(Comment.created_at, Comment.id)
    )


def train_from_database(batch: int = 200) -> int:
    """Learn from every decided comment without a lesson yet (imports, rules' decisions)."""
    learned = 0
    last_id = 0
    stmt = training_select()
    while True:
        comments = list(
            db.session.scalars(
                stmt.where(Comment.id > last_id)
                .where(
                    ~select(SpamLesson.comment_id)
                    .where(SpamLesson.comment_id == Comment.id)
                    .exists()
                )
                .order_by(None)
                .order_by(Comment.id)
                .limit(batch)
            )
        )
        if not comments:
            return learned
        last_id = comments[-1].id
        learned += teach(
            [
                (
                    c.id,
                    SpamLabel.SPAM if c.status is Status.SPAM else SpamLabel.HAM,
                    input_of(c),
                )
                for c in comments
            ]
        )


def reset() -> None:
    """Forget everything: the model and every lesson."""
    db.session.execute(delete(SpamLesson))
    db.session.execute(delete(SpamFeature))


def comments_above(threshold: float, limit: int) -> list[int]:
    """Pending comments scoring at least threshold, highest first."""
    return list(
        db.session.scalars(
            select(Comment.id)
            .where(Comment.status == Status.PENDING, Comment.spam_score >= threshold)
            .order_by(Comment.spam_score.desc(), Comment.id)
            .limit(limit)
        )
    )
