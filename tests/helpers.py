"""Helpers shared by test modules; conftest.py keeps only fixtures and pytest hooks.

- The app and its databases: `make_test_app`, `postgres_database` (the one place that
  creates and drops a PostgreSQL database of a run's own), `scratch_database`,
  `empty_database`, `clear_database`.
- Requests: `login_as`, `count_queries`.
- The URL map, walked with public Werkzeug API only, and `build_world` for the walk.
- Accounts through the real forms: `sign_in`, `signed_in_as`, `cookie`, `LIMITED`.
- Sanitizer output checked as a browser would parse it: `assert_safe`.
"""

from __future__ import annotations

import contextlib
import html
import os
import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Literal
from urllib.parse import quote

import pytest

# Output is checked with the same spec parser browsers follow; html5lib ships inside bleach.
from bleach._vendor import html5lib
from flask import Flask
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from werkzeug.routing import Rule

from forum import create_app
from forum.extensions import db
from forum.models import Ban, BanKind, Role, Status, Tag
from tests.factories import PASSWORD, make_comment, make_post, make_user

# The app and its databases --------------------------------------------------------------

PG_SERVER = os.environ.get(
    "FORUM_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def pg_url(database: str, server: str = PG_SERVER) -> str:
    """The URL of `database` on the PostgreSQL server (with the psycopg 3 driver)."""
    url = make_url(server)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url.set(database=database).render_as_string(hide_password=False)


@contextlib.contextmanager
def postgres_database(
    label: str,
    *,
    schema: bool = True,
    unreachable: Literal["exit", "fail"] = "fail",
) -> Iterator[str]:
    """A new database `forum_<label>_<random>` on PG_SERVER, dropped afterwards; yields
    its URL. With `schema` the models' tables are created in it (without, it is empty,
    for the migrations). A server that cannot be reached either fails the test that
    asked ("fail") or ends the whole run ("exit", for the run's own database: every
    test would fail the same way)."""
    name = f"forum_{label}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_url("postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as error:  # noqa: BLE001 - any failure: the PostgreSQL run cannot go on
        admin.dispose()
        message = f"PostgreSQL not reachable at {PG_SERVER}: {error}"
        if unreachable == "exit":
            pytest.exit(message, returncode=3)
        pytest.fail(message)
    url = pg_url(name)
    try:
        if schema:
            engine = create_engine(url)
            with engine.begin() as conn:
                db.metadata.create_all(conn)
            engine.dispose()
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextlib.contextmanager
def scratch_database(kind: str, directory: Path, label: str) -> Iterator[str]:
    """A database of its own with the schema in it, dropped afterwards; yields its URL.

    For servers that run outside the test's app (the live server of the browser tests,
    the gunicorn workers of the concurrency test): they must not share the run's test
    database, which other tests empty after every test. SQLite: a file in `directory`.
    PostgreSQL: a database named after `label` on PG_SERVER.
    """
    if kind != "sqlite":
        with postgres_database(label) as url:
            yield url
        return
    url = f"sqlite:///{directory / f'{label}.sqlite3'}"
    engine = create_engine(url)
    db.metadata.create_all(engine)
    engine.dispose()
    yield url


def make_test_app(database_url: str | None, tmp_path, **overrides) -> Flask:
    config = {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key",
        "SQLALCHEMY_DATABASE_URI": database_url or "sqlite://",
        "DATABASE_URL": None,
        "WTF_CSRF_ENABLED": False,
        "RATELIMIT_ENABLED": False,
        "RATELIMIT_STORAGE_URI": "memory://",
        "MAIL_SUPPRESS_SEND": True,
        "MODERATION_MIN_SUBMIT_SECONDS": 0,
    }
    config.update(overrides)
    app = create_app(config)
    app.instance_path = str(tmp_path / "instance")
    return app


def empty_database(app: Flask, database_url: str | None) -> None:
    """After a test: drop the in-memory schema, or empty the run's PostgreSQL database."""
    with app.app_context():
        db.session.remove()
        if database_url is None:
            db.drop_all()
        else:
            truncate_all()
        db.engine.dispose()


def truncate_all() -> None:
    """Empty every table (in an app context); DELETE is ~40x faster than TRUNCATE on
    tables this small. PostgreSQL only: the ids start at 1 again, as on fresh SQLite."""
    for table in reversed(db.metadata.sorted_tables):
        db.session.execute(table.delete())
    db.session.execute(
        text(
            "SELECT setval(s.seq, 1, false) FROM (SELECT pg_get_serial_sequence("
            "quote_ident(c.table_name), c.column_name) AS seq FROM information_schema.columns c "
            "WHERE c.table_schema = current_schema() AND c.column_default LIKE 'nextval%') s"
        )
    )
    db.session.commit()


def clear_database(engine: Engine) -> None:
    """Delete every row, keeping the schema (between browser tests)."""
    tables = db.metadata.sorted_tables
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(tables):
                conn.execute(table.delete())


# Requests --------------------------------------------------------------------------------


def item_html(html: str, comment_id: int) -> str:
    """One queue item's markup on a dashboard page, up to the next item or the list's end."""
    item = html[html.index(f'id="item-{comment_id}"') :]
    return re.split(r'<li class="queue-item |</ol>', item, maxsplit=1)[0]


def login_as(client, user_id: int, token: str | None = "") -> None:
    """Sign a test client in without the form (auth tests use the real form)."""
    with client.session_transaction() as sess:
        sess["_user_id"] = f"{user_id}:{token or ''}"
        sess["_fresh"] = True


@contextlib.contextmanager
def count_queries(app: Flask) -> Iterator[list[str]]:
    """Record every SQL statement the app runs inside the block."""
    statements: list[str] = []
    with app.app_context():
        engine = db.engine

    def record(_conn, _cursor, statement, *_args) -> None:
        if not statement.lstrip().upper().startswith(("BEGIN", "PRAGMA", "SAVEPOINT", "RELEASE")):
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


# The URL map -----------------------------------------------------------------------------
# A walk discovers the app's rules itself, so a route added next year is covered the day
# it is added. Rule arguments are read from the rule's own text (`<int:comment_id>`,
# `<any(a, b):action>`), the documented rule syntax, and URLs are built with `Rule.build`.

_ARGUMENT = re.compile(
    r"<(?:(?P<converter>[A-Za-z_]\w*)(?:\((?P<args>[^)]*)\))?:)?(?P<name>[A-Za-z_]\w*)>"
)
# Ids at and past 32 and 64 bits, negatives, zero and another script's digits.
HOSTILE_IDS = (
    "0", "-1", str(2**31 - 1), str(2**31), str(2**63 - 1), str(2**63), str(10**20), "9" * 400,
    "\u0661",
)  # fmt: skip


@dataclass(frozen=True)
class RuleArgument:
    name: str
    converter: str  # "default", "int", "any", ...
    choices: tuple[str, ...] = ()


def rule_arguments(rule: Rule) -> list[RuleArgument]:
    """The rule's parameters in order, with their converter's name (and `any` choices)."""
    found = []
    for match in _ARGUMENT.finditer(rule.rule):
        converter = match["converter"] or "default"
        choices = ()
        if converter == "any" and match["args"]:
            choices = tuple(c.strip().strip("'\"") for c in match["args"].split(","))
        found.append(RuleArgument(match["name"], converter, choices))
    return found


def walked_rules(app: Flask) -> list[Rule]:
    """Every rule but static files, in a stable order."""
    return sorted(
        (r for r in app.url_map.iter_rules() if r.endpoint != "static"),
        key=lambda r: (r.endpoint, r.rule),
    )


def methods(rule: Rule) -> list[str]:
    return sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})


