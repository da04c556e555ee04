"""CPU per thread page, in this process: anonymous, signed in as member0, and the bare page.

The 10-comment thread of the database `make bench` left in bench/out/bench.sqlite3 (run
`bench/run.py` first), each page kept by the forum's page cache after its first request,
as a reader sees it. Prints, per round, the median and best CPU (time.thread_time) of
--requests GETs each, the three kinds taking turns (bench/NOTES.md, session 12).

    .venv/bin/python bench/page_cpu.py [--requests 300] [--rounds 3]

BENCH_APP_ROOT measures another checkout (a "before"), as bench/profile_queue.py does.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = Path(os.environ.get("BENCH_APP_ROOT") or HERE.parent).resolve()
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(ROOT))

import datagen  # noqa: E402
import inprocess  # noqa: E402

DATABASE = HERE / "out" / "bench.sqlite3"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not DATABASE.exists():
        sys.exit(f"no {DATABASE}: run bench/run.py first")
    url = f"sqlite:///{DATABASE}"
    os.environ["BENCH_DATABASE_URL"] = url
    import baseline_app
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as conn:
        post, slug = conn.execute(
            text(
                "SELECT id, slug FROM post WHERE slug = 'a-discussion-with-10-comments' ORDER BY id"
            )
        ).first()
        member = conn.execute(
            text("SELECT id FROM user WHERE username = :name"), {"name": datagen.MEMBER[0]}
        ).scalar_one()
    engine.dispose()
    app = inprocess.forum_app(url)
    anonymous, signed_in = app.test_client(), app.test_client()
    with signed_in.session_transaction() as session:
        session["_user_id"] = f"{member}:"
        session["_fresh"] = True
    path = f"/posts/{post}/{slug}"
    body = signed_in.get(path).data
    if datagen.MEMBER[0].encode() not in body:
        sys.exit("the member's page does not show the member")
    shown = body.count(b'class="comment depth-')
    bare = baseline_app.create_app().test_client()
    kinds = (
        ("anonymous", anonymous, path),
        ("member", signed_in, path),
        ("bare", bare, f"/rows?post={post}&n={shown}&size={len(body)}"),
    )
    for client, kind_path in ((c, p) for _, c, p in kinds):
        client.get(kind_path)  # kept from here
    import forum

    print(f"{Path(forum.__file__).parent.parent}: {path}, {shown} comments, {len(body):,} bytes")
    for _ in range(args.rounds):
        line = []
        for name, client, kind_path in kinds:
            took = []
            for _ in range(args.requests):
                start = time.thread_time()
                client.get(kind_path)
                took.append(time.thread_time() - start)
            took.sort()
            line.append(f"{name} {took[len(took) // 2] * 1000:.2f} / {took[0] * 1000:.2f}")
        print("  ".join(line), "ms (median / best)")


if __name__ == "__main__":
    main()
