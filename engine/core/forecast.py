"""The earliest a party can reach ``signed``, and the round its entry into force: pure.

From where the party stands (its role, the body its step waits on), each remaining body decides
at its first meeting whose agenda can still take the agreement; the decision becomes final after
the notice and the appeal period (legal force), where the workflow waits for it; then signing
takes a stated lag. Where a body's meetings are not known its decision is taken as possible on
the next working day: the forecast is the earliest possible, never a promise, and says which
dates rest on a known calendar.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from engine.core.calendar import WorkCalendar, legal_force_date
from engine.core.party import PartySnapshot
from workflows import Role

__all__ = [
    "SIGNING_DAYS",
    "Meetings",
    "PartyForecast",
    "RoundForecast",
    "forecast_party",
    "forecast_round",
]

SIGNING_DAYS = 5  # working days from the decision's legal force to the last signature


@dataclass(frozen=True)
class Meetings:
    """A body's known meetings, and how many working days before one its agenda closes."""

    days: tuple[date, ...]
    agenda_days: int = 7


@dataclass(frozen=True)
class Step:
    """One step on a party's way to its signature, at the earliest."""

    what: str  # decision, legal_force (the decision final) or signed
    body: str | None  # the body deciding, or whose decision becomes final; None for signed
    on: date  # the earliest day of the step
    known: bool  # on a known meeting (or a legal-force date already set), not assumed


@dataclass(frozen=True)
class PartyForecast:
    """The earliest a party can have signed, and the steps on its way."""

    party: str
    signed_by: date | None  # None: done already, failed, or on hold (no forecast)
    steps: tuple[Step, ...]  # its remaining steps, in order, each at its earliest
    note: str  # why there is no date, or what it rests on
    late: bool = False  # past the agreement's deadline


@dataclass(frozen=True)
class RoundForecast:
    """The round's earliest entry into force, and the party on its critical path."""

    in_force: date | None  # the earliest entry into force, when every party has a date
    critical: str | None  # the party whose date is the latest: it holds the round back
    parties: tuple[PartyForecast, ...]
    # How long the critical party holds the round back:
    behind_days: int | None = None  # days after the next-latest party's date (None: no other)
    late_days: int | None = None  # days past the deadline (None: not late, or no deadline)
    signing_days: int = SIGNING_DAYS  # the lag assumed from legal force to the last signature


def _meeting(after: date, meetings: Meetings | None, work: WorkCalendar) -> tuple[date, bool]:
    """The first meeting on or after ``after`` whose agenda closes no earlier than ``after``."""
    if meetings is not None:
        for day in meetings.days:
            closes = (
                work.subtract_working_days(day, meetings.agenda_days)
                if meetings.agenda_days
                else day
            )
            if day >= after and closes >= after:
                return day, True
    return work.next_working_day(after), False


def forecast_party(
    party: PartySnapshot,
    role: Role,
    today: date,
    calendars: Mapping[str, Meetings],
    work: WorkCalendar,
    *,
    signing_days: int = SIGNING_DAYS,
    deadline: date | None = None,
    since: date | None = None,
) -> PartyForecast:
    """When ``party`` can at the earliest be ``signed``, step by step. ``since``: the day it
    entered its state (for a party signing already, the lag runs from then, not from today)."""
    if role == "done":
        return PartyForecast(party.id, None, (), "signed")
    if role == "failed":
        return PartyForecast(party.id, None, (), "ended without signing")
    if role == "on_hold":
        return PartyForecast(party.id, None, (), "on hold (an appeal): no forecast until resolved")
    steps: list[Step] = []
    day = today
    if role in ("preparing", "review"):
        first = min(party.step, len(party.bodies) - 1)
        for index, body in enumerate(party.bodies[first:], start=first):
            # In review the body has it already: its next meeting, whatever its agenda's date.
            reviewing = role == "review" and index == first
            meetings = calendars.get(body.name)
            if reviewing and meetings is not None:
                coming = [d for d in meetings.days if d >= day]
                decided, known = (
                    (coming[0], True) if coming else (work.next_working_day(day), False)
                )
            else:
                decided, known = _meeting(day, meetings, work)
            steps.append(Step("decision", body.name, decided, known))
            day = decided + timedelta(days=1)
        last = party.bodies[-1]
        if party.await_legal_force:
            final = legal_force_date(steps[-1].on, last.appeal_days, party.notice_days, work)
            steps.append(Step("legal_force", last.name, final, steps[-1].known))
            day = final
    elif role == "legal_force":
        final = party.legal_force_from or work.next_working_day(today)
        steps.append(
            Step("legal_force", party.bodies[-1].name, final, party.legal_force_from is not None)
        )
        day = max(final, today)
    if role == "signing" and since is not None:
        day = min(day, since)  # the lag runs from the day signing began: it may be over by now
    signed = work.add_working_days(day, signing_days) if signing_days else day
    signed = max(signed, today)  # never in the past: it can at the earliest sign today
    steps.append(Step("signed", None, signed, False))
    assumed = [s.body for s in steps if s.what == "decision" and not s.known]
    note = (
        "on the bodies' known meetings"
        if not assumed
        else "no meetings known for " + ", ".join(dict.fromkeys(b for b in assumed if b))
    )
    late = deadline is not None and signed > deadline
    return PartyForecast(party.id, signed, tuple(steps), note, late)


def forecast_round(
    parties: Sequence[PartyForecast],
    failed: bool = False,
    deadline: date | None = None,
    signing_days: int = SIGNING_DAYS,
) -> RoundForecast:
    """The round's earliest entry into force: when its last party can have signed."""
    dated = [p for p in parties if p.signed_by is not None]
    open_without_date = [p for p in parties if p.signed_by is None and p.note != "signed"]
    if failed or open_without_date or not dated:
        return RoundForecast(None, None, tuple(parties), signing_days=signing_days)
    latest = max(dated, key=lambda p: p.signed_by or date.min)
    assert latest.signed_by is not None
    others = [p.signed_by for p in dated if p is not latest and p.signed_by is not None]
    behind = (latest.signed_by - max(others)).days if others else None
    late = (
        (latest.signed_by - deadline).days
        if deadline is not None and latest.signed_by > deadline
        else None
    )
    return RoundForecast(latest.signed_by, latest.party, tuple(parties), behind, late, signing_days)