def sample_values(
    rule: Rule, given: Mapping[str, object] | None = None, integer: int = 1, text: str = "x"
) -> dict[str, object]:
    """A value for every parameter: `given` first, then an `any` choice, an int or text."""
    given = given or {}
    values: dict[str, object] = {}
    for arg in rule_arguments(rule):
        if arg.name in given:
            values[arg.name] = given[arg.name]
        elif arg.choices:
            values[arg.name] = arg.choices[0]
        elif arg.converter == "int":
            values[arg.name] = integer
        else:
            values[arg.name] = text
    return values


def build_path(rule: Rule, values: Mapping[str, object]) -> str:
    built = rule.build(dict(values))
    assert built is not None, (rule.rule, values)
    return built[1]


def int_arguments(rule: Rule) -> list[str]:
    return [arg.name for arg in rule_arguments(rule) if arg.converter == "int"]


def hostile_id_paths(
    rule: Rule, given: Mapping[str, object] | None = None
) -> Iterator[tuple[str, str, str]]:
    """(parameter, raw value, path) with one integer parameter replaced by a hostile value
    as raw text (not through the converter, which would refuse to build it)."""
    for name in int_arguments(rule):
        marker = 987_654_321_123
        values = sample_values(rule, given)
        values[name] = marker
        path = build_path(rule, values)
        for raw in HOSTILE_IDS:
            yield name, raw, path.replace(str(marker), quote(raw, safe="-"), 1)


