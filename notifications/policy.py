"""When reminders, escalations and deadline reminders are due: pure functions of dates and `now`;
and, where the body a step waits on has a known calendar, the agenda reminders and follow-ups
that replace the step's fixed-interval reminders (:func:`meeting_chases`).

Due days are working days by construction (counted with :class:`WorkCalendar`), so nothing is ever
due on a weekend, a public holiday or in a quiet period. Nothing here reads the clock or does I/O.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    field_validator,
    model_validator,
)

from engine.core.calendar import WorkCalendar, in_period

__all__ = [
    "MeetingChase",
    "ReminderPolicy",
    "WorkCalendar",
    "agenda_closes",
    "deadline_reminder_due",
    "due_deadline_reminder",
    "due_meeting_chase",
    "due_reminder",
    "escalation_due",
    "meeting_chases",
    "meeting_escalation_due",
    "meetings_run_out",
    "reminder_due",
]

# Upper bounds keep a typo (10000 instead of 10) from making a tick count working days for decades.
MAX_DAYS = 365
MAX_REMINDERS = 100

_CLOCK = re.compile(r"(\d{2}):(\d{2})")
_MONTH_DAY = re.compile(r"(\d{2})-(\d{2})")


def _whole(low: int, high: int, unit: str, example: int) -> BeforeValidator:
    def check(value: Any) -> Any:
        # bool is refused although it is an int: TOML `true` is not a number of days.
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{value!r} is not a whole number; give {unit}, like {example}")
        if not low <= value <= high:
            raise ValueError(f"{value} is out of range; give {unit} from {low} to {high}")
        return value

    return BeforeValidator(check)


def _text(example: str) -> BeforeValidator:
    def check(value: Any) -> Any:
        # TOML reads an unquoted 09:00:00 as a time, not text: the fix is to quote it.
        if not isinstance(value, str):
            raise ValueError(f"{value!r} is not text; write it in quotes, like {example}")
        return value

    return BeforeValidator(check)


def _parse_month_day(value: str) -> tuple[int, int]:
    match = _MONTH_DAY.fullmatch(value)
    if match is None:
        raise ValueError(f"{value!r} is not a month-day; write MM-DD, like '07-01'")
    month, day = int(match[1]), int(match[2])
    try:
        date(2024, month, day)  # a leap year, so that '02-29' is accepted
    except ValueError:
        raise ValueError(
            f"{value!r} is not a day of the year; write MM-DD with a real month and day, "
            "like '07-31'"
        ) from None
    return month, day


def _month_day(value: str) -> str:
    _parse_month_day(value)
    return value


_Days = Annotated[int, _whole(1, MAX_DAYS, "a number of working days", 10)]
_Count = Annotated[int, _whole(0, MAX_REMINDERS, "a number of reminders", 4)]
_MonthDay = Annotated[str, _text('"07-01"'), AfterValidator(_month_day)]


MIN_WORKING_DAYS = 20


class ReminderPolicy(BaseModel):
    """The ``[reminders]`` table of an agreement file. Every default is the issue's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    first_after_days: _Days = 10
    every_days: _Days = 5
    max_reminders: _Count = 4
    before_deadline_days: list[_Days] = [10, 3]
    # Working days before the agenda of the body's next meeting closes: its agenda reminder.
    agenda_notice_days: Annotated[int, _whole(0, 60, "a number of working days", 3)] = 3
    send_at: Annotated[str, _text('"09:00"')] = "09:00"
    holidays: Annotated[str, _text('"FI"')] = "FI"
    quiet_periods: list[tuple[_MonthDay, _MonthDay]] = [("07-01", "07-31")]

    @field_validator("before_deadline_days", mode="before")
    @classmethod
    def _days_list(cls, value: Any) -> Any:
        if not isinstance(value, list | tuple):
            raise ValueError(f"{value!r} is not a list; give numbers of working days, like [10, 3]")
        return value

    @field_validator("before_deadline_days")
    @classmethod
    def _distinct_descending(cls, value: list[int]) -> list[int]:
        repeated = sorted({d for d in value if value.count(d) > 1})
        if repeated:
            listed = ", ".join(map(str, repeated))
            raise ValueError(f"{listed} is given more than once; give each number of days once")
        # Descending: the earliest deadline reminder first, as they are sent.
        return sorted(value, reverse=True)

    @field_validator("send_at")
    @classmethod
    def _clock_time(cls, value: str) -> str:
        match = _CLOCK.fullmatch(value)
        if match is None or int(match[1]) > 23 or int(match[2]) > 59:
            raise ValueError(f"{value!r} is not a time of day; write HH:MM (24-hour), like '09:00'")
        return value

    @field_validator("holidays")
    @classmethod
    def _known_calendar(cls, value: str) -> str:
        # Imported here: the package is large, and only an agreement file with reminders needs it.
        import holidays

        country, dash, subdiv = value.partition("-")
        country = country.upper()  # 'fi' is unambiguous; subdivisions may be names, so keep theirs
        supported = holidays.list_supported_countries()
        if country not in supported:
            raise ValueError(
                f"{value!r} is not a country the holidays package knows; give an ISO 3166 "
                "country code like 'FI', optionally with a subdivision like 'FI-01' (Åland)"
            )
        if dash and not subdiv:
            raise ValueError(f"{value!r} ends with '-'; give {country!r} or add a subdivision")
        try:
            holidays.country_holidays(country, subdiv=subdiv or None)
        except NotImplementedError:
            known = supported[country]
            choices = ", ".join(f"{country}-{s}" for s in known[:20]) + (
                ", …" if len(known) > 20 else ""
            )
            fix = f"use one of {choices}" if known else f"use {country!r}, it has none"
            raise ValueError(f"{value!r}: {country} has no subdivision {subdiv!r}; {fix}") from None
        return f"{country}{dash}{subdiv}"

    @field_validator("quiet_periods", mode="before")
    @classmethod
    def _pairs(cls, value: Any) -> Any:
        # Checked before pydantic's own tuple errors, which would not say how to write a period.
        if not isinstance(value, list | tuple) or not all(
            isinstance(p, list | tuple) and len(p) == 2 for p in value
        ):
            raise ValueError(
                'give a list of [first, last] month-day pairs, like [["07-01", "07-31"]]'
            )
        return value

    @field_validator("quiet_periods")
    @classmethod
    def _leaves_working_days(cls, value: list[tuple[str, str]]) -> list[tuple[str, str]]:
        # A year with no day outside the quiet periods would make the calendar search forever.
        periods = [(_parse_month_day(a), _parse_month_day(b)) for a, b in value]
        day, last = date(2023, 1, 1), date(2023, 12, 31)  # not a leap year: 02-29 does not count
        while day <= last:
            if not in_period(day, periods):
                return value
            day += timedelta(days=1)
        raise ValueError("the quiet periods cover the whole year; leave days on which to send")

    @model_validator(mode="after")
    def _enough_working_days(self) -> ReminderPolicy:
        # Weekends and holidays count too: quiet periods that leave, say, only Christmas Day
        # would send deadline reminders decades off, or search for a working day forever.
        calendar = self.calendar()
        for year in (2027, 2028):
            days = sum(
                calendar.is_working_day(date(year, 1, 1) + timedelta(days=n)) for n in range(365)
            )
            if days < MIN_WORKING_DAYS:
                raise ValueError(
                    f"quiet_periods leave {days} working days in {year}; shorten them so that "
                    f"at least {MIN_WORKING_DAYS} remain"
                )
        return self

    def calendar(self) -> WorkCalendar:
        """The working days reminders are sent on: no weekends, holidays or quiet periods."""
        periods = [(_parse_month_day(a), _parse_month_day(b)) for a, b in self.quiet_periods]
        return WorkCalendar(self.holidays, periods)

    @property
    def send_time(self) -> time:
        hours, minutes = self.send_at.split(":")
        return time(int(hours), int(minutes))


