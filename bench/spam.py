"""The spam filter's speed: scoring and learning per comment, on SQLite and PostgreSQL.

`make bench-spam` (also the last step of `make bench`). Teaches a model of WARM lessons
first (generated comments, bench/corpus.py), then times SAMPLE scorings and SAMPLE
lessons, each in its own transaction as in a request. Writes bench/spam-results.md,
which bench/report.py appends to bench/RESULTS.md, and updates that section in place.
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import corpus
from sqlalchemy import create_engine, text

from forum import create_app
from forum.extensions import db
from forum.models import SpamLabel
from forum.services import sanitize, spam_filter

HERE = Path(__file__).resolve().parent
WARM = 3000
SAMPLE = 500
PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
MARK = "<!-- spam-filter -->"


def inputs(n: int, seed: int) -> list[tuple[spam_filter.FeatureInput, SpamLabel]]:
    """Comments of 50 to 500 characters; every third one links to a few spam domains."""
    rng = random.Random(seed)
    out = []
    for i, body in enumerate(corpus.corpus(n, seed, low=170, high=620)):
        spam = i % 3 == 0
        if spam:
            body = f"check out my site http://deals{rng.randrange(50)}.example/ {body[:200]}"
        body = sanitize.normalize_text(body).strip()
        result = sanitize.sanitize_comment(body)
        out.append(
            (
                spam_filter.FeatureInput(
                    body,
                    f"Guest {rng.randrange(10_000)}",
                    f"g{i}@example.net",
                    link_domains=tuple(sanitize.link_domains(result.html)),
                    link_count=sanitize.count_links(result.html),
                    removed=result.removed,
                ),
                SpamLabel.SPAM if spam else SpamLabel.HAM,
            )
        )
    return out


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def measure(url: str) -> dict:
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "SQLALCHEMY_ENGINE_OPTIONS": {}})
    warm = inputs(WARM, 1)
    sample = inputs(SAMPLE, 2)
    with app.app_context():
        db.create_all()
        for start in range(0, WARM, 100):
            spam_filter.teach(
                [
                    (start + i + 1, label, data)
                    for i, (data, label) in enumerate(warm[start : start + 100])
                ]
            )
            db.session.commit()
        score_ms, learn_ms, commit_ms, features = [], [], [], []
        for i, (data, label) in enumerate(sample):
            # As in a request, the transaction is open already (it has read the post).
            db.session.execute(text("SELECT 1"))
            started = time.perf_counter()
            spam_filter.score(data, 20)
            scored = time.perf_counter()
            db.session.commit()
            db.session.execute(text("SELECT 1"))
            before = time.perf_counter()
            spam_filter.teach([(WARM + i + 1, label, data)])
            db.session.flush()
            learned = time.perf_counter()
            db.session.commit()
            committed = time.perf_counter()
            score_ms.append((scored - started) * 1000)
            learn_ms.append((learned - before) * 1000)
            commit_ms.append((committed - learned) * 1000)
            features.append(len(spam_filter.extract(data)))
        state = spam_filter.state()
        db.session.remove()
        db.drop_all()
        db.engine.dispose()
    return {
        "score_p50": statistics.median(score_ms),
        "score_p99": percentile(score_ms, 0.99),
        "learn_p50": statistics.median(learn_ms),
        "learn_p99": percentile(learn_ms, 0.99),
        "commit_p50": statistics.median(commit_ms),
        "features": statistics.median(features),
        "model": state.features,
    }


def postgres_url() -> str | None:
    name = f"forum_bench_spam_{random.randrange(10**8)}"
    try:
        admin = create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception:  # noqa: BLE001 - no server: SQLite only
        return None
    return f"{PG_SERVER}/{name}"


def drop_postgres(url: str) -> None:
    admin = create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))


def main() -> None:
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["SQLite (file)"] = measure(f"sqlite:///{tmp}/spam.db")
    pg = postgres_url()
    if pg:
        try:
            results["PostgreSQL"] = measure(pg)
        finally:
            drop_postgres(pg)
    loadavg = Path("/proc/loadavg")
    load = loadavg.read_text().split()[:3] if loadavg.exists() else []
    lines = [
        MARK,
        "## Spam filter",
        "",
        f"Written by `make bench-spam` (`bench/spam.py`) on "
        f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}, load average "
        f"{', '.join(load)}. A model taught {WARM:,} generated comments, then {SAMPLE} more "
        "scored and learned one at a time, each in its own transaction, timed once the "
        "transaction is open as in a request (50 to 500 characters, a third of them "
        "spam). Targets: scoring under 2 ms and learning under 5 ms per comment.",
        "",
        "| Database | score p50 ms | score p99 ms | learn p50 ms | learn p99 ms | "
        "commit p50 ms | features per comment | model rows | Met |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, r in results.items():
        met = r["score_p50"] < 2 and r["learn_p50"] < 5
        lines.append(
            f"| {name} | {r['score_p50']:.2f} | {r['score_p99']:.2f} | {r['learn_p50']:.2f} | "
            f"{r['learn_p99']:.2f} | {r['commit_p50']:.2f} | {r['features']:.0f} | "
            f"{r['model']:,} | {'yes' if met else '**no**'} |"
        )
    lines.append(MARK.replace("<!--", "<!-- end"))
    section = "\n".join(lines) + "\n"
    (HERE / "spam-results.md").write_text(section)
    results_md = HERE / "RESULTS.md"
    current = results_md.read_text() if results_md.exists() else ""
    end = MARK.replace("<!--", "<!-- end")
    if MARK in current and end in current:
        head, _, rest = current.partition(MARK)
        _, _, tail = rest.partition(end + "\n")
        current = head + section + tail
    else:
        current = current.rstrip() + "\n\n" + section
    results_md.write_text(current)
    sys.stdout.write(section)


if __name__ == "__main__":
    main()
