"""Legal force across Finnish holidays, and decision references as cited in minutes.

Expected dates are worked out by hand from the rule in engine.core.calendar.legal_force_date:
the period ends on decision + notice_days (7) + appeal_days (14 for a board, 30 for a council),
moved to the next working day; the decision is final the day after.
"""

from __future__ import annotations

from datetime import date

import pytest

from engine.core.calendar import is_working_day, legal_force_date, next_working_day
from engine.core.evidence import DecisionRef, parse_decision_ref
from engine.errors import InvalidInput

BOARD = 14
COUNCIL = 30


@pytest.mark.parametrize(
    ("decided", "appeal_days", "final"),
    [
        # Board, 21 days: ends Thu 24.12.2026 (Christmas Eve); 25.12. Christmas, 26.12. Boxing Day
        # (Sat), 27.12. Sun: the period ends Mon 28.12.2026, final Tue 29.12.2026.
        pytest.param(date(2026, 12, 3), BOARD, date(2026, 12, 29), id="board-ends-christmas-eve"),
        pytest.param(date(2026, 12, 4), BOARD, date(2026, 12, 29), id="board-ends-christmas-day"),
        pytest.param(date(2026, 12, 5), BOARD, date(2026, 12, 29), id="board-ends-boxing-day"),
        # Board, 21 days: ends Mon 7.12.2026, a plain working day (Independence Day was Sun 6.12.).
        pytest.param(date(2026, 11, 16), BOARD, date(2026, 12, 8), id="board-plain-monday"),
        # Council, 37 days: Thu 10.9.2026 + 37 = Sat 17.10.2026 -> Mon 19.10.2026, final Tue 20.10.
        pytest.param(date(2026, 9, 10), COUNCIL, date(2026, 10, 20), id="council-ends-saturday"),
        # Council, 37 days: Mon 1.2.2027 + 37 = Wed 10.3.2027, a working day; final Thu 11.3.2027.
        pytest.param(date(2027, 2, 1), COUNCIL, date(2027, 3, 11), id="council-plain-wednesday"),
        # Council, 37 days: Mon 30.11.2026 + 37 = Wed 6.1.2027 (Epiphany) -> Thu 7.1.2027,
        # final Fri 8.1.2027.
        pytest.param(date(2026, 11, 30), COUNCIL, date(2027, 1, 8), id="council-ends-epiphany"),
        # Council, 37 days: Wed 25.11.2026 + 37 = Fri 1.1.2027 (New Year's Day) -> Mon 4.1.2027,
        # final Tue 5.1.2027.
        pytest.param(date(2026, 11, 25), COUNCIL, date(2027, 1, 5), id="council-ends-new-year"),
        # Board, 21 days: Fri 4.6.2027 + 21 = Fri 25.6.2027 (Midsummer Eve); Sat 26.6. is
        # Midsummer Day, then Sun 27.6.: the period ends Mon 28.6.2027, final Tue 29.6.2027.
        pytest.param(date(2027, 6, 4), BOARD, date(2027, 6, 29), id="board-ends-midsummer-eve"),
        # Board, 21 days: Fri 5.3.2027 + 21 = Fri 26.3.2027 (Good Friday); Sat, Easter Sunday 28.3.,
        # Easter Monday 29.3.: the period ends Tue 30.3.2027, final Wed 31.3.2027.
        pytest.param(date(2027, 3, 5), BOARD, date(2027, 3, 31), id="board-ends-good-friday"),
        # Board, 21 days: Mon 8.3.2027 + 21 = Mon 29.3.2027 (Easter Monday) -> Tue 30.3.2027,
        # final Wed 31.3.2027.
        pytest.param(date(2027, 3, 8), BOARD, date(2027, 3, 31), id="board-ends-easter-monday"),
        # Board, 21 days: Thu 15.4.2027 + 21 = Thu 6.5.2027 (Ascension Day) -> Fri 7.5.2027,
        # final Sat 8.5.2027.
        pytest.param(date(2027, 4, 15), BOARD, date(2027, 5, 8), id="board-ends-ascension-day"),
        # Council, 37 days: Thu 25.3.2027 + 37 = Sat 1.5.2027 (May Day, a Saturday)
        # -> Mon 3.5.2027, final Tue 4.5.2027.
        pytest.param(date(2027, 3, 25), COUNCIL, date(2027, 5, 4), id="council-ends-may-day"),
        # Board, 21 days: Mon 15.11.2027 + 21 = Mon 6.12.2027 (Independence Day) -> Tue 7.12.,
        # final Wed 8.12.2027.
        pytest.param(
            date(2027, 11, 15), BOARD, date(2027, 12, 8), id="board-ends-independence-day"
        ),
    ],
)
def test_legal_force_date(decided: date, appeal_days: int, final: date) -> None:
    assert legal_force_date(decided, appeal_days) == final


