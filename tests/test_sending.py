"""How the sender uses the database: what a batch shares is read once for the batch, each
message is settled in one short transaction of its own that does not wait for the disk, but the
batch's last, which makes them all durable; links are made for a batch at once."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Connection, Engine, event, text, update
from sqlmodel import col, select

from engine.agreement import load_agreement
from engine.clock import FixedClock
from engine.persistence.database import Transactions, transaction
from engine.persistence.tables import LinkRow
from engine.runtime.access import Keys, link_for, links_for
from engine.runtime.rounds import launch
from engine.runtime.sending import send_due
from notifications.mailer import Mailer
from tests.smtp import HOST, SmtpServer

FROM = "ratify@example.invalid"
START = datetime(2026, 12, 1, 9, 0)  # noqa: DTZ001  (a Tuesday morning, local to the round)
KEYS = Keys(b"k" * 32, "https://ratify.example.invalid")
HELSINKI_START = FixedClock(START).now(ZoneInfo("Europe/Helsinki"))

Agreements = Callable[..., Path]


def parties(count: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"p{n:02d}",
            "name": f"Kunta {n}",
            "contacts": [{"name": "C", "email": f"c@p{n:02d}.example.invalid"}],
        }
        for n in range(count)
    ]


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    """The SQL ``engine`` runs meanwhile."""
    seen: list[str] = []

    def record(_c: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def settles(statement: str) -> bool:
    """A message's own settling: its UPDATE, and the transaction around it."""
    return (
        statement.startswith("UPDATE outbox SET") and "WHERE outbox.id = " in statement
    ) or statement.split(" ")[0] in ("BEGIN", "PRAGMA", "SET", "COMMIT")


def test_what_a_batch_shares_is_read_once_however_many_messages_it_has(
    db: Engine, tmp_path: Path, smtp: SmtpServer
) -> None:
    from tests.conftest import write_agreement

    counts = []
    for n, size in enumerate((5, 40)):  # one batch each
        folder = tmp_path / f"a{n}"
        folder.mkdir()
        path = write_agreement(folder, parties(size), agreement={"id": f"a{n}"})
        launch(db, load_agreement(path), FixedClock(START), "tester")
        with statements(db) as seen:
            results = send_due(db, FixedClock(START), Mailer(HOST, smtp.port), FROM, KEYS)
        assert [r.outcome for r in results] == ["sent"] * size
        per_message = [
            s
            for s in seen
            if s.startswith("UPDATE outbox SET state=") and "WHERE outbox.id = " in s
        ]
        assert len(per_message) == size  # each message marked on its own
        counts.append(len([s for s in seen if not settles(s)]))
    assert counts[0] == counts[1], "what the sender reads grew with the batch"
    assert len(smtp.received) == 45
    with transaction(db) as session:  # every contact got a link, made with the batch
        assert len(session.exec(select(LinkRow)).all()) == 45


def test_only_the_batchs_last_settling_waits_for_the_disk(
    db: Engine, agreement_file: Agreements, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    launch(db, load_agreement(agreement_file(parties(3))), FixedClock(START), "tester")
    asked: list[bool] = []
    begin = Transactions.begin

    def recorded(self: Transactions, *, durable: bool = True) -> Any:
        asked.append(durable)
        return begin(self, durable=durable)

    monkeypatch.setattr(Transactions, "begin", recorded)
    send_due(db, FixedClock(START), Mailer(HOST, smtp.port), FROM, KEYS)
    assert asked == [False, False, True]


def test_a_transaction_that_need_not_wait_for_the_disk(db: Engine) -> None:
    def setting(connection: Connection) -> str:
        if connection.dialect.name == "postgresql":
            return str(connection.execute(text("SHOW synchronous_commit")).scalar())
        level = connection.execute(text("PRAGMA synchronous")).scalar_one()
        return {1: "NORMAL", 2: "FULL"}[int(level)]

    relaxed = "off" if db.dialect.name == "postgresql" else "NORMAL"
    durable = "on" if db.dialect.name == "postgresql" else "FULL"
    with transaction(db, durable=False) as session:
        assert setting(session.connection()) == relaxed
    with transaction(db) as session:
        assert setting(session.connection()) == durable
    with Transactions(db) as run:
        for wanted in (False, True, False, False, True):
            with run.begin(durable=wanted) as connection:
                assert setting(connection) == (durable if wanted else relaxed)


def test_links_for_a_batch_are_those_link_for_gives_one_by_one(
    db: Engine, agreement_file: Agreements
) -> None:
    round_id = launch(db, load_agreement(agreement_file(parties(4))), FixedClock(START), "t").round
    contacts = [(round_id, f"p{n:02d}", f"c@p{n:02d}.example.invalid") for n in range(4)]
    now = HELSINKI_START
    with transaction(db) as session:
        made = links_for(session, KEYS, [*contacts, contacts[0]], now)  # one asked for twice
        assert list(made) == contacts
        assert all(made.values())
        ids = session.exec(select(LinkRow.id, LinkRow.party_id).order_by(col(LinkRow.id))).all()
        assert [party for _, party in ids] == ["p00", "p01", "p02", "p03"]  # made in order
    with transaction(db) as session:
        assert links_for(session, KEYS, contacts, now) == made  # no new ones
        assert [link_for(session, KEYS, *c, now) for c in contacts] == list(made.values())
        session.execute(
            update(LinkRow).where(col(LinkRow.party_id) == "p01").values(revoked_at=now)
        )
        later = now + timedelta(days=400)  # past every link's expiry
        again = links_for(session, KEYS, [*contacts, (round_id, "p09", "x@example.invalid")], later)
    assert again[contacts[1]] is None  # withdrawn stays withdrawn
    assert again[round_id, "p09", "x@example.invalid"] is None  # no such contact
    for n in (0, 2, 3):
        assert again[contacts[n]] not in (None, made[contacts[n]])  # expired: a new one
