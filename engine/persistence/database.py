"""Connecting: SQLite (WAL, full sync, busy timeout, immediate transactions) or PostgreSQL;
the schema is created and upgraded by Alembic migrations, run in-process. A command that finds
its schema current (the revision stored is this version's last) does not import Alembic."""

from __future__ import annotations

import functools
import re
import sqlite3
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.exc import (
    ArgumentError,
    DatabaseError,
    DBAPIError,
    IntegrityError,
    OperationalError,
)
from sqlmodel import Session

from engine.errors import InvalidInput, RatifyError
from engine.persistence.reader import (
    MIGRATIONS,
    SQLITE_BUSY_TIMEOUT_MS,
    VERSION_TABLE,
    plain_head,
)

if TYPE_CHECKING:  # Alembic (and Mako with it) is imported only when a migration is to run
    from alembic.config import Config
    from alembic.script import ScriptDirectory

__all__ = [
    "Transactions",
    "connect",
    "ensure_schema",
    "init_schema",
    "schema_revision",
    "transaction",
]

MIGRATION_LOCK = 0x7261746966  # "ratif": the advisory lock that serialises migrations


def connect(url: str) -> Engine:
    """An engine for ``url``. SQLite gets the pragmas that make an acknowledged write durable."""
    try:
        if url.startswith("sqlite"):
            timeout = SQLITE_BUSY_TIMEOUT_MS / 1000
            engine = create_engine(url, connect_args={"timeout": timeout})
            event.listen(engine, "connect", _sqlite_pragmas)
            event.listen(engine, "begin", _sqlite_begin)
            return engine
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
        return create_engine(url, pool_pre_ping=True)
    except (ArgumentError, ImportError, ValueError) as exc:
        raise InvalidInput(
            f"database URL {_shown(url)!r} is not usable ({_shown(str(exc))}); use "
            "sqlite:///ratify.db or postgresql+psycopg://user@host:5432/dbname"
        ) from None


def _shown(text: str) -> str:
    """``text`` with any password in a URL masked: error messages are printed and logged."""
    return re.sub(r"(://[^:/@\s]+:)[^@\s]+@", r"\1***@", text)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own would be deferred).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    _wal(cursor)
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _wal(cursor: Any) -> None:
    """Switch a new database to WAL. Connections opening a brand-new file together race for
    the switch, and SQLite answers the losers "database is locked" at once, without its busy
    handler, so wait for the winner here, within the busy timeout."""
    pause = 0.005
    waited = 0.0
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or waited >= SQLITE_BUSY_TIMEOUT_MS / 1000:
                raise
        time.sleep(pause)
        waited += pause
        pause = min(pause * 2, 0.1)


def _sqlite_begin(connection: Any) -> None:
    # A transaction that need not wait for the disk (transaction(durable=False)) commits with
    # synchronous=NORMAL, every other with FULL; the setting holds per connection, and may
    # change only between transactions, so here, just before one begins.
    wanted = "FULL" if connection.get_execution_options().get(_DURABLE, True) else "NORMAL"
    # On the driver's connection: SQLAlchemy's execution of a statement (its context, events and
    # result) costs more than SQLite's BEGIN, once for every transaction.
    driver = connection.connection.driver_connection
    if connection.info.get("synchronous", "FULL") != wanted:
        driver.execute(f"PRAGMA synchronous={wanted}")
        connection.info["synchronous"] = wanted
    # Take the write lock up front: a deferred transaction that later writes can fail with
    # SQLITE_BUSY at once instead of waiting out the busy timeout.
    try:
        driver.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as exc:  # as exec_driver_sql would raise it (a locked database…)
        raise DBAPIError.instance("BEGIN IMMEDIATE", (), exc, sqlite3.Error) from exc


_DURABLE = "ratify_durable"


@contextmanager
def transaction(engine: Engine, *, durable: bool = True) -> Iterator[Session]:
    """A session inside one transaction: committed when the block ends, rolled back if it raises.

    ``durable=False``: the commit is seen by every other connection at once and survives the
    process being killed, but does not wait for the disk (SQLite: WAL with synchronous=NORMAL;
    PostgreSQL: synchronous_commit off), so a crash of the machine may lose it, and nothing else:
    the next durable commit makes it durable too (SQLite syncs the whole WAL, PostgreSQL flushes
    its log up to its own commit). For what may be lost that way and done again."""
    with _translated(), Session(engine, expire_on_commit=False) as session, session.begin():
        _relax(session, durable)
        yield session


