"""Extensions, created unbound; create_app() binds them."""

import gc
import sqlite3
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

from flask import Flask, g, has_app_context, has_request_context, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_mail import Mail
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_sqlalchemy.session import Session as FlaskSession
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData, bindparam, event, inspect, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.types import TypeDecorator

from forum import sqlite_checkpoint
from forum.sqlite_writes import WriteLockedConnection

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _without_gc(method: Callable) -> Callable:
    @wraps(method)
    def wrapper(self: FlaskSession, *args: Any, **kwargs: Any) -> Any:
        if not gc.isenabled():
            return method(self, *args, **kwargs)
        gc.disable()
        try:
            return method(self, *args, **kwargs)
        finally:
            gc.enable()

    return wrapper


class Session(FlaskSession):
    """On Python 3.11, no garbage collection while the session walks all its objects.

    CPython 3.11 corrupts memory (then segfaults) when a collection starts while an
    object's __dict__ is being materialized and a weakref callback writes to that same
    object. SQLAlchemy's InstanceState._cleanup is such a callback, and Session.close()
    and commit's expiry write to every state, including those of objects only a reference
    cycle still holds (a rendered Jinja context holds the page's comments): gunicorn
    workers serving a 1,000-comment thread died within a few requests (bench/RESULTS.md).
    3.12 does not have the bug.
    """

    if sys.version_info < (3, 12):
        close = _without_gc(FlaskSession.close)
        commit = _without_gc(FlaskSession.commit)
        rollback = _without_gc(FlaskSession.rollback)
        expire_all = _without_gc(FlaskSession.expire_all)
        expunge_all = _without_gc(FlaskSession.expunge_all)

    def holds_connection(self) -> bool:
        """Whether this session's transaction has begun on a connection: a read in it sees
        that transaction's snapshot. (A session can be in a transaction that holds none:
        `add` begins one, a statement the connection.)"""
        return self.info.get(_CONNECTED, False)


_CONNECTED = "forum.connected"


@event.listens_for(Session, "after_begin")
def _began(session: Session, _transaction: Any, _connection: Any) -> None:
    session.info[_CONNECTED] = True


@event.listens_for(Session, "after_transaction_end")
def _ended(session: Session, transaction: Any) -> None:
    if transaction.parent is None:
        session.info.pop(_CONNECTED, None)


db = SQLAlchemy(model_class=Base, session_options={"class_": Session})
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
mail = Mail()
limiter = Limiter(key_func=get_remote_address)


def init_extensions(app: Flask) -> None:
    """Bind every extension to `app`."""
    sqlite_checkpoint.configure(float(app.config["SQLITE_CHECKPOINT_SECONDS"]))
    db.init_app(app)
    migrate.init_app(
        app,
        db,
        directory=str(Path(app.root_path).parent / "migrations"),
        compare_type=True,
        render_as_batch=True,
        render_item=_render_item,
    )
    csrf.init_app(app)
    mail.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message_category = "info"
    login_manager.session_protection = "strong" if app.config["HTTPS"] else "basic"


def _render_item(type_: str, obj: Any, _context: Any) -> str | bool:
    """Migrations spell custom column types as their plain SQLAlchemy type."""
    if type_ == "type" and isinstance(obj, TypeDecorator):
        return f"sa.{obj.impl!r}"
    return False


# Seconds: SQLite's busy handler, and a thread's wait for its process's write lock.
SQLITE_BUSY_TIMEOUT = 15


@event.listens_for(Engine, "do_connect")
def _sqlite_connection_class(dialect: Any, _record: Any, _args: Any, params: dict) -> None:
    """SQLite connections that can hold the writers' lock file (forum/sqlite_writes.py)."""
    if dialect.name == "sqlite" and dialect.driver == "pysqlite":
        params.setdefault("factory", WriteLockedConnection)


@event.listens_for(Engine, "connect")
def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    """Foreign keys on, WAL and a busy timeout: several workers can share the file."""
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    # Let SQLAlchemy emit BEGIN itself (see _sqlite_on_begin) instead of pysqlite.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT * 1000}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
    sqlite_checkpoint.on_connect(dbapi_connection)


@event.listens_for(Engine, "begin")
def _sqlite_on_begin(conn: Any) -> None:
    """Requests that write take the write lock up front, so they wait instead of failing.

    A deferred transaction that reads and then writes cannot wait for the lock
    ("database is locked"); BEGIN IMMEDIATE can. Before it, the writer queues on the lock
    file beside the database (forum/sqlite_writes.py), released at COMMIT or ROLLBACK, so
    writers go in turn instead of polling in SQLite's busy handler. Reads stay deferred.
    """
    if conn.dialect.name != "sqlite":
        return
    if has_request_context():
        immediate = request.method not in ("GET", "HEAD", "OPTIONS")
    else:
        immediate = has_app_context() and g.get("sqlite_write_lock_up_front", False)
    # Straight to the driver: through SQLAlchemy (exec_driver_sql) the BEGIN cost as much
    # CPU as the query a cached page runs after it.
    raw = conn.connection.dbapi_connection
    if not immediate:
        raw.execute("BEGIN")
        return
    if isinstance(raw, WriteLockedConnection):
        raw.take_write_lock(SQLITE_BUSY_TIMEOUT)
    try:
        raw.execute("BEGIN IMMEDIATE")
    except BaseException:
        if isinstance(raw, WriteLockedConnection):
            raw.release_write_lock()
        raise


