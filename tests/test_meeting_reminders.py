"""Meeting-aware reminders, end to end: rounds whose boards meet on real-looking schedules across
Christmas and the summer break, a fake clock moved day by day through the weeks with the worker's
tick, and every message counted at a real SMTP server.

Where the body a party's pending step waits on has a calendar, the step gets an agenda reminder
``agenda_notice_days`` working days before each meeting's agenda closes, and a follow-up the
working day after each meeting that passed without the party moving on, instead of the fixed
reminders; the escalation follows the second missed meeting. A party without a calendar keeps the
fixed reminders exactly. Every date below was counted by hand from the Finnish calendar
(24.-26.12.2026 and 1.1. and 6.1.2027 are holidays, July is quiet), and ``ratify calendar``
shows the same agenda deadlines.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from datetime import date, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from engine.agreement import load_agreement
from engine.clock import FakeClock, FixedClock
from engine.core.evidence import Evidence
from engine.errors import AgreementFileError
from engine.persistence import outbox
from engine.persistence.database import connect, transaction
from engine.persistence.tables import PartyRow, RoundRow
from engine.runtime import enqueue_due, preview, record
from engine.runtime.audit import log_entries, verify_database
from engine.runtime.calendars import calendar
from engine.runtime.chasing import _chases, _schedules
from engine.runtime.rounds import launch
from engine.runtime.worker import tick_once
from notifications.mailer import Mailer
from tests.conftest import write_agreement
from tests.smtp import HOST, SmtpServer, unused_port
from tests.test_calendars import ICS

HEL = ZoneInfo("Europe/Helsinki")
FROM = "ratify@example.invalid"
HATTULA = "kalle.salo@hattula.example.invalid"
LOPPI = "kirjaamo@loppi.example.invalid"
FORSSA = "kirjaamo@forssa.example.invalid"
CORA = "cora@example.invalid"  # the coordinator (tests.conftest.write_agreement)


def _party(pid: str, name: str, address: str, **more: Any) -> dict[str, Any]:
    return {"id": pid, "name": name, "contacts": [{"name": "Testi", "email": address}], **more}


def _days(
    db: Engine, clock: FakeClock, port: int, first: date, last: date, act: Any = None
) -> None:
    """Tick at 09:00 on every day from ``first`` to ``last`` (and call ``act(day)`` at 10:00)."""
    mailer = Mailer(HOST, port, timeout=10.0)
    day = first
    while day <= last:
        clock.set(datetime(day.year, day.month, day.day, 9, 0, tzinfo=HEL))
        tick_once(db, clock, mailer, FROM)
        assert _left_due(db, clock) == [], f"left due on {day}"  # due_at was never late
        if act is not None:
            clock.set(datetime(day.year, day.month, day.day, 10, 0, tzinfo=HEL))
            act(day)
        day += timedelta(days=1)


def _left_due(db: Engine, clock: FakeClock) -> list[str]:
    """What a scan of every party of every open round finds due and not queued (calendars read
    as the tick reads them): nothing, after a tick, if ``parties.due_at`` was never late."""
    found = []
    with transaction(db) as session:
        rounds = session.exec(select(RoundRow).where(RoundRow.state == "open")).all()
        calendars = _schedules(session, [r.id for r in rounds])
        for row in rounds:
            parties = list(session.exec(select(PartyRow).where(PartyRow.round_id == row.id)))
            already, sent = outbox.chase_history(session, row.id)
            now = clock.now(ZoneInfo(row.timezone))
            for chase in _chases(row, parties, now, sent, calendars.get(row.id, {})):
                if str(chase.key) not in already:
                    found.append(str(chase.key))
    return found


def _kinds(db: Engine) -> dict[str, str]:
    """The outbox's kind of each message, by its Message-ID."""
    with transaction(db) as session:
        return {r.message_id: r.kind for r in outbox.messages(session, None) if r.message_id}


