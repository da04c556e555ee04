"""`flask --app wsgi forum spam-train | spam-rebuild | spam-eval`: the spam filter's commands."""

from __future__ import annotations

import csv
import io
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from forum.extensions import db
from forum.models import SpamLabel
from forum.services import sanitize, spam_filter
from forum.services import settings as settings_service

SPAM_LABELS = {"1", "spam", "true", "yes", "y"}
HAM_LABELS = {"0", "ham", "legitimate", "false", "no", "n"}
WARM_UP = 50  # decisions before the measured part of a replay


@click.command("spam-train")
@with_appcontext
def spam_train() -> None:
    """Teach the spam filter every decided comment it has not learned from (imports too)."""
    learned = spam_filter.train_from_database()
    spam_filter.prune(current_app.config["SPAM_MAX_FEATURES"])
    db.session.commit()
    click.echo(f"Learned from {learned} comments. {describe(spam_filter.state())}")


@click.command("spam-rebuild")
@with_appcontext
def spam_rebuild() -> None:
    """Forget the spam filter's model and learn it again from the decisions in the database."""
    spam_filter.reset()
    learned = spam_filter.train_from_database()
    spam_filter.prune(current_app.config["SPAM_MAX_FEATURES"])
    db.session.commit()
    click.echo(f"Rebuilt from {learned} comments. {describe(spam_filter.state())}")


def describe(state: spam_filter.ModelState) -> str:
    return (
        f"The model knows {state.spam_lessons} spam and {state.ham_lessons} legitimate "
        f"comments through {state.features} features."
    )


@dataclass(frozen=True)
class Row:
    when: str
    order: int
    text: str
    spam: bool
    author: str


def read_rows(files: tuple[Path, ...], text: str, label: str, author: str | None, date: str | None):
    """Every labelled row of the files, in date order (rows without a date keep their place)."""
    rows: list[Row] = []
    csv.field_size_limit(16 * 1024 * 1024)  # whole emails fit in a cell
    for path in files:
        raw = path.read_bytes()
        try:
            content = raw.decode("utf-8-sig")
        except UnicodeDecodeError:  # many published corpora are Windows-1252 or Latin-1
            content = raw.decode("cp1252", errors="replace")
        try:
            rows.extend(_rows_of(path, content, text, label, author, date, len(rows)))
        except csv.Error as error:
            raise click.ClickException(f"{path}: not a CSV file we can read ({error}).") from error
    rows.sort(key=lambda r: (r.when, r.order))
    return rows


def _rows_of(
    path: Path,
    content: str,
    text: str,
    label: str,
    author: str | None,
    date: str | None,
    start: int,
) -> list[Row]:
    """The rows of one file; an undated row takes the date of the row before it."""
    rows: list[Row] = []
    reader = csv.DictReader(io.StringIO(content, newline=""))
    wanted = [c for c in (text, label, author, date) if c]
    missing = [c for c in wanted if c not in (reader.fieldnames or [])]
    if missing:
        raise click.ClickException(f"{path}: no column {', '.join(missing)}.")
    last_date = ""
    for number, record in enumerate(reader, start=2):
        raw = (record.get(label) or "").strip().casefold()
        if raw not in SPAM_LABELS | HAM_LABELS:
            raise click.ClickException(f"{path}, line {number}: label {raw!r} unknown.")
        last_date = ((record.get(date) or "").strip() if date else "") or last_date
        rows.append(
            Row(
                last_date,
                start + len(rows),
                record.get(text) or "",
                raw in SPAM_LABELS,
                (record.get(author) or "") if author else "",
            )
        )
    return rows


def roc_auc(scores: list[float], labels: list[bool]) -> float:
    """The probability that a spam scores above a legitimate comment (ties count half)."""
    pairs = sorted(zip(scores, labels, strict=True))
    positives = sum(labels)
    negatives = len(labels) - positives
    if not positives or not negatives:
        return float("nan")
    rank_sum = 0.0
    i = 0
    while i < len(pairs):
        j = i
        while j + 1 < len(pairs) and pairs[j + 1][0] == pairs[i][0]:
            j += 1
        rank = (i + j) / 2 + 1
        rank_sum += rank * sum(1 for k in range(i, j + 1) if pairs[k][1])
        i = j + 1
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def feature_input(text: str, author: str) -> spam_filter.FeatureInput:
    """A row as the forum would see it: normalized, sanitized, its links counted."""
    body = sanitize.normalize_text(text).strip()
    result = sanitize.sanitize_comment(body)
    facts = sanitize.html_facts(result.html)
    return spam_filter.FeatureInput(
        body=body,
        author_name=sanitize.normalize_text(author).strip(),
        link_domains=tuple(facts.domains),
        link_count=len(facts.hrefs),
        removed=result.removed,
    )


