"""The forecast is the earliest possible: never later than what the round then reaches.

Hypothesis draws rounds of one to three municipalities, each with a board or a board and a
council, each body with a few meetings across the winter, spring and summer (or none known) and an
agenda that closes some working days before. The round is launched into a real SQLite file and a
fake clock walks it day by day: every party submits at once, every body decides at its first
possible meeting (the first whose agenda closes on or after the day the body got the matter; any
working day where no listed meeting can take it), the worker's tick makes each decision final on
its day, and each party signs the stated lag after (the clock jumps over the days on which
nothing can happen). The forecast made at the launch, and again
every Monday on the way, must be on or before the day each party then signs and the day the round
becomes active.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from engine.clock import FakeClock
from engine.core.calendar import FINLAND
from engine.core.evidence import Evidence
from engine.core.forecast import SIGNING_DAYS
from engine.runtime import connect, forecast, launch, load_agreement, record, status, tick
from tests.conftest import write_agreement

LAUNCH = date(2026, 12, 1)
LAST = date(2027, 12, 31)  # the walk gives up here: every draw has finished long before

_days = st.dates(min_value=LAUNCH, max_value=date(2027, 9, 30))
_meetings = st.none() | st.lists(_days, min_size=1, max_size=6, unique=True).map(sorted)
_body = st.tuples(_meetings, st.integers(min_value=0, max_value=10))
_party = st.tuples(st.booleans(), _body, _body)  # (with a council, the board, the council)


@dataclass
class Walker:
    """One party's way through the round as the simulation drives it."""

    id: str
    bodies: list[tuple[str, list[date] | None, int]]
    at: int = 0  # the body that has the matter
    got: date = LAUNCH  # the day that body got it
    decides: date | None = None
    signing_from: date | None = None
    signed: date | None = None
    steps: list[str] = field(default_factory=list)

    def first_possible(self) -> date:
        _, meetings, agenda_days = self.bodies[self.at]
        for day in meetings or ():
            closes = FINLAND.subtract_working_days(day, agenda_days) if agenda_days else day
            if day >= self.got and closes >= self.got:
                return day
        return FINLAND.next_working_day(self.got)


def _agreement(folder: Path, draws: list[tuple[bool, Any, Any]]) -> tuple[Path, list[Walker]]:
    parties, walkers = [], []
    for n, (council, board, assembly) in enumerate(draws):
        pid = f"kunta-{n}"
        bodies = [("Kunnanhallitus", *board)]
        if council:
            bodies.append(("Kunnanvaltuusto", *assembly))
        calendars = {
            name: {"meetings": meetings, "agenda_days": agenda_days}
            for name, meetings, agenda_days in bodies
            if meetings is not None
        }
        party: dict[str, Any] = {
            "id": pid,
            "name": f"Kunta {n}",
            "bodies": [name for name, _, _ in bodies],
        }
        if calendars:
            party["calendars"] = calendars
        parties.append(party)
        walkers.append(Walker(pid, [(name, m, a) for name, m, a in bodies]))
    return write_agreement(folder, parties), walkers


@settings(
    max_examples=12,
    deadline=None,
    # No shrinking: a walk takes a fraction of a second and shrinking one takes hundreds; the
    # failing draw is printed as found.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(_party, min_size=1, max_size=3))
def test_the_forecast_is_never_later_than_the_day_reached(draws: list[Any]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        db = connect(f"sqlite:///{folder}/ratify.db")
        try:
            _walk(db, Path(folder), draws)
        finally:
            db.dispose()


def _walk(db: Any, folder: Path, draws: list[Any]) -> None:
    path, walkers = _agreement(folder, draws)
    clock = FakeClock(datetime(2026, 12, 1, 10, 0))  # noqa: DTZ001  (local to the round)
    made = launch(db, load_agreement(path, launch_at=clock), clock, "Cora").round
    forecasts = [(LAUNCH, forecast(db, made, clock))]
    day = LAUNCH
    for walker in walkers:
        record(db, made, walker.id, "submit", Evidence(), clock, "Kim")
        walker.decides = walker.first_possible()
    while day <= LAST and any(w.signed is None for w in walkers):
        clock.set(datetime(day.year, day.month, day.day, 10, 0))  # noqa: DTZ001
        tick(db, clock)  # decisions become final on their day
        if day.weekday() == 0:
            forecasts.append((day, forecast(db, made, clock)))
        parties = {p.id: p for p in status(db, made)[0].parties}
        ahead = [day + timedelta(days=7 - day.weekday())]  # the next Monday's forecast
        for walker in walkers:
            if walker.signed is not None:
                continue
            role = parties[walker.id].role
            if role == "review" and day == walker.decides:
                name = walker.bodies[walker.at][0]
                ref = f"{name} {day:%d.%m.%Y} § 1"
                record(db, made, walker.id, "approve", Evidence(ref=ref), clock, "Kim")
                walker.at += 1
                if walker.at < len(walker.bodies):
                    walker.got = day + timedelta(days=1)
                    walker.decides = walker.first_possible()
                    ahead.append(walker.decides)
                else:
                    role = "legal_force"
            elif role == "review":
                assert walker.decides is not None
                ahead.append(walker.decides)
            elif role == "signing":
                if walker.signing_from is None:
                    walker.signing_from = FINLAND.add_working_days(day, SIGNING_DAYS)
                if day >= walker.signing_from:
                    sign = Evidence(signatory="Aino Esimerkki", title="kunnanjohtaja")
                    record(db, made, walker.id, "sign", sign, clock, "Kim")
                    walker.signed = day
                else:
                    ahead.append(walker.signing_from)
            if role == "legal_force":  # the tick of the day it is final moves it on
                waits = status(db, made)[0].parties[walkers.index(walker)].legal_force_from
                assert waits is not None
                ahead.append(waits)
        # Straight to the next day anything can happen: nothing does on the days between.
        day = max(day + timedelta(days=1), min(ahead))
    reached = {w.id: w.signed for w in walkers}
    assert all(reached.values()), reached
    assert status(db, made)[0].state == "active"
    active_on = max(d for d in reached.values() if d is not None)
    for made_on, found in forecasts:
        assert found.in_force is not None
        assert found.in_force <= active_on, (made_on, found, reached)
        for party in found.parties:
            signed = reached[party.party]
            assert signed is not None
            if party.signed_by is None:  # signed before this forecast was made
                assert party.note == "signed"
                assert signed <= made_on
                continue
            assert party.signed_by <= signed, (made_on, party, reached)
    # Made at the launch, with every body deciding at its first possible meeting, the forecast
    # is not only early enough but exact: the earliest possible is what was reached.
    first = forecasts[0][1]
    assert {p.party: p.signed_by for p in first.parties} == reached
    assert first.in_force == active_on
