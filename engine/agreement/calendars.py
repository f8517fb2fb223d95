"""Bodies' meeting calendars as an agreement file gives them: dates listed in the file, an
iCalendar file beside it, or an iCalendar URL the worker fetches (recurring meetings expanded,
cancelled occurrences left out)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from engine.core.addresses import URL_MAX, address_problem

__all__ = ["HORIZON_DAYS", "MAX_MEETINGS", "URL_MAX", "BodyCalendar", "check_url", "ical_meetings"]

HORIZON_DAYS = 550  # meetings are kept from the launch to about a year and a half on
MAX_MEETINGS = 500


@dataclass(frozen=True)
class BodyCalendar:
    """When one body of a party meets, and how many working days before a meeting its agenda
    closes. ``source``: where the dates came from (``file``, the iCalendar file's name, or the
    URL). ``url``: the iCalendar URL the worker fetches, if any (its meetings come then)."""

    body: str
    meetings: tuple[date, ...]
    agenda_days: int
    source: str
    url: str | None = None


def check_url(value: str) -> str:
    """An iCalendar URL as a calendar may give it (:func:`engine.core.addresses.address_problem`:
    http or https, a host, no user name or password, no spaces, no fragment). ValueError, saying
    the fix, otherwise."""
    example = "like 'https://hattula.example.invalid/kokoukset/kunnanhallitus.ics'"
    if (problem := address_problem(value, example)) is not None:
        raise ValueError(problem)
    return value


def ical_meetings(text: str, start: date, *, days: int = HORIZON_DAYS) -> tuple[date, ...]:
    """The dates of the meetings an iCalendar text holds from ``start`` on: recurring events
    expanded (RRULE, RDATE), occurrences removed (EXDATE) or cancelled (STATUS:CANCELLED, also
    on a single changed occurrence) left out. ValueError, in words, when it is no calendar."""
    import icalendar
    import recurring_ical_events

    try:
        calendar = icalendar.Calendar.from_ical(text)
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise ValueError(f"is not an iCalendar file ({exc})") from None
    if calendar.name != "VCALENDAR":
        raise ValueError("is not an iCalendar file (no VCALENDAR)")
    end = start + timedelta(days=days)
    try:
        events = recurring_ical_events.of(calendar).between(start, end)
    except Exception as exc:  # the library's own errors for a broken rule or date
        raise ValueError(f"has an event that cannot be read ({exc})") from None
    found: set[date] = set()
    for event in events:
        if str(event.get("STATUS", "")).upper() == "CANCELLED":
            continue
        begins = event.get("DTSTART")
        if begins is None:
            continue
        moment = begins.dt
        day = moment.date() if isinstance(moment, datetime) else moment
        if start <= day < end:
            found.add(day)
        if len(found) > MAX_MEETINGS:
            raise ValueError(f"has more than {MAX_MEETINGS} meetings in its first year and a half")
    return tuple(sorted(found))
