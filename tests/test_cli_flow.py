"""The command line end to end, on SQLite and PostgreSQL: a round from launch to activation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.conftest import CLI


def test_two_parties_from_launch_to_activation(
    cli: CLI, agreement_file: Callable[..., Path]
) -> None:
    path = agreement_file(
        [
            {"id": "alpha", "name": "Alpha", "await_legal_force": False},
            {
                "id": "beta",
                "name": "Beta",
                "bodies": ["Kaupunginhallitus", "Kaupunginvaltuusto"],
                "signatures_required": 2,
                "await_legal_force": False,
            },
        ]
    )
    launched = cli("launch", str(path), "--at", "2026-12-01T09:00", "--json")
    assert launched.exit_code == 0, launched.stderr
    round_id = launched.json()["round"]
    assert round_id == "test-agreement/1"

    def ok(*args: str) -> None:
        ran = cli("record", round_id, *args)
        assert ran.exit_code == 0, ran.stderr

    ok("alpha", "submit", "--at", "2026-12-02")
    ok("beta", "submit", "--at", "2026-12-02")
    ok("alpha", "approve", "--ref", "Kunnanhallitus 07.12.2026 § 5", "--at", "2026-12-07T18:00")
    ok("beta", "approve", "--ref", "Kaupunginhallitus 08.12.2026 § 7", "--at", "2026-12-08T18:00")
    status = cli("status", round_id, "--json").json()
    states = {p["id"]: p["state"] for p in status["parties"]}
    assert states == {"alpha": "awaiting_signature", "beta": "council_review"}
    ok("beta", "approve", "--ref", "Kaupunginvaltuusto 14.12.2026 § 70", "--at", "2026-12-14T20:00")
    ok("alpha", "sign", "--signatory", "Aino A", "--title", "Mayor", "--at", "2026-12-15")
    ok("beta", "sign", "--signatory", "Bert B", "--title", "Mayor", "--at", "2026-12-16")
    assert cli("status", round_id, "--json").json()["state"] == "open"
    ok("beta", "sign", "--signatory", "Cecilia C", "--title", "Chair", "--at", "2026-12-17T10:30")
    status = cli("status", "test-agreement", "--json").json()
    assert status["state"] == "active"
    assert status["effective_date"] == "2026-12-17"
    log = cli("audit", "log", round_id, "--json").json()
    assert [e["event"] for e in log][-2:] == ["sign", "activate"]
    assert [e["seq"] for e in log] == list(range(1, len(log) + 1))
    verified = cli("audit", "verify", round_id)
    assert verified.exit_code == 0, verified.stderr
    refused = cli("record", round_id, "alpha", "submit", "--at", "2026-12-18")
    assert refused.exit_code == 1
    assert "active" in refused.stderr
    assert len(cli("audit", "log", round_id, "--json").json()) == len(log)


def test_refused_event_names_state_and_allowed_events(
    cli: CLI, agreement_file: Callable[..., Path]
) -> None:
    round_id = cli("launch", str(agreement_file()), "--json").json()["round"]
    ran = cli("record", round_id, "alpha", "approve", "--ref", "Kunnanhallitus 01.12.2026 § 1")
    assert ran.exit_code == 1
    assert 'Party "alpha" is draft' in ran.stderr
    assert '"submit"' in ran.stderr
    assert len(cli("audit", "log", round_id, "--json").json()) == 1


def test_status_counts_the_rounds_email_and_worker_reports_json(
    cli: CLI, agreement_file: Callable[..., Path], tmp_path: Path
) -> None:
    from tests.smtp import SmtpServer

    round_id = cli("launch", str(agreement_file()), "--at", "2026-12-01T09:00", "--json").json()[
        "round"
    ]
    assert cli("status", round_id, "--json").json()["outbox"] == {"pending": 1}
    with SmtpServer(tmp_path / "mail") as server:
        env = {"RATIFY_SMTP_PORT": str(server.port)}
        ran = cli("worker", "--once", "--json", "--at", "2026-12-01T09:01", env=env)
        assert ran.exit_code == 0, ran.stderr
        sent = ran.json()["sent"]
        assert [(s["kind"], s["outcome"]) for s in sent] == [("invitation", "sent")]
        assert len(server.received) == 1
    assert cli("status", round_id, "--json").json()["outbox"] == {"sent": 1}
