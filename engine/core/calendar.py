"""The one working-day calendar: weekends, a country's public holidays (the `holidays` package)
and, for reminders, the quiet periods of a policy. Legal force counts with it too (Act 150/1930
on calculating statutory time limits), without quiet periods: July is not a holiday in law.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from functools import cache, lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from holidays import HolidayBase

__all__ = [
    "MonthDay",
    "WorkCalendar",
    "in_period",
    "is_working_day",
    "legal_force_date",
    "next_working_day",
]

MonthDay = tuple[int, int]


def in_period(day: date, periods: Sequence[tuple[MonthDay, MonthDay]]) -> bool:
    """Whether ``day`` falls in one of the month-day ranges (a range may wrap the new year)."""
    md = (day.month, day.day)
    for first, last in periods:
        if (first <= md <= last) if first <= last else (md >= first or md <= last):
            return True
    return False


@cache
def _holidays(country: str, subdiv: str | None, year: int) -> HolidayBase:
    import holidays  # large: only what counts days needs it

    return holidays.country_holidays(country, subdiv=subdiv, years=year)


class WorkCalendar:
    """Working days: no weekends, no public holidays of ``country`` (``FI``, ``FI-01`` for
    Åland), and nothing in a quiet period."""

    def __init__(
        self, country: str = "FI", quiet_periods: Sequence[tuple[MonthDay, MonthDay]] = ()
    ) -> None:
        code, _, subdiv = country.partition("-")
        self._country = code
        self._subdiv = subdiv or None
        self._periods = tuple(quiet_periods)

    def is_working_day(self, day: date) -> bool:
        return _working(self._country, self._subdiv, self._periods, day)

    def next_working_day(self, day: date) -> date:
        """``day`` itself when it is a working day, otherwise the first working day after it."""
        while not self.is_working_day(day):
            day += timedelta(days=1)
        return day

    def add_working_days(self, day: date, n: int) -> date:
        """The ``n``-th working day after ``day`` (``day`` itself is not counted)."""
        return self._step(day, n, 1)

    def subtract_working_days(self, day: date, n: int) -> date:
        """The ``n``-th working day before ``day`` (``day`` itself is not counted)."""
        return self._step(day, n, -1)

    def _step(self, day: date, n: int, direction: int) -> date:
        if n < 1:
            raise ValueError(f"n must be at least 1, not {n}")
        return _stepped(self._country, self._subdiv, self._periods, day, n, direction)


# Counting days is pure and asked again and again (every tick works out each due party's next
# reminder from the day its step began): the answers are kept. Bounded: a few calendars, a few
# years of days, a few dozen offsets.
@lru_cache(maxsize=65536)
def _working(
    country: str, subdiv: str | None, periods: tuple[tuple[MonthDay, MonthDay], ...], day: date
) -> bool:
    return (
        day.weekday() < 5
        and day not in _holidays(country, subdiv, day.year)
        and not in_period(day, periods)
    )


@lru_cache(maxsize=65536)
def _stepped(
    country: str,
    subdiv: str | None,
    periods: tuple[tuple[MonthDay, MonthDay], ...],
    day: date,
    n: int,
    direction: int,
) -> date:
    one = timedelta(days=direction)
    while n:
        day += one
        if _working(country, subdiv, periods, day):
            n -= 1
    return day


FINLAND = WorkCalendar("FI")


def is_working_day(day: date, country: str = "FI") -> bool:
    return WorkCalendar(country).is_working_day(day)


def next_working_day(day: date, country: str = "FI") -> date:
    """``day`` itself when it is a working day, otherwise the first working day after it."""
    return WorkCalendar(country).next_working_day(day)


def legal_force_date(
    decided: date, appeal_days: int, notice_days: int = 7, calendar: WorkCalendar = FINLAND
) -> date:
    """The first day on which a decision of ``decided`` is legally final, absent an appeal.

    The party is deemed informed ``notice_days`` after the minutes are published (taken as the
    decision date); the appeal period runs ``appeal_days`` from the day after; a period ending on a
    weekend or public holiday ends on the next working day. The decision is final the day after.
    """
    period_ends = calendar.next_working_day(decided + timedelta(days=notice_days + appeal_days))
    return period_ends + timedelta(days=1)
