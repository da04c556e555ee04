"""CPU per guest comment POST, in this process (bench/NOTES.md, "Posting a comment").

The app's test client with CSRF on posts guest comments through the real form (the page
GET once for the token and the signed rendered_at, then distinct POSTs with that page's
cookies, as bench/loadgen.py sends them),
bodies from corpus.corpus(200, 1234), into the 10-comment thread of a SQLite database built
by datagen. Prints the median, best and mean CPU (time.process_time) per POST.

    .venv/bin/python bench/post_cpu.py [--posts 100] [--build] [--profile [--dump FILE]]

--build writes bench/out/post_cpu.sqlite3 and keeps a pristine copy each run starts from.
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import pstats
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import corpus  # noqa: E402
import datagen  # noqa: E402

from forum import create_app  # noqa: E402

PRISTINE = HERE / "out" / "post_cpu-pristine.sqlite3"
WORK = HERE / "out" / "post_cpu.sqlite3"


def build() -> None:
    PRISTINE.parent.mkdir(exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{PRISTINE}{suffix}").unlink(missing_ok=True)
    gen = datagen.Generator(datagen.make_engine(f"sqlite:///{PRISTINE}"))
    gen.create_schema()
    gen.make_bodies()
    gen.make_people()
    info = gen.make_threads([10], 50)[10]
    PRISTINE.with_suffix(".post").write_text(f"{info.post_id} {info.slug}")
    gen.engine.dispose()  # the last connection's close checkpoints the WAL into the file


def fresh_app(work: Path):
    """The forum on a new copy of the pristine database at `work`, as make bench runs it
    (no rate limit, no minimum time to submit, no mail sent)."""
    datagen.copy_sqlite(PRISTINE, work)
    logging.disable(logging.INFO)
    return create_app(
        {
            "DATABASE_URL": f"sqlite:///{work}",
            "SECRET_KEY": "bench-secret-key",
            "BASE_URL": "http://127.0.0.1:5000",
            "RATELIMIT_ENABLED": False,
            "MODERATION_MIN_SUBMIT_SECONDS": 0,
            "MAIL_SUPPRESS_SEND": True,
        }
    )


def guest_forms(client, post_id: str, slug: str) -> tuple[str, Callable[[int], dict]]:
    """The thread page's cookies, and the i-th guest comment form as bench/loadgen.py's
    clients send it: the page's CSRF token and signed rendered_at, a body of the bench
    corpus, a name and an email of its own."""
    first = client.get(f"/posts/{post_id}/{slug}")
    cookie = "; ".join(value.split(";", 1)[0] for value in first.headers.getlist("Set-Cookie"))

    def hidden(name: str) -> str:
        return re.search(rf'name="{name}"[^>]*value="([^"]*)"', first.text).group(1)

    token, rendered = hidden("csrf_token"), hidden("rendered_at")
    bodies = corpus.corpus(200, 1234)

    def form(i: int) -> dict:
        return {
            "csrf_token": token,
            "rendered_at": rendered,
            "parent_id": "",
            "body": f"{bodies[(i * 7919) % len(bodies)]}\n\nClient 0 #{i}.",
            "author_name": f"Poster 0-{i}",
            "author_email": f"poster0.{i}@example.org",
            "author_url": "",
            "homepage": "",
        }

    return cookie, form


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--posts", type=int, default=100)
    parser.add_argument("--build", action="store_true")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--dump", help="with --profile: also write the pstats file here")
    args = parser.parse_args()
    if args.build or not PRISTINE.exists():
        build()
    app = fresh_app(WORK)
    post_id, slug = PRISTINE.with_suffix(".post").read_text().split()
    # Every POST sends the first page's cookies, as bench/loadgen.py's clients do (the
    # session does not grow with the comments posted).
    client = app.test_client(use_cookies=False)
    cookie, form = guest_forms(client, post_id, slug)
    sent = 0

    def post() -> None:
        nonlocal sent
        sent += 1
        response = client.post(
            f"/posts/{post_id}/comments", data=form(sent), headers={"Cookie": cookie}
        )
        assert response.status_code == 302, response.status_code

    for _ in range(5):  # warm-up
        post()
    if args.profile:
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(args.posts):
            post()
        profile.disable()
        if args.dump:
            profile.dump_stats(args.dump)
        pstats.Stats(profile).sort_stats("cumulative").print_stats("forum/", 40)
        return
    took = []
    for _ in range(args.posts):
        start = time.process_time()
        post()
        took.append((time.process_time() - start) * 1000)
    took.sort()
    print(
        f"CPU per POST: median {took[len(took) // 2]:.1f} ms, best {took[0]:.1f} ms, "
        f"mean {sum(took) / len(took):.1f} ms ({args.posts} POSTs)"
    )


if __name__ == "__main__":
    main()
