"""The rules of a round, on SQLite and PostgreSQL: evidence, refusals that leave no trace,
legal force across holidays, amendments, activation and the clock each entry records."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from rich.console import Console
from sqlalchemy import Engine

from engine.agreement import load_agreement
from engine.clock import FakeClock, FixedClock
from engine.core.chain import Entry
from engine.core.evidence import Evidence
from engine.errors import InvalidInput, NotFound, RoundClosed, TransitionRefused
from engine.interfaces.common import parse_at
from engine.interfaces.render import status_table
from engine.runtime import events, jsonable, rounds
from engine.runtime.audit import log_entries, verify_database
from tests.conftest import CLI, Ran

Trace = tuple[list[Entry], list[dict[str, Any]]]
MakeAgreement = Callable[..., Path]

LAUNCH_AT = "2026-12-01T09:00"
NO_WAIT: dict[str, Any] = {"await_legal_force": False}


def trace(db: Engine, round_id: str) -> Trace:
    """What a refused command must leave untouched: the round's log and every round's status."""
    return log_entries(db, round_id), jsonable(rounds.status(db, None))


def launch(cli: CLI, path: Path, at: str = LAUNCH_AT) -> str:
    ran = cli("launch", str(path), "--at", at, "--json")
    assert ran.exit_code == 0, ran.stderr
    round_id: str = ran.json()["round"]
    return round_id


def ok(cli: CLI, *args: str) -> Ran:
    ran = cli(*args)
    assert ran.exit_code == 0, (args, ran.stdout, ran.stderr)
    return ran


def refused(cli: CLI, db: Engine, round_id: str, code: int, *args: str) -> str:
    """Run a command that must fail with ``code`` and write nothing; return its message."""
    before = trace(db, round_id)
    ran = cli(*args)
    assert ran.exit_code == code, (args, ran.stdout, ran.stderr)
    assert ran.stderr.strip(), f"{args}: no message on stderr"
    after = trace(db, round_id)
    assert after[0] == before[0], f"{args} changed the log"
    assert after[1] == before[1], f"{args} changed the status"
    return ran.stderr


def rec(db: Engine, *args: str) -> dict[str, Any]:
    """What `ratify record ARGS` does, through the runtime API: quicker for the steps that set a
    scene (the commands under test go through the command line)."""
    command, round_id, party_id, event, *rest = args
    assert command == "record"
    options = dict(zip(rest[::2], rest[1::2], strict=True))
    clock = FixedClock(parse_at(options.pop("--at")))
    evidence = Evidence(**{k.removeprefix("--"): v for k, v in options.items()})
    done: dict[str, Any] = jsonable(
        events.record(db, round_id, party_id, event, evidence, clock, "tester")
    )
    return done


def party(db: Engine, round_id: str, party_id: str) -> dict[str, Any]:
    parties = jsonable(rounds.status(db, round_id))[0]["parties"]
    found: dict[str, Any] = next(p for p in parties if p["id"] == party_id)
    return found


def states(db: Engine, round_id: str) -> dict[str, str]:
    return {p["id"]: p["state"] for p in jsonable(rounds.status(db, round_id))[0]["parties"]}


def sign_args(round_id: str, party_id: str, name: str, at: str) -> tuple[str, ...]:
    return (
        "record",
        round_id,
        party_id,
        "sign",
        "--signatory",
        name,
        "--title",
        "Mayor",
        "--at",
        at,
    )


# --- decision references -------------------------------------------------------------------------


def test_decision_by_the_wrong_body_is_refused(
    cli: CLI, db: Engine, agreement_file: MakeAgreement
) -> None:
    round_id = launch(cli, agreement_file())
    rec(db, "record", round_id, "alpha", "submit", "--at", "2026-12-02T09:00")
    message = refused(
        cli, db, round_id, 1,
        "record", round_id, "alpha", "approve",
        "--ref", "Kunnanvaltuusto 02.12.2026 § 1", "--at", "2026-12-02T18:00",
    )  # fmt: skip
    assert "board_review" in message
    assert "Kunnanhallitus" in message
    # The body is compared case-insensitively, and an organisation's name may lead.
    ok(
        cli, "record", round_id, "alpha", "approve",
        "--ref", "Alphan kunnanhallitus 02.12.2026 § 1", "--at", "2026-12-02T18:00",
    )  # fmt: skip
    assert states(db, round_id) == {"alpha": "legal_force_wait"}


def test_approve_needs_a_wellformed_reference_dated_by_then(
    cli: CLI, db: Engine, agreement_file: MakeAgreement
) -> None:
    round_id = launch(cli, agreement_file())
    rec(db, "record", round_id, "alpha", "submit", "--at", "2026-12-02T09:00")
    base = ("record", round_id, "alpha", "approve")
    at = ("--at", "2026-12-02T18:00")
    message = refused(cli, db, round_id, 2, *base, *at)
    assert "--ref" in message
    for bad in (
        "",
        "Kunnanhallitus",
        "Kunnanhallitus 2026-12-02 § 1",
        "Kunnanhallitus 02.12.2026",
        "Kunnanhallitus 31.11.2026 § 1",
        "Kunnanhallitus 02.12.2026 § 0",
        "02.12.2026 § 1",
    ):
        refused(cli, db, round_id, 2, *base, "--ref", bad, *at)
    # A decision dated after the time of recording has not been made yet.
    message = refused(cli, db, round_id, 2, *base, "--ref", "Kunnanhallitus 03.12.2026 § 4", *at)
    assert "03.12.2026" in message
    # Options an event does not take are invalid input too.
    refused(
        cli,
        db,
        round_id,
        2,
        *base,
        "--ref",
        "Kunnanhallitus 02.12.2026 § 4",
        "--signatory",
        "X",
        *at,
    )
    ok(cli, *base, "--ref", "Kunnanhallitus 02.12.2026 § 4", *at)
    assert states(db, round_id) == {"alpha": "legal_force_wait"}


def test_a_diary_number_is_kept_as_written_and_evidence_is_one_bounded_line(
    cli: CLI, db: Engine, agreement_file: MakeAgreement
) -> None:
    round_id = launch(cli, agreement_file())
    submit = ("record", round_id, "alpha", "submit", "--at", "2026-12-02T09:00")
    for option, bad, complaint in (
        ("--diary", "11026/00.01.00/2025\nBcc: x@example.invalid", "on one line"),
        ("--diary", "x" * 101, "keep it to 100"),
        ("--reason", "tab\there", "control character"),
        ("--reason", "r" * 2001, "keep it to 2000"),
    ):
        assert complaint in refused(cli, db, round_id, 2, *submit, option, bad)
    ok(cli, *submit, "--diary", " 11026/00.01.00/2025 ", "--reason", "Esityslistalla\n7.12.")
    approve = ("record", round_id, "alpha", "approve", "--at", "2026-12-07T18:00")
    ref = ("--ref", "Kunnanhallitus 07.12.2026 § 3")
    assert "on one line" in refused(
        cli, db, round_id, 2, *approve, "--ref", "Kunnanhallitus\r 07.12.2026 § 3"
    )
    ok(cli, *approve, *ref, "--diary", "ROIDno-2021-4378")
    entries = log_entries(db, round_id)
    assert [e["evidence"].get("diary") for e in entries[1:]] == [
        "11026/00.01.00/2025",
        "ROIDno-2021-4378",
    ]
    assert entries[1]["evidence"]["reason"] == "Esityslistalla\n7.12."
    assert len(verify_database(db, round_id)) == 1
    from engine.persistence import outbox
    from engine.persistence.database import transaction
    from engine.runtime.messages import rendered

    # A receipt is rendered when it is sent: what it will say, from what was queued.
    with transaction(db) as session:
        rows = [r for r in outbox.messages(session, "pending") if r.kind == "receipt"]
        first = rendered(None, rows[0]).text
    assert "Diaarinumero" in first
    assert "11026/00.01.00/2025" in first
    # Only the events of a body's handling take one.
    sign = sign_args(round_id, "alpha", "Aino", "2026-12-08T10:00")
    assert "does not take --diary" in refused(cli, db, round_id, 2, *sign, "--diary", "1/2026")


def test_a_decision_cannot_predate_the_text_it_decides_on(
    cli: CLI, db: Engine, agreement_file: MakeAgreement, tmp_path: Path
) -> None:
    round_id = launch(cli, agreement_file(), "2026-12-01T09:00")
    rec(db, "record", round_id, "alpha", "submit", "--at", "2026-12-01T10:00")
    approve = ("record", round_id, "alpha", "approve", "--at", "2026-12-03T18:00")
    message = refused(cli, db, round_id, 2, *approve, "--ref", "Kunnanhallitus 30.11.2026 § 1")
    assert "dated before the text it decides on was put to the parties (01.12.2026)" in message
    ok(cli, "record", round_id, "alpha", "return", "--reason", "x", "--ref",
       "Kunnanhallitus 01.12.2026 § 2", "--at", "2026-12-02T18:00")  # fmt: skip
    new_text = tmp_path / "v2.md"
    new_text.write_text("The amended text.\n", "utf-8")
    ok(cli, "amend", round_id, str(new_text), "--reason", "fix", "--at", "2026-12-10T09:00")
    rec(db, "record", round_id, "alpha", "submit", "--at", "2026-12-10T10:00")
    approve = ("record", round_id, "alpha", "approve", "--at", "2026-12-14T18:00")
    message = refused(cli, db, round_id, 2, *approve, "--ref", "Kunnanhallitus 09.12.2026 § 3")
    assert "(10.12.2026)" in message
    ok(cli, *approve, "--ref", "Kunnanhallitus 14.12.2026 § 4")
    assert len(verify_database(db, round_id)) == 1


# --- signatures ----------------------------------------------------------------------------------


def test_signing_before_approval_is_refused(
    cli: CLI, db: Engine, agreement_file: MakeAgreement
) -> None:
    round_id = launch(cli, agreement_file([{"id": "alpha", "name": "Alpha", **NO_WAIT}]))
    message = refused(cli, db, round_id, 1, *sign_args(round_id, "alpha", "Aino", "2026-12-02"))
    assert "draft" in message
    rec(db, "record", round_id, "alpha", "submit", "--at", "2026-12-02T09:00")
    message = refused(
        cli, db, round_id, 1, *sign_args(round_id, "alpha", "Aino", "2026-12-02T10:00")
    )
    assert "board_review" in message
    # sign needs both a signatory and a title.
    refused(
        cli,
        db,
        round_id,
        2,
        "record",
        round_id,
        "alpha",
        "sign",
        "--signatory",
        "Aino",
        "--at",
        "2026-12-02T10:00",
    )
    refused(
        cli,
        db,
        round_id,
        2,
        "record",
        round_id,
        "alpha",
        "sign",
        "--title",
        "Mayor",
        "--at",
        "2026-12-02T10:00",
    )
    assert states(db, round_id) == {"alpha": "board_review"}


def test_same_signatory_twice_and_k_of_n(
    cli: CLI, db: Engine, agreement_file: MakeAgreement
) -> None:
    round_id = launch(
        cli,
        agreement_file(
            [
                {"id": "alpha", "name": "Alpha", "signatures_required": 3, **NO_WAIT},
                {"id": "beta", "name": "Beta", **NO_WAIT},
            ]
        ),
    )
    rec(db, "record", round_id, "alpha", "submit", "--at", "2026-12-02T09:00")
    rec(
        db, "record", round_id, "alpha", "approve",
        "--ref", "Kunnanhallitus 07.12.2026 § 3", "--at", "2026-12-07T18:00",
    )  # fmt: skip
    rec(db, *sign_args(round_id, "alpha", "Aino Virtanen", "2026-12-08T10:00"))
    after_one = party(db, round_id, "alpha")
    assert (after_one["state"], after_one["signatures"], after_one["signatures_required"]) == (
        "awaiting_signature",
        1,
        3,
    )
    for same in ("Aino Virtanen", "aino virtanen", "AINO   VIRTANEN", " Aino Virtanen "):
        message = refused(
            cli, db, round_id, 1, *sign_args(round_id, "alpha", same, "2026-12-08T11:00")
        )
        assert "already signed" in message
    rec(db, *sign_args(round_id, "alpha", "Bertta Koskinen", "2026-12-09T10:00"))
    after_two = party(db, round_id, "alpha")
    assert (after_two["state"], after_two["signatures"]) == ("awaiting_signature", 2)
    refused(
        cli, db, round_id, 1, *sign_args(round_id, "alpha", "BERTTA koskinen", "2026-12-09T11:00")
    )
    ok(cli, *sign_args(round_id, "alpha", "Cecilia Nieminen", "2026-12-10T10:00"))
    after_three = party(db, round_id, "alpha")
    assert (after_three["state"], after_three["signatures"]) == ("signed", 3)
    assert after_three["signatories"] == ["Aino Virtanen", "Bertta Koskinen", "Cecilia Nieminen"]
    assert jsonable(rounds.status(db, round_id))[0]["state"] == "open"  # beta has not signed
    signs = [e for e in log_entries(db, round_id) if e["event"] == "sign"]
    assert [(e["from_state"], e["to_state"]) for e in signs] == [
        ("awaiting_signature", "awaiting_signature"),
        ("awaiting_signature", "awaiting_signature"),
        ("awaiting_signature", "signed"),
    ]
    assert [e["evidence"]["signature"] for e in signs] == [1, 2, 3]
    # A signed party is final.
    refused(cli, db, round_id, 1, *sign_args(round_id, "alpha", "Dan Dahl", "2026-12-10T11:00"))


AUTHORISED: list[dict[str, str]] = [
    {"name": "Aino Virtanen", "title": "kunnanjohtaja"},
    {"name": "Bertta Koskinen", "title": "kunnanhallituksen puheenjohtaja"},
    {"name": "Cecilia Nieminen", "title": "kunnanvaltuuston puheenjohtaja"},
]


def test_only_listed_signatories_sign_k_of_n(
    cli: CLI, db: Engine, agreement_file: MakeAgreement
) -> None:
    round_id = launch(
        cli,
        agreement_file(
            [
                {
                    "id": "alpha",
                    "name": "Alpha",
                    "signatures_required": 2,
                    "signatories": AUTHORISED,
                    **NO_WAIT,
                }
            ]
        ),
    )
    assert party(db, round_id, "alpha")["may_sign"] == AUTHORISED
    rec(db, "record", round_id, "alpha", "submit", "--at", "2026-12-02T09:00")
    rec(
        db, "record", round_id, "alpha", "approve",
        "--ref", "Kunnanhallitus 07.12.2026 § 3", "--at", "2026-12-07T18:00",
    )  # fmt: skip
    message = refused(
        cli, db, round_id, 1, *sign_args(round_id, "alpha", "Dan Dahl", "2026-12-08T10:00")
    )
    assert "Dan Dahl is not one of its authorised signatories" in message
    assert "Aino Virtanen (kunnanjohtaja)" in message
    assert "2 of them sign" in message
    assert "awaiting_signature" in message
    # A listed person signs under the name as listed; the title defaults to the listed one.
    ok(
        cli, "record", round_id, "alpha", "sign", "--signatory", "  bertta   KOSKINEN",
        "--at", "2026-12-08T10:00",
    )  # fmt: skip
    message = refused(
        cli, db, round_id, 1, *sign_args(round_id, "alpha", "Bertta Koskinen", "2026-12-08T11:00")
    )
    assert "already signed" in message
    console = Console(width=200, record=True)
    console.print(status_table(jsonable(rounds.status(db, round_id))[0]))
    assert "may sign: Aino Virtanen, Cecilia Nieminen" in console.export_text()
    ok(cli, *sign_args(round_id, "alpha", "Cecilia Nieminen", "2026-12-09T10:00"))
    after = party(db, round_id, "alpha")
    assert (after["state"], after["signatories"]) == (
        "signed",
        ["Bertta Koskinen", "Cecilia Nieminen"],
    )
    assert jsonable(rounds.status(db, round_id))[0]["state"] == "active"
    signs = [e["evidence"] for e in log_entries(db, round_id) if e["event"] == "sign"]
    assert [(e["signatory"], e["title"]) for e in signs] == [
        ("Bertta Koskinen", "kunnanhallituksen puheenjohtaja"),
        ("Cecilia Nieminen", "Mayor"),  # a title given is the one recorded
    ]
    assert log_entries(db, round_id)[0]["evidence"]["parties"][0]["signatories"] == AUTHORISED
    assert len(verify_database(db, round_id)) == 1


def test_without_a_list_anyone_named_signs_and_the_log_keeps_its_shape(
    cli: CLI, db: Engine, agreement_file: MakeAgreement
) -> None:
    round_id = launch(cli, agreement_file([{"id": "alpha", "name": "Alpha", **NO_WAIT}]))
    assert party(db, round_id, "alpha")["may_sign"] == []
    assert "signatories" not in log_entries(db, round_id)[0]["evidence"]["parties"][0]


# --- closed rounds -------------------------------------------------------------------------------


def test_nothing_after_activation(
    cli: CLI, db: Engine, agreement_file: MakeAgreement, tmp_path: Path
) -> None:
    round_id = launch(cli, agreement_file([{"id": "alpha", "name": "Alpha", **NO_WAIT}]))
    rec(db, "record", round_id, "alpha", "submit", "--at", "2026-12-02T09:00")
    rec(
        db, "record", round_id, "alpha", "approve",
        "--ref", "Kunnanhallitus 07.12.2026 § 3", "--at", "2026-12-07T18:00",
    )  # fmt: skip
    rec(db, *sign_args(round_id, "alpha", "Aino", "2026-12-08T10:00"))
    assert jsonable(rounds.status(db, round_id))[0]["state"] == "active"
    new_text = tmp_path / "v2.md"
    new_text.write_text("A second text.\n", "utf-8")
    later = ("--at", "2026-12-09T10:00")
    attempts: list[tuple[str, ...]] = [
        sign_args(round_id, "alpha", "Bert", "2026-12-09T10:00"),
        ("record", round_id, "alpha", "submit", *later),
        ("record", round_id, "alpha", "return", "--reason", "again", *later),
        ("record", "test-agreement", "alpha", "appeal", "--reason", "late", *later),
        ("amend", round_id, str(new_text), "--reason", "too late", *later),
        ("cancel", round_id, "--reason", "too late", *later),
    ]
    for args in attempts:
        message = refused(cli, db, round_id, 1, *args)
        assert "active" in message, args
    ok(cli, "tick", "--at", "2027-03-01")
    assert len([e for e in log_entries(db, round_id) if e["event"] == "activate"]) == 1


def test_reject_fails_the_round(cli: CLI, db: Engine, agreement_file: MakeAgreement) -> None:
    round_id = launch(
        cli, agreement_file([{"id": "alpha", "name": "Alpha"}, {"id": "beta", "name": "Beta"}])
    )
    rec(db, "record", round_id, "alpha", "submit", "--at", "2026-12-02T09:00")
    rec(db, "record", round_id, "beta", "submit", "--at", "2026-12-02T09:00")
    base = ("record", round_id, "alpha", "reject")
    at = ("--at", "2026-12-03T18:00")
    ref = ("--ref", "Kunnanhallitus 03.12.2026 § 9")
    assert "--reason" in refused(cli, db, round_id, 2, *base, *ref, *at)
    assert "--ref" in refused(cli, db, round_id, 2, *base, "--reason", "no", *at)
    ok(cli, *base, *ref, "--reason", "We do not commit to it", *at)
    status = jsonable(rounds.status(db, round_id))[0]
    assert status["state"] == "failed"
    assert states(db, round_id) == {"alpha": "rejected", "beta": "board_review"}
    tail = log_entries(db, round_id)[-2:]
    assert [(e["event"], e["party"], e["to_state"]) for e in tail] == [
        ("reject", "alpha", "rejected"),
        ("fail", None, "failed"),
    ]
    for args in (
        (
            "record",
            round_id,
            "beta",
            "approve",
            "--ref",
            "Kunnanhallitus 04.12.2026 § 2",
            "--at",
            "2026-12-04T18:00",
        ),
        ("record", round_id, "alpha", "submit", "--at", "2026-12-04T18:00"),
        ("cancel", round_id, "--reason", "it failed", "--at", "2026-12-04T18:00"),
    ):
        assert "failed" in refused(cli, db, round_id, 1, *args)


def test_nothing_after_cancel(
    cli: CLI, db: Engine, agreement_file: MakeAgreement, tmp_path: Path
) -> None:
    path = agreement_file()
    round_id = launch(cli, path)
    rec(db, "record", round_id, "alpha", "submit", "--at", "2026-12-02T09:00")
    refused(cli, db, round_id, 2, "cancel", round_id, "--reason", "  ", "--at", "2026-12-03")
    # Launching the same agreement again while its round is open is refused.
    refused(cli, db, round_id, 1, "launch", str(path), "--at", "2026-12-03")
    ok(cli, "cancel", round_id, "--reason", "Withdrawn", "--at", "2026-12-03T10:00")
    status = jsonable(rounds.status(db, round_id))[0]
    assert status["state"] == "cancelled"
    last = log_entries(db, round_id)[-1]
    assert (last["event"], last["to_state"], last["evidence"]) == (
        "cancel",
        "cancelled",
        {"reason": "Withdrawn"},
    )
    new_text = tmp_path / "v2.md"
    new_text.write_text("Another text.\n", "utf-8")
    for args in (
        (
            "record",
            round_id,
            "alpha",
            "approve",
            "--ref",
            "Kunnanhallitus 04.12.2026 § 2",
            "--at",
            "2026-12-04T18:00",
        ),
        ("record", round_id, "alpha", "return", "--reason", "x", "--at", "2026-12-04T18:00"),
        ("amend", round_id, str(new_text), "--at", "2026-12-04T18:00"),
        ("cancel", round_id, "--reason", "twice", "--at", "2026-12-04T18:00"),
    ):
        assert "cancelled" in refused(cli, db, round_id, 1, *args)
    # A cancelled round no longer blocks a new one.
    assert launch(cli, path, "2026-12-05") == "test-agreement/2"
    assert jsonable(rounds.status(db, round_id))[0]["state"] == "cancelled"


# --- invalid input -------------------------------------------------------------------------------


def test_at_may_not_go_back_before_the_latest_entry(
    cli: CLI, db: Engine, agreement_file: MakeAgreement, tmp_path: Path
) -> None:
    round_id = launch(cli, agreement_file())
    rec(db, "record", round_id, "alpha", "submit", "--at", "2026-12-05T12:00")
    new_text = tmp_path / "v2.md"
    new_text.write_text("Another text.\n", "utf-8")
    for args in (
        ("record", round_id, "alpha", "return", "--reason", "x", "--at", "2026-12-05T11:59"),
        (
            "record",
            round_id,
            "alpha",
            "approve",
            "--ref",
            "Kunnanhallitus 04.12.2026 § 1",
            "--at",
            "2026-12-04",
        ),
        ("amend", round_id, str(new_text), "--at", "2026-12-05T11:00"),
        ("cancel", round_id, "--reason", "x", "--at", "2026-12-01"),
        ("record", round_id, "alpha", "return", "--reason", "x", "--at", "not-a-time"),
    ):
        refused(cli, db, round_id, 2, *args)
    # A typo is reported as a typo, even at a time that would be refused too.
    stale = ("--at", "2026-12-01T10:00")
    assert "no party 'alfa'" in refused(
        cli, db, round_id, 2, "record", round_id, "alfa", "submit", *stale
    )
    assert "unknown event 'aprove'" in refused(
        cli, db, round_id, 2, "record", round_id, "alpha", "aprove", *stale
    )
    assert "before round" in refused(
        cli, db, round_id, 2, "record", round_id, "alpha", "return", "--reason", "x", *stale
    )
    # The same moment as the latest entry is not going back.
    ok(cli, "record", round_id, "alpha", "return", "--reason", "x", "--at", "2026-12-05T12:00")


def test_a_tick_with_nothing_due_is_no_error_whatever_its_time(
    cli: CLI, db: Engine, agreement_file: MakeAgreement
) -> None:
    round_id = launch(cli, agreement_file())
    rec(db, "record", round_id, "alpha", "submit", "--at", "2026-12-02T09:00")
    rec(
        db, "record", round_id, "alpha", "approve",
        "--ref", "Kunnanhallitus 04.12.2026 § 1", "--at", "2026-12-04T18:00",
    )  # fmt: skip
    final = party(db, round_id, "alpha")
    assert final["legal_force_from"] == "2026-12-29"
    rec(db, "record", round_id, "alpha", "appeal", "--reason", "x", "--at", "2027-01-05T09:00")
    rec(db, "record", round_id, "alpha", "appeal-resolved", "--at", "2027-01-10T09:00")
    # Nothing waits now; a tick at any time moves nothing and is no error.
    assert ok(cli, "tick", "--at", "2026-12-30", "--json").json() == []


def test_a_tick_at_a_time_before_the_latest_entry_with_a_party_due_is_refused(
    cli: CLI, db: Engine, agreement_file: MakeAgreement
) -> None:
    round_id = launch(
        cli, agreement_file([{"id": "alpha", "name": "Alpha"}, {"id": "beta", "name": "Beta"}])
    )
    rec(db, "record", round_id, "alpha", "submit", "--at", "2026-12-02T09:00")
    rec(
        db, "record", round_id, "alpha", "approve",
        "--ref", "Kunnanhallitus 04.12.2026 § 1", "--at", "2026-12-04T18:00",
    )  # fmt: skip
    rec(db, "record", round_id, "beta", "submit", "--at", "2027-01-07T09:00")
    message = refused(cli, db, round_id, 2, "tick", "--at", "2026-12-30")
    assert "before round test-agreement/1's latest entry" in message
    assert "give --at a later time" in message
    moved = ok(cli, "tick", "--at", "2027-01-07T10:00", "--json").json()
    assert [(m["party"], m["to_state"]) for m in moved] == [("alpha", "awaiting_signature")]


def test_unknown_names_are_invalid_input(
    cli: CLI, db: Engine, agreement_file: MakeAgreement
) -> None:
    round_id = launch(
        cli, agreement_file([{"id": "alpha", "name": "Alpha", "bodies": ["Kunnanhallitus"]}])
    )
    at = ("--at", "2026-12-02T09:00")
    message = refused(cli, db, round_id, 2, "record", round_id, "gamma", "submit", *at)
    assert "gamma" in message
    assert "alpha" in message
    refused(cli, db, round_id, 2, "record", "no-such-agreement", "alpha", "submit", *at)
    refused(cli, db, round_id, 2, "record", "test-agreement/7", "alpha", "submit", *at)
    refused(cli, db, round_id, 2, "record", round_id, "alpha", "ratify", *at)
    refused(cli, db, round_id, 2, "record", round_id, "alpha", "legal-force", *at)
    refused(cli, db, round_id, 2, "status", "no-such-agreement")
    # legal-force stays tick's own even when the party waits for it and the date has come.
    rec(db, "record", round_id, "alpha", "submit", *at)
    rec(
        db, "record", round_id, "alpha", "approve",
        "--ref", "Kunnanhallitus 07.12.2026 § 1", "--at", "2026-12-07T18:00",
    )  # fmt: skip
    assert states(db, round_id) == {"alpha": "legal_force_wait"}
    refused(cli, db, round_id, 2, "record", round_id, "alpha", "legal-force", "--at", "2027-01-15")
    assert states(db, round_id) == {"alpha": "legal_force_wait"}


def test_runtime_api_refusals_raise_and_write_nothing(
    db: Engine, clock: FakeClock, agreement_file: MakeAgreement
) -> None:
    agreement = load_agreement(agreement_file([{"id": "alpha", "name": "Alpha", **NO_WAIT}]))
    round_id = rounds.launch(db, agreement, clock, "tester").round
    before = trace(db, round_id)
    cases: list[tuple[type[Exception], str, str, Evidence]] = [
        (TransitionRefused, "alpha", "sign", Evidence(signatory="A", title="B")),
        (TransitionRefused, "alpha", "approve", Evidence(ref="Kunnanhallitus 01.12.2026 § 1")),
        (InvalidInput, "alpha", "approve", Evidence()),
        (InvalidInput, "alpha", "legal-force", Evidence()),
        (InvalidInput, "alpha", "vote", Evidence()),
        (NotFound, "omega", "submit", Evidence()),
    ]
    for error, party_id, event, evidence in cases:
        with pytest.raises(error):
            events.record(db, round_id, party_id, event, evidence, clock, "tester")
        assert trace(db, round_id) == before, (party_id, event)
    with pytest.raises(NotFound):
        events.record(db, "nothing/1", "alpha", "submit", Evidence(), clock, "tester")
    clock.advance(days=1)
    rounds.cancel(db, round_id, "stop", clock, "tester")
    after_cancel = trace(db, round_id)
    with pytest.raises(RoundClosed):
        events.record(db, round_id, "alpha", "submit", Evidence(), clock, "tester")
    assert trace(db, round_id) == after_cancel


# --- return, reject, appeal ----------------------------------------------------------------------


def test_return_to_draft_and_submit_again(
    cli: CLI, db: Engine, agreement_file: MakeAgreement
) -> None:
    round_id = launch(
        cli,
        agreement_file(
            [
                {
                    "id": "alpha",
                    "name": "Alpha",
                    "bodies": ["Kaupunginhallitus", "Kaupunginvaltuusto"],
                }
            ]
        ),
    )
    refused(
        cli,
        db,
        round_id,
        1,
        "record",
        round_id,
        "alpha",
        "return",
        "--reason",
        "x",
        "--at",
        "2026-12-02",
    )
    rec(db, "record", round_id, "alpha", "submit", "--at", "2026-12-02T09:00")
    rec(
        db, "record", round_id, "alpha", "approve",
        "--ref", "Kaupunginhallitus 07.12.2026 § 3", "--at", "2026-12-07T18:00",
    )  # fmt: skip
    assert states(db, round_id) == {"alpha": "council_review"}
    assert party(db, round_id, "alpha")["body"] == "Kaupunginvaltuusto"
    assert "--reason" in refused(
        cli, db, round_id, 2, "record", round_id, "alpha", "return", "--at", "2026-12-14"
    )
    ok(
        cli, "record", round_id, "alpha", "return",
        "--reason", "Needs a cost estimate", "--ref", "Kaupunginvaltuusto 14.12.2026 § 40",
        "--at", "2026-12-14T20:00",
    )  # fmt: skip
    alpha = party(db, round_id, "alpha")
    assert (alpha["state"], alpha["body"]) == ("draft", "Kaupunginhallitus")
    last = log_entries(db, round_id)[-1]
    assert (last["event"], last["from_state"], last["to_state"]) == (
        "return",
        "council_review",
        "draft",
    )
    assert last["evidence"]["reason"] == "Needs a cost estimate"
    rec(db, "record", round_id, "alpha", "submit", "--at", "2026-12-15T09:00")
    # Back at the start: the board reviews it first again.
    assert party(db, round_id, "alpha")["state"] == "board_review"
    refused(
        cli, db, round_id, 1, "record", round_id, "alpha", "approve",
        "--ref", "Kaupunginvaltuusto 15.12.2026 § 41", "--at", "2026-12-15T18:00",
    )  # fmt: skip
    rec(
        db, "record", round_id, "alpha", "approve",
        "--ref", "Kaupunginhallitus 15.12.2026 § 8", "--at", "2026-12-15T18:00",
    )  # fmt: skip
    assert states(db, round_id) == {"alpha": "council_review"}


def test_appeal_holds_the_party_until_resolved(
    cli: CLI, db: Engine, agreement_file: MakeAgreement
) -> None:
    round_id = launch(cli, agreement_file())
    refused(
        cli,
        db,
        round_id,
        1,
        "record",
        round_id,
        "alpha",
        "appeal",
        "--reason",
        "x",
        "--at",
        "2026-12-02",
    )
    rec(db, "record", round_id, "alpha", "submit", "--at", "2026-12-02T09:00")
    refused(
        cli,
        db,
        round_id,
        1,
        "record",
        round_id,
        "alpha",
        "appeal",
        "--reason",
        "x",
        "--at",
        "2026-12-02T10:00",
    )
    rec(
        db, "record", round_id, "alpha", "approve",
        "--ref", "Kunnanhallitus 07.12.2026 § 1", "--at", "2026-12-07T18:00",
    )  # fmt: skip
    assert "--reason" in refused(
        cli, db, round_id, 2, "record", round_id, "alpha", "appeal", "--at", "2026-12-10"
    )
    refused(
        cli, db, round_id, 1, "record", round_id, "alpha", "appeal-resolved", "--at", "2026-12-10"
    )
    ok(
        cli, "record", round_id, "alpha", "appeal",
        "--reason", "A resident appealed to the administrative court", "--at", "2026-12-20T10:00",
    )  # fmt: skip
    assert states(db, round_id) == {"alpha": "appeal_pending"}
    # The appeal period has ended, but the appeal holds the party.
    ran = ok(cli, "tick", "--at", "2027-01-05")
    assert "0 parties moved" in ran.stdout
    assert states(db, round_id) == {"alpha": "appeal_pending"}
    refused(cli, db, round_id, 1, *sign_args(round_id, "alpha", "Aino", "2027-01-05T10:00"))
    ok(
        cli, "record", round_id, "alpha", "appeal-resolved",
        "--reason", "The court dismissed the appeal", "--at", "2027-02-01T10:00",
    )  # fmt: skip
    assert states(db, round_id) == {"alpha": "awaiting_signature"}
    rec(db, *sign_args(round_id, "alpha", "Aino", "2027-02-02T10:00"))
    assert jsonable(rounds.status(db, round_id))[0]["state"] == "active"
    events_seen = [(e["event"], e["from_state"], e["to_state"]) for e in log_entries(db, round_id)]
    assert ("appeal", "legal_force_wait", "appeal_pending") in events_seen
    assert ("appeal-resolved", "appeal_pending", "awaiting_signature") in events_seen
    assert "legal-force" not in [e for e, _, _ in events_seen]


# --- legal force ---------------------------------------------------------------------------------


def test_legal_force_on_a_working_day(cli: CLI, db: Engine, agreement_file: MakeAgreement) -> None:
    round_id = launch(cli, agreement_file())
    rec(db, "record", round_id, "alpha", "submit", "--at", "2026-12-02T09:00")
    rec(
        db, "record", round_id, "alpha", "approve",
        "--ref", "Kunnanhallitus 07.12.2026 § 1", "--at", "2026-12-07T18:00",
    )  # fmt: skip
    alpha = party(db, round_id, "alpha")
    # 7.12. + 7 days' notice + 14 days = Mon 28.12., a working day: final from 29.12.
    assert (alpha["state"], alpha["legal_force_from"]) == ("legal_force_wait", "2026-12-29")
    assert log_entries(db, round_id)[-1]["evidence"]["legal_force_from"] == "2026-12-29"
    message = refused(
        cli, db, round_id, 1, *sign_args(round_id, "alpha", "Aino", "2026-12-28T10:00")
    )
    assert "29.12.2026" in message or "2026-12-29" in message
    before = trace(db, round_id)
    ran = ok(cli, "tick", "--at", "2026-12-28T23:59")
    assert "0 parties moved" in ran.stdout
    assert trace(db, round_id) == before
    ok(cli, "tick", "--at", "2026-12-29")
    assert states(db, round_id) == {"alpha": "awaiting_signature"}
    last = log_entries(db, round_id)[-1]
    assert (last["event"], last["party"], last["from_state"], last["to_state"], last["clock"]) == (
        "legal-force",
        "alpha",
        "legal_force_wait",
        "awaiting_signature",
        "at",
    )
    assert last["evidence"]["legal_force_from"] == "2026-12-29"
    # A second tick has nothing left to do.
    length = len(log_entries(db, round_id))
    ok(cli, "tick", "--at", "2026-12-30")
    assert len(log_entries(db, round_id)) == length
    rec(db, *sign_args(round_id, "alpha", "Aino", "2026-12-30T10:00"))
    assert jsonable(rounds.status(db, round_id))[0]["state"] == "active"


def test_legal_force_moves_past_weekends_and_holidays(
    cli: CLI, db: Engine, agreement_file: MakeAgreement
) -> None:
    round_id = launch(
        cli,
        agreement_file(
            [
                # 4.12. + 21 = Fri 25.12. Christmas Day, 26.12. Boxing Day (a Saturday),
                # Sun 27.12.: the period ends Mon 28.12., final from 29.12.
                {"id": "christmas", "name": "Christmas"},
                # 16.12. + 21 = Wed 6.1.2027 Epiphany: ends Thu 7.1., final from 8.1.
                {"id": "epiphany", "name": "Epiphany"},
                # A council's 30 days, from the council's decision: 3.12. + 37 = Sat 9.1.2027,
                # Sun 10.1.: ends Mon 11.1., final from 12.1.
                {
                    "id": "council",
                    "name": "Council",
                    "bodies": ["Kaupunginhallitus", "Kaupunginvaltuusto"],
                },
                # A body the workflow does not know, with its own appeal period: 9.12. + 7 + 21
                # = Wed 6.1.2027 Epiphany: ends Thu 7.1., final from 8.1.
                {
                    "id": "custom",
                    "name": "Custom",
                    "bodies": [{"name": "Yhtymähallitus", "appeal_days": 21}],
                },
            ]
        ),
    )
    for pid in ("christmas", "epiphany", "council", "custom"):
        rec(db, "record", round_id, pid, "submit", "--at", "2026-12-01T10:00")
    rec(
        db,
        "record",
        round_id,
        "council",
        "approve",
        "--ref",
        "Kaupunginhallitus 01.12.2026 § 1",
        "--at",
        "2026-12-01T18:00",
    )
    council = party(db, round_id, "council")
    assert (council["state"], council["legal_force_from"]) == ("council_review", None)
    rec(
        db,
        "record",
        round_id,
        "council",
        "approve",
        "--ref",
        "Kaupunginvaltuusto 03.12.2026 § 2",
        "--at",
        "2026-12-03T20:00",
    )
    rec(
        db,
        "record",
        round_id,
        "christmas",
        "approve",
        "--ref",
        "Kunnanhallitus 04.12.2026 § 3",
        "--at",
        "2026-12-04T18:00",
    )
    rec(
        db,
        "record",
        round_id,
        "custom",
        "approve",
        "--ref",
        "Yhtymähallitus 09.12.2026 § 5",
        "--at",
        "2026-12-09T18:00",
    )
    rec(
        db,
        "record",
        round_id,
        "epiphany",
        "approve",
        "--ref",
        "Kunnanhallitus 16.12.2026 § 4",
        "--at",
        "2026-12-16T18:00",
    )
    expected = {
        "christmas": "2026-12-29",
        "epiphany": "2027-01-08",
        "council": "2027-01-12",
        "custom": "2027-01-08",
    }
    parties = jsonable(rounds.status(db, round_id))[0]["parties"]
    assert {p["id"]: p["legal_force_from"] for p in parties} == expected
    assert {p["state"] for p in parties} == {"legal_force_wait"}

    def tick_moves(at: str) -> list[str]:
        before = len(log_entries(db, round_id))
        ok(cli, "tick", "--at", at)
        new = log_entries(db, round_id)[before:]
        assert all(e["event"] == "legal-force" for e in new)
        return sorted(str(e["party"]) for e in new)

    assert tick_moves("2026-12-28T23:59") == []
    assert tick_moves("2026-12-29T00:00") == ["christmas"]
    assert tick_moves("2027-01-07T23:59") == []
    assert tick_moves("2027-01-08T08:00") == ["custom", "epiphany"]
    assert tick_moves("2027-01-11T23:59") == []
    assert tick_moves("2027-01-12T00:01") == ["council"]
    assert set(states(db, round_id).values()) == {"awaiting_signature"}


# --- amend ---------------------------------------------------------------------------------------


def test_amend_reopens_exactly_the_parties_that_had_approved(
    cli: CLI, db: Engine, agreement_file: MakeAgreement, tmp_path: Path
) -> None:
    fast = {"workflow": "municipality", **NO_WAIT}
    path = agreement_file(
        [
            {"id": "drafting", "name": "Drafting"},
            {"id": "reviewing", "name": "Reviewing"},
            {"id": "waiting", "name": "Waiting"},
            {"id": "unsigned", "name": "Unsigned", "signatures_required": 2, **fast},
            {"id": "signed", "name": "Signed", **fast},
            {
                "id": "council",
                "name": "Council",
                "bodies": ["Kaupunginhallitus", "Kaupunginvaltuusto"],
            },
        ]
    )
    round_id = launch(cli, path)
    old_sha = jsonable(rounds.status(db, round_id))[0]["document_sha256"]
    assert old_sha == hashlib.sha256(b"The agreement's text.\n").hexdigest()
    for pid in ("reviewing", "waiting", "unsigned", "signed", "council"):
        rec(db, "record", round_id, pid, "submit", "--at", "2026-12-02T09:00")
    for pid, body in (
        ("waiting", "Kunnanhallitus"),
        ("unsigned", "Kunnanhallitus"),
        ("signed", "Kunnanhallitus"),
        ("council", "Kaupunginhallitus"),
    ):
        rec(
            db,
            "record",
            round_id,
            pid,
            "approve",
            "--ref",
            f"{body} 07.12.2026 § 1",
            "--at",
            "2026-12-07T18:00",
        )
    rec(db, *sign_args(round_id, "unsigned", "Aino", "2026-12-08T10:00"))
    rec(db, *sign_args(round_id, "signed", "Bert", "2026-12-08T10:00"))
    assert states(db, round_id) == {
        "drafting": "draft",
        "reviewing": "board_review",
        "waiting": "legal_force_wait",
        "unsigned": "awaiting_signature",
        "signed": "signed",
        "council": "council_review",
    }
    before = log_entries(db, round_id)
    same = tmp_path / "same.md"
    same.write_text("The agreement's text.\n", "utf-8")
    refused(
        cli, db, round_id, 2, "amend", round_id, str(same), "--reason", "x", "--at", "2026-12-09"
    )
    refused(
        cli, db, round_id, 2, "amend", round_id, str(tmp_path / "missing.md"), "--at", "2026-12-09"
    )

    new_text = "The agreement's text, with § 4 rewritten.\n"
    new_doc = tmp_path / "new.md"
    new_doc.write_text(new_text, "utf-8")
    new_sha = hashlib.sha256(new_text.encode()).hexdigest()
    ok(
        cli,
        "amend",
        round_id,
        str(new_doc),
        "--reason",
        "§ 4 rewritten",
        "--at",
        "2026-12-09T12:00",
    )

    status = jsonable(rounds.status(db, round_id))[0]
    assert status["document_sha256"] == new_sha
    assert status["state"] == "open"
    reopened = {"waiting", "unsigned", "signed", "council"}
    assert states(db, round_id) == {
        "drafting": "draft",
        "reviewing": "board_review",
        **{pid: "draft" for pid in reopened},
    }
    for p in status["parties"]:
        if p["id"] in reopened:
            assert (p["signatures"], p["legal_force_from"]) == (0, None), p
    new_entries = log_entries(db, round_id)[len(before) :]
    amend_by_party: dict[str, list[Entry]] = {}
    for e in new_entries:
        assert e["event"] == "amend"
        if e["party"] is not None:
            amend_by_party.setdefault(e["party"], []).append(e)
    assert set(amend_by_party) == reopened
    assert all(len(v) == 1 for v in amend_by_party.values())
    assert amend_by_party["signed"][0]["from_state"] == "signed"
    assert amend_by_party["waiting"][0]["from_state"] == "legal_force_wait"
    assert amend_by_party["council"][0]["from_state"] == "council_review"
    assert all(
        e["to_state"] == "draft" and e["evidence"].get("reason") for e in new_entries if e["party"]
    )
    # Entries before the amendment stay on the old text.
    assert {e["document_sha256"] for e in before} == {old_sha}

    # Amending again with the now current text is refused.
    refused(cli, db, round_id, 2, "amend", round_id, str(new_doc), "--at", "2026-12-10")

    # The approvals from now on are approvals of the new text.
    rec(db, "record", round_id, "signed", "submit", "--at", "2026-12-10T09:00")
    rec(
        db,
        "record",
        round_id,
        "reviewing",
        "approve",
        "--ref",
        "Kunnanhallitus 10.12.2026 § 2",
        "--at",
        "2026-12-10T18:00",
    )
    rec(
        db,
        "record",
        round_id,
        "signed",
        "approve",
        "--ref",
        "Kunnanhallitus 10.12.2026 § 3",
        "--at",
        "2026-12-10T18:00",
    )
    approvals = [e for e in log_entries(db, round_id) if e["event"] == "approve"]
    assert [e["document_sha256"] for e in approvals][-2:] == [new_sha, new_sha]
    assert all(e["document_sha256"] == old_sha for e in approvals[:-2])
    verify_database(db, round_id)


# --- activation and the clock --------------------------------------------------------------------


def test_activation_uses_the_local_date_of_the_last_signature(
    cli: CLI, db: Engine, agreement_file: MakeAgreement
) -> None:
    round_id = launch(
        cli,
        agreement_file(
            [{"id": "alpha", "name": "Alpha", **NO_WAIT}, {"id": "beta", "name": "Beta", **NO_WAIT}]
        ),
    )
    for pid in ("alpha", "beta"):
        rec(db, "record", round_id, pid, "submit", "--at", "2026-12-02T09:00")
    for pid in ("alpha", "beta"):
        rec(
            db,
            "record",
            round_id,
            pid,
            "approve",
            "--ref",
            "Kunnanhallitus 07.12.2026 § 1",
            "--at",
            "2026-12-07T18:00",
        )
    rec(db, *sign_args(round_id, "alpha", "Aino", "2026-12-31T23:30"))
    assert jsonable(rounds.status(db, round_id))[0]["state"] == "open"
    # 01:30 on New Year's Day in Helsinki is still 31.12. 23:30 in UTC.
    ran = ok(cli, *sign_args(round_id, "beta", "Bert", "2027-01-01T01:30"), "--json")
    assert ran.json()["round_state"] == "active"
    assert ran.json()["effective_date"] == "2027-01-01"
    status = jsonable(rounds.status(db, round_id))[0]
    assert (status["state"], status["effective_date"], status["signed"]) == (
        "active",
        "2027-01-01",
        2,
    )
    entries = log_entries(db, round_id)
    sign, activate = entries[-2:]
    assert (sign["event"], sign["party"], sign["to_state"]) == ("sign", "beta", "signed")
    assert (activate["event"], activate["party"], activate["to_state"]) == (
        "activate",
        None,
        "active",
    )
    assert activate["recorded_at"] == sign["recorded_at"] == "2026-12-31T23:30:00.000000Z"
    assert activate["seq"] == sign["seq"] + 1
    assert activate["evidence"]["effective_date"] == "2027-01-01"
    assert [e["event"] for e in entries].count("activate") == 1
    verify_database(db, round_id)


def test_each_entry_records_where_its_time_came_from(
    cli: CLI, db: Engine, agreement_file: MakeAgreement
) -> None:
    helsinki = ZoneInfo("Europe/Helsinki")
    launched = cli(
        "launch", str(agreement_file([{"id": "alpha", "name": "Alpha", **NO_WAIT}])), "--json"
    )
    assert launched.exit_code == 0, launched.stderr
    round_id = launched.json()["round"]
    # After the system clock's moment, whatever the real date is.
    later = datetime.now(helsinki) + timedelta(days=1)
    ok(cli, "record", round_id, "alpha", "submit", "--at", later.strftime("%Y-%m-%dT%H:%M"))
    entries = log_entries(db, round_id)
    assert [(e["event"], e["clock"]) for e in entries] == [("launch", "system"), ("submit", "at")]
    launched_at = datetime.fromisoformat(entries[0]["recorded_at"].replace("Z", "+00:00"))
    assert abs(launched_at - datetime.now(helsinki)) < timedelta(minutes=5)
    # Without --at now, the system clock is behind the latest entry: going back is refused.
    refused(cli, db, round_id, 2, "record", round_id, "alpha", "return", "--reason", "x")


def test_activation_date_is_local_to_the_rounds_timezone(
    db: Engine, clock: FakeClock, agreement_file: MakeAgreement
) -> None:
    path = agreement_file(
        [{"id": "alpha", "name": "Alpha", **NO_WAIT}],
        agreement={"id": "new-york", "timezone": "America/New_York"},
    )
    round_id = rounds.launch(db, load_agreement(path), clock, "tester").round
    events.record(db, round_id, "alpha", "submit", Evidence(), clock, "tester")
    clock.advance(days=1)
    ref = Evidence(ref="Kunnanhallitus 02.12.2026 § 1")
    events.record(db, round_id, "alpha", "approve", ref, clock, "tester")
    # 23:30 on New Year's Eve in New York is already 1.1.2027 04:30 in UTC.
    clock.set(datetime(2026, 12, 31, 23, 30, tzinfo=ZoneInfo("America/New_York")))
    signed = jsonable(
        events.record(
            db, round_id, "alpha", "sign", Evidence(signatory="Al", title="Mayor"), clock, "tester"
        )
    )
    assert (signed["round_state"], signed["effective_date"]) == ("active", "2026-12-31")
    status = jsonable(rounds.status(db, round_id))[0]
    assert (status["state"], status["effective_date"]) == ("active", "2026-12-31")
    sign, activate = log_entries(db, round_id)[-2:]
    assert (sign["event"], activate["event"]) == ("sign", "activate")
    assert sign["recorded_at"] == activate["recorded_at"] == "2027-01-01T04:30:00.000000Z"
    assert activate["evidence"]["effective_date"] == "2026-12-31"
    assert all(e["clock"] == "at" for e in log_entries(db, round_id))
