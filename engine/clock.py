"""Time, passed in. This is the only module of the engine that reads the system clock.

A :class:`Clock` answers "what time is it, in this zone?" so that the engine can be run at any
moment: now (``SystemClock``), as of a time given on the command line (``FixedClock``, ``--at``),
or on a simulated timeline that tests and the demo move forward (``FakeClock``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Protocol
from zoneinfo import ZoneInfo

__all__ = ["DEFAULT_ZONE", "Clock", "FakeClock", "FixedClock", "SystemClock", "parse_at"]

# Where a naive --at is read when no round's timezone applies (the outbox spans rounds).
DEFAULT_ZONE = ZoneInfo("Europe/Helsinki")


class Clock(Protocol):
    """Where the engine's time comes from. ``source`` is written into every log entry."""

    @property
    def source(self) -> str: ...

    def now(self, tz: tzinfo) -> datetime:
        """The current time as an aware datetime in ``tz``."""
        ...


class SystemClock:
    source = "system"

    def now(self, tz: tzinfo) -> datetime:
        return datetime.now(tz)


class FixedClock:
    """Always the same moment. A naive moment is wall-clock time in whatever zone is asked for."""

    source = "at"

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def now(self, tz: tzinfo) -> datetime:
        if self.moment.tzinfo is None:
            local = self.moment.replace(tzinfo=tz)
            real = local.astimezone(UTC).astimezone(tz)
            if real.replace(tzinfo=None) != self.moment:
                if self.moment.time() == time():  # a date alone: its day's first moment
                    return real
                from engine.errors import InvalidInput

                raise InvalidInput(
                    f"--at {self.moment:%Y-%m-%d %H:%M} does not exist in {tz}: the clocks "
                    "skip that hour (summer time begins); give a time outside it"
                )
            return local
        return self.moment.astimezone(tz)


class FakeClock(FixedClock):
    """A fixed clock that a test or a simulation moves forward."""

    source = "at"

    def advance(self, **delta: float) -> None:
        self.moment = self.moment + timedelta(**delta)

    def set(self, moment: datetime) -> None:
        self.moment = moment


def parse_at(text: str) -> datetime:
    """Parse ``--at``: an ISO date (midnight) or date-time, local to the round unless offset."""
    from engine.errors import InvalidInput

    # Beyond these years time-zone arithmetic overflows (and no agreement is ratified there).
    first, last = 1970, 9000
    raw = text.strip()
    if not raw:
        raise InvalidInput(
            "{opt.at} is empty; give a date or a date-time, like 2026-12-01 or 2026-12-01T14:30, "
            "or leave {opt.at} out to run at the system time",
            field="at",
        )
    shown = repr(text if len(text) <= 40 else text[:40] + "…")
    out_of_range = InvalidInput(
        f"{{opt.at}} {shown}: the year is outside the supported range ({first}\u2013{last}); "
        "give a date within it",
        field="at",
    )
    year = raw.lstrip("+-").partition("-")[0] if "-" in raw else ""
    if year.isdigit() and len(year) >= 4 and not first <= int(year) <= last:
        raise out_of_range
    try:
        moment = (
            datetime.combine(date.fromisoformat(raw), time())
            if len(raw) == 10
            else datetime.fromisoformat(raw)
        )
    except ValueError:
        raise InvalidInput(
            f"{{opt.at}} {shown} is not an ISO date or date-time; "
            "write it as 2026-12-01 or 2026-12-01T14:30 (local to the round's timezone)",
            field="at",
        ) from None
    if not first <= moment.year <= last:
        raise out_of_range
    return moment
