"""A database of the first schema, with a round in it, upgraded by `ratify init` through every
migration: the rows, the texts and every log chain survive, on SQLite and PostgreSQL, and the
round goes on where it stood.

The old database is made the way the first version made it: the first migration's tables, and in
them a round written by ratify (copied column by column, only the columns the first schema had).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from alembic import command
from sqlalchemy import MetaData, select
from sqlmodel import SQLModel

from engine.clock import FakeClock
from engine.core.evidence import Evidence
from engine.persistence.database import _config, _head, connect, init_schema, schema_revision
from engine.runtime import jsonable, launch, log_entries, record, status, verify
from tests.conftest import CLI, cli_on

FIRST_TABLES = ("rounds", "documents", "parties", "log_entries")


def _round_of_today(url: str, agreement: Path) -> tuple[str, list[Any]]:
    engine = connect(url)
    init_schema(engine)
    clock = FakeClock(datetime(2026, 12, 1, 9, 0))  # noqa: DTZ001  (local to the round)
    made = launch(engine, agreement, clock, "Cora Coordinator").round
    clock.set(datetime(2026, 12, 2, 10, 0))  # noqa: DTZ001
    record(engine, made, "alpha", "submit", Evidence(diary="A/1"), clock, "Kim")
    record(engine, made, "beta", "submit", Evidence(), clock, "Kim")
    record(
        engine,
        made,
        "alpha",
        "approve",
        Evidence(ref="Kunnanhallitus 02.12.2026 § 7"),
        clock,
        "Kim",
    )
    entries = log_entries(engine, made)
    engine.dispose()
    return made, entries


def test_the_first_schema_with_a_round_is_upgraded_and_every_chain_survives(
    database_url: str, tmp_path: Path, agreement_file: Callable[..., Path], cli: CLI
) -> None:
    agreement = agreement_file([{"id": "alpha", "name": "Alpha"}, {"id": "beta", "name": "Beta"}])
    today = f"sqlite:///{tmp_path / 'today.db'}"
    round_id, entries = _round_of_today(today, agreement)

    old = connect(database_url)
    config = _config()
    with old.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
    assert schema_revision(old) == "0001"
    first = MetaData()
    first.reflect(old, only=FIRST_TABLES)
    source = connect(today)
    with source.connect() as reading, old.begin() as writing:
        for name in FIRST_TABLES:
            model = SQLModel.metadata.tables[name]
            kept = [c.name for c in first.tables[name].columns]
            rows = [dict(r._mapping) for r in reading.execute(select(*(model.c[c] for c in kept)))]
            assert rows, name
            writing.execute(first.tables[name].insert(), rows)
    source.dispose()
    old.dispose()

    upgraded = cli("init")
    assert upgraded.exit_code == 0, upgraded.stderr
    assert f"from revision 0001 to {_head()}" in upgraded.stdout
    engine = connect(database_url)
    try:
        assert log_entries(engine, round_id) == entries  # every entry, hash and all
        report = verify(engine, round_id)
        assert report.chains[0].entries == len(entries)
        assert report.chains[0].head == entries[-1]["hash"]
        reference = connect(today)
        before = jsonable(status(reference, round_id)[0])
        reference.dispose()
        after = jsonable(status(engine, round_id)[0])
        for key in ("state", "document_sha256", "log_entries", "signed"):
            assert after[key] == before[key]
        assert [(p["id"], p["state"]) for p in after["parties"]] == [
            (p["id"], p["state"]) for p in before["parties"]
        ]
        # The round goes on from there, its chain unbroken.
        clock = FakeClock(datetime(2026, 12, 3, 9, 0))  # noqa: DTZ001
        record(
            engine,
            round_id,
            "beta",
            "approve",
            Evidence(ref="Kunnanhallitus 03.12.2026 § 2"),
            clock,
            "Kim",
        )
        assert verify(engine, round_id).chains[0].entries == len(entries) + 1
        assert cli_on(database_url)("audit", "verify").exit_code == 0
    finally:
        engine.dispose()
