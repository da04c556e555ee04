"""The yardstick: a bare Flask page that runs one query and renders its rows with Jinja.

Served by the same gunicorn settings as the forum. `/rows?post=P&n=N&size=B` reads the
first N visible comments of post P (one query on the same database) and renders them;
the page is padded with spaces to B bytes, the size of the forum page it stands for.
"""

from __future__ import annotations

import os

from flask import Flask, Response, render_template, request
from sqlalchemy import create_engine, text

QUERY = text(
    "SELECT id, author_name, created_at, body_html FROM comment"
    " WHERE post_id = :post AND visible ORDER BY path LIMIT :n"
)


def create_app() -> Flask:
    app = Flask(__name__)
    engine = create_engine(os.environ["BENCH_DATABASE_URL"])

    @app.get("/rows")
    def rows() -> Response:
        post = request.args.get("post", 0, type=int)
        n = request.args.get("n", 10, type=int)
        size = request.args.get("size", 0, type=int)
        with engine.connect() as conn:
            found = conn.execute(QUERY, {"post": post, "n": n}).all()
        body = render_template("rows.html", rows=found).encode()
        if len(body) < size:
            body += b" " * (size - len(body))
        return Response(body, mimetype="text/html")

    @app.get("/healthz")
    def healthz() -> str:
        return "ok"

    return app
