"""The reads pages show together: a round's view, and every round's summary in a few queries."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine

from engine.clock import FakeClock
from engine.runtime import (
    Evidence,
    launch,
    load_agreement,
    record,
    round_summaries,
    round_view,
    status,
    tick_once,
)
from notifications.mailer import Mailer
from tests.smtp import SmtpServer

POLICY = "[reminders]\nfirst_after_days = 1\nmax_reminders = 0\n"


def test_summaries_name_who_was_escalated_since_they_last_moved(
    db: Engine, clock: FakeClock, smtp: SmtpServer, agreement_file: Callable[..., Path]
) -> None:
    parties = [
        {"id": "alpha", "name": "Alpha", "await_legal_force": False},
        {"id": "beta", "name": "Beta"},
    ]
    round_id = launch(db, load_agreement(agreement_file(parties, extra=POLICY)), clock, "c").round
    mailer = Mailer("127.0.0.1", smtp.port, timeout=5)
    tick_once(db, clock, mailer, "r@example.invalid")
    clock.set(datetime(2026, 12, 3, 9, 0))  # noqa: DTZ001  (two working days on: escalated)
    tick_once(db, clock, mailer, "r@example.invalid")
    (summary,) = round_summaries(db)
    assert summary.escalated == ("Alpha", "Beta")
    record(db, round_id, "alpha", "submit", Evidence(), clock, "c")  # alpha moves on
    (summary,) = round_summaries(db, [round_id])
    assert summary.escalated == ("Beta",)
    assert (summary.signed, summary.total, summary.unfinished) == (0, 2, ("Alpha", "Beta"))
    assert summary.entries == status(db, round_id)[0].log_entries
    assert round_summaries(db, ["no-such/1"]) == []

    view = round_view(db, round_id)
    assert view.status == status(db, round_id)[0]
    assert [e["seq"] for e in view.entries] == list(range(1, summary.entries + 1))
    assert view.failed == []
