"""Bodies' meeting calendars in the agreement file: dates listed, or an iCalendar file beside it
with a recurring meeting, an occurrence removed and one cancelled; the day each agenda closes
on working days (Christmas and the summer break included); what a bad calendar makes of the
file (every problem named by its key, nothing launched); `ratify calendar`, on both backends."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from engine.agreement.calendars import ical_meetings
from engine.clock import FakeClock
from engine.errors import AgreementFileError
from engine.runtime import launch, load_agreement
from engine.runtime.calendars import calendar
from tests.conftest import CLI, write_agreement

# Hattula's board meets every other Monday from 7.12.2026; the meeting of 21.12 is moved away
# (EXDATE) and that of 4.1.2027 is cancelled (a changed occurrence with STATUS:CANCELLED).
ICS = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Hattula//Kokoukset//FI
BEGIN:VEVENT
UID:kh-2026@hattula.example.invalid
DTSTAMP:20261101T080000Z
DTSTART;TZID=Europe/Helsinki:20261207T170000
DURATION:PT3H
RRULE:FREQ=WEEKLY;INTERVAL=2;COUNT=8
EXDATE;TZID=Europe/Helsinki:20261221T170000
SUMMARY:Kunnanhallitus
END:VEVENT
BEGIN:VEVENT
UID:kh-2026@hattula.example.invalid
DTSTAMP:20261101T080000Z
RECURRENCE-ID;TZID=Europe/Helsinki:20270104T170000
DTSTART;TZID=Europe/Helsinki:20270104T170000
DURATION:PT3H
STATUS:CANCELLED
SUMMARY:Kunnanhallitus (peruttu)
END:VEVENT
END:VCALENDAR
"""

PARTIES: list[dict[str, Any]] = [
    {
        "id": "hattula",
        "name": "Hattulan kunta",
        "calendars": {"Kunnanhallitus": {"ical": "hattula-kh.ics", "agenda_days": 7}},
    },
    {
        "id": "loppi",
        "name": "Lopen kunta",
        "calendars": {
            "Kunnanhallitus": {
                "meetings": [date(2026, 11, 30), date(2026, 12, 28), date(2027, 8, 2)]
            }
        },
    },
    {"id": "forssa", "name": "Forssan kaupunki"},
]


def _file(tmp_path: Path, parties: list[dict[str, Any]] = PARTIES, ics: str = ICS) -> Path:
    (tmp_path / "hattula-kh.ics").write_text(ics, "utf-8")
    return write_agreement(tmp_path, parties)


def test_an_icalendar_file_gives_its_meetings_without_the_removed_and_the_cancelled() -> None:
    found = ical_meetings(ICS, date(2026, 12, 1))
    assert found == (
        date(2026, 12, 7),
        date(2027, 1, 18),
        date(2027, 2, 1),
        date(2027, 2, 15),
        date(2027, 3, 1),
        date(2027, 3, 15),
    )
    assert ical_meetings(ICS, date(2027, 2, 2))[0] == date(2027, 2, 15)  # from the launch on


def test_the_calendar_shows_each_bodys_next_meetings_and_agenda_deadlines(
    db: Engine, tmp_path: Path
) -> None:
    clock = FakeClock(datetime(2026, 12, 1, 9, 0))  # noqa: DTZ001  (local to the round)
    made = launch(db, load_agreement(_file(tmp_path), launch_at=clock), clock, "Cora").round
    found = calendar(db, made, clock)
    assert [(b.party, b.body, b.source) for b in found] == [
        ("hattula", "Kunnanhallitus", "hattula-kh.ics"),
        ("loppi", "Kunnanhallitus", "file"),
    ]
    hattula, loppi = found
    assert [(m.day, m.agenda_closes) for m in hattula.next] == [
        # seven working days before each: weekends and public holidays not counted
        (date(2026, 12, 7), date(2026, 11, 26)),
        (date(2027, 1, 18), date(2027, 1, 7)),
        (date(2027, 2, 1), date(2027, 1, 21)),
    ]
    assert [m.day for m in loppi.next] == [date(2026, 12, 28), date(2027, 8, 2)]  # 30.11 passed
    assert loppi.next[0].agenda_closes == date(2026, 12, 15)  # 24 and 25.12 are no working days
    clock.set(datetime(2027, 8, 3, 9, 0))  # noqa: DTZ001
    later = calendar(db, made, clock, "loppi")
    assert len(later) == 1
    assert later[0].next == ()  # the calendar has run out: said, not guessed


def test_a_bad_calendar_is_named_by_its_key_and_nothing_is_launched(
    tmp_path: Path, db: Engine
) -> None:
    broken: list[dict[str, Any]] = [
        {
            "id": "a",
            "name": "A",
            "calendars": {"Kunnanvaltuusto": {"meetings": [date(2027, 1, 5)]}},
        },
        {"id": "b", "name": "B", "calendars": {"Kunnanhallitus": {}}},
        {"id": "c", "name": "C", "calendars": {"Kunnanhallitus": {"ical": "../outside.ics"}}},
        {"id": "d", "name": "D", "calendars": {"Kunnanhallitus": {"ical": "missing.ics"}}},
        {"id": "e", "name": "E", "calendars": {"Kunnanhallitus": {"ical": "hattula-kh.ics"}}},
        {
            "id": "f",
            "name": "F",
            "calendars": {"Kunnanhallitus": {"agenda_days": -1, "meetings": []}},
        },
    ]
    (tmp_path.parent / "outside.ics").write_text(ICS, "utf-8")
    path = _file(tmp_path, broken, ics="this is no calendar")
    with pytest.raises(AgreementFileError) as refused:
        load_agreement(path)
    keys = refused.value.keys
    text = "\n".join(refused.value.problems)
    assert "parties[0] (id 'a').calendars.Kunnanvaltuusto" in keys  # not one of its bodies
    assert "parties[1] (id 'b').calendars.Kunnanhallitus" in keys
    assert "parties[2] (id 'c').calendars.Kunnanhallitus.ical" in keys
    assert "outside the agreement file's folder" in text
    assert "parties[3] (id 'd').calendars.Kunnanhallitus.ical" in keys
    assert "parties[4] (id 'e').calendars.Kunnanhallitus.ical" in keys
    assert "is not an iCalendar file" in text
    assert any(k.startswith("parties[5] (id 'f').calendars") for k in keys)
    assert "not one of the party's bodies (Kunnanhallitus)" in text


def test_the_command_line_shows_the_calendar(cli: CLI, tmp_path: Path) -> None:
    path = _file(tmp_path)
    assert cli("launch", str(path), "--at", "2026-12-01 09:00").exit_code == 0
    shown = cli("calendar", "test-agreement/1", "--at", "2026-12-01 10:00")
    assert shown.exit_code == 0, shown.stderr
    assert "Hattulan kunta: Kunnanhallitus (hattula-kh.ics)" in shown.stdout
    assert "meets 07.12.2026; its agenda closes 26.11.2026" in shown.stdout
    data = cli("calendar", "test-agreement/1", "hattula", "--json", "--at", "2026-12-01 10:00")
    assert data.json()[0]["next"][0] == {"day": "2026-12-07", "agenda_closes": "2026-11-26"}
    unknown = cli("calendar", "test-agreement/1", "atlantis")
    assert unknown.exit_code == 2
    assert "has no party 'atlantis'" in unknown.stderr
