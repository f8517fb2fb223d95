"""What ``record`` reads and writes without the ORM (engine.runtime.rows, .direct, .receipts)
holds to what the ORM and Core read and write, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, Table, bindparam, select, text, update
from sqlalchemy.exc import IntegrityError

from engine.clock import FakeClock
from engine.persistence import outbox
from engine.persistence.database import transaction
from engine.persistence.tables import DocumentRow, LogRow, OutboxRow, PartyRow, RoundRow
from engine.runtime import Evidence, amend, launch, load_agreement, receipts, record
from engine.runtime.direct import Direct
from engine.runtime.rows import for_record
from notifications.message import OutgoingMessage

PARTIES: Table = PartyRow.__table__  # type: ignore[attr-defined]
OUTBOX: Table = OutboxRow.__table__  # type: ignore[attr-defined]
LOG: Table = LogRow.__table__  # type: ignore[attr-defined]


def _launch(db: Engine, clock: FakeClock, agreement_file: Callable[..., Path]) -> str:
    parties = [{"id": "alpha", "name": "Alpha"}, {"id": "beta", "name": "Beta"}]
    return launch(db, load_agreement(agreement_file(parties)), clock, "c").round


def _columns(row: Any, table: Table) -> dict[str, Any]:
    return {c.key: getattr(row, c.key) for c in table.columns}


def test_one_read_gives_the_round_its_text_date_and_the_party_as_the_orm_does(
    db: Engine, clock: FakeClock, agreement_file: Callable[..., Path], tmp_path: Path
) -> None:
    round_id = _launch(db, clock, agreement_file)
    record(db, round_id, "alpha", "submit", Evidence(), clock, "c")
    with transaction(db) as session:
        read = for_record(session, round_id, "alpha")
        assert read is not None
        orm_round = session.get(RoundRow, round_id)
        orm_party = session.get(PartyRow, (round_id, "alpha"))
        text = session.get(DocumentRow, (round_id, 1))
        assert orm_round is not None
        assert orm_party is not None
        assert text is not None
        rounds: Table = RoundRow.__table__  # type: ignore[attr-defined]
        assert _columns(read.round, rounds) == _columns(orm_round, rounds)
        assert _columns(read.party, PARTIES) == _columns(orm_party, PARTIES)
        assert read.party is not None
        assert read.party.state == "board_review"
        assert read.round.last_entry_at.tzinfo is not None  # aware UTC, as the ORM gives it
        assert read.text_from == text.recorded_at
        # Not the ORM's: in no session, so nothing of it is flushed.
        assert read.round not in session
        assert read.party not in session
        # A party the round has not, a round there is not.
        missing = for_record(session, round_id, "gamma")
        assert missing is not None
        assert missing.party is None
        assert for_record(session, "no-such/1", "alpha") is None
    # A new text: the read gives its date, not the first one's.
    clock.advance(days=1)
    (tmp_path / "agreement.md").write_text("The amended text.\n", "utf-8")
    amend(db, round_id, tmp_path / "agreement.md", "a fix", clock, "c")
    with transaction(db) as session:
        read = for_record(session, round_id, "alpha")
        second = session.get(DocumentRow, (round_id, 2))
        assert read is not None
        assert second is not None
        assert read.text_from == second.recorded_at
        assert read.text_from is not None
        assert read.text_from > text.recorded_at


def test_an_approval_dated_before_an_amended_text_is_refused(
    db: Engine, clock: FakeClock, agreement_file: Callable[..., Path], tmp_path: Path
) -> None:
    """The text's date comes from the one read: after an amendment, the new text's."""
    from engine.errors import InvalidInput

    round_id = _launch(db, clock, agreement_file)
    clock.advance(days=2)
    (tmp_path / "agreement.md").write_text("The amended text.\n", "utf-8")
    amend(db, round_id, tmp_path / "agreement.md", "a fix", clock, "c")
    record(db, round_id, "alpha", "submit", Evidence(), clock, "c")
    before = (clock.moment - timedelta(days=1)).date()
    with pytest.raises(InvalidInput, match="before the text"):
        record(
            db,
            round_id,
            "alpha",
            "approve",
            Evidence(ref=f"Kunnanhallitus {before:%d.%m.%Y} § 3"),
            clock,
            "c",
        )


def test_direct_statements_store_what_core_stores(
    db: Engine, clock: FakeClock, agreement_file: Callable[..., Path]
) -> None:
    """The same UPDATE through Core and through the driver's cursor leaves the same values, in
    the database's own form (JSON text, times as SQLite keeps them)."""
    round_id = _launch(db, clock, agreement_file)
    statement = (
        update(PARTIES)
        .where(PARTIES.c.round_id == bindparam("_round"), PARTIES.c.party_id == bindparam("_p"))
        .values(
            signatures=bindparam("signatures"),
            legal_force_from=bindparam("legal_force_from"),
            due_at=bindparam("due_at"),
            state=bindparam("state"),
        )
    )
    values = {
        "_round": round_id,
        "signatures": [{"name": "Äijä Ö", "title": "puheenjohtaja"}],
        "legal_force_from": date(2027, 1, 4),
        "due_at": datetime(2026, 12, 3, 9, 30, 1, 250, tzinfo=UTC),
        "state": "signing",
    }
    with transaction(db) as session:
        connection = session.connection()
        assert connection.execute(statement, values | {"_p": "alpha"}).rowcount == 1
        assert Direct(statement).rowcount(connection, values | {"_p": "beta"}) == 1
        assert Direct(statement).rowcount(connection, values | {"_p": "nobody"}) == 0
    with db.connect() as connection:
        stored = connection.execute(
            text(
                "SELECT party_id, CAST(signatures AS TEXT), CAST(legal_force_from AS TEXT), "
                "CAST(due_at AS TEXT), state FROM parties WHERE round_id = :r ORDER BY party_id"
            ),
            {"r": round_id},
        ).all()
    assert [tuple(r[1:]) for r in stored[:1]] == [tuple(r[1:]) for r in stored[1:]]
    with transaction(db) as session:
        beta = session.get(PartyRow, (round_id, "beta"))
        assert beta is not None
        assert beta.signatures == values["signatures"]
        assert beta.due_at == values["due_at"]
        assert beta.legal_force_from == values["legal_force_from"]


