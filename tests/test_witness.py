"""The witness: the rounds' heads mailed to RATIFY_WITNESS_EMAIL, once a day when a log changed
and at every activation, through the real outbox and a real SMTP server, on a fake clock.

The heads a witness message carries (in its text and as heads.json) are `ratify audit head`'s.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
import pytest
from sqlalchemy import Engine
from sqlmodel import select

from engine.clock import FakeClock
from engine.core.evidence import Evidence
from engine.errors import InvalidInput
from engine.persistence import outbox
from engine.persistence.database import transaction
from engine.persistence.tables import OutboxRow, RoundRow
from engine.runtime.events import record
from engine.runtime.witness import HEADS_FILE, queue_daily, witness_on_activation
from engine.runtime.worker import tick_once
from notifications.mailer import Mailer
from notifications.render import LANGUAGES, render
from tests.conftest import CLI, cli_on, write_agreement
from tests.smtp import SmtpServer

WITNESS = "witness@example.invalid"
FROM = "ratify <ratify@example.invalid>"
ALPHA = [{"id": "alpha", "name": "Alpha", "await_legal_force": False}]
Heads = list[dict[str, Any]]


def at(day: int, hour: int = 9, minute: int = 0) -> datetime:
    """December 2026, wall-clock time local to the rounds (Europe/Helsinki)."""
    return datetime(2026, 12, day, hour, minute)  # noqa: DTZ001  (naive: local to each round)


@pytest.fixture
def witness(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("RATIFY_WITNESS_EMAIL", WITNESS)
    return WITNESS


@pytest.fixture
def cli(database_url: str) -> CLI:
    return cli_on(database_url)


def audit_head(cli: CLI) -> Heads:
    ran = cli("audit", "head", "--json")
    assert ran.exit_code == 0, ran.stderr
    found: Heads = ran.json()
    return found


def start(cli: CLI, folder: Path, day: int = 1, **agreement: Any) -> str:
    """Launch a round of alpha alone (or of ``agreement``) on ``day`` at 9:00; its id."""
    name = f"{agreement.get('id', 'agreement')}.toml"
    path = write_agreement(folder, ALPHA, agreement=agreement or None, name=name)
    launched = cli("launch", str(path), "--at", f"2026-12-{day:02d}T09:00", "--json")
    assert launched.exit_code == 0, launched.stderr
    round_id: str = launched.json()["round"]
    return round_id


class World:
    """A database, a fake clock, a worker ticking into a real SMTP server."""

    def __init__(self, db: Engine, smtp: SmtpServer, cli: CLI) -> None:
        self.db = db
        self.smtp = smtp
        self.cli = cli
        self.clock = FakeClock(at(1))
        self.mailer = Mailer(smtp.host, smtp.port)

    def tick(self, moment: datetime) -> list[str]:
        self.clock.set(moment)
        return tick_once(self.db, self.clock, self.mailer, FROM).queued

    def witnessed(self) -> list[EmailMessage]:
        return [m for m in self.smtp.messages() if m["To"] == WITNESS]

    def rows(self) -> list[OutboxRow]:
        with transaction(self.db) as session:
            return [r for r in outbox.messages(session) if r.kind == "witness"]


@pytest.fixture
def world(db: Engine, smtp: SmtpServer, cli: CLI) -> World:
    return World(db, smtp, cli)


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert isinstance(part, EmailMessage)
    content: str = part.get_content()
    return content


def heads_in_text(text: str) -> Heads:
    """The rounds a witness message's text lists: "ROUND: N entries" then the head, indented."""
    found = re.findall(r"^(\S+): (\d+) \w+\n  ([0-9a-f]{64})$", text, re.M)
    return [{"round": r, "entries": int(n), "head": h} for r, n, h in found]


def heads_attached(message: EmailMessage) -> Heads:
    (attachment,) = [p for p in message.iter_attachments() if p.get_filename() == HEADS_FILE]
    assert attachment.get_content_type() == "application/json"
    payload = attachment.get_payload(decode=True)
    assert isinstance(payload, bytes)
    rounds: Heads = json.loads(payload)["rounds"]
    return rounds


# --- daily ---------------------------------------------------------------------------------------


