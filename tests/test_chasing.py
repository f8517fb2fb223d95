"""How chasing behaves after outages: an escalation that waits for the last reminder, and a newer
reminder that replaces an older one the SMTP server never took."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine

from engine.clock import FakeClock
from engine.persistence import outbox
from engine.runtime.chasing import enqueue_due
from tests.smtp import SmtpServer, unused_port
from tests.test_reminders import at, of_kind, party, policy, start, tick


def test_after_an_outage_the_escalation_follows_the_last_reminder(
    db: Engine, clock: FakeClock, agreement_file: Callable[..., Path], tmp_path: Path
) -> None:
    path = agreement_file(
        [party("alpha", "kim@alpha.example.invalid")],
        extra=policy(first_after_days=1, every_days=1, max_reminders=2),
    )
    start(db, clock, path)  # Tue 1.12.2026; reminders due 2.12 and 3.12, escalation 4.12
    with SmtpServer(tmp_path / "mail") as server:
        clock.set(at(2026, 12, 1))
        tick(db, clock, server.port)
        clock.set(at(2026, 12, 21))  # the worker was down for nearly three weeks
        tick(db, clock, server.port)
        assert [r.key.split(":")[-2] for r in of_kind(db, "reminder")] == ["2"]
        # The last slot, and the only reminder the party gets: not "2/2".
        assert of_kind(db, "reminder")[0].subject.startswith("Muistutus (1/1)")
        assert of_kind(db, "escalation") == []  # not in the same tick as the last reminder
        clock.set(at(2026, 12, 21, 16))
        tick(db, clock, server.port)
        assert of_kind(db, "escalation") == []  # one interval after the last reminder sent
        clock.set(at(2026, 12, 22))
        tick(db, clock, server.port)
        (escalation,) = of_kind(db, "escalation")
        assert escalation.state == "sent"
        # one reminder (#2) went out for this step
        assert re.search(r"Lähetetyt muistutukset:?\s+1\s*$", escalation.text_body, re.M)


def test_a_newer_reminder_replaces_one_still_waiting(
    db: Engine, clock: FakeClock, agreement_file: Callable[..., Path], tmp_path: Path
) -> None:
    path = agreement_file(
        [party("alpha", "kim@alpha.example.invalid")],
        extra=policy(first_after_days=1, every_days=1, max_reminders=3),
    )
    start(db, clock, path)
    down = unused_port()
    clock.set(at(2026, 12, 2))
    tick(db, clock, down)  # reminder 1 queued, not delivered
    clock.set(at(2026, 12, 3))
    tick(db, clock, down)  # reminder 2 queued: reminder 1 is superseded
    states = {r.key.split(":")[-2]: r.state for r in of_kind(db, "reminder")}
    assert states == {"1": "skipped", "2": "pending"}
    with SmtpServer(tmp_path / "mail") as server:
        clock.set(at(2026, 12, 3, 12))
        tick(db, clock, server.port)
        subjects = [str(m["Subject"]) for m in server.messages()]
    reminders = [s for s in subjects if s.startswith("Muistutus")]
    # Slot 2 replaced slot 1 before it went out: the party's first reminder, of two in all.
    assert reminders == [reminders[0]]
    assert reminders[0].startswith("Muistutus (1/2)")


def test_a_worker_reports_only_the_reminders_it_queued_itself(
    db: Engine,
    clock: FakeClock,
    agreement_file: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Two workers on PostgreSQL read the outbox before either commits: both find the reminder
    # due and not queued, both insert it, and the database keeps one. The one whose insert found
    # the row there must not report it as its own. Played here by the second tick reading an
    # outbox from before the first tick's rows.
    path = agreement_file(
        [party("alpha", "kim@alpha.example.invalid"), party("beta", "bea@beta.example.invalid")],
        extra=policy(first_after_days=1, every_days=1, max_reminders=2),
    )
    start(db, clock, path)
    clock.set(at(2026, 12, 2))
    first = enqueue_due(db, clock)
    assert len(first) == 2  # one reminder for each party
    monkeypatch.setattr(outbox, "chase_history", lambda session, round_id: (set(), {}))
    assert enqueue_due(db, clock) == []
    assert len(of_kind(db, "reminder")) == 2
