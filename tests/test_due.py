"""A tick reads only the parties due by its time (``parties.due_at``): here it is held to a scan of
every open party, step by step over months of a simulated round, with decisions recorded at
random, nights and weekends, holidays, reminders, escalations, deadline reminders and legal force.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, func
from sqlmodel import col, select

from engine.agreement import load_agreement
from engine.clock import FakeClock
from engine.core.evidence import Evidence
from engine.errors import RatifyError
from engine.persistence import outbox
from engine.persistence.database import transaction
from engine.persistence.tables import PartyRow, RoundRow
from engine.runtime import launch, preview, record, status, tick_once
from engine.runtime.chasing import _chases
from notifications.mailer import Mailer
from tests.smtp import SmtpServer

Agreements = Callable[..., Path]
POLICY = """
[reminders]
first_after_days = 4
every_days = 3
max_reminders = 2
before_deadline_days = [8, 2]
"""


def _parties() -> list[dict[str, object]]:
    made: list[dict[str, object]] = []
    for i in range(6):
        made.append(
            {
                "id": f"p{i}",
                "name": f"Party {i}",
                "await_legal_force": i % 2 == 0,  # half wait for their decisions' legal force
                "contacts": [{"name": f"Contact {i}", "email": f"c{i}@example.invalid"}],
            }
        )
    return made


def _everything_due(db: Engine, now_utc: datetime) -> set[tuple[str, str, datetime]]:
    """What is due by a scan of every open party: the reference the due index is held to."""
    due = set()
    with transaction(db) as session:
        for row in session.exec(select(RoundRow).where(RoundRow.state == "open")).all():
            parties = list(session.exec(select(PartyRow).where(PartyRow.round_id == row.id)).all())
            already, sent = outbox.chase_history(session, row.id)
            now = now_utc.astimezone(ZoneInfo(row.timezone))
            for chase in _chases(row, parties, now, sent):
                if str(chase.key) not in already:
                    due.add((chase.party_id, chase.kind, chase.due.astimezone(UTC)))
    return due


def _previewed(db: Engine, clock: FakeClock) -> set[tuple[str, str, datetime]]:
    return {
        (p.party or "", p.kind, p.due.astimezone(UTC))
        for p in preview(db, clock)
        if not p.queued and p.kind in ("reminder", "deadline", "escalation")
    }


def _act(db: Engine, clock: FakeClock, round_id: str, rng: random.Random) -> None:
    """Some party's body or signatory does the next thing, now and then."""
    (found,) = status(db, round_id)
    today = clock.now(UTC).astimezone(found.launched_at.tzinfo).date()
    for party in found.parties:
        if not party.allowed or rng.random() > 0.03:
            continue
        event = party.allowed[0]
        if event == "submit":
            evidence = Evidence()
        elif event == "approve" and party.body:
            evidence = Evidence(ref=f"{party.body} {today:%d.%m.%Y} § {rng.randint(1, 99)}")
        elif event == "sign":
            evidence = Evidence(signatory=f"Signer {rng.randint(1, 9)}", title="Mayor")
        else:
            continue
        # A refused step (the same signatory twice, say) changes nothing.
        with contextlib.suppress(RatifyError):
            record(db, round_id, party.id, event, evidence, clock, "tester")


@pytest.mark.parametrize("seed", [1])
def test_the_due_index_finds_exactly_what_a_scan_of_every_party_finds(
    db: Engine, clock: FakeClock, smtp: SmtpServer, agreement_file: Agreements, seed: int
) -> None:
    rng = random.Random(seed)
    path = agreement_file(_parties(), agreement={"deadline": date(2027, 2, 26)}, extra=POLICY)
    round_id = launch(db, load_agreement(path), clock, "tester").round
    mailer = Mailer("127.0.0.1", smtp.port, timeout=5)
    start = clock.now(UTC)
    chased: set[str] = set()
    for step in range(0, 90 * 24, 9):  # every nine hours for three months
        clock.set(start + timedelta(hours=step))
        _act(db, clock, round_id, rng)
        now = clock.now(UTC)
        reference = _everything_due(db, now)
        assert _previewed(db, clock) == reference, f"at {now:%a %d.%m. %H:%M}"
        tick_once(db, clock, mailer, "r@example.invalid")
        # Everything due was queued by the tick, which read only the due parties.
        assert _everything_due(db, now) == set(), f"left due at {now:%a %d.%m. %H:%M}"
        chased |= {kind for _, kind, _ in reference}
    assert chased == {"reminder", "deadline", "escalation"}  # the run did chase


def test_after_a_tick_no_party_is_due_until_its_next_reminder(
    db: Engine, clock: FakeClock, smtp: SmtpServer, agreement_file: Agreements
) -> None:
    path = agreement_file(_parties(), extra=POLICY)
    round_id = launch(db, load_agreement(path), clock, "tester").round
    mailer = Mailer("127.0.0.1", smtp.port, timeout=5)

    def due_now() -> int:
        with transaction(db) as session:
            count = session.scalar(
                select(func.count()).where(col(PartyRow.due_at) <= clock.now(UTC))
            )
            return int(count or 0)

    assert due_now() == 6  # launched: each party is looked at once
    tick_once(db, clock, mailer, "r@example.invalid")
    assert due_now() == 0  # then not again before its first reminder
    record(db, round_id, "p1", "submit", Evidence(), clock, "tester")
    assert due_now() == 1  # a party that moved is looked at again
    tick_once(db, clock, mailer, "r@example.invalid")
    assert due_now() == 0
    # A Saturday night past every party's first reminder: nothing is sent until Monday morning,
    # and no tick of the weekend reads the parties again after the first.
    clock.set(datetime(2026, 12, 12, 23, 0))  # noqa: DTZ001  (local to the round)
    tick_once(db, clock, mailer, "r@example.invalid")
    assert due_now() == 0
    clock.set(datetime(2026, 12, 14, 9, 0))  # noqa: DTZ001
    assert due_now() == 6
    report = tick_once(db, clock, mailer, "r@example.invalid")
    assert len(report.queued) == 6