def _local_date(moment: datetime, tz: ZoneInfo, name: str) -> date:
    _require_aware(moment, name)
    return moment.astimezone(tz).date()


def _require_aware(moment: datetime, name: str) -> None:
    # A naive datetime would be read in the host's zone: the due day would depend on the server.
    if moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {moment!r}")


def _at_send_time(policy: ReminderPolicy, day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, policy.send_time, tzinfo=tz)


def _reached(due: datetime, now: datetime) -> bool:
    # Compared in UTC: two datetimes sharing a tzinfo compare by wall time, wrong in the DST fold.
    return due.astimezone(UTC) <= now.astimezone(UTC)


def reminder_due(
    policy: ReminderPolicy, cal: WorkCalendar, step_began: datetime, n: int, tz: ZoneInfo
) -> datetime:
    """When reminder ``n`` (1-based) of a step that began at ``step_began`` is due, in ``tz``."""
    if not 1 <= n <= policy.max_reminders:
        raise ValueError(
            f"reminder {n} does not exist; the policy sends 1 to {policy.max_reminders}"
        )
    start = _local_date(step_began, tz, "step_began")
    offset = policy.first_after_days + (n - 1) * policy.every_days
    return _at_send_time(policy, cal.add_working_days(start, offset), tz)


def escalation_due(
    policy: ReminderPolicy, cal: WorkCalendar, step_began: datetime, tz: ZoneInfo
) -> datetime:
    """When a step that began at ``step_began`` is escalated: one interval after the last reminder.

    With no reminders, escalation comes when the first reminder would have.
    """
    start = _local_date(step_began, tz, "step_began")
    offset = policy.first_after_days + policy.max_reminders * policy.every_days
    return _at_send_time(policy, cal.add_working_days(start, offset), tz)


