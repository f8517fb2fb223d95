"""Time, passed in. This is the only module of the engine that reads the system clock.

A :class:`Clock` answers "what time is it, in this zone?" so that the engine can be run at any
moment: now (``SystemClock``), as of a time given on the command line (``FixedClock``, ``--at``),
or on a simulated timeline that tests and the demo move forward (``FakeClock``), which several
processes can share through a file (``SharedClock``).
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

__all__ = [
    "DEFAULT_ZONE",
    "Clock",
    "FakeClock",
    "FixedClock",
    "NonexistentTime",
    "SharedClock",
    "SystemClock",
]

# Where a naive --at is read when no round's timezone applies (the outbox spans rounds).
DEFAULT_ZONE = ZoneInfo("Europe/Helsinki")


class Clock(Protocol):
    """Where the engine's time comes from. ``source`` is written into every log entry."""

    @property
    def source(self) -> str: ...

    def now(self, tz: tzinfo) -> datetime:
        """The current time as an aware datetime in ``tz``."""
        ...


class NonexistentTime(ValueError):
    """A wall-clock time given by hand that the zone skips (summer time begins). The clock imports
    nothing of ratify, so the service layer turns this into an ``InvalidInput`` (its message marks
    the option as ``{opt.at}``)."""


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
                raise NonexistentTime(
                    f"{{opt.at}} {self.moment:%Y-%m-%d %H:%M} does not exist in {tz}: the "
                    "clocks skip that hour (summer time begins); give a time outside it"
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


class SharedClock:
    """A simulated timeline that several processes read (RATIFY_FAKE_CLOCK_FILE): the moment is
    the file's content, an ISO 8601 time with its offset, which a test moves forward so that
    weeks pass in seconds for every web and worker process at once. Never for production: the
    commands say so when they start with it."""

    source = "at"

    def __init__(self, path: Path) -> None:
        self.path = path

    def now(self, tz: tzinfo) -> datetime:
        moment = datetime.fromisoformat(self.path.read_text("ascii").strip())
        if moment.tzinfo is None:
            raise ValueError(f"{self.path}: the shared clock's time needs its offset (+02:00)")
        return moment.astimezone(tz)
