"""CPU and statements of the mailer's look after a response (bench/NOTES.md, "Posting,
second pass"): `mailer.send_quietly` when it must look (the request queued mail) and when
its gate lets it skip, in this process, on a copy of the SQLite database bench/post_cpu.py
builds.

    .venv/bin/python bench/mail_look.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import post_cpu  # noqa: E402
from sqlalchemy import event  # noqa: E402

from forum.extensions import db  # noqa: E402
from forum.services import mailer  # noqa: E402


def main() -> None:
    if not post_cpu.PRISTINE.exists():
        post_cpu.build()
    # A look may queue a digest: a copy, never the pristine database.
    app = post_cpu.fresh_app(HERE / "out" / "mail_look.sqlite3")
    statements = [0]
    with app.app_context():
        event.listen(
            db.engine,
            "before_cursor_execute",
            lambda *_: statements.__setitem__(0, statements[0] + 1),
        )
    mailer.send_quietly(app)  # warm-up
    looks = []
    for _ in range(5):
        start = time.process_time()
        for _ in range(200):
            mailer.send_quietly(app, queued=True)
        looks.append((time.process_time() - start) / 200 * 1000)
    statements[0] = 0
    mailer.send_quietly(app, queued=True)
    start = time.process_time()
    for _ in range(2000):
        mailer.send_quietly(app, queued=False, held=False)
    skipped = (time.process_time() - start) / 2000 * 1000
    print(
        f"a look: best {min(looks):.3f} ms CPU, {statements[0]} statements; "
        f"a skipped look: {skipped:.4f} ms"
    )


if __name__ == "__main__":
    main()
