"""The render cache and conditional GET, measured in this process: CPU per page.

    .venv/bin/python bench/cache_compare.py [--reuse]

Builds (or reuses) a SQLite database under bench/out/ with the bench's 10-, 100- and
1,000-comment threads, then reports the best CPU time of 9 GETs for each thread page
(anonymous and signed-in member), the front page, a tag page and the three feeds, each
beside the bare-Flask page of the same bytes (bench/baseline_app.py), and the ratio.
`--no-cache` sets PAGE_CACHE_BYTES=0 (the cache off) for the "before" figures; `--miss`
keeps the cache on but makes every lookup miss (the cost of rendering and storing).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))

import datagen  # noqa: E402
import inprocess  # noqa: E402
from sqlalchemy import select  # noqa: E402

SIZES = [10, 100, 1000]
PER_PAGE = 50


def build(url: str) -> dict[int, datagen.ThreadInfo]:
    gen = datagen.Generator(datagen.make_engine(url))
    gen.create_schema()
    gen.make_bodies()
    gen.make_people()
    threads = gen.make_threads(SIZES, PER_PAGE)
    gen.make_filler()
    gen.settle()
    return threads


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--no-cache", action="store_true")
    parser.add_argument("--miss", action="store_true")
    args = parser.parse_args()
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    path = out / "cache-compare.sqlite3"
    url = f"sqlite:///{path}"
    if not args.reuse or not path.exists():
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        build(url)
    from forum.extensions import db as forum_db

    forum_db.metadata.create_all(datagen.make_engine(url))  # tables newer than the file
    os.environ["BENCH_DATABASE_URL"] = url
    import baseline_app

    from forum.extensions import db
    from forum.models import Comment, Post, Role, Tag, User

    config = {"PAGE_CACHE_BYTES": 0} if args.no_cache else {}
    app = inprocess.forum_app(url, **config)
    if args.miss:
        app.extensions["page_cache"].backend.get = lambda key: None
    with app.app_context():
        posts = {
            size: db.session.scalar(
                select(Post)
                .join(Comment)
                .group_by(Post.id)
                .having(db.func.count(Comment.id) >= size)
                .order_by(db.func.count(Comment.id))
                .limit(1)
            )
            for size in SIZES
        }
        paths = {size: f"/posts/{p.id}/{p.slug}" for size, p in posts.items()}
        member = db.session.scalar(select(User).where(User.role == Role.MEMBER).limit(1))
        member_id = member.id
        tag = db.session.scalar(select(Tag).limit(1))
        tag_path = f"/tags/{tag.slug}" if tag else "/"
        any_post = posts[SIZES[-1]].id
    anon = app.test_client()
    signed = app.test_client()
    with signed.session_transaction() as sess:
        sess["_user_id"] = f"{member_id}:"
        sess["_fresh"] = True
    base = baseline_app.create_app().test_client()
    rows = []
    pages = [(f"thread {s} anonymous", anon, paths[s]) for s in SIZES]
    pages += [(f"thread {s} member", signed, paths[s]) for s in SIZES]
    pages += [
        ("front page", anon, "/"),
        ("front page member", signed, "/"),
        ("tag page", anon, tag_path),
        ("posts feed", anon, "/feed.atom"),
        ("comments feed", anon, "/comments/feed.atom"),
        ("post feed", anon, f"/posts/{posts[SIZES[-1]].id}/feed.atom"),
    ]
    for name, client, page in pages:
        body = client.get(page).data
        forum_ms = inprocess.best_cpu_ms(client, page)
        n = max(1, body.count(b'class="comment depth-') or body.count(b"<entry>") or 20)
        base_ms = inprocess.best_cpu_ms(base, f"/rows?post={any_post}&n={n}&size={len(body)}")
        rows.append((name, len(body), forum_ms, base_ms, round(base_ms / forum_ms, 2)))
    print(f"{'page':28} {'bytes':>10} {'forum ms':>9} {'bare ms':>8} {'ratio':>6}")
    for name, size, forum_ms, base_ms, ratio in rows:
        print(f"{name:28} {size:>10,} {forum_ms:>9} {base_ms:>8} {ratio:>6}")


if __name__ == "__main__":
    main()
