"""Screenshots of the front page, a long thread and the queue at 1280 and 390 px.

    .venv/bin/python docs/screenshots/shoot.py

Loads the demo data (`forum demo`, `forum demo-queue`) into a scratch SQLite database,
serves it on a free port and shoots the first screen of each page with Debian's chromium
(as the browser tests do). Prints what the queue fits on one screen.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

from playwright.sync_api import sync_playwright
from sqlalchemy import func, select
from werkzeug.serving import make_server

from forum import create_app
from forum.extensions import db
from forum.models import Comment, Post
from forum.tools import demo

HERE = Path(__file__).parent
SIZES = {"1280": {"width": 1280, "height": 900}, "390": {"width": 390, "height": 844}}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(
            {
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/shots.sqlite3",
                "SECRET_KEY": "screenshots",
                "RATELIMIT_ENABLED": False,
                "MAIL_SUPPRESS_SEND": True,
            }
        )
        with app.app_context():
            db.create_all()
            demo.load()
            db.session.commit()
            demo.load_queue(60)
            db.session.commit()
            longest = db.session.execute(
                select(Post.id, Post.slug)
                .join(Comment, Comment.post_id == Post.id)
                .where(Comment.visible.is_(True))
                .group_by(Post.id, Post.slug)
                .order_by(func.count(Comment.id).desc())
                .limit(1)
            ).one()
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_port}"
        pages = {
            "front": "/",
            "thread": f"/posts/{longest.id}/{longest.slug}",
            "queue": "/moderation/",
        }
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox"]
            )
            for size, viewport in SIZES.items():
                context = browser.new_context(viewport=viewport, base_url=base)
                page = context.new_page()
                page.goto("/auth/login")
                page.get_by_label("Username or email").fill("moderator")
                page.get_by_label("Password", exact=True).fill("demo-password-2026")
                page.get_by_role("button", name="Sign in").click()
                for name, url in pages.items():
                    page.goto(url)
                    page.screenshot(path=HERE / f"{name}-{size}.png")
                    if name == "queue":
                        report_queue(page, size)
                context.close()
            browser.close()
        server.shutdown()


def report_queue(page, size: str) -> None:
    """How many queue items fit the first screen, and where the first comment's text starts."""
    fit, first_text = page.evaluate(
        """() => {
          const items = [...document.querySelectorAll('#queue .queue-item')];
          const fit = items.filter(i => i.getBoundingClientRect().bottom <= innerHeight).length;
          const text = document.querySelector('#queue .queue-item .item-body');
          return [fit, Math.round(text.getBoundingClientRect().top)];
        }"""
    )
    print(
        f"queue at {size} px: {fit} items entirely on the first screen; "
        f"the first comment's text starts {first_text} px down"
    )


if __name__ == "__main__":
    main()
