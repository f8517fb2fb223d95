"""``ratify calendar``: each body's next meetings and the day its agenda closes for each."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlmodel import col, select

from engine.clock import Clock
from engine.core.calendar import WorkCalendar
from engine.errors import NotFound
from engine.persistence.database import ensure_schema, transaction
from engine.persistence.tables import CalendarRow, PartyRow
from engine.runtime.lookup import resolve_round

__all__ = ["SHOWN", "BodyMeetings", "Meeting", "calendar"]

SHOWN = 3  # meetings shown per body


@dataclass(frozen=True)
class Meeting:
    """A meeting of a body, and the last day to put the agreement on its agenda."""

    day: date  # the meeting's day
    agenda_closes: date  # the last working day to put the agreement on its agenda


@dataclass(frozen=True)
class BodyMeetings:
    """A body's next meetings, as its calendar gives them."""

    round: str
    party: str
    party_name: str  # the party's name
    body: str  # the body whose calendar it is
    source: str  # file (dates listed in the agreement file), or its iCalendar file
    agenda_days: int  # working days before a meeting its agenda closes
    next: tuple[Meeting, ...]  # from today on; empty: none known (the calendar has run out)
    url: str | None = None  # the iCalendar URL the worker fetches, if any
    fetched_at: datetime | None = None  # when it last read the URL's calendar
    sha256: str | None = None  # of what it read then
    warning: str | None = None  # the URL could not be fetched, or not yet: said, never blocking


def _warning(cal: CalendarRow, tz: ZoneInfo) -> str | None:
    if cal.url is None:
        return None
    if cal.error is None and cal.fetched_at is not None:
        return None
    key = f"calendars.{cal.body}.url of party {cal.party_id!r}"
    if cal.error is None:
        return f"{key}: {cal.url} has not been fetched yet; the worker fetches it at its next tick"
    if cal.fetched_at is None:
        kept = "no meetings are known from it yet"
    else:
        kept = f"the meetings fetched {cal.fetched_at.astimezone(tz):%d.%m.%Y %H.%M} stay in use"
    return (
        f"{key}: {cal.url} {cal.error}; {kept}. Check the address in the agreement file or "
        "ask the body's secretary for the calendar's current one; the worker tries again on the "
        "next working day"
    )


def _closes(day: date, days: int, work: WorkCalendar) -> date:
    return work.subtract_working_days(day, days) if days else day


def calendar(
    engine: Engine, ref: str, clock: Clock, party: str | None = None
) -> list[BodyMeetings]:
    """The bodies' next meetings (of one party, or of every party with a calendar), in the
    parties' order, each with the day its agenda closes (on the round's working days)."""
    ensure_schema(engine)
    with transaction(engine) as session:
        row = resolve_round(session, ref)
        tz = ZoneInfo(row.timezone)
        today = clock.now(tz).date()
        country = str((row.reminders or {}).get("holidays", "FI"))
        work = WorkCalendar(country)
        parties = session.exec(
            select(PartyRow.party_id, PartyRow.name, PartyRow.position).where(
                PartyRow.round_id == row.id
            )
        ).all()
        known = {p: (name, position) for p, name, position in parties}
        if party is not None and party not in known:
            raise NotFound(
                f"round {row.id} has no party {party!r}; its parties: {', '.join(known)}",
                field="party",
            )
        query = select(CalendarRow).where(CalendarRow.round_id == row.id)
        if party is not None:
            query = query.where(col(CalendarRow.party_id) == party)
        found = []
        for cal in session.exec(query).all():
            coming = [date.fromisoformat(d) for d in cal.meetings]
            coming = [d for d in coming if d >= today]
            # A meeting whose agenda has closed is still shown: the body may still take it up.
            shown = tuple(Meeting(d, _closes(d, cal.agenda_days, work)) for d in coming[:SHOWN])
            name, position = known.get(cal.party_id, (cal.party_id, 0))
            found.append(
                (
                    position,
                    BodyMeetings(
                        row.id,
                        cal.party_id,
                        name,
                        cal.body,
                        cal.source,
                        cal.agenda_days,
                        shown,
                        url=cal.url,
                        fetched_at=cal.fetched_at,
                        sha256=cal.sha256,
                        warning=_warning(cal, tz),
                    ),
                )
            )
        return [b for _, b in sorted(found, key=lambda item: (item[0], item[1].body))]