def due_reminder(
    policy: ReminderPolicy, cal: WorkCalendar, step_began: datetime, now: datetime, tz: ZoneInfo
) -> int | None:
    """The number of the latest reminder due by ``now``, or None.

    Only the latest: a worker that was down sends that one, not every reminder it missed.
    """
    _require_aware(now, "now")
    if policy.max_reminders == 0:
        return None
    day = cal.add_working_days(_local_date(step_began, tz, "step_began"), policy.first_after_days)
    latest: int | None = None
    for n in range(1, policy.max_reminders + 1):
        if not _reached(_at_send_time(policy, day, tz), now):
            break
        latest = n
        if n < policy.max_reminders:
            # Counting on from the previous due day gives the same day as counting from the start.
            day = cal.add_working_days(day, policy.every_days)
    return latest


def deadline_reminder_due(
    policy: ReminderPolicy, cal: WorkCalendar, deadline: date, days: int, tz: ZoneInfo
) -> datetime:
    """When the reminder ``days`` working days before ``deadline`` (a local date) is due."""
    return _at_send_time(policy, cal.subtract_working_days(deadline, days), tz)


def due_deadline_reminder(
    policy: ReminderPolicy, cal: WorkCalendar, deadline: date, now: datetime, tz: ZoneInfo
) -> int | None:
    """The ``days`` of the latest deadline reminder due by ``now``; None if none is, or it is late.

    Once the deadline's local date has passed a reminder of it can only mislead, so none is due.
    """
    if _local_date(now, tz, "now") > deadline:
        return None
    latest: int | None = None
    for days in sorted(policy.before_deadline_days, reverse=True):  # earliest due first
        if not _reached(deadline_reminder_due(policy, cal, deadline, days, tz), now):
            break
        latest = days
    return latest


def agenda_closes(work: WorkCalendar, meeting: date, agenda_days: int) -> date:
    """The last working day to put an item on the agenda of a meeting on ``meeting``: its
    ``agenda_days``-th working day before (on ``work``, the body's days: holidays, no quiet
    periods), or the meeting day itself when ``agenda_days`` is 0."""
    return work.subtract_working_days(meeting, agenda_days) if agenda_days else meeting


