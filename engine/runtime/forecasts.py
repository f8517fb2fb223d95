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
    Meetings,
    PartyForecast,
    RoundForecast,
    forecast_party,
    forecast_round,
)
from engine.persistence.database import ensure_schema, transaction
from engine.persistence.tables import CalendarRow, PartyRow, RoundRow
from engine.runtime.journal import machine_of, snapshot
from engine.runtime.lookup import resolve_round

__all__ = ["PartyForecast", "RoundForecast", "forecast", "round_forecast"]


def forecast(engine: Engine, ref: str, clock: Clock) -> RoundForecast:
    """The round's forecast as of the clock's day (in the round's zone)."""
    ensure_schema(engine)
    with transaction(engine) as session:
        row = resolve_round(session, ref)
        return round_forecast(session, row, clock.now(ZoneInfo(row.timezone)).date())


def round_forecast(
    session: Session, row: RoundRow, today: date, parties: Sequence[PartyRow] | None = None
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
            deadline=row.deadline,
            since=p.since.astimezone(zone).date(),
        )
        for p in sorted(parties, key=lambda p: p.position)
    ]
    return forecast_round(found, failed=row.state in ("failed", "cancelled"), deadline=row.deadline)