def _received(db: Engine, smtp: SmtpServer) -> dict[str, list[tuple[date, str, str]]]:
    """What the SMTP server received but the invitations and receipts, by recipient: the day
    (its Date header, in Helsinki), the outbox's kind, the subject."""
    kinds = _kinds(db)
    found: dict[str, list[tuple[date, str, str]]] = defaultdict(list)
    for message in smtp.messages():
        kind = kinds.get(str(message["Message-ID"]), "unknown")
        if kind in ("invitation", "receipt"):
            continue
        day = parsedate_to_datetime(str(message["Date"])).astimezone(HEL).date()
        found[str(message["To"])].append((day, kind, str(message["Subject"])))
    return dict(found)


def _texts(db: Engine, smtp: SmtpServer, kind: str) -> dict[str, str]:
    """The plain text of each message of ``kind``, by recipient."""
    kinds = _kinds(db)
    found = {}
    for message in smtp.messages():
        if kinds.get(str(message["Message-ID"])) == kind:
            body = message.get_body(preferencelist=("plain",))
            assert body is not None
            found[str(message["To"])] = str(body.get_content())
    return found


CHRISTMAS: list[dict[str, Any]] = [
    # Hattula's board meets every other Monday but over Christmas (no meeting on 28.12.).
    _party(
        "hattula",
        "Hattulan kunta",
        HATTULA,
        calendars={
            "Kunnanhallitus": {
                "meetings": [date(2026, 12, 14), date(2027, 1, 11), date(2027, 1, 25)],
                "agenda_days": 7,
            }
        },
    ),
    # Loppi's board: the iCalendar file's recurring meeting, 21.12. removed, 4.1. cancelled.
    _party("loppi", "Lopen kunta", LOPPI, calendars={"Kunnanhallitus": {"ical": "loppi-kh.ics"}}),
    # Forssa gives no calendar: the fixed reminders, as ever.
    _party("forssa", "Forssan kaupunki", FORSSA),
]


def _christmas_round(db: Engine, tmp_path: Path, clock: FakeClock) -> str:
    (tmp_path / "loppi-kh.ics").write_text(ICS, "utf-8")
    path = write_agreement(tmp_path, CHRISTMAS)
    return launch(db, load_agreement(path, launch_at=clock), clock, "Cora").round


