"""Calendars given by URL, fetched by the worker: once a working day per calendar (and at once when
never fetched), with a timeout, a size cap and a redirect limit, parsed as an iCalendar file
beside the agreement file is (:func:`engine.agreement.calendars.ical_meetings`).

A fetch that fails (unreachable, an error status, too big, a redirect loop, no iCalendar) is
kept on the calendar's row as its last error, a warning ``ratify calendar`` shows: it never
stops the tick nor blocks recording, and the last good meetings stay in use.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, or_, update
from sqlmodel import col, select

from engine.agreement.calendars import ical_meetings
from engine.clock import Clock
from engine.core.calendar import WorkCalendar
from engine.persistence import outbox
from engine.persistence.database import ensure_schema, transaction
from engine.persistence.tables import CalendarRow, RoundRow

__all__ = ["MAX_BYTES", "MAX_REDIRECTS", "TIMEOUT", "CalendarFetch", "fetch_calendars"]

TIMEOUT = 10.0  # seconds, to connect and between bytes
MAX_BYTES = 1 << 20  # 1 MiB: a body's calendar for years is a few tens of kilobytes
MAX_REDIRECTS = 3


@dataclass(frozen=True)
class CalendarFetch:
    """What became of one calendar's fetch: ``fetched`` (its meetings replaced those from today
    on), or ``failed`` (``error`` says why; the last good meetings stay)."""

    round: str
    party: str
    body: str
    url: str
    outcome: Literal["fetched", "failed"]
    meetings: int  # the meetings known from today on, after the fetch
    sha256: str | None  # of what was read; None when nothing was
    error: str | None


class _Failed(Exception):
    pass


def fetch_calendars(engine: Engine, clock: Clock) -> list[CalendarFetch]:
    """Fetch every URL calendar of an open round that is due: never fetched, or not tried yet
    today (in the round's zone) and today is a working day. Each URL is read once per tick."""
    ensure_schema(engine)
    now = clock.now(ZoneInfo("UTC"))
    table = CalendarRow.__table__  # type: ignore[attr-defined]
    due: list[tuple[CalendarRow, str, datetime | None]] = []
    with transaction(engine) as session:
        # Tried in the last twelve hours: not due whatever the zone, and not read at all.
        rows = session.exec(
            select(CalendarRow, RoundRow.timezone, RoundRow.reminders)
            .join(RoundRow, col(RoundRow.id) == col(CalendarRow.round_id))
            .where(
                col(CalendarRow.url).is_not(None),
                col(RoundRow.state) == "open",
                or_(
                    col(CalendarRow.checked_at).is_(None),
                    col(CalendarRow.checked_at) < now - timedelta(hours=12),
                ),
            )
        ).all()
        works: dict[str, WorkCalendar] = {}  # one per country: a calendar's holidays cost
        for cal, zone, reminders in rows:
            tz = ZoneInfo(zone)
            today = now.astimezone(tz).date()
            if cal.checked_at is not None:
                country = str((reminders or {}).get("holidays", "FI"))
                if country not in works:
                    works[country] = WorkCalendar(country)
                work = works[country]
                if cal.checked_at.astimezone(tz).date() >= today or not work.is_working_day(today):
                    continue
            # Claimed by moving its time on, if no other worker did meanwhile: one fetch each.
            claim = (
                update(table)
                .where(
                    table.c.round_id == cal.round_id,
                    table.c.party_id == cal.party_id,
                    table.c.body == cal.body,
                    table.c.checked_at.is_(None)
                    if cal.checked_at is None
                    else table.c.checked_at == cal.checked_at,
                )
                .values(checked_at=now)
            )
            if session.execute(claim).rowcount == 1:  # type: ignore[attr-defined]
                due.append((cal, zone, cal.checked_at))
    read: dict[str, bytes | str] = {}  # by URL: what was read, or why nothing was
    for cal, _, _ in due:
        assert cal.url is not None
        if cal.url not in read:
            try:
                read[cal.url] = _fetch(cal.url)
            except _Failed as exc:
                read[cal.url] = str(exc)
    found: list[CalendarFetch] = []
    with transaction(engine) as session:
        for cal, zone, _ in due:
            assert cal.url is not None
            today = now.astimezone(ZoneInfo(zone)).date()
            body = read[cal.url]
            digest = hashlib.sha256(body).hexdigest() if isinstance(body, bytes) else None
            error = body if isinstance(body, str) else None
            coming: tuple[str, ...] = ()
            if isinstance(body, bytes):
                try:
                    coming = tuple(d.isoformat() for d in ical_meetings(_text(body), today))
                except (ValueError, _Failed) as exc:
                    error = str(exc)
                if not error and not coming:
                    error = "lists no meetings from today on"
            row = session.get(CalendarRow, (cal.round_id, cal.party_id, cal.body))
            if row is None:
                continue
            kept = [d for d in row.meetings if d >= today.isoformat()]
            if error is None:
                before = [d for d in row.meetings if d < today.isoformat()]  # for follow-ups
                row.meetings = before + list(coming)
                row.fetched_at = now
                row.sha256 = digest
                row.error = None
                if list(coming) != kept:  # what is due for the party may have moved
                    outbox.mark_due(session, row.round_id, row.party_id, now)
            else:
                row.error = error
            row.checked_at = now
            session.add(row)
            found.append(
                CalendarFetch(
                    round=row.round_id,
                    party=row.party_id,
                    body=row.body,
                    url=cal.url,
                    outcome="fetched" if error is None else "failed",
                    meetings=len(coming) if error is None else len(kept),
                    sha256=digest,
                    error=error,
                )
            )
    return found


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _Failed("is not UTF-8 text, so no iCalendar file") from None


def _fetch(url: str) -> bytes:
    """The body of a 200 answer for ``url``, or _Failed saying in words why there is none."""
    import httpx2

    headers = {"Accept": "text/calendar", "User-Agent": "ratify (meeting calendar)"}
    try:
        with (
            httpx2.Client(
                timeout=TIMEOUT,
                follow_redirects=True,
                max_redirects=MAX_REDIRECTS,
                trust_env=False,
                headers=headers,
            ) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise _Failed(
                    f"the server answered {response.status_code} {response.reason_phrase}".strip()
                )
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > MAX_BYTES:
                raise _Failed(f"is larger than {MAX_BYTES // 1024} KiB ({declared} bytes)")
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > MAX_BYTES:
                    raise _Failed(f"is larger than {MAX_BYTES // 1024} KiB")
                chunks.append(chunk)
            return b"".join(chunks)
    except httpx2.TooManyRedirects:
        raise _Failed(f"redirects more than {MAX_REDIRECTS} times (a redirect loop?)") from None
    except httpx2.UnsupportedProtocol:
        raise _Failed("redirects to an address that is not http or https") from None
    except httpx2.TimeoutException:
        raise _Failed(f"did not answer within {TIMEOUT:.0f} seconds") from None
    except httpx2.HTTPError as exc:
        raise _Failed(f"could not be reached ({type(exc).__name__}: {exc})") from None
