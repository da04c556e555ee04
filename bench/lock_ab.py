"""The SQLite write lock, before and after, in the same minutes: approve POSTs at 100,000
pending on two copies of one database, one served by a checkout without the lock
(BEFORE_ROOT, e.g. a worktree of the commit before it) and one by this checkout, in
alternating rounds so both see the same load on the machine.

    BEFORE_ROOT=/path/to/old/checkout .venv/bin/python bench/lock_ab.py [--rounds 3]

Prints each round and writes bench/out/lock_ab.json; bench/NOTES.md quotes it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))

import datagen  # noqa: E402
import loadgen  # noqa: E402
from server import ROOT, Server  # noqa: E402

OUT = HERE / "out"
PENDING = 100_000
PER_ROUND = 150


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pending", type=int, default=PENDING)
    args = parser.parse_args()
    before_root = Path(os.environ["BEFORE_ROOT"]).resolve()
    OUT.mkdir(exist_ok=True)
    source = OUT / "lock-ab.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{source}{suffix}").unlink(missing_ok=True)
    gen = datagen.Generator(datagen.make_engine(f"sqlite:///{source}"))
    gen.create_schema()
    gen.make_bodies()
    gen.make_people()
    gen.make_filler()
    gen.add_pending(args.pending, [])
    gen.settle()
    with gen.engine.connect() as conn:
        from sqlalchemy import select

        from forum.models import Comment, Status

        ids = list(conn.scalars(select(Comment.id).where(Comment.status == Status.PENDING)))
    gen.engine.dispose()
    log(f"{args.pending:,} pending written")
    sample = random.Random(1).sample(ids, 2 * args.rounds * PER_ROUND)
    servers = {}
    for name, root in (("before", before_root), ("after", ROOT)):
        path = OUT / f"lock-ab-{name}.sqlite3"
        datagen.copy_sqlite(source, path)
        url = f"sqlite:///{path}"
        env = {
            "FORUM_DATABASE_URL": url,
            "FORUM_SECRET_KEY": "bench-secret-key",
            "FORUM_BASE_URL": "http://127.0.0.1:5000",
            "FORUM_RATELIMIT_ENABLED": "false",
            "FORUM_MAIL_SUPPRESS_SEND": "true",
        }
        servers[name] = Server("wsgi:app", env, OUT / f"gunicorn-lock-{name}.log", root=root)
    results: dict[str, list[dict]] = {"before": [], "after": []}
    with servers["before"] as before, servers["after"] as after:
        logins = {
            name: loadgen.login(s.port, *datagen.MODERATOR, landing="/moderation/")
            for name, s in (("before", before), ("after", after))
        }
        for r in range(args.rounds):
            order = [("before", before), ("after", after)]
            if r % 2:
                order.reverse()
            for name, server in order:
                cookie, token = logins[name]
                chunk = sample[:PER_ROUND]
                del sample[:PER_ROUND]
                run = loadgen.wrk(
                    f"approve {name}",
                    server.port,
                    [f"/moderation/comments/{i}/approve" for i in chunk],
                    30,
                    method="POST",
                    cookie=cookie,
                    headers={"Accept": "application/json", "X-CSRFToken": token},
                    once=True,
                    cpu=server.cpu_seconds,
                )
                results[name].append(run.as_dict())
                log(
                    f"round {r + 1} {name:<6} {run.requests} approvals  {run.rps:6.1f} req/s  "
                    f"p50 {run.p50_ms:7.1f} ms  p90 {run.p90_ms:7.1f} ms  p99 {run.p99_ms:7.1f} ms"
                    f"  max {run.max_ms:7.1f} ms  cpu {run.cpu_ms_per_request} ms  "
                    f"errors {run.errors}"
                )
    (OUT / "lock_ab.json").write_text(json.dumps(results, indent=2))
    for name, runs in results.items():
        p99 = sorted(r["p99_ms"] for r in runs)
        p50 = sorted(r["p50_ms"] for r in runs)
        log(f"{name}: p99 per round {p99} ms, p50 {p50} ms")


if __name__ == "__main__":
    main()