def test_agenda_reminders_and_follow_ups_replace_the_fixed_reminders_across_christmas(
    db: Engine, tmp_path: Path, smtp: SmtpServer
) -> None:
    clock = FakeClock(datetime(2026, 12, 1, 10, 0, tzinfo=HEL))  # a Tuesday
    made = _christmas_round(db, tmp_path, clock)

    def act(day: date) -> None:
        if day == date(2026, 12, 3):  # Hattula's item goes to its board: a new step
            record(db, made, "hattula", "submit", Evidence(), clock, "Kalle")

    _days(db, clock, smtp.port, date(2026, 12, 1), date(2027, 2, 12), act)
    got = _received(db, smtp)

    assert got[HATTULA] == [
        # The draft step: the meeting of 14.12. (its agenda closes 3.12.), told the next morning.
        (
            date(2026, 12, 2),
            "agenda",
            "Esityslista sulkeutuu 3.12.2026: Test agreement",
        ),
        # Submitted on 3.12., the closing day: no agenda reminder that could come in time; the
        # meeting of 14.12. passes undecided.
        (date(2026, 12, 15), "followup", "Kokouksen 14.12.2026 käsittely: Test agreement"),
        # 11.1.: its agenda closes 29.12. (7 working days back over Christmas and 1.1., 6.1.);
        # three working days before that, over 24.-27.12., is 22.12.
        (date(2026, 12, 22), "agenda", "Esityslista sulkeutuu 29.12.2026: Test agreement"),
        (date(2027, 1, 11), "agenda", "Esityslista sulkeutuu 14.1.2027: Test agreement"),
        (date(2027, 1, 12), "followup", "Kokouksen 11.1.2027 käsittely: Test agreement"),
        (date(2027, 1, 26), "followup", "Kokouksen 25.1.2027 käsittely: Test agreement"),
        # Its calendar has run out (no meeting known after 25.1.): the fixed reminders again,
        # ten working days after the last follow-up.
        (date(2027, 2, 9), "reminder", "Muistutus (1/4): Test agreement"),
    ]
    assert got[LOPPI] == [
        # Its first meeting it can reach is 18.1. (7.12. closed before the launch, 21.12. was
        # removed, 4.1. cancelled): the agenda closes 7.1.; three working days back is 31.12.
        (date(2026, 12, 31), "agenda", "Esityslista sulkeutuu 7.1.2027: Test agreement"),
        (date(2027, 1, 18), "agenda", "Esityslista sulkeutuu 21.1.2027: Test agreement"),
        (date(2027, 1, 19), "followup", "Kokouksen 18.1.2027 käsittely: Test agreement"),
        # 15.2.: its agenda closes 4.2.; three working days back is 1.2., its meeting day.
        (date(2027, 2, 1), "agenda", "Esityslista sulkeutuu 4.2.2027: Test agreement"),
        (date(2027, 2, 2), "followup", "Kokouksen 1.2.2027 käsittely: Test agreement"),
    ]
    # Forssa: the fixed policy, unchanged (10 working days, then every 5, four, then escalated).
    assert got[FORSSA] == [
        (date(2026, 12, 15), "reminder", "Muistutus (1/4): Test agreement"),
        (date(2026, 12, 22), "reminder", "Muistutus (2/4): Test agreement"),
        (date(2026, 12, 31), "reminder", "Muistutus (3/4): Test agreement"),
        (date(2027, 1, 11), "reminder", "Muistutus (4/4): Test agreement"),
    ]
    # The coordinator hears of each party that stalls: Hattula five working days after the
    # follow-up of its second missed meeting (12.1.), Loppi after its own (2.2.), Forssa five
    # working days after its last reminder.
    assert [(d, k) for d, k, _ in got[CORA]] == [
        (date(2027, 1, 18), "escalation"),  # Forssa
        (date(2027, 1, 19), "escalation"),  # Hattula
        (date(2027, 2, 9), "escalation"),  # Loppi
    ]
    # No fixed reminder for a step while its body's meetings are known.
    with transaction(db) as session:
        kinds = {(r.party_id, r.kind, r.created_at.date()) for r in outbox.messages(session, None)}
    assert not [k for k in kinds if k[:2] == ("loppi", "reminder")]
    assert [k[2] for k in kinds if k[:2] == ("hattula", "reminder")] == [date(2027, 2, 9)]

    # The agenda deadlines the reminders name are those ratify calendar shows.
    clock.set(datetime(2027, 1, 12, 12, 0, tzinfo=HEL))
    (hattula, loppi) = calendar(db, made, clock)
    assert hattula.next[0].day == date(2027, 1, 25)
    assert hattula.next[0].agenda_closes == date(2027, 1, 14)
    assert [(m.day, m.agenda_closes) for m in loppi.next[:2]] == [
        (date(2027, 1, 18), date(2027, 1, 7)),
        (date(2027, 2, 1), date(2027, 1, 21)),
    ]
    verify_database(db, made)
    remind = [
        e for e in log_entries(db, made) if e["event"] == "remind" and e["party"] == "hattula"
    ]
    assert [e["evidence"].get("meeting") for e in remind][:2] == ["2026-12-14", "2026-12-14"]


