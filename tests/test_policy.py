"""The reminder policy: its validation, its working-day calendar, and when things are due.

Expected dates are counted by hand from the Finnish calendar (holidays package, "FI"):
2026: Independence Day Sun 6.12., Christmas Eve Thu 24.12., Christmas Day Fri 25.12.,
Boxing Day Sat 26.12.; 2027: New Year's Day Fri 1.1., Epiphany Wed 6.1., Good Friday 26.3.,
Easter Monday 29.3., Ascension Day Thu 6.5., Midsummer Eve Fri 25.6., Midsummer Day Sat 26.6.,
Independence Day Mon 6.12. Åland (FI-01) adds its Autonomy Day, Wed 9.6.2027.
2.8.2027 is a Monday.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from notifications.policy import (
    ReminderPolicy,
    deadline_reminder_due,
    due_deadline_reminder,
    due_reminder,
    escalation_due,
    reminder_due,
)
from workflows import PENDING_ROLES, load_definition

HELSINKI = ZoneInfo("Europe/Helsinki")
DEFAULT = ReminderPolicy()
FI = DEFAULT.calendar()
# Midsummer week 2027. Working days after Mon 21.6.: 22, 23, 24 (Fri 25.6. Midsummer Eve, Sat 26.6.
# Midsummer Day, Sun 27.6.), 28, 29, 30 June: 6 by 30.6.; July is quiet; then Mon 2.8. (7),
# Tue 3.8. (8), Wed 4.8. (9), Thu 5.8. (10).
MIDSUMMER_STEP = datetime(2027, 6, 21, 14, 0, tzinfo=HELSINKI)
DEADLINE = date(2026, 12, 31)


def local(year: int, month: int, day: int, hour: int = 9, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=HELSINKI)


# The policy


def test_defaults_are_the_issues() -> None:
    assert DEFAULT.first_after_days == 10
    assert DEFAULT.every_days == 5
    assert DEFAULT.max_reminders == 4
    assert DEFAULT.before_deadline_days == [10, 3]
    assert DEFAULT.send_at == "09:00"
    assert DEFAULT.send_time == time(9, 0)
    assert DEFAULT.holidays == "FI"
    assert DEFAULT.quiet_periods == [("07-01", "07-31")]


def test_a_table_as_toml_gives_it_is_normalised() -> None:
    policy = ReminderPolicy.model_validate(
        {
            "before_deadline_days": [3, 10, 5],
            "send_at": "16:30",
            "holidays": "fi-01",
            "quiet_periods": [["12-20", "01-06"], ["02-29", "02-29"]],
        }
    )
    assert policy.before_deadline_days == [10, 5, 3]
    assert policy.send_time == time(16, 30)
    assert policy.holidays == "FI-01"
    assert policy.quiet_periods == [("12-20", "01-06"), ("02-29", "02-29")]


def test_the_policy_is_frozen() -> None:
    with pytest.raises(ValidationError, match="frozen"):
        DEFAULT.every_days = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    "values",
    [
        {"max_reminders": 0, "before_deadline_days": [], "quiet_periods": []},
        {"send_at": "00:00"},
        {"send_at": "23:59"},
        {"first_after_days": 365, "every_days": 1, "max_reminders": 100},
        # A quiet period may cover most of the year, as long as 20 working days remain.
        {"quiet_periods": [["02-01", "11-30"]]},
        {"quiet_periods": [["12-20", "11-15"]]},
    ],
)
def test_edge_values_are_accepted(values: dict[str, Any]) -> None:
    ReminderPolicy.model_validate(values)


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("first_after_days", 0, ["0 is out of range", "from 1 to 365"]),
        ("first_after_days", 366, ["366 is out of range", "from 1 to 365"]),
        ("every_days", 0, ["from 1 to 365"]),
        ("every_days", "5", ["'5' is not a whole number", "like 10"]),
        ("every_days", 2.5, ["2.5 is not a whole number", "like 10"]),
        ("max_reminders", -1, ["-1 is out of range", "reminders from 0 to 100"]),
        ("max_reminders", True, ["True is not a whole number", "like 4"]),
        ("before_deadline_days", [10, 3, 10], ["10 is given more than once", "give each"]),
        ("before_deadline_days", [0], ["0 is out of range", "from 1 to 365"]),
        ("before_deadline_days", 10, ["10 is not a list", "like [10, 3]"]),
        ("send_at", "9:00", ["'9:00' is not a time of day", "write HH:MM (24-hour)"]),
        ("send_at", "24:00", ["'24:00'", "write HH:MM"]),
        ("send_at", "09:60", ["'09:60'", "write HH:MM"]),
        ("send_at", "09:00:00", ["'09:00:00'", "write HH:MM"]),
        ("send_at", time(9, 0), ["is not text", 'write it in quotes, like "09:00"']),
        ("holidays", "XX", ["'XX' is not a country", "like 'FI'", "'FI-01' (Åland)"]),
        ("holidays", "", ["'' is not a country", "like 'FI'"]),
        ("holidays", "FI-99", ["'FI-99': FI has no subdivision '99'", "use one of FI-01,"]),
        ("holidays", "FI-", ["'FI-' ends with '-'", "give 'FI' or add a subdivision"]),
        ("quiet_periods", [["07-01"]], ['[first, last] month-day pairs, like [["07-01"']),
        ("quiet_periods", ["07-01", "07-31"], ["[first, last] month-day pairs"]),
        ("quiet_periods", [["7-1", "07-31"]], ["'7-1' is not a month-day", "write MM-DD"]),
        ("quiet_periods", [["13-01", "01-02"]], ["'13-01' is not a day of the year"]),
        ("quiet_periods", [["02-01", "02-30"]], ["'02-30' is not a day of the year"]),
        ("quiet_periods", [[701, "07-31"]], ["701 is not text", "write it in quotes"]),
        ("quiet_periods", [["01-01", "12-31"]], ["cover the whole year", "leave days"]),
        # Wraps the new year from 1.7. back to 30.6.: every day of the year is quiet.
        ("quiet_periods", [["07-01", "06-30"]], ["cover the whole year"]),
        ("quiet_periods", [["01-01", "06-30"], ["07-01", "12-31"]], ["cover the whole year"]),
    ],
)
def test_an_invalid_value_is_refused_with_its_fix(
    field: str, value: object, expected: list[str]
) -> None:
    with pytest.raises(ValidationError) as caught:
        ReminderPolicy.model_validate({field: value})
    errors = caught.value.errors()
    assert len(errors) == 1
    assert errors[0]["loc"][0] == field
    for fragment in expected:
        assert fragment in errors[0]["msg"]


def test_an_unknown_key_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        ReminderPolicy.model_validate({"every_day": 5})
    assert caught.value.errors()[0]["type"] == "extra_forbidden"


def test_the_pending_states_of_every_shipped_workflow_follow_from_their_roles() -> None:
    assert frozenset({"preparing", "review", "signing"}) == PENDING_ROLES
    for name in ("municipality", "regional-council", "wellbeing-county"):
        pending = load_definition(name).states_of(*PENDING_ROLES)
        assert pending == ("draft", "board_review", "council_review", "awaiting_signature"), name


# The calendar


@pytest.mark.parametrize(
    "day",
    [
        pytest.param(date(2026, 12, 24), id="christmas-eve-2026-thu"),
        pytest.param(date(2026, 12, 25), id="christmas-day-2026-fri"),
        pytest.param(date(2027, 1, 1), id="new-years-day-2027-fri"),
        pytest.param(date(2027, 1, 6), id="epiphany-2027-wed"),
        pytest.param(date(2027, 3, 26), id="good-friday-2027"),
        pytest.param(date(2027, 3, 29), id="easter-monday-2027"),
        pytest.param(date(2027, 5, 6), id="ascension-day-2027-thu"),
        pytest.param(date(2027, 6, 25), id="midsummer-eve-2027-fri"),
        pytest.param(date(2027, 6, 26), id="midsummer-day-2027-sat"),
        pytest.param(date(2027, 12, 6), id="independence-day-2027-mon"),
        pytest.param(date(2027, 6, 27), id="a-sunday"),
        pytest.param(date(2027, 7, 1), id="july-1-quiet-thu"),
        pytest.param(date(2027, 7, 30), id="july-30-quiet-fri"),
    ],
)
def test_holidays_weekends_and_july_are_not_working_days(day: date) -> None:
    assert not FI.is_working_day(day)


@pytest.mark.parametrize(
    "day",
    [
        date(2026, 12, 23),  # Wed before Christmas Eve
        date(2026, 12, 28),  # Mon after Christmas
        date(2027, 1, 7),  # Thu after Epiphany
        date(2027, 3, 30),  # Tue after Easter Monday
        date(2027, 6, 24),  # Thu before Midsummer Eve
        date(2027, 6, 30),  # Wed, the last day before the quiet period
        date(2027, 8, 2),  # Mon, the first working day after it
        date(2027, 12, 7),  # Tue after Independence Day
    ],
)
def test_ordinary_weekdays_are_working_days(day: date) -> None:
    assert FI.is_working_day(day)


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2027, 6, 30), date(2027, 6, 30)),  # itself
        (date(2027, 6, 25), date(2027, 6, 28)),  # Midsummer Eve, Midsummer Day, Sunday
        (date(2026, 12, 24), date(2026, 12, 28)),  # Christmas Eve, Christmas, Boxing Day, Sunday
        (date(2027, 1, 6), date(2027, 1, 7)),  # Epiphany
        (date(2027, 3, 26), date(2027, 3, 30)),  # Good Friday to Easter Monday
        (date(2027, 7, 1), date(2027, 8, 2)),  # all of July
    ],
)
def test_next_working_day(day: date, expected: date) -> None:
    assert FI.next_working_day(day) == expected


@pytest.mark.parametrize(
    ("day", "n", "expected"),
    [
        (date(2026, 12, 23), 1, date(2026, 12, 28)),  # over Christmas
        (date(2026, 12, 31), 1, date(2027, 1, 4)),  # New Year's Day, then a weekend
        (date(2027, 1, 5), 1, date(2027, 1, 7)),  # over Epiphany
        (date(2027, 3, 25), 1, date(2027, 3, 30)),  # over Easter
        (date(2027, 12, 3), 1, date(2027, 12, 7)),  # Fri, a weekend, Independence Day
        (date(2027, 6, 21), 6, date(2027, 6, 30)),
        (date(2027, 6, 21), 7, date(2027, 8, 2)),  # July skipped
        (date(2027, 6, 21), 10, date(2027, 8, 5)),
        (date(2027, 6, 26), 1, date(2027, 6, 28)),  # from a non-working day
    ],
)
def test_add_working_days(day: date, n: int, expected: date) -> None:
    assert FI.add_working_days(day, n) == expected


@pytest.mark.parametrize(
    ("day", "n", "expected"),
    [
        (date(2026, 12, 28), 1, date(2026, 12, 23)),  # back over Christmas
        (date(2027, 3, 30), 1, date(2027, 3, 25)),  # back over Easter
        (date(2027, 8, 3), 2, date(2027, 6, 30)),  # back over July
        # Epiphany; Tue 5.1., Mon 4.1.; the weekend, New Year's Day; Thu 31.12.
        (date(2027, 1, 7), 3, date(2026, 12, 31)),
    ],
)
def test_subtract_working_days(day: date, n: int, expected: date) -> None:
    assert FI.subtract_working_days(day, n) == expected


@pytest.mark.parametrize("n", [0, -1])
def test_counting_zero_or_fewer_working_days_is_refused(n: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        FI.add_working_days(date(2027, 6, 21), n)
    with pytest.raises(ValueError, match="at least 1"):
        FI.subtract_working_days(date(2027, 6, 21), n)


def test_without_quiet_periods_july_is_worked() -> None:
    cal = ReminderPolicy(quiet_periods=[]).calendar()
    assert cal.is_working_day(date(2027, 7, 15))
    # 22, 23, 24, 28, 29, 30 June, then Thu 1.7., Fri 2.7., Mon 5.7., Tue 6.7.
    assert cal.add_working_days(date(2027, 6, 21), 10) == date(2027, 7, 6)
    assert not cal.is_working_day(date(2027, 6, 25))  # holidays still count


def test_aland_keeps_its_autonomy_day() -> None:
    aland = ReminderPolicy(holidays="FI-01").calendar()
    assert FI.is_working_day(date(2027, 6, 9))
    assert not aland.is_working_day(date(2027, 6, 9))
    assert FI.add_working_days(date(2027, 6, 8), 1) == date(2027, 6, 9)
    assert aland.add_working_days(date(2027, 6, 8), 1) == date(2027, 6, 10)


def test_a_quiet_period_may_wrap_the_new_year() -> None:
    cal = ReminderPolicy(quiet_periods=[("12-20", "01-06")]).calendar()
    assert cal.is_working_day(date(2027, 12, 17))  # Fri before
    assert not cal.is_working_day(date(2027, 12, 20))  # Mon, its first day
    assert not cal.is_working_day(date(2027, 1, 5))  # Tue, near its end
    assert cal.is_working_day(date(2027, 7, 15))  # July is no longer quiet
    assert cal.add_working_days(date(2026, 12, 18), 1) == date(2027, 1, 7)
    assert cal.subtract_working_days(date(2027, 1, 7), 1) == date(2026, 12, 18)


# Reminders and escalation


def test_reminders_skip_midsummer_and_july() -> None:
    due = [reminder_due(DEFAULT, FI, MIDSUMMER_STEP, n, HELSINKI) for n in (1, 2, 3, 4)]
    # Every 5 working days from Thu 5.8.2027: no holiday in August, so each a Thursday.
    assert due == [local(2027, 8, 5), local(2027, 8, 12), local(2027, 8, 19), local(2027, 8, 26)]
    assert due[0].astimezone(UTC) == datetime(2027, 8, 5, 6, 0, tzinfo=UTC)  # EEST, UTC+3


def test_reminders_skip_easter() -> None:
    # Working days after Thu 18.3.2027: 19, 22, 23, 24, 25 March (Good Friday 26.3., weekend,
    # Easter Monday 29.3.), 30, 31 March, 1, 2, 5 April.
    began = local(2027, 3, 18, 10, 15)
    assert reminder_due(DEFAULT, FI, began, 1, HELSINKI) == local(2027, 4, 5)


def test_the_step_began_on_its_local_date() -> None:
    # 22:30 UTC on Sun 20.6. is 01:30 on Mon 21.6. in Helsinki: counted from the 21st, as above.
    began = datetime(2027, 6, 20, 22, 30, tzinfo=UTC)
    assert reminder_due(DEFAULT, FI, began, 1, HELSINKI) == local(2027, 8, 5)


def test_reminders_go_out_at_send_at() -> None:
    policy = ReminderPolicy(send_at="16:30")
    assert reminder_due(policy, FI, MIDSUMMER_STEP, 1, HELSINKI) == local(2027, 8, 5, 16, 30)


@pytest.mark.parametrize("n", [0, 5])
def test_a_reminder_the_policy_does_not_send_has_no_due_time(n: int) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        reminder_due(DEFAULT, FI, MIDSUMMER_STEP, n, HELSINKI)


def test_escalation_is_one_interval_after_the_last_reminder() -> None:
    # 30 working days: 5 after the 4th reminder on Thu 26.8.2027.
    assert escalation_due(DEFAULT, FI, MIDSUMMER_STEP, HELSINKI) == local(2027, 9, 2)
    # 10 + 2 * 3 = 16: six after Thu 5.8.: 6, 9, 10, 11, 12, 13 August.
    policy = ReminderPolicy(every_days=3, max_reminders=2)
    assert escalation_due(policy, FI, MIDSUMMER_STEP, HELSINKI) == local(2027, 8, 13)


def test_without_reminders_escalation_comes_when_the_first_would_have() -> None:
    policy = ReminderPolicy(max_reminders=0)
    assert escalation_due(policy, FI, MIDSUMMER_STEP, HELSINKI) == local(2027, 8, 5)
    assert due_reminder(policy, FI, MIDSUMMER_STEP, local(2028, 1, 3), HELSINKI) is None


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        pytest.param(local(2027, 6, 1), None, id="before-the-step-began"),
        pytest.param(local(2027, 8, 5, 8, 59), None, id="a-minute-before-the-first"),
        pytest.param(local(2027, 8, 5, 9, 0), 1, id="the-first-on-time"),
        pytest.param(local(2027, 8, 12, 8, 59), 1, id="a-minute-before-the-second"),
        # Down for a week past the 1st, 2nd and 3rd: only the 3rd is sent.
        pytest.param(local(2027, 8, 26, 8, 0), 3, id="catch-up-sends-the-latest"),
        pytest.param(local(2027, 8, 26, 9, 0), 4, id="the-last"),
        pytest.param(local(2027, 12, 1), 4, id="never-past-max-reminders"),
        pytest.param(datetime(2027, 8, 5, 5, 59, tzinfo=UTC), None, id="utc-before"),
        pytest.param(datetime(2027, 8, 5, 6, 0, tzinfo=UTC), 1, id="utc-on-time"),
    ],
)
def test_due_reminder(now: datetime, expected: int | None) -> None:
    assert due_reminder(DEFAULT, FI, MIDSUMMER_STEP, now, HELSINKI) == expected


def test_due_reminder_agrees_with_reminder_due_across_christmas() -> None:
    policy = ReminderPolicy(first_after_days=3, every_days=2, max_reminders=6)
    began = local(2026, 12, 15, 11, 0)
    minute = timedelta(minutes=1)
    for n in range(1, 7):
        due = reminder_due(policy, FI, began, n, HELSINKI)
        assert FI.is_working_day(due.date())
        assert due_reminder(policy, FI, began, due, HELSINKI) == n
        assert due_reminder(policy, FI, began, due - minute, HELSINKI) == (n - 1 or None)
    # Working days after Tue 15.12.2026: 16, 17, 18, 21, 22, 23 Dec, 28, 29, 30, 31 Dec,
    # 4, 5, 7 Jan; reminders on the 3rd, 5th, ..., 13th.
    days = [reminder_due(policy, FI, began, n, HELSINKI).date() for n in range(1, 7)]
    assert days == [
        date(2026, 12, 18),
        date(2026, 12, 22),
        date(2026, 12, 28),
        date(2026, 12, 30),
        date(2027, 1, 4),
        date(2027, 1, 7),
    ]


def test_naive_datetimes_are_refused() -> None:
    naive = datetime(2027, 8, 5, 9, 0)  # noqa: DTZ001 - the point of the test
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        due_reminder(DEFAULT, FI, MIDSUMMER_STEP, naive, HELSINKI)
    with pytest.raises(ValueError, match="step_began must be timezone-aware"):
        reminder_due(DEFAULT, FI, naive, 1, HELSINKI)
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        due_deadline_reminder(DEFAULT, FI, DEADLINE, naive, HELSINKI)


# Deadline reminders


def test_deadline_reminders_count_back_over_christmas() -> None:
    # Back from Thu 31.12.2026: 30, 29, 28 Dec (3); then Sun 27., Boxing Day, Christmas Day,
    # Christmas Eve are skipped: 23, 22, 21, 18, 17, 16, 15 Dec (10).
    ten = deadline_reminder_due(DEFAULT, FI, DEADLINE, 10, HELSINKI)
    assert ten == local(2026, 12, 15)
    assert ten.astimezone(UTC) == datetime(2026, 12, 15, 7, 0, tzinfo=UTC)  # EET, UTC+2
    assert deadline_reminder_due(DEFAULT, FI, DEADLINE, 3, HELSINKI) == local(2026, 12, 28)


def test_deadline_reminders_count_back_over_july() -> None:
    # Back from Fri 6.8.2027: 5, 4, 3, 2 August; July; 30, 29, 28, 24, 23, 22 June.
    assert deadline_reminder_due(DEFAULT, FI, date(2027, 8, 6), 10, HELSINKI) == local(2027, 6, 22)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        pytest.param(local(2026, 12, 15, 8, 59), None, id="before-the-first"),
        pytest.param(local(2026, 12, 15, 9, 0), 10, id="ten-days-before"),
        pytest.param(local(2026, 12, 23, 12, 0), 10, id="still-ten"),
        pytest.param(local(2026, 12, 28, 9, 0), 3, id="three-days-before"),
        pytest.param(local(2026, 12, 31, 23, 59), 3, id="the-deadline-day"),
        pytest.param(local(2027, 1, 1, 0, 0), None, id="the-deadline-has-passed"),
        pytest.param(local(2027, 3, 1), None, id="long-after"),
        # 21:30 UTC is 23:30 in Helsinki, 22:30 UTC is already 00:30 on New Year's Day.
        pytest.param(datetime(2026, 12, 31, 21, 30, tzinfo=UTC), 3, id="utc-deadline-day"),
        pytest.param(datetime(2026, 12, 31, 22, 30, tzinfo=UTC), None, id="utc-after"),
    ],
)
def test_due_deadline_reminder(now: datetime, expected: int | None) -> None:
    assert due_deadline_reminder(DEFAULT, FI, DEADLINE, now, HELSINKI) == expected


def test_due_deadline_reminder_with_three_and_none() -> None:
    three = ReminderPolicy(before_deadline_days=[3, 10, 5])
    # 5 back from 31.12.2026: 30, 29, 28, 23, 22 December.
    assert due_deadline_reminder(three, FI, DEADLINE, local(2026, 12, 22), HELSINKI) == 5
    assert due_deadline_reminder(three, FI, DEADLINE, local(2026, 12, 21), HELSINKI) == 10
    none = ReminderPolicy(before_deadline_days=[])
    assert due_deadline_reminder(none, FI, DEADLINE, local(2026, 12, 30), HELSINKI) is None


def test_quiet_periods_must_leave_enough_working_days() -> None:
    # Only Christmas Day is left outside the quiet period, and it is a public holiday.
    with pytest.raises(ValidationError, match="leave 0 working days in 2027"):
        ReminderPolicy(quiet_periods=[("12-26", "12-24")])