def test_a_driver_error_comes_out_as_sqlalchemys(
    db: Engine, clock: FakeClock, agreement_file: Callable[..., Path]
) -> None:
    """A log entry written twice breaks the key as it would through Core: IntegrityError (which
    the callers know), and the transaction writes nothing."""
    round_id = _launch(db, clock, agreement_file)
    insert = Direct(LOG.insert().values({c.key: bindparam(c.key) for c in LOG.columns}))
    with db.connect() as connection:
        first = connection.execute(select(LOG).where(LOG.c.round_id == round_id)).mappings().one()
    with pytest.raises(IntegrityError), transaction(db) as session:
        insert.many(session.connection(), [dict(first)])
    with db.connect() as connection:
        count = connection.execute(select(LOG.c.seq).where(LOG.c.round_id == round_id)).all()
    assert len(count) == 1


def test_a_receipt_row_is_the_row_outbox_enqueue_writes(
    db: Engine, clock: FakeClock, agreement_file: Callable[..., Path]
) -> None:
    round_id = _launch(db, clock, agreement_file)
    made = OutgoingMessage(
        "receipt:x:1:alpha:to-a", "receipt", ("a@example.invalid",), "fi", "", "", ""
    )
    twin = OutgoingMessage(
        "receipt:x:1:alpha:to-b", "receipt", ("a@example.invalid",), "fi", "", "", ""
    )
    personal = {
        "link": ["alpha", "a@example.invalid"],
        "render": {"title": "T", "n": [1, {"$date": "2026-12-01"}]},
    }
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    kwargs: dict[str, Any] = {
        "round_id": round_id,
        "party_id": "alpha",
        "now": now,
        "personal": personal,
    }
    with transaction(db) as session:
        assert receipts.enqueue(session, made, **kwargs)
        assert outbox.enqueue(session, twin, **kwargs)
        assert not receipts.enqueue(session, made, **kwargs)  # once per key
    with db.connect() as connection:
        rows = (
            connection.execute(
                select(OUTBOX).where(OUTBOX.c.key.in_([made.key, twin.key])).order_by(OUTBOX.c.key)
            )
            .mappings()
            .all()
        )
    assert len(rows) == 2
    ours, theirs = (dict(r) for r in rows)
    for row in (ours, theirs):
        del row["id"], row["key"], row["message_id"]
    assert ours == theirs
    assert ours["personal"] == personal
    assert ours["state"] == "pending"


def test_a_lost_connection_is_invalidated_and_the_next_write_gets_a_new_one(
    postgres_url: str, clock: FakeClock, agreement_file: Callable[..., Path]
) -> None:
    """PostgreSQL ends the server process of a writer in the middle of its transaction: the
    statement fails as SQLAlchemy's error saying the connection is gone, the pool drops that
    connection, and the next record works."""
    import psycopg
    from sqlalchemy.exc import DBAPIError

    from engine.errors import RatifyError
    from engine.persistence.database import connect, init_schema
    from tests.conftest import empty_postgres

    db = connect(empty_postgres(postgres_url))
    try:
        init_schema(db)
        round_id = _launch(db, clock, agreement_file)
        admin = psycopg.connect(postgres_url.replace("+psycopg", ""), autocommit=True)
        seen: list[DBAPIError] = []

        def read_on_a_lost_connection() -> None:
            with transaction(db) as session:
                connection = session.connection()
                pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
                try:
                    for_record(session, round_id, "alpha")
                except DBAPIError as exc:
                    seen.append(exc)
                    raise

        with admin, pytest.raises(RatifyError, match="terminating connection"):
            read_on_a_lost_connection()
        (error,) = seen
        assert error.connection_invalidated
        record(db, round_id, "alpha", "submit", Evidence(), clock, "c")
    finally:
        db.dispose()