def test_one_a_day_when_a_log_changed_and_none_when_nothing_did(
    world: World, witness: str, tmp_path: Path
) -> None:
    round_id = start(world.cli, tmp_path)
    sent: list[Heads] = []  # what `audit head` said as each witness message was queued

    def tick(moment: datetime, expected: int) -> None:
        queued = [k for k in world.tick(moment) if k.startswith("witness:")]
        if queued:
            sent.append(audit_head(world.cli))
            assert queued == [f"witness:{moment.date().isoformat()}"]
        assert len(world.witnessed()) == expected, moment

    tick(at(1, 9, 5), 1)  # the first: nothing recorded before
    tick(at(1, 15), 1)
    tick(at(2), 1)  # a day with nothing new
    tick(at(3, 8), 1)
    world.clock.set(at(3, 10))
    record(world.db, round_id, "alpha", "submit", Evidence(), world.clock, "clerk")
    tick(at(3, 10, 5), 2)
    world.clock.set(at(3, 12))
    ref = Evidence(ref="Kunnanhallitus 03.12.2026 § 1")
    record(world.db, round_id, "alpha", "approve", ref, world.clock, "clerk")
    tick(at(3, 14), 2)  # once a day: the approval waits for tomorrow's
    tick(at(4, 0, 1), 3)
    tick(at(4, 9), 3)
    tick(at(5), 3)
    tick(at(7), 3)  # Monday: still nothing new
    messages = world.witnessed()
    assert [heads_in_text(text_of(m)) for m in messages] == sent
    assert [heads_attached(m) for m in messages] == sent
    assert [h[0]["entries"] for h in sent] == [1, 2, 3]
    assert sent[-1] == audit_head(world.cli)
    assert len(world.rows()) == 3
    assert all(r.round_id == round_id and r.recipients == [WITNESS] for r in world.rows())
    assert all(r.state == "sent" for r in world.rows())


def test_every_round_is_listed_in_one_message(world: World, witness: str, tmp_path: Path) -> None:
    first = start(world.cli, tmp_path)
    second = start(world.cli, tmp_path, 2, id="other-agreement", language="sv")
    world.tick(at(2, 9, 30))
    (message,) = world.witnessed()
    listed = heads_in_text(text_of(message))
    assert listed == audit_head(world.cli)
    assert [h["round"] for h in listed] == [second, first]  # by agreement id, then number
    # Filed under the round that changed last, in its language.
    assert message["Content-Language"] == "sv"
    assert message["Subject"].startswith("Loggarnas kontrollsummor den 2.12.2026 kl. ")
    (row,) = world.rows()
    assert row.round_id == second


def test_a_tick_twice_or_two_workers_queue_it_once(
    db: Engine, cli: CLI, witness: str, tmp_path: Path
) -> None:
    start(cli, tmp_path)
    clock = FakeClock(at(2))
    first = queue_daily(db, clock)
    assert first == ["witness:2026-12-02"]
    assert queue_daily(db, clock) == []
    with transaction(db) as session:
        keys = session.exec(select(OutboxRow.key).where(OutboxRow.kind == "witness")).all()
    assert keys == first


