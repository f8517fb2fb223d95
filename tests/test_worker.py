"""The worker and the outbox commands: two workers at once, `ratify worker` (once, and as a real
process stopped by SIGTERM), `ratify outbox` and `ratify smtp-sink`, with a real SMTP server."""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

from sqlalchemy import Engine

from engine.agreement import load_agreement
from engine.clock import FakeClock, FixedClock, SystemClock
from engine.persistence.database import connect
from engine.runtime.audit import log_entries, verify_database
from engine.runtime.rounds import launch
from engine.runtime.worker import tick_once
from notifications.mailer import Mailer
from tests.conftest import CLI
from tests.smtp import HOST, SmtpServer, unused_port
from tests.test_reminders import at, party, rows

FROM = "ratify@example.invalid"
RATIFY = str(Path(sys.executable).parent / "ratify")
ALPHA = "kim@alpha.example.invalid"
BETA = "bea@beta.example.invalid"
CORA = "cora@example.invalid"

Agreements = Callable[..., Path]


def poll(done: Callable[[], bool], timeout: float, what: str) -> None:
    """Wait until ``done()`` (for a subprocess), at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def stop(proc: subprocess.Popen[str], timeout: float = 20.0) -> tuple[str, str]:
    """SIGTERM ``proc``; its output once it has exited (killed, and the test failed, if not)."""
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError(f"the process did not exit within {timeout} s of SIGTERM") from None


def listening(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


# --- two workers at once -------------------------------------------------------------------------


def test_two_workers_at_once_deliver_every_message_exactly_once(
    database_url: str,
    db: Engine,
    clock: FakeClock,
    smtp: SmtpServer,
    agreement_file: Agreements,
) -> None:
    parties = [
        {
            "id": pid,
            "name": pid.capitalize(),
            "contacts": [
                {"name": "Fi", "email": f"fi@{pid}.example.invalid"},
                {"name": "Sv", "email": f"sv@{pid}.example.invalid", "language": "sv"},
                {"name": "En", "email": f"en@{pid}.example.invalid", "language": "en"},
            ],
        }
        for pid in ("alpha", "beta", "gamma", "delta")
    ]
    extra = "[reminders]\nfirst_after_days = 1\nevery_days = 1\nmax_reminders = 2\n"
    round_id = launch(
        db, load_agreement(agreement_file(parties, extra=extra)), clock, "tester"
    ).round
    # Launch Tue 1.12.; reminders Wed 2. and Thu 3., escalations Fri 4.12.; each moment twice.
    moments = [at(2026, 12, day, hour) for day in (1, 2, 3, 4, 7) for hour in (9, 9, 12)]
    barrier = threading.Barrier(2, timeout=60)
    errors: list[BaseException] = []

    def work() -> None:
        engine = connect(database_url)
        try:
            mailer = Mailer(HOST, smtp.port, timeout=10.0)
            for moment in moments:
                barrier.wait()
                tick_once(engine, FixedClock(moment), mailer, FROM)
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
    assert not any(t.is_alive() for t in threads), "a worker hung"
    assert errors == []

    sent = rows(db, "sent")
    assert len(sent) == len(rows(db)), "everything was delivered"
    kinds = Counter(r.kind for r in sent)
    assert kinds == {"invitation": 12, "reminder": 24, "escalation": 4}
    received = [r.message_id for r in smtp.received]
    duplicates = [m for m, n in Counter(received).items() if n > 1]
    assert duplicates == []
    assert len(received) == len(sent)
    assert set(received) == {r.message_id for r in sent}
    chased = [e for e in log_entries(db, round_id) if e["event"] in ("remind", "escalate")]
    assert len(chased) == kinds["reminder"] + kinds["escalation"]
    verify_database(db, round_id)


# --- ratify worker -------------------------------------------------------------------------------


def test_worker_once_at_sends_the_invitations(
    cli: CLI, smtp: SmtpServer, agreement_file: Agreements
) -> None:
    path = agreement_file([party("alpha", ALPHA), party("beta", BETA)])
    assert cli("launch", str(path), "--at", "2026-12-01T09:00").exit_code == 0
    env = {"RATIFY_SMTP_PORT": str(smtp.port), "RATIFY_SMTP_HOST": HOST}

    ran = cli("worker", "--once", "--at", "2026-12-01T09:00", env=env)
    assert ran.exit_code == 0, ran.stderr
    assert "2 sent" in ran.stdout
    assert "0 parties moved" in ran.stdout
    assert sorted(r.rcpt_tos for r in smtp.received) == [(BETA,), (ALPHA,)]

    again = cli("worker", "--once", "--at", "2026-12-01T09:00", env=env)
    assert again.exit_code == 0, again.stderr
    assert "0 sent" in again.stdout
    assert len(smtp.received) == 2


def test_worker_at_without_once_is_refused(cli: CLI) -> None:
    ran = cli("worker", "--at", "2026-12-01T09:00")
    assert ran.exit_code == 2
    assert "--once" in ran.stderr


def test_worker_process_sends_and_stops_on_sigterm(
    database_url: str, db: Engine, smtp: SmtpServer, agreement_file: Agreements
) -> None:
    path = agreement_file([party("alpha", ALPHA), party("beta", BETA)])
    launch(db, load_agreement(path), SystemClock(), "tester")  # due now, for a real clock
    env = os.environ | {
        "RATIFY_SMTP_HOST": HOST,
        "RATIFY_SMTP_PORT": str(smtp.port),
        "PYTHONUNBUFFERED": "1",
    }
    proc = subprocess.Popen(
        [RATIFY, "--db", database_url, "worker", "--interval", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        poll(lambda: len(smtp.received) >= 2 or proc.poll() is not None, 30, "the invitations")
        assert proc.poll() is None, "the worker exited on its own"
        poll(lambda: {r.state for r in rows(db)} == {"sent"}, 10, "the outbox to be marked")
    finally:
        stdout, stderr = stop(proc)
    assert proc.returncode == 0, stderr
    assert "stopped" in stdout
    assert "2 sent" in stdout
    assert sorted(r.rcpt_tos for r in smtp.received) == [(BETA,), (ALPHA,)]


# --- ratify outbox -------------------------------------------------------------------------------


def test_outbox_list_filter_and_retry(
    cli: CLI, db: Engine, clock: FakeClock, tmp_path: Path, agreement_file: Agreements
) -> None:
    path = agreement_file([party("alpha", ALPHA), party("beta", BETA)])
    assert cli("outbox").stdout.strip() == "The outbox is empty."
    launch(db, load_agreement(path), clock, "tester")
    assert cli("outbox", "--state", "failed").stdout.strip() == "No failed messages."
    pending = cli("outbox").stdout
    assert "next try" in pending
    assert "2026-12-01 07:00" in pending  # 09:00 in Helsinki: due at once
    with SmtpServer(tmp_path / "first", reject={ALPHA: "550 5.1.1 no such user"}) as first:
        tick_once(db, clock, Mailer(HOST, first.port, timeout=5.0), FROM)

    listed = cli("outbox", "--json")
    assert listed.exit_code == 0, listed.stderr
    by_kind = {(r["kind"], r["party"]): r for r in listed.json()}
    assert {k: r["state"] for k, r in by_kind.items()} == {
        ("invitation", "alpha"): "failed",
        ("invitation", "beta"): "sent",
        ("escalation", "alpha"): "sent",
    }
    assert by_kind[("escalation", "alpha")]["recipients"] == [CORA]

    failed = cli("outbox", "--state", "failed", "--json")
    assert failed.exit_code == 0, failed.stderr
    (bad,) = failed.json()
    assert bad["recipients"] == [ALPHA]
    assert "550 5.1.1 no such user" in bad["last_error"]
    table = cli("outbox")
    assert table.exit_code == 0, table.stderr
    assert "1 message failed" in table.stdout

    bogus = cli("outbox", "--state", "bogus")
    assert bogus.exit_code == 2
    assert "bogus" in bogus.stderr
    sent_id = by_kind[("invitation", "beta")]["id"]
    refused = cli("outbox", "retry", str(sent_id))
    assert refused.exit_code == 1
    assert "sent" in refused.stderr
    unknown = cli("outbox", "retry", "999999")
    assert unknown.exit_code == 2
    assert "999999" in unknown.stderr

    retried = cli("outbox", "retry", str(bad["id"]), "--at", "2026-12-01T10:00")
    assert retried.exit_code == 0, retried.stderr
    assert "pending" in retried.stdout
    assert [r["id"] for r in cli("outbox", "--state", "pending", "--json").json()] == [bad["id"]]

    clock.set(at(2026, 12, 1, 10))
    with SmtpServer(tmp_path / "second") as second:  # the address works again
        report = tick_once(db, clock, Mailer(HOST, second.port, timeout=5.0), FROM)
        assert [(s.id, s.outcome) for s in report.sent] == [(bad["id"], "sent")]
        assert [r.rcpt_tos for r in second.received] == [(ALPHA,)]
        assert second.received[0].message_id == bad["message_id"]
    after = {r["id"]: r for r in cli("outbox", "--json").json()}
    assert after[bad["id"]]["state"] == "sent"
    assert len(after) == 3, "no second bounce escalation"
    assert cli("outbox", "--state", "failed", "--json").json() == []


# --- ratify smtp-sink ----------------------------------------------------------------------------


def test_smtp_sink_process_stores_a_message_and_stops(tmp_path: Path) -> None:
    port = unused_port()
    folder = tmp_path / "mail"
    proc = subprocess.Popen(
        [RATIFY, "smtp-sink", "--port", str(port), "--dir", str(folder)],
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        poll(lambda: listening(port) or proc.poll() is not None, 30, "the sink to listen")
        assert proc.poll() is None, "the sink exited on its own"
        msg = EmailMessage()
        msg["From"] = FROM
        msg["To"] = ALPHA
        msg["Subject"] = "Hello from the test"
        msg["Message-ID"] = "<sink-test@ratify.invalid>"
        msg.set_content("Hei!\n")
        with smtplib.SMTP(HOST, port, timeout=10) as client:
            refused = client.send_message(msg)
        assert refused == {}
        poll(lambda: len(list(folder.glob("*.eml"))) == 1, 10, "the .eml file")
    finally:
        stdout, stderr = stop(proc)
    assert proc.returncode == 0, stderr
    (stored,) = folder.glob("*.eml")
    assert b"Subject: Hello from the test" in stored.read_bytes()
    assert b"Hei!" in stored.read_bytes()
    assert not list(folder.glob("*.part"))
    lines = stdout.splitlines()
    assert any(stored.name in line and "Hello from the test" in line for line in lines), stdout
    assert any(ALPHA in line for line in lines)
    assert "stopped" in stdout
    assert not listening(port)
