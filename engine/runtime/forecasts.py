"""``ratify forecast``: each party's earliest date to have signed, and the round's entry into
force, from the bodies' calendars and the legal-force waits (``engine.core.forecast``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlmodel import Session, select

from engine.clock import Clock
from engine.core.calendar import WorkCalendar
from engine.core.forecast import (
    SIGNING_DAYS,
    Meetings,
    PartyForecast,
    RoundForecast,
    Step,
    forecast_party,
    forecast_round,
)
from engine.errors import InvalidInput
from engine.persistence.database import ensure_schema, transaction
from engine.persistence.tables import CalendarRow, PartyRow, RoundRow
from engine.runtime.journal import machine_of, snapshot
from engine.runtime.lookup import resolve_round

__all__ = [
    "MAX_SIGNING_DAYS",
    "PartyForecast",
    "RoundForecast",
    "Step",
    "forecast",
    "round_forecast",
]

MAX_SIGNING_DAYS = 250  # about a year of working days: more is a typo


def forecast(
    engine: Engine, ref: str, clock: Clock, signing_days: int = SIGNING_DAYS
) -> RoundForecast:
    """The round's forecast as of the clock's day (in the round's zone); ``signing_days``: the
    working days assumed from a decision's legal force to the party's last signature."""
    if not 0 <= signing_days <= MAX_SIGNING_DAYS:
        raise InvalidInput(
            f"signing days {signing_days}: give 0 to {MAX_SIGNING_DAYS} working days",
            field="signing_days",
        )
    ensure_schema(engine)
    with transaction(engine) as session:
        row = resolve_round(session, ref)
        today = clock.now(ZoneInfo(row.timezone)).date()
        return round_forecast(session, row, today, signing_days=signing_days)


def round_forecast(
    session: Session,
    row: RoundRow,
    today: date,
    parties: Sequence[PartyRow] | None = None,
    signing_days: int = SIGNING_DAYS,
) -> RoundForecast:
    """The forecast of ``row`` as of ``today``, read in the caller's transaction (``parties``:
    the round's parties when the caller holds them already)."""
    work = WorkCalendar(str((row.reminders or {}).get("holidays", "FI")))
    zone = ZoneInfo(row.timezone)
    calendars: dict[str, dict[str, Meetings]] = {}
    for cal in session.exec(select(CalendarRow).where(CalendarRow.round_id == row.id)).all():
        days = tuple(date.fromisoformat(d) for d in cal.meetings)
        calendars.setdefault(cal.party_id, {})[cal.body] = Meetings(days, cal.agenda_days)
    if parties is None:
        parties = session.exec(select(PartyRow).where(PartyRow.round_id == row.id)).all()
    found = [
        forecast_party(
            snapshot(p),
            machine_of(p).role(p.state),
            today,
            calendars.get(p.party_id, {}),
            work,
            signing_days=signing_days,
            deadline=row.deadline,
            since=p.since.astimezone(zone).date(),
        )
        for p in sorted(parties, key=lambda p: p.position)
    ]
    failed = row.state in ("failed", "cancelled")
    return forecast_round(found, failed, row.deadline, signing_days)