class Transactions:
    """Many short transactions one after the other on one connection, each begun and committed
    on its own as :func:`transaction` would, for statements that need no ORM session (the
    settling of a batch's messages, one at a time: a session and a connection taken from the
    pool for each would cost more than its UPDATE)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._connection: Connection | None = None

    def __enter__(self) -> Transactions:
        return self

    def __exit__(self, *_: object) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    @contextmanager
    def begin(self, *, durable: bool = True) -> Iterator[Connection]:
        with _translated():
            if self._connection is None:
                self._connection = self._engine.connect()
            connection = self._connection.execution_options(**{_DURABLE: durable})
            with connection.begin():
                if not durable and connection.dialect.name == "postgresql":
                    connection.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
                yield connection


def _relax(session: Session, durable: bool) -> None:
    """Unless ``durable``, begin the session's transaction now, so that its commit does not
    wait for the disk (on SQLite, the "begin" event reads the option off the connection). A
    durable one begins when it first needs the database, as a session does."""
    if durable:
        return
    connection = session.connection(execution_options={_DURABLE: False})
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")


@contextmanager
def _translated() -> Iterator[None]:
    """The database's errors as ratify's (but a constraint, which a concurrent writer won: the
    caller looks again)."""
    try:
        yield
    except IntegrityError:
        raise
    except OperationalError as exc:
        raise RatifyError(f"database error: {_shown(str(exc.orig))}") from None
    except DatabaseError as exc:
        raise RatifyError(f"database error: {_shown(str(exc.orig))}") from None


@functools.cache
def _scripts() -> ScriptDirectory:
    """The migration scripts, read once per process (by Alembic: only when a schema is to be
    made or changed, or its revision is not this version's)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config())


def _config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


@functools.cache
def _head() -> str | None:
    """This version's revision: the one no migration names as the one before it. Read from the
    scripts' ``revision`` and ``down_revision`` lines, as a command that finds its schema current
    needs nothing more; by Alembic when they are not that plain (a merge, a branch)."""
    return plain_head() or _scripts().get_current_head()


def schema_revision(engine: Engine) -> str | None:
    """The database's migration revision; None for an empty database."""
    try:
        with engine.connect() as connection:
            return _stored_revision(connection)
    except OperationalError as exc:
        raise InvalidInput(
            f"cannot reach the database ({_shown(str(exc.orig))}); "
            "check RATIFY_DATABASE_URL or {opt.db}"
        ) from None
    except DatabaseError as exc:
        raise InvalidInput(f"not a database ratify can use ({_shown(str(exc.orig))})") from None


def _stored_revision(connection: Connection) -> str | None:
    """What Alembic keeps in ``alembic_version``, read with a plain query (Alembic itself is
    imported when there is more than one, for its own error)."""
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    stored = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    if len(stored) > 1:
        from alembic.runtime.migration import MigrationContext

        return MigrationContext.configure(connection).get_current_revision()
    return str(stored[0]) if stored else None


def init_schema(engine: Engine) -> str:
    """Create the schema, or upgrade it to this version's; say which."""
    before = schema_revision(engine)
    head = _head()
    if before == head:
        return f"schema is current (revision {head})"
    _known(before)
    config = _config()
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Processes starting together on an empty database migrate one at a time; the
            # others then find the schema made. (SQLite's write lock does this by itself.)
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            before = _stored_revision(connection)
            if before == head:
                return f"schema is current (revision {head})"
        from alembic import command

        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    if before is None:
        return f"created the schema (revision {head})"
    return f"upgraded the schema from revision {before} to {head}"


# The engines whose schema this process has found current: checked once per process, not in
# every use case. (A schema changes only by `ratify init`, which a running process never meets.)
_current: weakref.WeakSet[Engine] = weakref.WeakSet()


def ensure_schema(engine: Engine) -> None:
    """Create the schema on an empty database; ask for `ratify init` on an older one. Once per
    engine and process."""
    if engine in _current:
        return
    _ensure(engine)
    _current.add(engine)


def _ensure(engine: Engine) -> None:
    revision = schema_revision(engine)
    if revision is None:
        init_schema(engine)
    elif revision != _head():
        _known(revision)
        raise InvalidInput(
            f"the database's schema (revision {revision}) is older than this ratify's; "
            "upgrade it with {cmd.init}"
        )


def _known(revision: str | None) -> None:
    from alembic.util.exc import CommandError

    if revision is None:
        return
    try:
        _scripts().get_revision(revision)
    except CommandError:
        raise InvalidInput(
            f"the database's schema revision {revision} is unknown to this ratify; "
            "it was made by a newer version: upgrade ratify"
        ) from None
