"""The forecast: each party's earliest date to have signed from its bodies' meetings (the first
whose agenda can still take the agreement), the appeal period and notice, and a signing lag; the
round's entry into force and the party holding it back; a party past the deadline flagged."""

from __future__ import annotations

import email.utils
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from engine.clock import FakeClock
from engine.core.calendar import FINLAND, legal_force_date
from engine.core.evidence import Evidence
from engine.core.forecast import Meetings, forecast_party
from engine.core.party import PartySnapshot
from engine.runtime import launch, load_agreement, record
from engine.runtime.forecasts import forecast
from engine.runtime.worker import tick_once
from notifications.mailer import Mailer
from notifications.render import write_date
from tests.conftest import CLI, write_agreement
from tests.smtp import SmtpServer
from workflows import Body

BOARD = Body("Kunnanhallitus", "board", 14)
COUNCIL = Body("Kunnanvaltuusto", "council", 30)


def _party(state: str, step: int = 0, bodies: tuple[Body, ...] = (BOARD,)) -> PartySnapshot:
    return PartySnapshot("p", "municipality", 1, state, bodies, step, True, 7, 1)


def test_a_draft_waits_for_the_first_meeting_whose_agenda_is_still_open() -> None:
    meetings = {"Kunnanhallitus": Meetings((date(2026, 12, 7), date(2026, 12, 14)), 7)}
    # On 1.12 the agenda of 7.12 closed on 26.11: the board can take it up on 14.12 at the earliest.
    got = forecast_party(_party("draft"), "preparing", date(2026, 12, 1), meetings, FINLAND)
    decision, final, signed = got.steps
    assert (decision.body, decision.on, decision.known) == (
        "Kunnanhallitus",
        date(2026, 12, 14),
        True,
    )
    assert final.on == legal_force_date(date(2026, 12, 14), 14, 7)
    assert signed.on == FINLAND.add_working_days(final.on, 5)
    assert got.signed_by == signed.on
    assert got.note == "on the bodies' known meetings"


def test_a_board_then_a_council_and_no_calendar_is_said_to_be_assumed() -> None:
    meetings = {"Kunnanhallitus": Meetings((date(2026, 12, 7),), 0)}
    party = _party("board_review", 0, (BOARD, COUNCIL))
    got = forecast_party(
        party, "review", date(2026, 12, 2), meetings, FINLAND, deadline=date(2027, 1, 15)
    )
    board, council, final, _ = got.steps
    assert board.on == date(2026, 12, 7)
    assert (council.body, council.on, council.known) == (
        "Kunnanvaltuusto",
        date(2026, 12, 8),
        False,
    )
    assert final.on == legal_force_date(date(2026, 12, 8), 30, 7)
    assert "no meetings known for Kunnanvaltuusto" in got.note
    assert got.late  # after 15.1.2027


def test_done_failed_and_on_hold_have_no_date() -> None:
    for state, role in (("signed", "done"), ("rejected", "failed"), ("appeal_pending", "on_hold")):
        assert forecast_party(_party(state), role, date(2026, 12, 1), {}, FINLAND).signed_by is None  # type: ignore[arg-type]


def test_the_round_is_in_force_when_its_slowest_party_has_signed(
    db: Engine, tmp_path: Path, cli: CLI, database_url: str
) -> None:
    parties: list[dict[str, Any]] = [
        {
            "id": "alpha",
            "name": "Alpha",
            "calendars": {"Kunnanhallitus": {"meetings": [date(2026, 12, 14)]}},
        },
        {
            "id": "beta",
            "name": "Beta",
            "calendars": {"Kunnanhallitus": {"meetings": [date(2027, 2, 1)]}},
        },
    ]
    path = write_agreement(tmp_path, parties, agreement={"deadline": date(2027, 3, 1)})
    clock = FakeClock(datetime(2026, 12, 1, 9, 0))  # noqa: DTZ001  (local to the round)
    made = launch(db, load_agreement(path, launch_at=clock), clock, "Cora").round
    found = forecast(db, made, clock)
    alpha, beta = found.parties
    assert alpha.steps[0].on == date(2026, 12, 14)
    assert beta.steps[0].on == date(2027, 2, 1)
    assert found.critical == "beta"
    assert found.in_force == beta.signed_by
    assert beta.late is (beta.signed_by is not None and beta.signed_by > date(2027, 3, 1))
    # Alpha goes to its board: in review the board's next meeting decides.
    record(db, made, "alpha", "submit", Evidence(), clock, "Kim")
    assert forecast(db, made, clock).parties[0].steps[0].on == date(2026, 12, 14)
    shown = cli("forecast", made, "--at", "2026-12-01 10:00")
    assert shown.exit_code == 0, shown.stderr
    assert "beta holds the round back" in shown.stdout
    data = cli("forecast", made, "--json", "--at", "2026-12-01 10:00").json()
    assert data["critical"] == "beta"
    assert found.in_force is not None
    assert data["in_force"] == found.in_force.isoformat()