# The world a walk visits ----------------------------------------------------------------

# URL parameter -> key of `world` (a Case's params override these).
WORLD_PARAMS = {
    "post_id": "post",
    "slug": "post_slug",
    "comment_id": "member_comment",
    "user_id": "bob",
    "username": "member_name",
    "ban_id": "ban",
    "token": "link_token",
}


def world_path(rule: Rule, world: dict, params: dict | None = None) -> str:
    """The rule's URL with every parameter set from the world (`any` takes its first)."""
    names = {**WORLD_PARAMS, **(params or {})}
    given = {}
    for arg in rule_arguments(rule):
        if arg.choices:
            continue
        if arg.name not in names:
            raise KeyError(f"{rule.rule}: add the parameter {arg.name!r} to WORLD_PARAMS")
        given[arg.name] = world[names[arg.name]]
    return build_path(rule, sample_values(rule, given))


def build_world(app) -> dict:
    """One user per role and the objects URLs point at; returns their ids (commits)."""
    from forum.services import notifications

    admin = make_user(Role.ADMIN, username="root")
    moderator = make_user(Role.MODERATOR, username="mod")
    member = make_user(username="member")
    banned = make_user(username="banned", is_banned=True)
    bob = make_user(username="bob")
    post = make_post(admin, title="Walked post")
    tag = Tag(name="Walk", slug="walk")
    post.tags.append(tag)
    member_comment = make_comment(post, user=member, body="The member's comment")
    other_comment = make_comment(post, user=bob, body="Bob's comment")
    pending = make_comment(post, status=Status.PENDING, body="A held guest comment")
    post.wp_id = 7
    member_comment.wp_id = 70
    ban = Ban(kind=BanKind.EMAIL, value="spammer@example.net", created_by_id=admin.id)
    db.session.add(ban)
    db.session.commit()
    link = notifications.moderation_link(pending.id)
    return {
        "users": {
            "member": member.id,
            "banned": banned.id,
            "moderator": moderator.id,
            "admin": admin.id,
        },
        "post": post.id,
        "post_slug": post.slug,
        "tag_slug": tag.slug,
        "member_comment": member_comment.id,
        "other_comment": other_comment.id,
        "pending_comment": pending.id,
        "bob": bob.id,
        "member_name": member.username,
        "ban": ban.id,
        "link_token": link.rstrip("/").rsplit("/", 1)[1],
        "legacy_comment": "70",
    }


# Accounts, through the real forms --------------------------------------------------------