@click.command("spam-eval")
@with_appcontext
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--text", "text_column", required=True, help="The column with the comment text.")
@click.option("--label", "label_column", required=True, help="Spam: 1/spam/true; else 0/ham.")
@click.option("--author", "author_column", help="The column with the author's name.")
@click.option("--date", "date_column", help="The column to replay the rows in order of.")
def spam_eval(
    files: tuple[Path, ...],
    text_column: str,
    label_column: str,
    author_column: str | None,
    date_column: str | None,
) -> None:
    """Replay labelled CSV files through an empty filter, as if moderators decided each row.

    Each row is scored, then learned with its label, in a throwaway in-memory database
    (the forum's own database is not touched). Prints the ROC AUC after the first 50
    decisions and what the default thresholds would have done.
    """
    from forum import create_app

    rows = read_rows(files, text_column, label_column, author_column, date_column)
    if len(rows) <= WARM_UP:
        raise click.ClickException(f"Only {len(rows)} rows: need more than {WARM_UP}.")
    scratch = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": "sqlite://",
            "DATABASE_URL": None,
            "SPAM_MAX_FEATURES": current_app.config["SPAM_MAX_FEATURES"],
        }
    )
    with scratch.app_context():
        db.create_all()
        settings = settings_service.defaults()
        results, score_ms, learn_ms = [], [], []
        for number, row in enumerate(rows, start=1):
            data = feature_input(row.text, row.author)
            started = time.perf_counter()
            verdict = spam_filter.score(data, settings.spam_min_decisions)
            scored = time.perf_counter()
            label = SpamLabel.SPAM if row.spam else SpamLabel.HAM
            spam_filter.teach([(number, label, data)])
            db.session.flush()
            learned = time.perf_counter()
            db.session.commit()
            score_ms.append((scored - started) * 1000)
            learn_ms.append((learned - scored) * 1000)
            results.append((verdict.score, verdict.ready, row.spam))
        state = spam_filter.state()
        db.session.remove()
    measured = results[WARM_UP:]
    scores = [s for s, _, _ in measured]
    labels = [spam for _, _, spam in measured]
    n_spam = sum(labels)
    n_ham = len(labels) - n_spam
    click.echo(
        f"{len(rows)} rows ({sum(r.spam for r in rows)} spam), "
        f"measured after the first {WARM_UP} decisions: {n_spam} spam, {n_ham} legitimate."
    )
    click.echo(f"ROC AUC: {roc_auc(scores, labels):.4f}")

    def share(threshold: float, spam: bool) -> float:
        hits = sum(1 for s, ready, y in measured if y is spam and ready and s >= threshold)
        total = n_spam if spam else n_ham
        return hits / total if total else 0.0

    t = settings.spam_threshold
    click.echo(
        f"At the default spam threshold {t:g} (acting after {settings.spam_min_decisions} "
        f"decisions of each kind): spam caught {share(t, True):.1%}, "
        f"legitimate wrongly caught {share(t, False):.1%}."
    )
    hold = settings.spam_hold_threshold
    held_ham = sum(1 for s, r, y in measured if not y and r and hold <= s < t)
    held_spam = sum(1 for s, r, y in measured if y and r and hold <= s < t)
    click.echo(
        f"Held for review between {hold:g} and {t:g}: {held_spam} spam, {held_ham} legitimate."
    )
    click.echo(
        "Other spam thresholds: "
        + ", ".join(
            f"{x:g}: {share(x, True):.1%} / {share(x, False):.1%}"
            for x in (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95)
        )
    )
    click.echo(
        f"Per comment: scoring {statistics.median(score_ms):.2f} ms median "
        f"({max(score_ms):.1f} max), learning {statistics.median(learn_ms):.2f} ms median "
        f"({max(learn_ms):.1f} max), in-memory SQLite. {describe(state)}"
    )
    sys.stdout.flush()


COMMANDS = (spam_train, spam_rebuild, spam_eval)
