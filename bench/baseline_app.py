"""The yardstick: a bare Flask page that runs one query and renders its rows with Jinja.

Served by the same gunicorn settings as the forum. `/rows?post=P&n=N&size=B` reads the
first N visible comments of post P (one query on the same database) and renders them;
the page is padded with spaces to B bytes, the size of the forum page it stands for.

`POST /posts/P/comments` is the bare POST: the same form the forum's guests send, parsed
by Flask, its body escaped, one INSERT into the same `comment` table (with its indexes),
one UPDATE giving the row its path, a commit, and a 302 to the new comment's anchor. No
session, no CSRF, no rules, no sanitizer: what storing a comment costs the stack itself.

`POST /comments/C/approve?size=B` is the bare approval: one UPDATE of the comment's status,
visibility and time, a commit, and a JSON answer of B bytes. What a moderator's decision
costs the database itself; the bench reports the forum's approve against it as
information (its targets stay against the bare page of the same bytes).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

from flask import Flask, Response, redirect, render_template, request
from markupsafe import escape
from sqlalchemy import create_engine, event, text

# `visible = :visible`, not a bare `visible`: SQLite uses an index only for a comparison,
# so the bare column left it to choose between two indexes on post_id, and on the bench's
# database it read every comment of the post and sorted them (2.7 ms for a 1,257-comment
# post instead of 0.03 ms), which made every SQLite yardstick slower than a bare page is.
# The forum's own queries compare (`visible IS 1`). tests/test_bench_yardstick.py checks
# the plan.
QUERY = text(
    "SELECT id, author_name, created_at, body_html FROM comment"
    " WHERE post_id = :post AND visible = :visible ORDER BY path LIMIT :n"
)

INSERT = text(
    "INSERT INTO comment (post_id, kind, depth, path, author_name, author_email, author_url,"
    " ip, user_agent, body_source, body_format, body_html, body_hash, link_domain, status,"
    " visible, sanitizer_report, spam_reasons, created_at, notify_on_decision,"
    " notify_on_reply) VALUES (:post, 'comment', 0, '', :name, :email, :url, :ip, :agent,"
    " :body, 'html', :html, '', '', 'pending', false, '[]', '[]', :now, false, false)"
    " RETURNING id"
)
SET_PATH = text("UPDATE comment SET path = :path WHERE id = :id")
APPROVE = text(
    "UPDATE comment SET status = 'approved', visible = (parent_id IS NULL),"
    " moderated_at = :now WHERE id = :id"
)


def create_app() -> Flask:
    app = Flask(__name__)
    engine = create_engine(os.environ["BENCH_DATABASE_URL"])
    if engine.dialect.name == "sqlite":
        # The forum's own settings for a write (forum/extensions.py), so that both sides
        # pay the same journal.
        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record) -> None:
            dbapi_connection.execute("PRAGMA journal_mode=WAL")
            dbapi_connection.execute("PRAGMA synchronous=NORMAL")
            dbapi_connection.execute("PRAGMA busy_timeout=15000")

    @app.get("/rows")
    def rows() -> Response:
        post = request.args.get("post", 0, type=int)
        n = request.args.get("n", 10, type=int)
        size = request.args.get("size", 0, type=int)
        with engine.connect() as conn:
            found = conn.execute(QUERY, {"post": post, "visible": True, "n": n}).all()
        body = render_template("rows.html", rows=found).encode()
        if len(body) < size:
            body += b" " * (size - len(body))
        return Response(body, mimetype="text/html")

    @app.post("/posts/<int:post_id>/comments")
    def post_comment(post_id: int) -> Response:
        form = request.form
        body = form.get("body", "")
        values = {
            "post": post_id,
            "name": form.get("author_name", "")[:100],
            "email": form.get("author_email", "")[:254],
            "url": form.get("author_url", "")[:500],
            "ip": request.remote_addr or "",
            "agent": request.user_agent.string[:500],
            "body": body,
            "html": f"<p>{escape(body)}</p>",
            "now": datetime.now(UTC).replace(tzinfo=None),
        }
        with engine.begin() as conn:
            new_id = conn.execute(INSERT, values).scalar_one()
            conn.execute(SET_PATH, {"path": f"{new_id:010d}", "id": new_id})
        return redirect(f"/posts/{post_id}#comment-{new_id}")

    @app.post("/comments/<int:comment_id>/approve")
    def approve(comment_id: int) -> Response:
        size = request.args.get("size", 0, type=int)
        now = datetime.now(UTC).replace(tzinfo=None)
        with engine.begin() as conn:
            conn.execute(APPROVE, {"id": comment_id, "now": now})
        body = json.dumps({"ok": True, "id": comment_id}).encode()
        if len(body) < size:
            body += b" " * (size - len(body))
        return Response(body, mimetype="application/json")

    @app.get("/healthz")
    def healthz() -> str:
        return "ok"

    return app