# Low limits for the rate-limit tests (app_config); the tests count up to them.
LIMITED = {
    "RATELIMIT_ENABLED": True,
    "RATELIMIT_LOGIN": "4 per minute",
    "RATELIMIT_LOGIN_ACCOUNT": "3 per minute",
    "RATELIMIT_REGISTER": "2 per minute",
    "RATELIMIT_RESET": "2 per minute",
}


def sign_in(client, login: str, password: str = PASSWORD, **extra):
    return client.post("/auth/login", data={"username": login, "password": password, **extra})


def signed_in_as(client) -> str | None:
    page = client.get("/").get_data(as_text=True)
    found = re.search(r"Signed in as <a [^>]*><strong>([^<]+)</strong>", page)
    return found.group(1) if found else None


def cookie(response, name: str) -> SimpleCookie | None:
    for header in response.headers.getlist("Set-Cookie"):
        jar = SimpleCookie()
        jar.load(header)
        if name in jar:
            return jar
    return None


# Sanitizer output, parsed as a browser would ----------------------------------------------

COMMENT_TAGS = frozenset(
    {"a", "abbr", "b", "blockquote", "code", "del", "em", "i", "q", "s", "strong"}
    | {"ul", "ol", "li", "pre", "p", "br"}
)
POST_TAGS = COMMENT_TAGS | {"h2", "h3", "h4", "hr", "img", "figure", "figcaption"}
OUTPUT_ATTRIBUTES = {
    "a": {"href", "title", "rel"},
    "img": {"src", "alt", "width", "height", "loading", "decoding"},
    "abbr": {"title"},
    "blockquote": {"cite"},
    "q": {"cite"},
}
URL_ATTRIBUTES = {"href", "src", "cite", "action", "formaction", "data", "xlink:href", "poster"}
REL = "nofollow ugc noopener"


def scheme_of(value: str) -> str | None:
    """Scheme as a browser could see it: entities decoded, chars <= 0x20 removed."""
    decoded = value
    for _ in range(4):
        decoded = html.unescape(decoded)
    compact = re.sub(r"[\x00-\x20]", "", decoded).lower()
    match = re.match(r"([a-z][a-z0-9+.\-]*):", compact)
    return match.group(1) if match else None


def check_attributes(
    tag: str, attrs: list[tuple[str, str | None]], allowed: frozenset[str]
) -> None:
    assert tag in allowed, f"element <{tag}> in output"
    for name, value in attrs:
        assert not name.lower().startswith("on"), f"event handler {name} on <{tag}>"
        assert name in OUTPUT_ATTRIBUTES.get(tag, set()), f"attribute {name} on <{tag}>"
        if name in URL_ATTRIBUTES:
            assert scheme_of(value or "") in (None, "http", "https", "mailto"), value
    if tag == "a":
        assert dict(attrs).get("rel") == REL
    if tag == "img":
        assert scheme_of(dict(attrs).get("src") or "") == "https", attrs
        assert dict(attrs).get("loading") == "lazy", attrs


class _StdlibTags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.starts: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.stack: list[str] = []
        self.other: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.starts.append((tag, attrs))
        if tag not in ("br", "hr", "img"):
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.other.append(f"self-closing <{tag}/>")

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack.pop() == tag, f"unbalanced </{tag}>"

    def handle_comment(self, data: str) -> None:
        self.other.append("comment")

    def handle_decl(self, decl: str) -> None:
        self.other.append("declaration")

    def handle_pi(self, data: str) -> None:
        self.other.append("processing instruction")

    def unknown_decl(self, data: str) -> None:
        self.other.append("unknown declaration")


