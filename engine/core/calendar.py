"""Working days and the date a decision becomes legally final (Act 150/1930 on time limits)."""

from __future__ import annotations

from datetime import date, timedelta
from functools import cache

import holidays

__all__ = ["is_working_day", "legal_force_date", "next_working_day"]


@cache
def _holidays(country: str, year: int) -> holidays.HolidayBase:
    code, _, subdiv = country.partition("-")
    return holidays.country_holidays(code, subdiv=subdiv or None, years=year)


def is_working_day(day: date, country: str = "FI") -> bool:
    return day.weekday() < 5 and day not in _holidays(country, day.year)


def next_working_day(day: date, country: str = "FI") -> date:
    """``day`` itself when it is a working day, otherwise the first working day after it."""
    while not is_working_day(day, country):
        day += timedelta(days=1)
    return day


def legal_force_date(
    decided: date, appeal_days: int, notice_days: int = 7, country: str = "FI"
) -> date:
    """The first day on which a decision of ``decided`` is legally final, absent an appeal.

    The party is deemed informed ``notice_days`` after the minutes are published (taken as the
    decision date); the appeal period runs ``appeal_days`` from the day after; a period ending on a
    weekend or public holiday ends on the next working day. The decision is final the day after.
    """
    period_ends = next_working_day(decided + timedelta(days=notice_days + appeal_days), country)
    return period_ends + timedelta(days=1)
