"""Reminders, escalations and notices end to end: the runtime API, a real SMTP server on a free
loopback port, and a fake clock moved forward by days and weeks (never a sleep).

Every due date below was counted by hand from the Finnish calendar (and checked against
notifications.policy.WorkCalendar): 1.12.2026 is a Tuesday, 6.12.2026 (Independence Day) a
Sunday, 24.-26.12.2026 Thursday to Saturday, Midsummer Eve 25.6.2027 a Friday, 1.8.2027 a Sunday.
"""

from __future__ import annotations

import email.utils
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine

from engine.agreement import load_agreement
from engine.clock import FakeClock, FixedClock
from engine.core.evidence import Evidence
from engine.persistence import outbox
from engine.persistence.database import transaction
from engine.persistence.tables import OutboxRow
from engine.runtime import jsonable
from engine.runtime.audit import log_entries, verify_database
from engine.runtime.chasing import preview
from engine.runtime.events import record
from engine.runtime.rounds import launch
from engine.runtime.worker import TickReport, tick_once
from notifications.mailer import Mailer
from tests.conftest import CLI
from tests.smtp import SmtpServer, unused_port

FROM = "ratify@example.invalid"
HELSINKI = ZoneInfo("Europe/Helsinki")
CORA = "cora@example.invalid"
ALPHA = "kim@alpha.example.invalid"
BETA = "bea@beta.example.invalid"
TITLE = "Test agreement"

Agreements = Callable[..., Path]


# --- helpers -------------------------------------------------------------------------------------


def at(year: int, month: int, day: int, hour: int = 9, minute: int = 0) -> datetime:
    """A wall-clock time local to the round (Europe/Helsinki), as the fake clock takes it."""
    return datetime(year, month, day, hour, minute)  # noqa: DTZ001


def party(pid: str, address: str, **more: Any) -> dict[str, Any]:
    return {
        "id": pid,
        "name": pid.capitalize(),
        "contacts": [{"name": f"{pid} contact", "email": address}],
        **more,
    }


def policy(**values: Any) -> str:
    lines = ["[reminders]"]
    for key, value in values.items():
        lines.append(f"{key} = {value!r}" if not isinstance(value, str) else f'{key} = "{value}"')
    return "\n".join(lines) + "\n"


def start(db: Engine, clock: FakeClock, path: Path) -> str:
    return launch(db, load_agreement(path), clock, "tester").round


def tick(db: Engine, clock: FakeClock | FixedClock, port: int) -> TickReport:
    return tick_once(db, clock, Mailer("127.0.0.1", port, timeout=5.0), FROM)


def rows(db: Engine, state: str | None = None) -> list[OutboxRow]:
    with transaction(db) as session:
        return list(outbox.messages(session, state))


def of_kind(db: Engine, kind: str) -> list[OutboxRow]:
    return [r for r in rows(db) if r.kind == kind]