def test_the_agenda_reminder_reads_as_the_municipality_writes_it(
    db: Engine, tmp_path: Path, smtp: SmtpServer
) -> None:
    clock = FakeClock(datetime(2026, 12, 1, 10, 0, tzinfo=HEL))
    parties = [
        {
            **CHRISTMAS[0],
            "contacts": [
                {"name": "Kalle", "email": HATTULA},
                {"name": "Karin", "email": "karin@hattula.example.invalid", "language": "sv"},
                {"name": "Kim", "email": "kim@hattula.example.invalid", "language": "en"},
            ],
        }
    ]
    made = launch(db, load_agreement(write_agreement(tmp_path, parties)), clock, "Cora").round
    clock.set(datetime(2026, 12, 2, 9, 0, tzinfo=HEL))
    tick_once(db, clock, Mailer(HOST, smtp.port, timeout=10.0), FROM)
    texts = _texts(db, smtp, "agenda")
    assert (
        "Sopimus on saatava Kunnanhallituksen 14.12.2026 kokouksen esityslistalle; "
        "esityslista sulkeutuu 3.12.2026." in texts[HATTULA]
    )
    assert (
        "Avtalet ska föras upp på föredragningslistan för sammanträdet 14.12.2026 "
        "(Kunnanhallitus); föredragningslistan stängs 3.12.2026."
    ) in texts["karin@hattula.example.invalid"]
    assert (
        "The agreement must be on the agenda of the meeting of Kunnanhallitus on 14.12.2026; "
        "the agenda closes on 3.12.2026."
    ) in texts["kim@hattula.example.invalid"]
    assert made


def test_nothing_goes_out_in_july_and_the_board_is_reached_after_the_summer_break(
    db: Engine, tmp_path: Path, smtp: SmtpServer
) -> None:
    # Janakkala's board meets 14.6. and then, after the summer break, 16.8. and 30.8.2027.
    parties = [
        _party(
            "janakkala",
            "Janakkalan kunta",
            "kirjaamo@janakkala.example.invalid",
            calendars={
                "Kunnanhallitus": {
                    "meetings": [date(2027, 6, 14), date(2027, 8, 16), date(2027, 8, 30)]
                }
            },
        )
    ]
    clock = FakeClock(datetime(2027, 6, 1, 10, 0, tzinfo=HEL))
    made = launch(db, load_agreement(write_agreement(tmp_path, parties)), clock, "Cora").round
    _days(db, clock, smtp.port, date(2027, 6, 1), date(2027, 8, 31))
    got = _received(db, smtp)
    assert got["kirjaamo@janakkala.example.invalid"] == [
        (date(2027, 6, 2), "agenda", "Esityslista sulkeutuu 3.6.2027: Test agreement"),
        (date(2027, 6, 15), "followup", "Kokouksen 14.6.2027 käsittely: Test agreement"),
        # 16.8.: its agenda closes 5.8. (the body works in July); three sending days back,
        # July being quiet, is 2.8.
        (date(2027, 8, 2), "agenda", "Esityslista sulkeutuu 5.8.2027: Test agreement"),
        # 30.8.: its agenda closes 19.8.; three working days back is 16.8., a meeting day.
        (date(2027, 8, 16), "agenda", "Esityslista sulkeutuu 19.8.2027: Test agreement"),
        (date(2027, 8, 17), "followup", "Kokouksen 16.8.2027 käsittely: Test agreement"),
        (date(2027, 8, 31), "followup", "Kokouksen 30.8.2027 käsittely: Test agreement"),
    ]
    assert not [d for sent in got.values() for d, _, _ in sent if d.month == 7]
    (escalation,) = got[CORA]
    assert escalation[0] == date(2027, 8, 24)  # five working days after the second follow-up
    assert made


def test_deadline_reminders_have_their_own_kind_and_count_after_the_step_reminders(
    db: Engine, tmp_path: Path, smtp: SmtpServer
) -> None:
    # Fixed reminders 1/2 and 2/2, then the deadline's own 1/2 and 2/2 (not "1/2" after "2/2"
    # of one count): deadline Fri 29.1.2027, 10 and 3 working days before: 15.1. and 26.1.
    path = write_agreement(
        tmp_path,
        [_party("forssa", "Forssan kaupunki", FORSSA)],
        agreement={"deadline": date(2027, 1, 29)},
        extra="[reminders]\nmax_reminders = 2\n",
    )
    clock = FakeClock(datetime(2026, 12, 1, 10, 0, tzinfo=HEL))
    made = launch(db, load_agreement(path), clock, "Cora").round
    _days(db, clock, smtp.port, date(2026, 12, 1), date(2027, 1, 29))
    got = _received(db, smtp)[FORSSA]
    assert [(d, k, s) for d, k, s in got] == [
        (date(2026, 12, 15), "reminder", "Muistutus (1/2): Test agreement"),
        (date(2026, 12, 22), "reminder", "Muistutus (2/2): Test agreement"),
        (date(2027, 1, 15), "deadline", "Määräaikamuistutus (1/2): Test agreement"),
        (date(2027, 1, 26), "deadline", "Määräaikamuistutus (2/2): Test agreement"),
    ]
    (text,) = _texts(db, smtp, "deadline").values()  # the last one
    assert "määräaika on 29.1.2027" in text
    assert made


