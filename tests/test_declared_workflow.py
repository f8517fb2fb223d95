"""A workflow with its own state and event names, loaded from a folder beside the shipped ones
(``RATIFY_WORKFLOWS``), runs a round to active — invitations, reminders, legal force, signatures,
verification — with no line of engine code knowing its names: everything follows from the roles
its states declare."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine

from engine.clock import FakeClock
from engine.core.calendar import legal_force_date
from engine.errors import InvalidInput, TransitionRefused
from engine.runtime import Evidence, launch, preview, record, status, tick_once, verify_database
from notifications.mailer import Mailer
from tests.smtp import HOST, SmtpServer
from tests.test_reminders import at, of_kind, party, policy
from workflows import catalog, default_catalog

FOLDER = Path(__file__).resolve().parent / "workflows"
FROM = "ratify@example.invalid"
HELSINKI = ZoneInfo("Europe/Helsinki")


@pytest.fixture(autouse=True)
def declared(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("RATIFY_WORKFLOWS", str(FOLDER))
    yield
    monkeypatch.delenv("RATIFY_WORKFLOWS")
    catalog._catalog.cache_clear()


def _round(db: Engine, clock: FakeClock, agreement_file: Callable[..., Path]) -> str:
    parties = [
        party("kunta", "kirjaamo@kunta.example.invalid", workflow="executive-decision"),
        party("muni", "kirjaamo@muni.example.invalid", await_legal_force=False),
    ]
    extra = policy(first_after_days=1, every_days=1, max_reminders=1, before_deadline_days=[])
    clock.set(at(2026, 12, 1, 9))
    return launch(db, agreement_file(parties, extra=extra), clock, "tester").round


def test_the_declared_workflow_loads_with_its_roles() -> None:
    definition = default_catalog().load("executive-decision")
    assert definition.initial == "valmistelu"
    assert definition.final == ("voimassa", "hylatty")
    assert definition.hand_events == (
        "esittely",
        "paatos",
        "kielteinen",
        "oikaisuvaatimus",
        "ratkaistu",
        "nimi",
    )
    assert definition.states_of("legal_force") == ("oikaisuaika",)
    # The shipped ones are still there beside it.
    assert "municipality" in {d.name for d in default_catalog().available()}


def test_a_round_with_its_own_state_names_runs_to_active(
    db: Engine, clock: FakeClock, smtp: SmtpServer, agreement_file: Callable[..., Path]
) -> None:
    round_id = _round(db, clock, agreement_file)
    mailer = Mailer(HOST, smtp.port, timeout=10.0)
    first = status(db, round_id)[0].parties[0]
    assert (first.state, first.role, first.body) == ("valmistelu", "preparing", "Kunnanjohtaja")
    assert first.allowed == ("esittely",)

    # Invitations at once; the invitation lists the official's steps, worded by role.
    clock.set(at(2026, 12, 1, 9, 30))
    tick_once(db, clock, mailer, FROM)
    invitation = next(m for m in smtp.messages() if "kunta" in m["To"])
    text = invitation.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "Kunnanjohtaja päättää sopimuksen hyväksymisestä." in text
    assert "Päätös saa lainvoiman" in text

    # Nobody acts: the preparing state is pending, so a reminder goes out the next working day.
    clock.set(at(2026, 12, 2, 9))
    due = [p for p in preview(db, clock, round_id) if not p.queued]
    assert {(p.party, p.kind, p.state) for p in due} == {
        ("kunta", "reminder", "valmistelu"),
        ("muni", "reminder", "draft"),
    }
    tick_once(db, clock, mailer, FROM)
    reminders = [r for r in of_kind(db, "reminder") if r.party_id == "kunta"]
    assert [(r.state, (r.chase or {})["state"]) for r in reminders] == [("sent", "valmistelu")]

    # The official decides; the decision waits out its appeal period.
    clock.set(at(2026, 12, 2, 10))
    record(db, round_id, "kunta", "esittely", Evidence(diary="12/00.04.01/2026"), clock, "kim")
    with pytest.raises(TransitionRefused, match="awaiting the decision of Kunnanjohtaja"):
        record(
            db,
            round_id,
            "kunta",
            "paatos",
            Evidence(ref="Kunnanhallitus 02.12.2026 § 1"),
            clock,
            "kim",
        )
    decided = record(
        db, round_id, "kunta", "paatos", Evidence(ref="Kunnanjohtaja 02.12.2026 § 7"), clock, "kim"
    )
    final = legal_force_date(
        date(2026, 12, 2), 14
    )  # 2.12 + 7 + 14 days ends on 23.12; final from 24.12
    assert (decided.to_state, decided.role) == ("oikaisuaika", "legal_force")
    assert decided.legal_force_from == final
    with pytest.raises(InvalidInput, match="is applied by a tick"):
        record(db, round_id, "kunta", "lainvoima", Evidence(), clock, "kim")
    with pytest.raises(
        InvalidInput, match="the events of workflow executive-decision are esittely"
    ):
        record(db, round_id, "kunta", "approve", Evidence(ref="x"), clock, "kim")

    # The municipality beside it runs on its own, shipped workflow.
    record(db, round_id, "muni", "submit", Evidence(), clock, "mia")
    record(
        db, round_id, "muni", "approve", Evidence(ref="Kunnanhallitus 02.12.2026 § 3"), clock, "mia"
    )

    # The timed event comes with the date; then signatures end both parties and the round.
    clock.set(at(final.year, final.month, final.day, 9) + timedelta(minutes=5))
    moved = tick_once(db, clock, mailer, FROM).moved
    assert [(m.party, m.event, m.to_state) for m in moved] == [
        ("kunta", "lainvoima", "allekirjoitus")
    ]
    clock.advance(hours=1)
    record(
        db,
        round_id,
        "muni",
        "sign",
        Evidence(signatory="Mia Malli", title="kunnanjohtaja"),
        clock,
        "mia",
    )
    done = record(
        db,
        round_id,
        "kunta",
        "nimi",
        Evidence(signatory="Kim Esimerkki", title="kunnanjohtaja"),
        clock,
        "kim",
    )
    assert (done.to_state, done.role, done.round_state) == ("voimassa", "done", "active")
    assert done.effective_date == clock.now(HELSINKI).date()
    shown = status(db, round_id)[0]
    assert (shown.state, shown.signed) == ("active", 2)

    # The log replays through the declared workflow, and the receipts word its states.
    (report,) = verify_database(db, round_id)
    assert report.ok
    clock.advance(minutes=5)
    tick_once(db, clock, mailer, FROM)
    receipts = [
        email.message_from_bytes(m.as_bytes(), policy=email.policy.default)
        for m in smtp.messages()
        if "kunta" in m["To"] and "Kuittaus" in str(m["Subject"])
    ]
    bodies = "\n".join(
        r.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
        for r in receipts
    )
    assert "odottaa toimielimen päätöstä (Kunnanjohtaja)" in bodies
    assert "odottaa päätöksen lainvoimaisuutta" in bodies
