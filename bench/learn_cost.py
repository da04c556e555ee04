"""What an approval's spam lesson costs when it changes the weights, by the model's size.

Train on error (forum/services/spam_filter.py): a lesson the model already agrees with by
MARGIN changes only the model's own row. The approvals `make bench` measures are mostly
such lessons (its queue is taught ham alone, so the model soon agrees); approving a
comment the filter held because it was unsure changes every one of its features. This
script times both lessons, each with its commit, on a copy of the profile queue
(bench/profile_queue.py builds it) whose model is padded with random keys to each size:
random keys interleave with the comment's own as hashed features do in a grown model.
Before each lesson the model's bias is set so that the comment scores as spam (every
feature changes), then so that it scores as ham (the model agrees).

    FORUM_SQLITE_CHECKPOINT_SECONDS=0 .venv/bin/python bench/learn_cost.py \
        [--sizes 4573 50000 200000] [--lessons 200]

Prints the median and p90 CPU (this process, a checkpoint thread included) and the median
growth of the -wal file; with FORUM_SQLITE_CHECKPOINT_SECONDS=0 only SQLite's own
checkpoints (at 1,000 pages) reset it, which the median does not see.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import datagen  # noqa: E402
import inprocess  # noqa: E402
from sqlalchemy import text  # noqa: E402

from forum.extensions import db  # noqa: E402
from forum.models import Comment, SpamLabel  # noqa: E402
from forum.services import spam_filter  # noqa: E402
from forum.services.spam_features import input_of  # noqa: E402

SOURCE = HERE / "out" / "profile-queue-100000.sqlite3"
# The model's bias before each lesson: the comment scores as spam (the ham lesson changes
# every feature), or as ham (it changes the model's own row only, as most of make bench's).
KINDS = {3.0: "every feature changed", -3.0: "the model agreeing"}


def padded_copy(size: int) -> Path:
    work = HERE / "out" / f"learn-cost-{size}.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{work}{suffix}").unlink(missing_ok=True)
    datagen.copy_sqlite(SOURCE, work)
    conn = sqlite3.connect(work)
    rng = random.Random(size)
    have = conn.execute("SELECT count(*) FROM spam_feature").fetchone()[0]
    conn.executemany(
        "INSERT OR IGNORE INTO spam_feature VALUES (?, ?, 1, 1, 20000)",
        [(rng.getrandbits(63) - 2**62, rng.uniform(-0.5, 0.5)) for _ in range(size - have)],
    )
    conn.commit()
    conn.close()
    return work


def measure(size: int, lessons: int, bias: float) -> str:
    work = padded_copy(size)
    wal = Path(f"{work}-wal")
    app = inprocess.forum_app(f"sqlite:///{work}")
    cpu, growth = [], []
    with app.app_context():
        ids = db.session.scalars(
            text("SELECT id FROM comment WHERE status = 'pending' ORDER BY id LIMIT :n"),
            {"n": lessons},
        ).all()
        for comment_id in ids:
            data = input_of(db.session.get(Comment, comment_id))
            db.session.execute(
                text("UPDATE spam_feature SET weight = :bias WHERE key = 0"), {"bias": bias}
            )
            db.session.commit()
            before = wal.stat().st_size if wal.exists() else 0
            start = time.process_time()
            spam_filter.teach([(comment_id, SpamLabel.HAM, data)], {})
            db.session.commit()
            cpu.append((time.process_time() - start) * 1000)
            growth.append(wal.stat().st_size - before)
        db.session.remove()
    cpu.sort()
    grown = sorted(g for g in growth if g > 0) or [0]
    for suffix in ("", "-wal", "-shm"):
        Path(f"{work}{suffix}").unlink(missing_ok=True)
    return (
        f"model of {size:,} features, {KINDS[bias]}: lesson and commit CPU median"
        f" {cpu[len(cpu) // 2]:.2f} ms, p90 {cpu[int(len(cpu) * 0.9)]:.2f} ms;"
        f" -wal growth median {grown[len(grown) // 2]:,} bytes"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4573, 50_000, 200_000])
    parser.add_argument("--lessons", type=int, default=200)
    args = parser.parse_args()
    if not SOURCE.exists():
        sys.exit(f"{SOURCE} is missing: run bench/profile_queue.py --pending 100000 first")
    for size in args.sizes:
        for bias in KINDS:
            print(measure(size, args.lessons, bias), flush=True)


if __name__ == "__main__":
    main()