def assert_safe(output: str, allowed: frozenset[str] = COMMENT_TAGS) -> None:
    """Parse the output twice (html5lib as a browser would, then html.parser) and check it."""
    parser = html5lib.HTMLParser(namespaceHTMLElements=False)
    fragment = parser.parseFragment(output, container="div", scripting=True)
    for element in fragment.iter():
        if element is fragment:
            continue
        assert isinstance(element.tag, str), "comment in output"
        check_attributes(element.tag, list(element.attrib.items()), allowed)

    stdlib = _StdlibTags()
    stdlib.feed(output)
    stdlib.close()
    assert not stdlib.other, stdlib.other
    assert not stdlib.stack, f"unclosed {stdlib.stack}"
    for tag, attrs in stdlib.starts:
        check_attributes(tag, attrs, allowed)

    lowered = output.lower()
    for needle in ("<script", "<svg", "<math", "<iframe", "<img", "<style", "<!--"):
        assert needle not in lowered or needle[1:] in allowed


def work_done(statement: str, parameters, step: int = 100, index_only: bool = False) -> int:
    """Rows the database touched for a query: PostgreSQL's actual rows read from the
    comment table, over every plan node; SQLite's virtual machine steps (per `step`).
    Either grows with a scan. `index_only`: PostgreSQL may not scan a whole table (a small
    test table would otherwise be scanned whatever the indexes)."""
    raw = db.session.connection().connection.dbapi_connection
    cursor = raw.cursor()
    if db.engine.dialect.name == "sqlite":
        steps = [0]

        def count() -> int:
            steps[0] += 1
            return 0

        raw.set_progress_handler(count, step)
        try:
            cursor.execute(statement, parameters).fetchall()
        finally:
            raw.set_progress_handler(None, step)
        return steps[0]
    if index_only:
        cursor.execute("SET LOCAL enable_seqscan = off")
    cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, parameters)
    plan = cursor.fetchone()[0][0]["Plan"]

    def rows(node) -> int:
        # Rows read from the comment table (joins to other tables read one row each per
        # comment, whatever the table's size).
        own = node.get("Actual Rows", 0) * node.get("Actual Loops", 1)
        here = own if node.get("Relation Name") == "comment" else 0
        return here + sum(rows(n) for n in node.get("Plans", []))

    return rows(plan)


def rows_read(stmt, params: dict) -> int:
    """`work_done` for a SQLAlchemy statement and its values (SQLite per 10 steps; an
    index plan on PostgreSQL)."""
    compiled = stmt.compile(dialect=db.engine.dialect)
    values = compiled.construct_params(params)
    if db.engine.dialect.name == "sqlite":
        return work_done(compiled.string, [values[k] for k in compiled.positiontup], step=10)
    return work_done(compiled.string, values, index_only=True)


def make_indexes_in_order(conn, table, reverse: bool = False) -> None:
    """Drop a table's indexes and make them again in (reverse) order of name: SQLite,
    without statistics, breaks ties between indexes by their order in the schema
    (tests/test_query_plans.py)."""
    indexes = sorted(table.indexes, key=lambda index: index.name, reverse=reverse)
    for index in indexes:
        index.drop(conn)
    for index in indexes:
        index.create(conn)


def favour_index(conn, table: str, index: str) -> None:
    """SQLite statistics saying `index` finds one row per key and every other index of
    the table 10,000: the planner then takes `index` wherever the statement lets it."""
    conn.exec_driver_sql("ANALYZE")
    names = [row[1] for row in conn.exec_driver_sql(f"PRAGMA index_list({table})")]
    conn.exec_driver_sql("DELETE FROM sqlite_stat1 WHERE tbl = ?", (table,))
    for name in names:
        width = len(list(conn.exec_driver_sql(f"PRAGMA index_info({name})")))
        per_key = "1" if name == index else "10000"
        stat = " ".join(["1000000", *[per_key] * width])
        conn.exec_driver_sql("INSERT INTO sqlite_stat1 VALUES (?, ?, ?)", (table, name, stat))
    conn.exec_driver_sql("ANALYZE sqlite_schema")  # reload the statistics
