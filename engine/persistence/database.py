"""Connecting: SQLite (WAL, full sync, busy timeout, immediate transactions) or PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlmodel import Session, SQLModel

from engine.errors import InvalidInput, RatifyError
from engine.persistence.tables import SCHEMA_VERSION, MetaRow

__all__ = ["connect", "ensure_schema", "init_schema", "transaction"]

SQLITE_BUSY_TIMEOUT_MS = 10_000


def connect(url: str) -> Engine:
    """An engine for ``url``. SQLite gets the pragmas that make an acknowledged write durable."""
    try:
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
            event.listen(engine, "connect", _sqlite_pragmas)
            event.listen(engine, "begin", _sqlite_begin)
            return engine
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
        return create_engine(url, pool_pre_ping=True)
    except (ArgumentError, ImportError) as exc:
        raise InvalidInput(
            f"database URL {url!r} is not usable ({exc}); use sqlite:///ratify.db or "
            "postgresql+psycopg://user@host:5432/dbname"
        ) from None


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own would be deferred).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    # Take the write lock up front: a deferred transaction that later writes can fail with
    # SQLITE_BUSY at once instead of waiting out the busy timeout.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """A session inside one transaction: committed when the block ends, rolled back if it raises."""
    try:
        with Session(engine, expire_on_commit=False) as session, session.begin():
            yield session
    except OperationalError as exc:
        raise RatifyError(f"database error: {exc.orig}") from None


def init_schema(engine: Engine) -> str:
    """Create the tables, or check that an existing schema is one this version can use."""
    try:
        SQLModel.metadata.create_all(engine)
    except OperationalError as exc:
        raise InvalidInput(
            f"cannot reach the database ({exc.orig}); check RATIFY_DATABASE_URL"
        ) from None
    with transaction(engine) as session:
        row = session.get(MetaRow, "schema_version")
        if row is None:
            session.add(MetaRow(key="schema_version", value=str(SCHEMA_VERSION)))
            return f"created schema version {SCHEMA_VERSION}"
        if int(row.value) > SCHEMA_VERSION:
            raise InvalidInput(
                f"the database has schema version {row.value}, newer than this ratify "
                f"({SCHEMA_VERSION}); upgrade ratify"
            )
        return f"schema version {row.value} is current"


def ensure_schema(engine: Engine) -> None:
    """Create the schema on an empty database; refuse one newer than this code."""
    try:
        has_tables = inspect(engine).has_table("ratify_meta")
    except OperationalError as exc:
        raise InvalidInput(
            f"cannot reach the database ({exc.orig}); check RATIFY_DATABASE_URL"
        ) from None
    if not has_tables:
        init_schema(engine)
    else:
        with transaction(engine) as session:
            row = session.get(MetaRow, "schema_version")
            version = row.value if row is not None else None
            if version is not None and int(version) > SCHEMA_VERSION:
                raise InvalidInput(
                    f"the database has schema version {version}, newer than this ratify; upgrade it"
                )