def text_of(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    assert part is not None, "no text/plain part"
    return str(part.get_content())


def sink_kinds(db: Engine, server: SmtpServer) -> Counter[str]:
    """What the sink received, counted by the kind of the outbox row with that Message-ID."""
    kinds = {r.message_id: r.kind for r in rows(db)}
    return Counter(kinds.get(r.message_id or "", "unknown") for r in server.received)


def received_for(db: Engine, server: SmtpServer, kind: str) -> list[EmailMessage]:
    ids = {r.message_id for r in rows(db) if r.kind == kind}
    return [m for m in server.messages() if str(m["Message-ID"]) in ids]


def daily(
    clock: FakeClock, db: Engine, port: int, first: date, last: date, kind: str = "reminder"
) -> dict[date, int]:
    """Tick at 09:00 on every calendar day from ``first`` to ``last``; reminders (of ``kind``)
    sent per day."""
    sent: dict[date, int] = {}
    day = first
    while day <= last:
        clock.set(at(day.year, day.month, day.day))
        report = tick(db, clock, port)
        count = sum(s.outcome == "sent" and s.kind == kind for s in report.sent)
        if count:
            sent[day] = count
        day += timedelta(days=1)
    return sent


def snapshot(db: Engine) -> list[tuple[Any, ...]]:
    return [(r.id, r.key, r.state, r.attempts, r.next_attempt_at, r.last_error) for r in rows(db)]


def sign_off(db: Engine, clock: FakeClock, round_id: str, pid: str, day: date) -> None:
    """Take a one-board party without legal-force wait from draft to signed on ``day``."""
    clock.set(at(day.year, day.month, day.day, 10))
    record(db, round_id, pid, "submit", Evidence(), clock, "tester")
    clock.set(at(day.year, day.month, day.day, 18))
    ref = f"Kunnanhallitus {day:%d.%m.%Y} § 5"
    record(db, round_id, pid, "approve", Evidence(ref=ref), clock, "tester")
    clock.set(at(day.year, day.month, day.day, 19))
    record(db, round_id, pid, "sign", Evidence(signatory="Sam S", title="Mayor"), clock, "tester")


# --- invitations ---------------------------------------------------------------------------------


def test_invitations_at_launch_one_per_contact_in_its_language(
    db: Engine, clock: FakeClock, smtp: SmtpServer, agreement_file: Agreements
) -> None:
    path = agreement_file(
        [
            {
                "id": "alpha",
                "name": "Alpha",
                "contacts": [
                    {"name": "Aino", "email": "aino@alpha.example.invalid"},
                    {"name": "Anna", "email": "anna@alpha.example.invalid", "language": "sv"},
                    {"name": "Aaro", "email": "aaro@alpha.example.invalid", "language": "fi"},
                ],
            },
            {
                "id": "beta",
                "name": "Beta",
                "contacts": [{"name": "Bea", "email": BETA, "language": "en"}],
            },
        ],
        agreement={"deadline": date(2027, 3, 31)},
    )
    agreement = load_agreement(path)
    start(db, clock, path)
    assert smtp.received == [], "nothing is sent before the first tick"

    tick(db, clock, smtp.port)

    # One message per contact: each carries its contact's own link.
    got = {tuple(sorted(r.rcpt_tos)): r for r in smtp.received}
    assert sorted(got) == [
        ("aaro@alpha.example.invalid",),
        ("aino@alpha.example.invalid",),
        ("anna@alpha.example.invalid",),
        (BETA,),
    ]
    messages = smtp.messages()
    assert len(messages) == 4
    languages = sorted(str(m["Content-Language"]) for m in messages)
    assert languages == ["en", "fi", "fi", "sv"]
    ids = {r.message_id for r in of_kind(db, "invitation")}
    for msg in messages:
        body = text_of(msg)
        assert TITLE in str(msg["Subject"])
        assert TITLE in body
        assert agreement.document_sha256 in body
        assert str(msg["Message-ID"]) in ids
        assert str(msg["Auto-Submitted"]) == "auto-generated"
        assert str(msg["Reply-To"]) == load_agreement(path).coordinator.email
        sent_at = email.utils.parsedate_to_datetime(str(msg["Date"]))
        assert sent_at == datetime(2026, 12, 1, 9, 0, tzinfo=HELSINKI)
        attachments = {p.get_filename(): p for p in msg.iter_attachments()}
        assert list(attachments) == ["deadline.ics", agreement.document_path.name]
        text = attachments[agreement.document_path.name].get_content()
        assert (text.decode() if isinstance(text, bytes) else text) == agreement.document
        ics = attachments["deadline.ics"].get_content()
        ics_text = ics.decode() if isinstance(ics, bytes) else str(ics)
        assert "20270331" in ics_text
    assert {r.state for r in rows(db)} == {"sent"}

    tick(db, clock, smtp.port)
    assert len(smtp.received) == 4, "a second tick sends no invitation again"


def test_invitation_without_deadline_has_no_calendar(
    db: Engine, clock: FakeClock, smtp: SmtpServer, agreement_file: Agreements
) -> None:
    start(db, clock, agreement_file([party("alpha", ALPHA)]))
    tick(db, clock, smtp.port)
    (msg,) = smtp.messages()
    # The text it asks to approve, and no calendar.
    types = [p.get_content_type() for p in msg.iter_attachments()]
    assert "text/calendar" not in types
    assert len(types) == 1
    assert str(msg["Subject"]) == f"Hyväksymispyyntö: {TITLE}"


# --- the first reminder, on the right working day and hour ---------------------------------------


def test_first_reminder_on_the_tenth_working_day_at_nine(
    db: Engine, clock: FakeClock, smtp: SmtpServer, agreement_file: Agreements
) -> None:
    # Launched Tue 1.12.2026: working days 2,3,4 | 7,8,9,10,11 | 14, 15 -> the 10th is 15.12.
    # (6.12., Independence Day, is a Sunday in 2026 and changes nothing.)
    start(db, clock, agreement_file([party("alpha", ALPHA)]))
    tick(db, clock, smtp.port)
    assert sink_kinds(db, smtp) == {"invitation": 1}

    early = daily(clock, db, smtp.port, date(2026, 12, 2), date(2026, 12, 14))
    assert early == {}
    for evening in (at(2026, 12, 14, 18), at(2026, 12, 14, 23, 59), at(2026, 12, 15, 8, 59)):
        clock.set(evening)
        tick(db, clock, smtp.port)
    assert of_kind(db, "reminder") == []
    assert sink_kinds(db, smtp) == {"invitation": 1}

    clock.set(at(2026, 12, 15, 9, 0))
    report = tick(db, clock, smtp.port)
    assert [s.kind for s in report.sent] == ["reminder"]
    (reminder,) = received_for(db, smtp, "reminder")
    assert str(reminder["Subject"]) == f"Muistutus (1/4): {TITLE}"
    assert "1/4" in text_of(reminder)
    assert email.utils.parsedate_to_datetime(str(reminder["Date"])) == datetime(
        2026, 12, 15, 9, 0, tzinfo=HELSINKI
    )
    assert smtp.received[-1].rcpt_tos == (ALPHA,)

    tick(db, clock, smtp.port)
    tick(db, clock, smtp.port)
    assert sink_kinds(db, smtp) == {"invitation": 1, "reminder": 1}, "no duplicate"
    assert len(of_kind(db, "reminder")) == 1


@pytest.mark.parametrize(
    ("launched", "lands"),
    [
        # Wed 23.12.2026 + 1 working day: Thu 24., Fri 25., Sat 26., Sun 27. -> Mon 28.12.
        (date(2026, 12, 23), date(2026, 12, 28)),
        # Thu 24.6.2027 + 1: Midsummer Eve Fri 25.6., Midsummer Day Sat 26.6., Sun -> Mon 28.6.
        (date(2027, 6, 24), date(2027, 6, 28)),
        # Wed 30.6.2027 + 1: July is quiet, 1.8.2027 is a Sunday -> Mon 2.8.2027.
        (date(2027, 6, 30), date(2027, 8, 2)),
    ],
    ids=["christmas", "midsummer", "july"],
)
def test_reminder_skips_holidays_and_the_quiet_july(
    db: Engine,
    clock: FakeClock,
    smtp: SmtpServer,
    agreement_file: Agreements,
    launched: date,
    lands: date,
) -> None:
    path = agreement_file([party("alpha", ALPHA)], extra=policy(first_after_days=1, every_days=1))
    clock.set(at(launched.year, launched.month, launched.day))
    start(db, clock, path)
    tick(db, clock, smtp.port)

    sent = daily(clock, db, smtp.port, launched + timedelta(days=1), lands)
    assert min(sent) == lands
    assert sent[lands] == 1
    subjects = [str(m["Subject"]) for m in received_for(db, smtp, "reminder")]
    assert subjects == [f"Muistutus (1/4): {TITLE}"]


# --- max_reminders, then one escalation ----------------------------------------------------------


def _two_weeks_of_chasing(
    db: Engine, clock: FakeClock, smtp: SmtpServer, agreement_file: Agreements
) -> str:
    path = agreement_file(
        [party("alpha", ALPHA)], extra=policy(first_after_days=1, every_days=1, max_reminders=2)
    )
    round_id = start(db, clock, path)
    tick(db, clock, smtp.port)
    # Reminders on Wed 2.12. and Thu 3.12., the escalation one interval later, Fri 4.12.
    sent = daily(clock, db, smtp.port, date(2026, 12, 2), date(2026, 12, 15))
    assert sent == {date(2026, 12, 2): 1, date(2026, 12, 3): 1}
    return round_id


def test_max_reminders_then_exactly_one_escalation(
    db: Engine, clock: FakeClock, smtp: SmtpServer, agreement_file: Agreements
) -> None:
    _two_weeks_of_chasing(db, clock, smtp, agreement_file)

    by_kind = Counter(r.kind for r in rows(db) if r.state == "sent")
    assert by_kind == {"invitation": 1, "reminder": 2, "escalation": 1}
    assert sink_kinds(db, smtp) == {"invitation": 1, "reminder": 2, "escalation": 1}
    (escalation,) = of_kind(db, "escalation")
    assert escalation.recipients == [CORA]
    assert escalation.sent_at is not None
    assert escalation.sent_at.astimezone(HELSINKI) == datetime(2026, 12, 4, 9, tzinfo=HELSINKI)
    (mail,) = received_for(db, smtp, "escalation")
    assert "Alpha" in str(mail["Subject"])
    assert "Lähetetyt muistutukset: 2" in text_of(mail)
    subjects = sorted(str(m["Subject"]) for m in received_for(db, smtp, "reminder"))
    assert subjects == [f"Muistutus (1/2): {TITLE}", f"Muistutus (2/2): {TITLE}"]


def test_reminders_and_escalations_sent_are_log_entries(
    db: Engine, clock: FakeClock, smtp: SmtpServer, agreement_file: Agreements
) -> None:
    round_id = _two_weeks_of_chasing(db, clock, smtp, agreement_file)

    entries = log_entries(db, round_id)
    chased = [e for e in entries if e["event"] in ("remind", "escalate")]
    assert [e["event"] for e in chased] == ["remind", "remind", "escalate"]
    assert all(e["party"] == "alpha" for e in chased)
    sent_ids = {r.message_id for r in rows(db) if r.kind in ("reminder", "escalation")}
    assert {e["evidence"]["message"] for e in chased} == sent_ids
    assert [e["evidence"].get("reminder") for e in chased[:2]] == [1, 2]
    reports = verify_database(db, round_id)
    assert len(reports) == 1


# --- a party that has moved on -------------------------------------------------------------------


def test_no_reminder_to_a_party_that_has_moved_on(
    db: Engine, clock: FakeClock, smtp: SmtpServer, agreement_file: Agreements
) -> None:
    path = agreement_file([party("alpha", ALPHA)], extra=policy(first_after_days=1))
    round_id = start(db, clock, path)
    tick(db, clock, smtp.port)

    clock.set(at(2026, 12, 2, 9))
    tick(db, clock, unused_port())  # the SMTP server is down: the reminder waits in the outbox
    (reminder,) = of_kind(db, "reminder")
    assert reminder.state == "pending"
    assert reminder.attempts == 1

    clock.set(at(2026, 12, 2, 10))
    record(db, round_id, "alpha", "submit", Evidence(), clock, "tester")
    clock.set(at(2026, 12, 2, 11))
    tick(db, clock, smtp.port)

    (reminder,) = of_kind(db, "reminder")
    assert reminder.state == "skipped"
    assert "moved on" in (reminder.last_error or "")
    assert sink_kinds(db, smtp) == {"invitation": 1, "receipt": 1}
    assert not [e for e in log_entries(db, round_id) if e["event"] == "remind"]
    verify_database(db, round_id)


# --- catching up ---------------------------------------------------------------------------------


def test_worker_down_for_three_weeks_sends_one_reminder_per_step(
    db: Engine, clock: FakeClock, smtp: SmtpServer, agreement_file: Agreements
) -> None:
    path = agreement_file([party("alpha", ALPHA), party("beta", BETA)])
    start(db, clock, path)
    tick(db, clock, smtp.port)

    # Reminder 1 was due Tue 15.12., reminder 2 five working days later: 16,17,18,21,22 -> 22.12.
    clock.set(at(2026, 12, 22, 9))
    due = jsonable(preview(db, clock))
    # Slot 2 of the schedule, shown as the parties will read it: their first reminder.
    assert sorted((d["party"], d["kind"], d["number"]) for d in due) == [
        ("alpha", "reminder", 1),
        ("beta", "reminder", 1),
    ]
    report = tick(db, clock, smtp.port)
    assert sorted(s.kind for s in report.sent) == ["reminder", "reminder"]
    subjects = [str(m["Subject"]) for m in received_for(db, smtp, "reminder")]
    # Slot 2 of 4, but the first these parties get: one of the three they will have had.
    assert subjects == [f"Muistutus (1/3): {TITLE}"] * 2
    assert sorted(r.rcpt_tos[0] for r in smtp.received[-2:]) == sorted([ALPHA, BETA])

    clock.set(at(2026, 12, 23, 9))
    tick(db, clock, smtp.port)
    assert len(of_kind(db, "reminder")) == 2, "the missed reminder 1 is not sent late"
    assert sink_kinds(db, smtp) == {"invitation": 2, "reminder": 2}


# --- the SMTP server down, 4xx and 5xx -----------------------------------------------------------


def test_smtp_down_then_back_delivers_everything_once(
    db: Engine, clock: FakeClock, smtp: SmtpServer, agreement_file: Agreements
) -> None:
    start(db, clock, agreement_file([party("alpha", ALPHA), party("beta", BETA)]))
    down = unused_port()

    first = tick(db, clock, down)
    assert [s.outcome for s in first.sent] == ["temporary", "temporary"]
    assert {r.state for r in rows(db)} == {"pending"}
    assert all(r.last_error for r in rows(db))

    again = tick(db, clock, down)  # at the same moment: nothing is due before the backoff
    assert again.sent == []
    clock.advance(minutes=1)
    tick(db, clock, down)
    assert {r.attempts for r in rows(db)} == {2}

    clock.advance(seconds=119)
    assert tick(db, clock, smtp.port).sent == [], "the second backoff (120 s) has not run out"
    clock.advance(seconds=1)
    tick(db, clock, smtp.port)
    clock.advance(hours=1)
    tick(db, clock, smtp.port)

    sent = rows(db)
    assert {r.state for r in sent} == {"sent"}
    assert {r.attempts for r in sent} == {3}
    received = [r.message_id for r in smtp.received]
    assert sorted(received) == sorted(r.message_id for r in sent)  # type: ignore[type-var]


def test_smtp_server_stopped_then_restarted_loses_nothing(
    db: Engine, clock: FakeClock, tmp_path: Path, agreement_file: Agreements
) -> None:
    path = agreement_file([party("alpha", ALPHA), party("beta", BETA)])
    round_id = start(db, clock, path)
    server = SmtpServer(tmp_path / "mail").start()
    port = server.port
    try:
        tick(db, clock, port)
        assert len(server.received) == 2
        server.sink.stop()  # the server goes down before the first reminders fall due

        clock.set(at(2026, 12, 15, 9))  # reminder 1 of both parties is due
        tick(db, clock, port)
        clock.advance(hours=2)
        tick(db, clock, port)
        waiting = of_kind(db, "reminder")
        assert [(r.state, r.attempts) for r in waiting] == [("pending", 2), ("pending", 2)]
        assert not [e for e in log_entries(db, round_id) if e["event"] == "remind"]

        server.sink.start(server.host, port)  # back, on the same port
        clock.advance(hours=2)
        tick(db, clock, port)
        tick(db, clock, port)
        assert {r.state for r in rows(db)} == {"sent"}
        assert [r.attempts for r in of_kind(db, "reminder")] == [3, 3]
        assert sink_kinds(db, server) == {"invitation": 2, "reminder": 2}
        reminded = [e for e in log_entries(db, round_id) if e["event"] == "remind"]
        assert len(reminded) == 2
        verify_database(db, round_id)
    finally:
        server.stop()


def test_a_round_in_another_timezone_is_sent_at_its_own_nine(
    db: Engine, clock: FakeClock, smtp: SmtpServer, agreement_file: Agreements
) -> None:
    # The fake clock's naive time is local to the round (as `--at` is): 09:00 in Stockholm.
    path = agreement_file([party("alpha", ALPHA)], agreement={"timezone": "Europe/Stockholm"})
    start(db, clock, path)
    first = [s.kind for s in tick(db, clock, smtp.port).sent]
    clock.set(at(2026, 12, 15, 9))
    second = [s.kind for s in tick(db, clock, smtp.port).sent]
    # The invitations by the tick at launch; reminder 1 by the tick at 09:00 on 15.12.
    assert (first, second) == (["invitation"], ["reminder"])
    assert sink_kinds(db, smtp) == {"invitation": 1, "reminder": 1}


def test_550_for_the_only_contact_fails_and_escalates_once(
    db: Engine, clock: FakeClock, smtp: SmtpServer, agreement_file: Agreements
) -> None:
    smtp.reject(ALPHA, "550 5.1.1 no such user")
    start(db, clock, agreement_file([party("alpha", ALPHA), party("beta", BETA)]))
    tick(db, clock, smtp.port)

    invitations = {r.party_id: r for r in of_kind(db, "invitation")}
    assert invitations["alpha"].state == "failed"
    assert "550 5.1.1 no such user" in (invitations["alpha"].last_error or "")
    assert invitations["beta"].state == "sent"
    (escalation,) = of_kind(db, "escalation")
    assert escalation.recipients == [CORA]
    assert escalation.state == "sent"
    (mail,) = received_for(db, smtp, "escalation")
    assert ALPHA in text_of(mail)
    assert "550" in text_of(mail)

    clock.advance(days=1)
    tick(db, clock, smtp.port)
    clock.advance(days=1)
    tick(db, clock, smtp.port)
    assert len(of_kind(db, "escalation")) == 1
    assert sink_kinds(db, smtp) == {"invitation": 1, "escalation": 1}
    assert of_kind(db, "invitation")[0].state == "failed", "a 5xx is not retried"


def test_550_for_one_of_two_contacts_fails_only_that_contacts_message(
    db: Engine, clock: FakeClock, smtp: SmtpServer, agreement_file: Agreements
) -> None:
    other = "kai@alpha.example.invalid"
    smtp.reject(other, "550 5.1.1 no such user")
    contacts = [{"name": "Kim", "email": ALPHA}, {"name": "Kai", "email": other}]
    start(db, clock, agreement_file([{"id": "alpha", "name": "Alpha", "contacts": contacts}]))
    tick(db, clock, smtp.port)

    by_address = {tuple(r.recipients): r for r in of_kind(db, "invitation")}
    assert by_address[(ALPHA,)].state == "sent"
    assert by_address[(other,)].state == "failed"
    assert "550" in (by_address[(other,)].last_error or "")
    (bounced,) = of_kind(db, "escalation")  # the coordinator is told of the one that bounced
    assert bounced.chase is not None
    assert bounced.chase.get("bounced") is True


@pytest.mark.parametrize(
    "reply",
    ["451 4.3.0 try again later", "421 4.3.2 service shutting down"],  # 421 also hangs up
    ids=["451", "421"],
)
def test_4xx_is_retried_later_and_delivered_once(
    db: Engine, clock: FakeClock, smtp: SmtpServer, agreement_file: Agreements, reply: str
) -> None:
    gamma = "gus@gamma.example.invalid"
    parties = [party("alpha", ALPHA), party("beta", BETA), party("gamma", gamma)]
    start(db, clock, agreement_file(parties))
    smtp.fail_next(1, reply)
    tick(db, clock, smtp.port)

    states = sorted((r.state, r.attempts) for r in rows(db))
    assert states == [("pending", 1), ("sent", 1), ("sent", 1)]
    (waiting,) = rows(db, "pending")
    assert waiting.party_id == "alpha"
    assert reply[:3] in (waiting.last_error or "")
    assert len(smtp.received) == 2

    tick(db, clock, smtp.port)
    assert len(smtp.received) == 2, "not before its backoff has run out"
    clock.advance(minutes=1)
    tick(db, clock, smtp.port)
    tick(db, clock, smtp.port)
    assert {r.state for r in rows(db)} == {"sent"}
    again = {r.id: r for r in rows(db)}[waiting.id]
    assert again.attempts == 2
    ids = [r.message_id for r in smtp.received]
    assert sorted(ids) == sorted(r.message_id for r in rows(db))  # type: ignore[type-var]
    assert len(set(ids)) == 3


# --- notices -------------------------------------------------------------------------------------


def test_active_notice_reaches_everyone_exactly_once(
    db: Engine, clock: FakeClock, smtp: SmtpServer, agreement_file: Agreements
) -> None:
    path = agreement_file(
        [
            party("alpha", ALPHA, await_legal_force=False),
            party("beta", BETA, await_legal_force=False),
        ]
    )
    round_id = start(db, clock, path)
    tick(db, clock, smtp.port)
    sign_off(db, clock, round_id, "alpha", date(2026, 12, 2))
    sign_off(db, clock, round_id, "beta", date(2026, 12, 3))
    tick(db, clock, smtp.port)

    notices = of_kind(db, "active")
    assert sorted(r.recipients[0] for r in notices) == sorted([ALPHA, BETA, CORA])
    assert {r.state for r in notices} == {"sent"}
    active = received_for(db, smtp, "active")
    assert sorted(m["To"] for m in active) == sorted([ALPHA, BETA, CORA])
    assert all(str(m["Subject"]) == f"Sopimus on voimassa: {TITLE}" for m in active)
    assert all("3.12.2026" in text_of(m) for m in active)  # the effective date

    clock.advance(days=1)
    tick(db, clock, smtp.port)
    clock.advance(days=1)
    tick(db, clock, smtp.port)
    assert sink_kinds(db, smtp)["active"] == 3
    assert len(of_kind(db, "active")) == 3


# --- deadline reminders --------------------------------------------------------------------------


def test_deadline_reminders_to_parties_not_signed_yet(
    db: Engine, clock: FakeClock, smtp: SmtpServer, agreement_file: Agreements
) -> None:
    # Deadline Fri 29.1.2027; working days back: 28,27,26 -> 3 days = Tue 26.1.;
    # 25,22,21,20,19,18,15 -> 10 days = Fri 15.1.2027. first_after_days=100 keeps the
    # step's own reminders out of the way.
    path = agreement_file(
        [party("alpha", ALPHA), party("beta", BETA, await_legal_force=False)],
        agreement={"deadline": date(2027, 1, 29)},
        extra=policy(first_after_days=100),
    )
    round_id = start(db, clock, path)
    tick(db, clock, smtp.port)
    sign_off(db, clock, round_id, "beta", date(2026, 12, 2))

    # Deadline reminders are their own kind, with their own count and wording.
    sent = daily(clock, db, smtp.port, date(2026, 12, 3), date(2027, 2, 5), "deadline")
    assert sent == {date(2027, 1, 15): 1, date(2027, 1, 26): 1}
    reminders = of_kind(db, "deadline")
    assert {r.party_id for r in reminders} == {"alpha"}
    mails = received_for(db, smtp, "deadline")
    assert [str(m["Subject"]) for m in mails] == [
        f"Määräaikamuistutus (1/2): {TITLE}",
        f"Määräaikamuistutus (2/2): {TITLE}",
    ]
    assert all(m["To"] == ALPHA for m in mails)
    assert all([p.get_filename() for p in m.iter_attachments()] == ["deadline.ics"] for m in mails)
    chased = [e for e in log_entries(db, round_id) if e["event"] == "remind"]
    assert [e["evidence"].get("days_before_deadline") for e in chased] == [10, 3]
    verify_database(db, round_id)


# --- preview -------------------------------------------------------------------------------------


def test_preview_lists_what_is_due_without_writing(
    db: Engine, clock: FakeClock, smtp: SmtpServer, agreement_file: Agreements, cli: CLI
) -> None:
    round_id = start(db, clock, agreement_file([party("alpha", ALPHA), party("beta", BETA)]))
    tick(db, clock, smtp.port)
    record(db, round_id, "beta", "submit", Evidence(), FixedClock(at(2026, 12, 1, 10)), "tester")
    before = snapshot(db)

    # Only the receipt of beta's submit, queued at 10:00 on 1.12. and not sent yet.
    (queued,) = jsonable(preview(db, FixedClock(at(2026, 12, 15, 8, 59))))
    assert (queued["party"], queued["kind"], queued["queued"]) == ("beta", "receipt", True)
    assert queued["recipients"] == [BETA]
    assert datetime.fromisoformat(queued["due"]) == datetime(2026, 12, 1, 10, tzinfo=HELSINKI)
    due = jsonable(preview(db, FixedClock(at(2026, 12, 15, 9))))
    fresh = [d for d in due if not d["queued"]]
    # beta's step (board review) began on 1.12. as well: its first reminder is due with alpha's.
    assert [(d["party"], d["kind"], d["number"], d["state"]) for d in fresh] == [
        ("alpha", "reminder", 1, "draft"),
        ("beta", "reminder", 1, "board_review"),
    ]
    assert [d["recipients"] for d in fresh] == [[ALPHA], [BETA]]
    assert fresh[0]["due"].startswith("2026-12-15T09:00")

    ran = cli("reminders", round_id, "--json", "--at", "2026-12-15T09:00")
    assert ran.exit_code == 0, ran.stderr
    assert ran.json() == due
    nothing = cli("reminders", "--at", "2026-12-14T09:00")
    assert nothing.exit_code == 0, nothing.stderr
    assert "receipt" in nothing.stdout
    assert snapshot(db) == before, "a preview writes nothing"
    assert len(smtp.received) == 2


def test_preview_due_is_when_the_reminder_fell_due(
    db: Engine, clock: FakeClock, smtp: SmtpServer, agreement_file: Agreements
) -> None:
    round_id = start(db, clock, agreement_file([party("alpha", ALPHA)]))
    tick(db, clock, smtp.port)
    # Asked in the afternoon (or days later, the worker being down), reminder 1 is still the
    # one that fell due at 09:00 on Tue 15.12.: that is its due time, not the moment asked.
    for asked in (at(2026, 12, 15, 14), at(2026, 12, 18, 9)):
        (due,) = jsonable(preview(db, FixedClock(asked), round_id))
        assert (due["kind"], due["number"]) == ("reminder", 1)
        assert datetime.fromisoformat(due["due"]) == datetime(2026, 12, 15, 9, tzinfo=HELSINKI)
