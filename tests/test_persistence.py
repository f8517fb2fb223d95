"""The schema: Alembic migrations create exactly the tables the models describe, on both
backends."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import SQLModel

from engine.errors import InvalidInput
from engine.interfaces.common import CLI_WORDS
from engine.persistence.database import connect, ensure_schema, init_schema, schema_revision
from tests.conftest import CLI, cli_on, empty_postgres


def test_migrations_match_the_models(database_url: str) -> None:
    engine = connect(database_url)
    try:
        assert init_schema(engine).startswith("created the schema")
        assert init_schema(engine).startswith("schema is current")
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, SQLModel.metadata) == []
    finally:
        engine.dispose()


def test_sqlite_runs_in_wal_mode_with_full_sync(sqlite_url: str) -> None:
    engine = connect(sqlite_url)
    try:
        ensure_schema(engine)
        with engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
            assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 10_000
    finally:
        engine.dispose()


def test_an_unknown_newer_schema_is_refused(sqlite_url: str, tmp_path: Path) -> None:
    engine = connect(sqlite_url)
    try:
        init_schema(engine)
        path = sqlite_url.removeprefix("sqlite:///")
        with sqlite3.connect(path) as raw:
            raw.execute("UPDATE alembic_version SET version_num = '9999'")
        assert schema_revision(engine) == "9999"
        with pytest.raises(InvalidInput, match="newer version"):
            ensure_schema(engine)
    finally:
        engine.dispose()


def test_an_unreachable_database_is_a_clear_error() -> None:
    engine = connect("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
    try:
        with pytest.raises(InvalidInput, match="cannot reach the database"):
            ensure_schema(engine)
    finally:
        engine.dispose()


def test_a_bad_url_is_a_clear_error() -> None:
    with pytest.raises(InvalidInput, match="not usable"):
        connect("nosuchdb://x")


def test_an_older_schema_is_upgraded_by_init(database_url: str) -> None:
    from alembic import command

    from engine.persistence.database import _config, _head

    engine = connect(database_url)
    try:
        config = _config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0001")
        assert schema_revision(engine) == "0001"
        with pytest.raises(InvalidInput, match="older than this ratify's") as caught:
            ensure_schema(engine)
        assert caught.value.worded(CLI_WORDS).endswith("upgrade it with `ratify init`")
        assert init_schema(engine) == f"upgraded the schema from revision 0001 to {_head()}"
        assert _head() == "0010"  # this version's last migration (and the one this test knows)
        ensure_schema(engine)
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE log_entries SET actor = 'Mallory'",
        "DELETE FROM log_entries",
        "UPDATE documents SET text = 'Something else.'",
        "DELETE FROM documents",
    ],
)
def test_the_database_refuses_to_rewrite_the_log_or_a_text(
    statement: str, cli: CLI, db: Engine, agreement_file: Callable[..., Path]
) -> None:
    round_id = cli("launch", str(agreement_file()), "--json").json()["round"]
    assert cli("record", round_id, "alpha", "submit").exit_code == 0
    before = _contents(db)
    with pytest.raises(DBAPIError, match="append-only"), db.begin() as connection:
        connection.execute(text(statement))
    assert _contents(db) == before
    assert cli("audit", "verify", round_id).exit_code == 0


def test_postgresql_refuses_to_truncate_the_log(
    postgres_url: str, agreement_file: Callable[..., Path]
) -> None:
    url = empty_postgres(postgres_url)
    engine = connect(url)
    try:
        assert cli_on(url)("launch", str(agreement_file())).exit_code == 0
        before = _contents(engine)
        assert len(before["log_entries"]) == 1
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
            connection.execute(text("TRUNCATE log_entries"))
        assert _contents(engine) == before
    finally:
        engine.dispose()


def _contents(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    with engine.connect() as connection:
        return {
            table: [tuple(r) for r in connection.execute(text(f"SELECT * FROM {table}"))]
            for table in ("log_entries", "documents")
        }
