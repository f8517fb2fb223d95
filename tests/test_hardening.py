"""Bad inputs and races: each gets a clear error or a correct outcome, never a traceback."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine

from engine.clock import FakeClock
from engine.persistence.database import connect, ensure_schema, schema_revision
from engine.runtime.audit import log_entries
from tests.conftest import CLI
from tests.smtp import SmtpServer
from tests.tampering import tamper
from tests.test_reminders import at, of_kind, party, start, tick


def test_a_replaced_text_with_its_own_hash_is_caught(
    cli: CLI, db: Engine, agreement_file: Callable[..., Path]
) -> None:
    round_id = cli("launch", str(agreement_file()), "--json").json()["round"]
    forged = "Something else entirely.\n"
    tamper(
        db,
        "UPDATE documents SET text = :t, sha256 = :h",
        t=forged,
        h=hashlib.sha256(forged.encode()).hexdigest(),
    )
    ran = cli("audit", "verify", round_id)
    assert ran.exit_code == 1
    assert "a text was replaced" in ran.stderr


def test_a_worker_back_on_a_saturday_night_waits_for_monday_morning(
    db: Engine, clock: FakeClock, agreement_file: Callable[..., Path], tmp_path: Path
) -> None:
    start(db, clock, agreement_file([party("alpha", "kim@alpha.example.invalid")]))
    with SmtpServer(tmp_path / "mail") as server:
        clock.set(at(2026, 12, 1))
        tick(db, clock, server.port)  # the invitation
        clock.set(at(2026, 12, 19, 23, 30))  # Sat: reminder 1 fell due on Tue 15.12
        tick(db, clock, server.port)
        assert of_kind(db, "reminder") == []
        clock.set(at(2026, 12, 21, 8, 59))  # Monday, before send_at
        tick(db, clock, server.port)
        assert of_kind(db, "reminder") == []
        clock.set(at(2026, 12, 21, 9, 0))
        tick(db, clock, server.port)
        (reminder,) = of_kind(db, "reminder")
        assert reminder.state == "sent"


def test_a_bounce_escalation_is_logged_when_sent(
    db: Engine, clock: FakeClock, agreement_file: Callable[..., Path], tmp_path: Path
) -> None:
    round_id = start(db, clock, agreement_file([party("alpha", "gone@alpha.example.invalid")]))
    with SmtpServer(tmp_path / "mail") as server:
        server.reject("gone@alpha.example.invalid", "550 5.1.1 no such user")
        clock.set(at(2026, 12, 1))
        tick(db, clock, server.port)  # the invitation bounces
        clock.set(at(2026, 12, 1, 9, 5))
        tick(db, clock, server.port)  # the coordinator is told
    (escalation,) = of_kind(db, "escalation")
    assert escalation.state == "sent"
    events = [
        (e["event"], e["party"], e["evidence"].get("reason")) for e in log_entries(db, round_id)
    ]
    assert ("escalate", "alpha", "bounced") in events


def test_two_bodies_must_be_a_board_then_a_council(
    cli: CLI, agreement_file: Callable[..., Path]
) -> None:
    bodies = [
        {"name": "Kunnanvaltuusto", "appeal_days": 30, "kind": "council"},
        {"name": "Tarkastuslautakunta", "appeal_days": 14, "kind": "board"},
    ]
    ran = cli("launch", str(agreement_file([{"id": "alpha", "name": "A", "bodies": bodies}])))
    assert ran.exit_code == 2
    assert "the first prepares (a board)" in " ".join(ran.stderr.split())
    assert cli("status", "--json").json() == []


def test_a_name_with_a_line_break_is_refused(cli: CLI, agreement_file: Callable[..., Path]) -> None:
    path = agreement_file()
    # TOML's \r escape: the title holds a real carriage return.
    toml = path.read_text("utf-8").replace(
        'title = "Test agreement"', 'title = "Sopimus\\rBcc: x@example.invalid"'
    )
    path.write_text(toml, "utf-8")
    ran = cli("launch", str(path))
    assert ran.exit_code == 2
    assert "control character" in ran.stderr


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(b"1\n", "not a log entry", id="not-an-object"),
        pytest.param(b'{"seq": "1"}\n', "not a log entry", id="seq-not-a-number"),
        pytest.param(b"\xff\xfe\x00garbage", "not UTF-8", id="not-utf8"),
        pytest.param(b"", "has no entries", id="empty"),
    ],
)
def test_verify_file_refuses_what_is_not_an_export(
    cli: CLI, tmp_path: Path, content: bytes, expected: str
) -> None:
    path = tmp_path / "export.jsonl"
    path.write_bytes(content)
    ran = cli("audit", "verify", "--file", str(path))
    assert ran.exit_code == 1
    assert expected in ran.stderr


def test_cli_inputs_that_used_to_crash(
    cli: CLI, agreement_file: Callable[..., Path], tmp_path: Path
) -> None:
    round_id = cli("launch", str(agreement_file()), "--json").json()["round"]
    ran = cli("audit", "export", round_id, "--output", str(tmp_path / "no" / "such" / "x.jsonl"))
    assert (ran.exit_code, "cannot write it" in ran.stderr) == (2, True)
    ran = cli("status", env={"RATIFY_SMTP_TLS": "ssl"})
    assert (ran.exit_code, "RATIFY_SMTP_TLS" in ran.stderr) == (2, True)
    ran = cli("tick", "--at", "0001-01-01")
    assert ran.exit_code == 2
    assert "--at" in ran.stderr


def test_a_password_in_a_database_url_is_never_shown(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from engine.interfaces.cli import app

    url = "postgresql+psycopg://admin:S3cretPw@127.0.0.1:1/x?connect_timeout=2"
    ran = CliRunner().invoke(app, ["--db", url, "status"])
    assert ran.exit_code == 2
    assert "S3cretPw" not in ran.stderr + ran.stdout
    assert "cannot reach the database" in ran.stderr


def _first_use_together(url: str, processes: int = 4) -> list[BaseException]:
    """What goes wrong when ``processes`` engines first use the database at the same moment."""
    engines = [connect(url) for _ in range(processes)]
    barrier = threading.Barrier(len(engines))
    failures: list[BaseException] = []

    def first_use(engine: Engine) -> None:
        barrier.wait()
        try:
            ensure_schema(engine)
        except BaseException as exc:  # collected, then asserted by the caller
            failures.append(exc)

    threads = [threading.Thread(target=first_use, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        if not failures:
            assert schema_revision(engines[0]) is not None
    finally:
        for e in engines:
            e.dispose()
    return failures


def test_processes_starting_together_on_an_empty_database_migrate_once(
    database_url: str,
) -> None:
    assert _first_use_together(database_url) == []


def test_connections_racing_to_switch_a_new_sqlite_file_to_wal_all_succeed(
    tmp_path: Path,
) -> None:
    # SQLite answers the losers of this race "database is locked" at once, without its busy
    # handler; before connect() waited for the winner, about one race in five failed.
    failures = [
        exc
        for attempt in range(25)
        for exc in _first_use_together(f"sqlite:///{tmp_path}/race-{attempt}.db")
    ]
    assert failures == []


def test_an_outbox_id_out_of_range_is_invalid_input(cli: CLI) -> None:
    for bad in ("99999999999999999999999", "0", "abc"):
        ran = cli("outbox", "retry", bad)
        assert ran.exit_code == 2, (bad, ran.stderr)
        assert "ID" in ran.stderr


def test_a_blank_actor_setting_falls_back_to_the_os_user(
    cli: CLI, agreement_file: Callable[..., Path]
) -> None:
    import getpass

    round_id = cli("launch", str(agreement_file()), "--json", env={"RATIFY_ACTOR": "   "}).json()[
        "round"
    ]
    entries = cli("audit", "log", round_id, "--json").json()
    assert entries[0]["actor"] == getpass.getuser()


def test_an_at_time_skipped_by_the_summer_time_change_is_refused(
    cli: CLI, agreement_file: Callable[..., Path]
) -> None:
    round_id = cli("launch", str(agreement_file()), "--at", "2027-03-01", "--json").json()["round"]
    ran = cli("record", round_id, "alpha", "submit", "--at", "2027-03-28T03:30")
    assert ran.exit_code == 2
    assert "does not exist in Europe/Helsinki" in ran.stderr
    assert len(cli("audit", "log", round_id, "--json").json()) == 1
    # The hour that happens twice in October is a real time (its first occurrence).
    assert cli("record", round_id, "alpha", "submit", "--at", "2027-10-31T03:30").exit_code == 0


def test_evidence_as_long_as_allowed_still_verifies(
    cli: CLI, agreement_file: Callable[..., Path]
) -> None:
    # The reference is stored reformatted ('1.12.2026§5' → '01.12.2026 § 5'), a little longer
    # than typed: replay must not hold the stored text to the input's limit.
    round_id = cli("launch", str(agreement_file()), "--at", "2026-12-01", "--json").json()["round"]
    assert cli("record", round_id, "alpha", "submit", "--at", "2026-12-01T10:00").exit_code == 0
    ref = "O" * 170 + " Kunnanhallitus 1.12.2026§5"
    ref = "O" * (200 - len(ref)) + ref
    assert len(ref) == 200
    ran = cli("record", round_id, "alpha", "approve", "--ref", ref, "--at", "2026-12-01T18:00")
    assert ran.exit_code == 0, ran.stderr
    # A reason may have lines; Windows line ends are stored as plain ones.
    appeal = ("record", round_id, "alpha", "appeal", "--at", "2026-12-02T09:00")
    assert cli(*appeal, "--reason", "first\r\nsecond").exit_code == 0
    entries = cli("audit", "log", round_id, "--json").json()
    assert entries[-1]["evidence"]["reason"] == "first\nsecond"
    verified = cli("audit", "verify", round_id)
    assert verified.exit_code == 0, verified.stderr