def test_a_new_witness_address_gets_the_heads_again(
    world: World, witness: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    start(world.cli, tmp_path)
    world.tick(at(1, 10))
    world.tick(at(2, 10))
    assert len(world.rows()) == 1
    monkeypatch.setenv("RATIFY_WITNESS_EMAIL", "auditor@example.invalid")
    world.tick(at(3, 10))
    assert [r.recipients for r in world.rows()] == [[WITNESS], ["auditor@example.invalid"]]


def test_no_witness_without_the_setting(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RATIFY_WITNESS_EMAIL", raising=False)
    round_id = start(world.cli, tmp_path)
    for day in (1, 2, 3):
        world.tick(at(day, 10))
    assert world.rows() == []
    assert world.witnessed() == []
    activate(world.db, round_id, world.clock)
    with transaction(world.db) as session:
        row = session.get(RoundRow, round_id)
        assert row is not None
        assert row.state == "active"
        assert witness_on_activation(session, row, world.clock.now(UTC)) is False
    assert world.rows() == []


def test_no_rounds_nothing_to_witness(db: Engine, witness: str) -> None:
    assert queue_daily(db, FakeClock(at(1))) == []


def test_a_malformed_witness_address_is_invalid_input(
    db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RATIFY_WITNESS_EMAIL", "not an address")
    with pytest.raises(InvalidInput, match="RATIFY_WITNESS_EMAIL"):
        queue_daily(db, FakeClock(at(1)))


# --- at activation -------------------------------------------------------------------------------


def activate(db: Engine, round_id: str, clock: FakeClock) -> None:
    """alpha submits, approves and signs: the round becomes active."""
    steps: list[tuple[str, Evidence]] = [
        ("submit", Evidence()),
        ("approve", Evidence(ref="Kunnanhallitus 03.12.2026 § 1")),
        ("sign", Evidence(signatory="Aino A", title="Mayor")),
    ]
    for hour, (event, evidence) in enumerate(steps, start=10):
        clock.set(at(3, hour))
        record(db, round_id, "alpha", event, evidence, clock, "clerk")


def witness_rows(db: Engine) -> list[OutboxRow]:
    with transaction(db) as session:
        return [r for r in outbox.messages(session) if r.kind == "witness"]


def test_one_at_activation_with_the_heads_after_it(
    db: Engine, cli: CLI, witness: str, tmp_path: Path
) -> None:
    """The activation's transaction queues it (engine/runtime/events.py `_apply`, after the
    entries are sealed); asked again, right after, it adds nothing."""
    clock = FakeClock(at(1))
    round_id = start(cli, tmp_path)
    with transaction(db) as session:  # an open round: nothing to witness yet
        row = session.get(RoundRow, round_id)
        assert row is not None
        assert witness_on_activation(session, row, clock.now(UTC)) is False
    activate(db, round_id, clock)
    with transaction(db) as session:
        row = session.get(RoundRow, round_id)
        assert row is not None
        now = clock.now(ZoneInfo(row.timezone))
        # The activation has queued it already: its key makes it once.
        assert witness_on_activation(session, row, now) is False
    (made,) = witness_rows(db)
    assert made.key == f"witness:activate:{round_id}"
    assert made.recipients == [WITNESS]
    assert heads_in_text(made.text_body) == audit_head(cli)
    assert audit_head(cli)[0]["entries"] == 5  # launch, submit, approve, sign, activate
    assert round_id in made.subject
    (attachment,) = made.attachments
    assert attachment["filename"] == HEADS_FILE
    assert json.loads(base64.b64decode(attachment["data"]))["rounds"] == audit_head(cli)


def test_the_activation_itself_queues_the_witness_message(
    world: World, witness: str, tmp_path: Path
) -> None:
    round_id = start(world.cli, tmp_path)
    world.tick(at(1, 10))  # the daily one: 1 entry
    activate(world.db, round_id, world.clock)
    keys = [r.key for r in world.rows()]
    assert keys == ["witness:2026-12-01", f"witness:activate:{round_id}"]
    world.tick(at(3, 14))  # the activation's message already holds today's heads
    world.tick(at(4, 10))
    assert len(world.rows()) == 2
    assert heads_in_text(world.rows()[-1].text_body) == audit_head(world.cli)


# --- the templates -------------------------------------------------------------------------------

CONTEXT: dict[str, Any] = {
    "title": "Strateginen yhteistyösopimus",
    "round_id": "kanta-hame-strategic-2026/1",
    "sha256": "3f" * 32,
    "party": None,
    "coordinator": {"name": "Liisa Koskinen", "email": "liisa.koskinen@example.invalid"},
    "reason": "daily",
    "rounds": [
        {"round": "kanta-hame-strategic-2026/1", "entries": 15, "head": "ab" * 32},
        {"round": "vastra-nyland-2026/1", "entries": 1, "head": "cd" * 32},
    ],
    "as_of": datetime(2026, 12, 2, 7, 0, tzinfo=UTC),
    "timezone": "Europe/Helsinki",
}


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("reason", ["daily", "activation"])
def test_the_witness_message_lists_every_head_and_how_to_use_it(language: str, reason: str) -> None:
    subject, text, html = render("witness", language, {**CONTEXT, "reason": reason})
    assert "\n" not in subject
    assert heads_in_text(text) == CONTEXT["rounds"]
    for body in (text, html):
        assert "ratify audit verify" in body
        assert "--expect-head" in body
        assert HEADS_FILE in body
        for r in CONTEXT["rounds"]:
            assert r["head"] in body
            assert r["round"] in body
    assert "<td" in html
    assert ("kanta-hame-strategic-2026/1" in subject) == (reason == "activation")


@pytest.mark.parametrize("variable", sorted(CONTEXT))
def test_every_witness_variable_is_required(variable: str) -> None:
    values = {k: v for k, v in CONTEXT.items() if k != variable}
    for language in LANGUAGES:
        with pytest.raises((jinja2.UndefinedError, ValueError)):
            render("witness", language, values)


def test_a_witness_message_needs_a_known_reason() -> None:
    with pytest.raises(ValueError, match="daily, activation"):
        render("witness", "en", {**CONTEXT, "reason": "weekly"})


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_witness_html_escapes(language: str) -> None:
    hostile = [{"round": "<b>x</b>/1", "entries": 1, "head": "ab" * 32}]
    _, text, html = render("witness", language, {**CONTEXT, "rounds": hostile})
    assert "<b>x</b>/1" in text
    assert "&lt;b&gt;x&lt;/b&gt;/1" in html
    assert "<b>" not in html