def test_legal_force_date_uses_the_notice_days_given() -> None:
    # No notice: Thu 3.12.2026 + 14 = Thu 17.12.2026, a working day; final Fri 18.12.2026.
    assert legal_force_date(date(2026, 12, 3), BOARD, notice_days=0) == date(2026, 12, 18)
    # Ten days' notice: Thu 3.12.2026 + 24 = Sun 27.12.2026 -> Mon 28.12.2026; final Tue 29.12.
    assert legal_force_date(date(2026, 12, 3), BOARD, notice_days=10) == date(2026, 12, 29)
    # The default notice is 7 days.
    assert legal_force_date(date(2026, 11, 16), BOARD) == legal_force_date(
        date(2026, 11, 16), BOARD, notice_days=7
    )


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        pytest.param(date(2026, 12, 23), date(2026, 12, 23), id="working-day-is-itself"),
        pytest.param(date(2026, 12, 24), date(2026, 12, 28), id="christmas-eve"),
        pytest.param(date(2026, 12, 25), date(2026, 12, 28), id="christmas-day"),
        pytest.param(date(2026, 12, 26), date(2026, 12, 28), id="boxing-day"),
        pytest.param(date(2026, 10, 17), date(2026, 10, 19), id="saturday"),
        pytest.param(date(2026, 10, 18), date(2026, 10, 19), id="sunday"),
        pytest.param(date(2027, 1, 1), date(2027, 1, 4), id="new-year-friday"),
        pytest.param(date(2026, 12, 31), date(2026, 12, 31), id="new-years-eve-is-working"),
        pytest.param(date(2027, 3, 26), date(2027, 3, 30), id="good-friday"),
        pytest.param(date(2027, 3, 29), date(2027, 3, 30), id="easter-monday"),
        pytest.param(date(2027, 6, 25), date(2027, 6, 28), id="midsummer-eve"),
        pytest.param(date(2027, 6, 26), date(2027, 6, 28), id="midsummer-day"),
        pytest.param(date(2027, 5, 6), date(2027, 5, 7), id="ascension-day"),
        pytest.param(date(2027, 12, 6), date(2027, 12, 7), id="independence-day"),
        pytest.param(date(2027, 12, 24), date(2027, 12, 27), id="christmas-2027"),
    ],
)
def test_next_working_day(day: date, expected: date) -> None:
    assert next_working_day(day) == expected


def test_is_working_day() -> None:
    assert is_working_day(date(2026, 12, 28))  # Monday
    assert not is_working_day(date(2026, 12, 24))  # Christmas Eve, a Thursday
    assert not is_working_day(date(2027, 6, 25))  # Midsummer Eve, a Friday
    assert not is_working_day(date(2026, 10, 17))  # Saturday
    assert is_working_day(date(2027, 3, 25))  # Maundy Thursday is a working day


# --- decision references ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "body", "decided", "section"),
    [
        pytest.param(
            "Kunnanhallitus 04.12.2026 § 198",
            "Kunnanhallitus",
            date(2026, 12, 4),
            198,
            id="board",
        ),
        pytest.param(
            "Kuusamo kaupunginhallitus 29.1.2024 § 23",
            "Kuusamo kaupunginhallitus",
            date(2024, 1, 29),
            23,
            id="organisation-leads-unpadded-date",
        ),
        pytest.param(
            "Kaupunginvaltuusto 14.12.2026 §70",
            "Kaupunginvaltuusto",
            date(2026, 12, 14),
            70,
            id="no-space-after-section-sign",
        ),
        pytest.param(
            "  Aluehallitus 1.1.2027 § 1  ",
            "Aluehallitus",
            date(2027, 1, 1),
            1,
            id="surrounding-spaces",
        ),
    ],
)
def test_parse_decision_ref(text: str, body: str, decided: date, section: int) -> None:
    ref = parse_decision_ref(text)
    assert ref == DecisionRef(body, decided, section)


def test_decision_ref_prints_as_cited() -> None:
    assert str(parse_decision_ref("Kunnanhallitus 4.12.2026 § 198")) == (
        "Kunnanhallitus 04.12.2026 § 198"
    )


def test_decision_ref_names_its_body_case_insensitively() -> None:
    ref = parse_decision_ref("Kuusamo kaupunginhallitus 29.1.2024 § 23")
    assert ref.names("kaupunginhallitus")
    assert ref.names("Kaupunginhallitus")
    assert ref.names("KUUSAMO KAUPUNGINHALLITUS")
    assert not ref.names("Kaupunginvaltuusto")
    assert not ref.names("hallitus")
    plain = parse_decision_ref("Kunnanhallitus 04.12.2026 § 198")
    assert plain.names("kunnanhallitus")
    assert not plain.names("Kunnanvaltuusto")


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("Kunnanhallitus 04.12.2026 198", id="no-section-sign"),
        pytest.param("Kunnanhallitus 04.12.2026 §", id="no-section-number"),
        pytest.param("Kunnanhallitus 31.02.2026 § 5", id="no-such-date"),
        pytest.param("Kunnanhallitus 04.13.2026 § 5", id="month-13"),
        pytest.param("Kunnanhallitus 04.12.2026 § 0", id="section-zero"),
        pytest.param("Kunnanhallitus 2026-12-04 § 5", id="iso-date"),
        pytest.param("04.12.2026 § 5", id="no-body"),
        pytest.param("garbage", id="garbage"),
        pytest.param("", id="empty"),
    ],
)
def test_invalid_decision_ref_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_decision_ref(text)
    assert repr(text) in str(caught.value)
    assert caught.value.exit_code == 2