def test_two_ticks_at_once_queue_an_agenda_reminder_once(
    database_url: str, db: Engine, tmp_path: Path
) -> None:
    clock = FakeClock(datetime(2026, 12, 1, 10, 0, tzinfo=HEL))
    made = _christmas_round(db, tmp_path, clock)
    moment = FixedClock(datetime(2026, 12, 2, 9, 0, tzinfo=HEL))
    barrier = threading.Barrier(2, timeout=60)
    queued: list[list[str]] = []
    errors: list[BaseException] = []

    def work() -> None:
        engine = connect(database_url)
        try:
            barrier.wait()
            queued.append(enqueue_due(engine, moment))
            queued.append(enqueue_due(engine, moment))  # and once more: nothing new
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()
        finally:
            engine.dispose()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    agenda = [k for keys in queued for k in keys if k.startswith("agenda:")]
    assert len(agenda) == 1  # Hattula's, queued by one of the two
    assert agenda[0].startswith(f"agenda:{made}:hattula:draft:")
    assert agenda[0].endswith(":2026-12-14")


def test_the_preview_shows_the_agenda_reminder_with_its_meeting(db: Engine, tmp_path: Path) -> None:
    clock = FakeClock(datetime(2026, 12, 1, 10, 0, tzinfo=HEL))
    made = _christmas_round(db, tmp_path, clock)
    shown = [
        p
        for p in preview(db, FixedClock(datetime(2026, 12, 2, 9, 0, tzinfo=HEL)), made)
        if p.kind == "agenda"
    ]
    assert [(p.party, p.body, p.meeting, p.agenda_closes) for p in shown] == [
        ("hattula", "Kunnanhallitus", date(2026, 12, 14), date(2026, 12, 3))
    ]


@pytest.mark.parametrize("value", ["-1", "61", "true", '"3"'])
def test_agenda_notice_days_is_checked(tmp_path: Path, value: str) -> None:
    path = write_agreement(
        tmp_path,
        [_party("forssa", "Forssan kaupunki", FORSSA)],
        extra=f"[reminders]\nagenda_notice_days = {value}\n",
    )
    with pytest.raises(AgreementFileError) as refused:
        load_agreement(path)
    assert any(k.startswith("reminders.agenda_notice_days") for k in refused.value.keys)


def test_an_agenda_reminder_held_up_past_the_agenda_deadline_is_skipped(
    db: Engine, tmp_path: Path, smtp: SmtpServer
) -> None:
    clock = FakeClock(datetime(2026, 12, 1, 10, 0, tzinfo=HEL))
    _christmas_round(db, tmp_path, clock)
    nobody = Mailer(HOST, unused_port(), timeout=2.0)  # the mail server is down on 2.12.
    clock.set(datetime(2026, 12, 2, 9, 0, tzinfo=HEL))
    report = tick_once(db, clock, nobody, FROM)
    assert any(k.startswith("agenda:") for k in report.queued)
    assert not [s for s in report.sent if s.kind == "agenda" and s.outcome == "sent"]
    clock.set(datetime(2026, 12, 4, 9, 0, tzinfo=HEL))  # back, the day after the agenda closed
    report = tick_once(db, clock, Mailer(HOST, smtp.port, timeout=10.0), FROM)
    (skipped,) = [s for s in report.sent if s.kind == "agenda"]
    assert skipped.outcome == "skipped"
    assert skipped.error == "the agenda closed on 2026-12-03"
    assert [k for _, k, _ in _received(db, smtp).get(HATTULA, [])] == []  # nothing reached it
