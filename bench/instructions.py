"""Instructions per request, counted by valgrind: a figure other load on the machine cannot move.

    .venv/bin/python bench/instructions.py [--requests 40] [--only approve|post] [--floor]

On a shared 2-core machine the CPU time of one in-process request swings by a third from
one run to the next, the best of 41 included (bench/NOTES.md, session 13), so an A/B of a
change worth 5% needs many alternating rounds. Instructions do not swing: each case runs
in a child process under `valgrind --tool=callgrind` with instrumentation off until the
measured requests (warm-ups and setup are not counted; the child turns it on and off with
`callgrind_control`), on a fresh copy of the same database, with a fixed hash seed. The
same code gives the same count to within about 0.3% (its database rows differ a little from
run to run: the WAL, the pending ids).

Cases, each against the bare page `make bench` measures it against (bench/baseline_app.py):
- approve: the approve POST of a pending comment at 100,000 pending (JSON, CSRF on, as
  the dashboard's script sends it), on bench/out/profile-queue-100000.sqlite3
  (bench/profile_queue.py builds it); the bare one-row page of the answer's bytes.
- post: the guest comment POST through the form (CSRF token and signed rendered_at from
  the page), on bench/out/post_cpu-pristine.sqlite3 (bench/post_cpu.py builds it); the
  bare POST.

--floor also counts what the issues require of each request on its own, where no design of
the forum's code can take it away: the signed-in POST that does nothing (the forum's
request, session, sign-in and CSRF check around a view that answers `{"ok": true}`), a
body's Markdown and sanitizer (`comments.body_of`, bleach as the product brief asks), and a
body's spam features (`spam_features.extract`, which scoring a new comment and each
approval's lesson run), on the same bench bodies, and sets them against 3x the bare page.

Only user-space instructions count: what the kernel does for a request (SQLite's file
writes, the writers' lock file) is not in them, so they complement `make bench`, whose
CPU ratios include it, and do not replace it. BENCH_APP_ROOT measures another checkout.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = Path(os.environ.get("BENCH_APP_ROOT") or HERE.parent).resolve()
OUT = HERE / "out"
QUEUE_DB = OUT / "profile-queue-100000.sqlite3"
POST_DB = OUT / "post_cpu-pristine.sqlite3"
CASES = ("approve", "bare_small", "post", "bare_post", "frame", "body", "extract")
COLLECTED = re.compile(r"Collected : (\d+)")


def copy_database(source: Path, work: Path) -> str:
    """A fresh copy of `source` at `work` (SQLite's backup, its WAL included), as a URL.

    Not datagen.copy_sqlite: importing datagen imports the forum, whose listeners on every
    SQLAlchemy Engine (its BEGIN, its connection class) would then run in the bare app's
    engine too, and count there (14% of the bare page)."""
    import sqlite3

    for suffix in ("", "-wal", "-shm"):
        Path(f"{work}{suffix}").unlink(missing_ok=True)
    source_db, work_db = sqlite3.connect(source), sqlite3.connect(work)
    try:
        source_db.backup(work_db)
    finally:
        source_db.close()
        work_db.close()
    return f"sqlite:///{work}"


def instrumentation(on: bool) -> None:
    """Tell the valgrind this process runs under to count from now on, or to stop."""
    subprocess.run(
        ["callgrind_control", "--instr=" + ("on" if on else "off"), str(os.getpid())],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def measured(requests: int, warm_ups: int, send) -> None:
    """`send(i)` for the warm-ups, then counted for `requests` more."""
    for i in range(warm_ups):
        send(i)
    instrumentation(True)
    for i in range(warm_ups, warm_ups + requests):
        send(i)
    instrumentation(False)


def child(case: str, requests: int, work: Path) -> None:
    """One case, in this process (run under valgrind by main())."""
    import logging

    sys.path.insert(0, str(HERE))
    sys.path.insert(1, str(ROOT))
    logging.disable(logging.INFO)
    if case in ("approve", "bare_small"):
        url = copy_database(QUEUE_DB, work)
        os.environ["BENCH_DATABASE_URL"] = url
        if case == "approve":
            approve(url, requests)
        else:
            bare_small(requests)
    elif case == "post":
        guest_post(work, requests)
    elif case == "bare_post":
        os.environ["BENCH_DATABASE_URL"] = copy_database(POST_DB, work)
        bare_post(requests)
    elif case == "frame":
        frame(copy_database(QUEUE_DB, work), requests)
    else:
        part(case, copy_database(POST_DB, work), requests)


APPROVE_BYTES = 250  # about the approve's JSON answer; the bare page is padded to it


def forum_with_csrf(url: str):
    """The forum on `url` with CSRF on, as production runs it."""
    import inprocess

    return inprocess.forum_app(url, BASE_URL="http://localhost", WTF_CSRF_ENABLED=True)


def moderator(app) -> tuple[object, dict[str, str]]:
    """A test client signed in as the bench's moderator, and the headers the dashboard's
    script sends with a decision (JSON, the page's CSRF token)."""
    import profile_queue

    client = profile_queue.signed_in(app)
    page = client.get("/moderation/")
    token = re.search(r'name="csrf_token"[^>]*value="([^"]*)"', page.text).group(1)
    return client, {"Accept": "application/json", "X-CSRFToken": token}


def approve(url: str, requests: int) -> None:
    import profile_queue

    app = forum_with_csrf(url)
    mod, headers = moderator(app)
    ids = profile_queue.pending_ids(app, requests + 10)

    def send(i: int) -> None:
        response = mod.post(f"/moderation/comments/{ids[i]}/approve", headers=headers)
        assert response.status_code == 200, response.status_code

    measured(requests, 10, send)


def bare_small(requests: int) -> None:
    import baseline_app

    post = int(QUEUE_DB.with_name(QUEUE_DB.name + ".post").read_text())
    client = baseline_app.create_app().test_client()
    path = f"/rows?post={post}&n=1&size={APPROVE_BYTES}"

    def send(_i: int) -> None:
        assert client.get(path).status_code == 200

    measured(requests, 10, send)


def guest_post(work: Path, requests: int) -> None:
    import post_cpu

    app = post_cpu.fresh_app(work)  # as bench/post_cpu.py measures it, on a copy at `work`
    post_id, slug = POST_DB.with_suffix(".post").read_text().split()
    client = app.test_client(use_cookies=False)
    cookie, form = post_cpu.guest_forms(client, post_id, slug)

    def send(i: int) -> None:
        response = client.post(
            f"/posts/{post_id}/comments", data=form(i), headers={"Cookie": cookie}
        )
        assert response.status_code == 302, response.status_code

    measured(requests, 5, send)


def bare_post(requests: int) -> None:
    import baseline_app
    import corpus

    post_id = POST_DB.with_suffix(".post").read_text().split()[0]
    client = baseline_app.create_app().test_client()
    bodies = corpus.corpus(200, 1234)

    def send(i: int) -> None:
        form = {
            "body": f"{bodies[(i * 7919) % len(bodies)]}\n\nClient 0 #{i}.",
            "author_name": f"Poster 0-{i}",
            "author_email": f"poster0.{i}@example.org",
            "author_url": "",
        }
        assert client.post(f"/posts/{post_id}/comments", data=form).status_code == 302

    measured(requests, 5, send)


def frame(url: str, requests: int) -> None:
    """The signed-in moderator's POST with its CSRF header, to a view that does nothing."""
    from flask import jsonify
    from flask_login import current_user

    app = forum_with_csrf(url)

    @app.post("/bench-nothing")
    def nothing():
        assert current_user.is_authenticated
        return jsonify(ok=True)

    mod, headers = moderator(app)

    def send(_i: int) -> None:
        assert mod.post("/bench-nothing", headers=headers).status_code == 200

    measured(requests, 10, send)


def part(case: str, url: str, requests: int) -> None:
    """A body's Markdown and sanitizer, or its spam features, as the guest POST sends it."""
    import corpus

    from forum import create_app
    from forum.models import BodyFormat
    from forum.services import comments, spam_features

    bodies = corpus.corpus(200, 1234)
    texts = [f"{bodies[(i * 7919) % len(bodies)]}\n\nClient 0 #{i}." for i in range(200)]
    with create_app({"DATABASE_URL": url, "SECRET_KEY": "bench"}).app_context():

        def send(i: int) -> None:
            text = texts[i % len(texts)]
            if case == "body":
                comments.body_of(text, BodyFormat.MARKDOWN)
            else:
                spam_features.extract(
                    spam_features.FeatureInput(
                        body=text, author_name=f"Poster 0-{i}", author_email="p@example.org"
                    )
                )

        measured(requests, 5, send)


def floor(requests: int, counted: dict[str, tuple[float, float]]) -> None:
    """What the issues require of each request on its own, against its target."""
    parts = {case: count(case, requests)[0] / requests for case in ("frame", "body", "extract")}
    bare_small = counted["bare_small"][0]
    approve_sqlite = counted["approve"][1]
    print(
        f" approve floor: frame {parts['frame'] / 1e6:.2f} M + SQLite's own work in the"
        f" approval {approve_sqlite / 1e6:.2f} M = "
        + _against(parts["frame"] + approve_sqlite, bare_small)
    )
    with_lesson = parts["frame"] + approve_sqlite + parts["extract"]
    print(
        f"                with the lesson's features (extract {parts['extract'] / 1e6:.2f} M) = "
        + _against(with_lesson, bare_small)
    )
    print(
        f"    post floor: body {parts['body'] / 1e6:.2f} M + extract"
        f" {parts['extract'] / 1e6:.2f} M = "
        + _against(parts["body"] + parts["extract"], counted["bare_post"][0])
    )


def _against(total: float, bare: float) -> str:
    return f"{total / 1e6:.2f} M, {total / bare:.2f}x the bare page (3x: {3 * bare / 1e6:.2f} M)"


def count(case: str, requests: int) -> tuple[int, int]:
    """Instructions of `requests` requests of `case`, in a child under valgrind, and of them
    those of the SQLite library itself (its functions' own instructions, from
    callgrind_annotate)."""
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch) / "work.sqlite3"
        out = Path(scratch) / "callgrind.out"
        command = [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={out}",
            sys.executable,
            __file__,
            "--child",
            case,
            "--requests",
            str(requests),
            "--work",
            str(work),
        ]
        env = {
            **os.environ,
            "PYTHONHASHSEED": "0",
            "FORUM_SQLITE_CHECKPOINT_SECONDS": "0",  # no thread of its own to count
        }
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        found = COLLECTED.search(done.stderr)
        if done.returncode != 0 or found is None:
            raise SystemExit(f"{case}: valgrind failed\n{done.stderr[-3000:]}")
        annotated = subprocess.run(
            ["callgrind_annotate", "--threshold=100", str(out)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        in_sqlite = sum(
            int(line.split()[0].replace(",", ""))
            for line in annotated.splitlines()
            if "libsqlite3" in line and line.strip()[:1].isdigit()
        )
        return int(found.group(1)), in_sqlite


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--only", choices=("approve", "post"))
    parser.add_argument("--floor", action="store_true", help="and the required parts alone")
    parser.add_argument("--child", choices=CASES, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.requests, args.work)
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    pairs = [("approve", "bare_small"), ("post", "bare_post")]
    if args.only:
        pairs = [pair for pair in pairs if pair[0] == args.only]
    for needed in {QUEUE_DB if a == "approve" else POST_DB for a, _ in pairs}:
        if not needed.exists():
            raise SystemExit(f"{needed} is missing: bench/profile_queue.py or bench/post_cpu.py")
    if args.floor:
        pairs = [("approve", "bare_small"), ("post", "bare_post")]
    print(f"checkout: {ROOT}")
    counted: dict[str, tuple[float, float]] = {}
    for forum_case, bare_case in pairs:
        started = time.perf_counter()
        for case in (forum_case, bare_case):
            total, in_sqlite = count(case, args.requests)
            counted[case] = (total / args.requests, in_sqlite / args.requests)
        forum, in_sqlite = counted[forum_case]
        bare = counted[bare_case][0]
        print(
            f"{forum_case:>8}: {forum / 1e6:7.2f} M instructions a request (SQLite's own"
            f" {in_sqlite / 1e6:.2f} M), {bare_case} {bare / 1e6:5.2f} M, ratio"
            f" {forum / bare:5.2f} ({time.perf_counter() - started:.0f} s)"
        )
    if args.floor:
        floor(args.requests, counted)


if __name__ == "__main__":
    main()