def test_the_escalation_says_which_party_holds_the_round_back_and_by_how_long(
    db: Engine, tmp_path: Path, smtp: SmtpServer
) -> None:
    parties: list[dict[str, Any]] = [
        # No calendars: the fixed reminders, then the escalation (a calendar's body would have
        # agenda reminders instead). Beta's council and its longer appeal period hold it back.
        {
            "id": "alpha",
            "name": "Alpha",
            "contacts": [{"name": "Kim", "email": "kim@alpha.example.invalid"}],
        },
        {
            "id": "beta",
            "name": "Beta",
            "bodies": ["Kunnanhallitus", "Kunnanvaltuusto"],
            "contacts": [{"name": "Bea", "email": "bea@beta.example.invalid"}],
        },
    ]
    policy = "[reminders]\nfirst_after_days = 1\nevery_days = 1\nmax_reminders = 1\n"
    path = write_agreement(
        tmp_path, parties, agreement={"deadline": date(2027, 1, 11)}, extra=policy
    )
    clock = FakeClock(datetime(2026, 12, 1, 9, 0))  # noqa: DTZ001  (local to the round)
    made = launch(db, load_agreement(path, launch_at=clock), clock, "Cora").round
    mailer = Mailer("127.0.0.1", smtp.port, timeout=5.0)
    forecasts = {}
    for day in (1, 2, 3, 4):  # a reminder on 2.12., the escalation one working day later
        clock.set(datetime(2026, 12, day, 9, 0))  # noqa: DTZ001
        forecasts[day] = forecast(db, made, clock)
        tick_once(db, clock, mailer, "ratify@example.invalid")
    escalations = [m for m in smtp.messages() if "ei etene" in str(m["Subject"])]
    assert len(escalations) == 2  # one for each party, to the coordinator
    sent_on = {email.utils.parsedate_to_datetime(str(m["Date"])).day for m in escalations}
    assert sent_on == {3}
    expected = forecasts[3]  # as the forecast stood when the escalation went out
    assert expected.critical == "beta"
    assert expected.in_force is not None
    assert expected.behind_days is not None
    assert expected.late_days is not None
    text = escalations[0].get_body(preferencelist=("plain",))
    assert text is not None
    body = " ".join(str(text.get_content()).split())
    assert f"aikaisintaan {write_date(expected.in_force, 'fi')}." in body
    assert (
        "Voimaantuloa viivästyttää eniten Beta: sen aikaisin mahdollinen allekirjoituspäivä on "
        f"{expected.behind_days} päivää myöhäisempi kuin muiden osapuolten" in body
    )
    assert f"{expected.late_days} päivää määräajan jälkeen" in body


def test_the_signing_lag_is_stated_and_may_be_given(db: Engine, tmp_path: Path, cli: CLI) -> None:
    parties: list[dict[str, Any]] = [
        {
            "id": "alpha",
            "name": "Alpha",
            "calendars": {"Kunnanhallitus": {"meetings": [date(2026, 12, 14)]}},
        }
    ]
    path = write_agreement(tmp_path, parties)
    clock = FakeClock(datetime(2026, 12, 1, 9, 0))  # noqa: DTZ001  (local to the round)
    made = launch(db, load_agreement(path, launch_at=clock), clock, "Cora").round
    usual = cli("forecast", made, "--json", "--at", "2026-12-01 10:00").json()
    at_once = cli(
        "forecast", made, "--json", "--at", "2026-12-01 10:00", "--signing-days", "0"
    ).json()
    assert usual["signing_days"] == 5
    assert at_once["signing_days"] == 0
    final = date.fromisoformat(at_once["in_force"])
    assert final == legal_force_date(date(2026, 12, 14), 14, 7)
    assert date.fromisoformat(usual["in_force"]) == FINLAND.add_working_days(final, 5)
    refused = cli("forecast", made, "--signing-days", "-1")
    assert refused.exit_code == 2
    assert "signing days -1: give 0 to 250 working days" in refused.stderr