@dataclass(frozen=True)
class MeetingChase:
    """An agenda reminder before a meeting, or a follow-up after it, for one pending step:
    ``due`` (aware, at send_at) and the last local day on which it may still go out (``until``,
    inclusive; None: no end)."""

    kind: Literal["agenda", "followup"]
    meeting: date
    agenda_closes: date
    due: datetime
    until: date | None


def meeting_chases(
    policy: ReminderPolicy,
    cal: WorkCalendar,
    work: WorkCalendar,
    meetings: Sequence[date],
    agenda_days: int,
    step_began: datetime,
    tz: ZoneInfo,
) -> list[MeetingChase]:
    """Every agenda reminder and follow-up of a step that began at ``step_began`` and waits on a
    body meeting on ``meetings``, in order.

    A meeting counts whose agenda had not closed when the step began. Its agenda reminder is due
    ``agenda_notice_days`` working days (``cal``: the sending days) before its agenda closes, or
    at once when the step began later, and may go out until the agenda closes; its follow-up is
    due the working day after the meeting and may go out until the next counted meeting. Empty:
    no meeting counts, and the fixed-interval reminders apply.
    """
    began = _local_date(step_began, tz, "step_began")
    counted = [(m, agenda_closes(work, m, agenda_days)) for m in sorted(set(meetings))]
    counted = [(m, closes) for m, closes in counted if closes >= began]
    found: list[MeetingChase] = []
    for index, (meeting, closes) in enumerate(counted):
        notice = policy.agenda_notice_days
        day = cal.subtract_working_days(closes, notice) if notice else closes
        at = _at_send_time(policy, cal.next_working_day(max(day, began)), tz)
        if at.astimezone(UTC) < step_began.astimezone(UTC):  # began after send_at that day
            at = _at_send_time(policy, cal.add_working_days(at.date(), 1), tz)
        if at.date() <= closes:
            found.append(MeetingChase("agenda", meeting, closes, at, closes))
        after = _at_send_time(policy, cal.add_working_days(meeting, 1), tz)
        following = counted[index + 1][0] if index + 1 < len(counted) else None
        found.append(MeetingChase("followup", meeting, closes, after, following))
    return found


def meeting_escalation_due(
    policy: ReminderPolicy, cal: WorkCalendar, chases: Sequence[MeetingChase], tz: ZoneInfo
) -> datetime | None:
    """When a step that waits on a body's meetings is escalated: ``every_days`` working days after
    the follow-up of its second meeting (its first, if only one counts): the party has missed two
    meetings. None when no meeting counts."""
    followups = [c for c in chases if c.kind == "followup"][:2]
    if not followups:
        return None
    day = cal.add_working_days(followups[-1].due.astimezone(tz).date(), policy.every_days)
    return _at_send_time(policy, day, tz)


def due_meeting_chase(
    chases: Sequence[MeetingChase], kind: str, now: datetime, tz: ZoneInfo
) -> MeetingChase | None:
    """The latest chase of ``kind`` due by ``now`` that may still go out (an agenda reminder
    until its agenda closes; a follow-up until the next meeting)."""
    today = _local_date(now, tz, "now")
    latest: MeetingChase | None = None
    for chase in chases:
        if chase.kind != kind or not _reached(chase.due, now):
            continue
        if chase.until is not None and today > chase.until:
            continue
        if latest is None or chase.due >= latest.due:
            latest = chase
    return latest


def meetings_run_out(chases: Sequence[MeetingChase]) -> datetime:
    """When a step's known meetings have all passed: its last follow-up. From then on the step
    gets the fixed-interval reminders again, counted from that moment, until the calendar is
    extended (``chases`` must not be empty)."""
    return max(c.due for c in chases if c.kind == "followup")