def take_write_lock_up_front() -> None:
    """Outside a request (after-response work, commands that write): this app context's
    SQLite transactions begin IMMEDIATE too, so they wait for other writers."""
    g.sqlite_write_lock_up_front = True


def read(statement: Any, params: dict | None = None) -> Any:
    """Run a read on the session's connection (its transaction), without the ORM's
    execution layer: for the dashboard's statements, built once with bind parameters. The
    ORM's layer cost 0.3-0.4 ms a statement, more than SQLite takes to answer them
    (bench/NOTES.md, "The dashboard's reads"). No autoflush: a caller that may have
    unflushed changes flushes first."""
    return db.session.connection().execute(statement, params or {})


def told_listeners(engine: Engine, cursor: Any, statement: str, parameters: Any) -> None:
    """Tell the engine's `before_cursor_execute` listeners (the suite's and the bench's
    statement counters, the query-plan checks) of a statement sent on a driver cursor,
    which the engine never sees. Costs nothing when no one listens."""
    listeners = engine.dispatch.before_cursor_execute
    if listeners:
        listeners(None, cursor, statement, parameters, None, False)


def driver_read(statement: Any, params: dict[str, Any]) -> list[tuple]:
    """One SELECT on a pooled connection's own cursor, outside any transaction of the
    session (one statement reads one snapshot): for a kept page's single read, where a
    SQLAlchemy Connection, its BEGIN and its ROLLBACK cost four times the statement
    (bench/NOTES.md, session 11). `statement` is built once; it is compiled once per
    dialect. Listeners are told (told_listeners)."""
    engine = db.engine
    sql, order = _compiled(statement, engine.dialect)
    parameters: Any = tuple(params[name] for name in order) if order is not None else params
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        try:
            told_listeners(engine, cursor, sql, parameters)
            cursor.execute(sql, parameters)
            return cursor.fetchall()
        finally:
            cursor.close()
    finally:
        raw.close()  # back to the pool, which rolls back whatever the driver began


# Keyed by the statement's id, and holding the statement, so that id is never reused.
_COMPILED: dict[tuple[int, type], tuple[Any, str, tuple[str, ...] | None]] = {}


def _compiled(statement: Any, dialect: Any) -> tuple[str, tuple[str, ...] | None]:
    key = (id(statement), type(dialect))
    found = _COMPILED.get(key)
    if found is None:
        compiled = statement.compile(dialect=dialect)
        order = tuple(compiled.positiontup) if compiled.positiontup is not None else None
        found = _COMPILED[key] = (statement, compiled.string, order)
    return found[1], found[2]


def driver_load(model: type, key: Any) -> Any:
    """The row of `model` whose primary key is `key`, read by driver_read (no transaction of
    the session) and put in the session as a loaded entity; None when there is none.

    For a page read by a signed-in member: the user's load through the session began a
    transaction, so the kept page's version read went through it too, and the member's
    page cost twice the anonymous one (bench/NOTES.md, session 12). Each column is
    converted as the ORM converts it (its type's result processor for this dialect)."""
    engine = db.engine
    statement, names, processors = _entity_read(model, engine.dialect)
    rows = driver_read(statement, {"key": key})
    if not rows:
        return None
    entity = inspect(model).class_manager.new_instance()
    for name, process, value in zip(names, processors, rows[0], strict=True):
        set_committed_value(entity, name, process(value) if process is not None else value)
    make_transient_to_detached(entity)
    db.session.add(entity)
    return entity


_ENTITY_READS: dict[tuple[type, type], tuple[Any, tuple[str, ...], tuple[Any, ...]]] = {}


def _entity_read(model: type, dialect: Any) -> tuple[Any, tuple[str, ...], tuple[Any, ...]]:
    """The statement reading every column of `model` by primary key, the attributes they
    load and their result processors: built once per model and dialect."""
    found = _ENTITY_READS.get((model, type(dialect)))
    if found is None:
        mapper = inspect(model)
        (primary,) = mapper.primary_key
        attributes = list(mapper.column_attrs)
        columns = [attribute.columns[0] for attribute in attributes]
        statement = select(*columns).where(primary == bindparam("key"))
        processors = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        )
        names = tuple(attribute.key for attribute in attributes)
        found = _ENTITY_READS[(model, type(dialect))] = (statement, names, processors)
    return found
