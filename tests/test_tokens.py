"""`ratify token`: a token is printed once and only its hash is kept; names are given once and
are plain ASCII; a revoked token opens nothing; a round's token needs the round to exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from engine.errors import AccessDenied
from engine.persistence.database import connect
from engine.runtime.tokens import authenticate
from tests.conftest import CLI

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "kanta-hame" / "agreement.toml"
TOKEN = re.compile(r"^ratify_[A-Za-z0-9_-]{43}$")


def test_a_token_is_shown_once_and_stored_as_its_hash(cli: CLI, database_url: str) -> None:
    made = cli("token", "create", "dynasty-hml", "--role", "coordinator")
    assert made.exit_code == 0, made.stderr
    token = made.stdout.strip()
    assert TOKEN.match(token)  # alone on stdout, for a pipe into a secret store
    assert "dynasty-hml" in made.stderr
    assert "every round" in made.stderr
    engine = connect(database_url)
    try:
        assert authenticate(engine, token).role == "coordinator"
        raw = create_engine(database_url)
        with raw.connect() as conn:
            stored = [tuple(r) for r in conn.execute(text("SELECT * FROM api_tokens"))]
        raw.dispose()
        assert stored
        assert token not in repr(stored)
        assert token[7:] not in repr(stored)
        listed = cli("token", "list", "--json").json()
        assert [(t["name"], t["role"], t["round"], t["revoked_at"]) for t in listed] == [
            ("dynasty-hml", "coordinator", None, None)
        ]
        assert token not in cli("token", "list").stdout
        revoked = cli("token", "revoke", "dynasty-hml")
        assert revoked.exit_code == 0
        with pytest.raises(AccessDenied):
            authenticate(engine, token)
        assert cli("token", "list", "--json").json()[0]["revoked_at"] is not None
    finally:
        engine.dispose()


def test_a_name_is_given_once_and_is_plain_ascii(cli: CLI) -> None:
    assert cli("token", "create", "portal", "--role", "auditor").exit_code == 0
    again = cli("token", "create", "portal", "--role", "auditor")
    assert again.exit_code == 1
    assert "exists" in again.stderr
    assert "choose another" in again.stderr
    cli("token", "revoke", "portal")
    assert "revoked" in cli("token", "create", "portal", "--role", "auditor").stderr
    for bad in ("p\u043ertal", "Portal", "por tal", "portal\u200b", "_x", "", "x" * 65, "../x"):
        refused = cli("token", "create", bad, "--role", "auditor")
        assert refused.exit_code == 2, bad
        assert "a-z, 0-9" in refused.stderr
    wrong_role = cli("token", "create", "other", "--role", "party")
    assert wrong_role.exit_code == 2
    assert "coordinator, auditor" in wrong_role.stderr
    assert [t["name"] for t in cli("token", "list", "--json").json()] == ["portal"]
    assert cli("token", "revoke", "nobody").exit_code == 2


def test_a_token_for_one_round_needs_the_round(cli: CLI) -> None:
    missing = cli("token", "create", "one", "--role", "auditor", "--round", "nowhere/1")
    assert missing.exit_code == 2
    assert cli("token", "list", "--json").json() == []
    assert cli("launch", str(EXAMPLE)).exit_code == 0
    made = cli(
        "token", "create", "one", "--role", "auditor", "--round", "kanta-hame-strategic-2026"
    )
    assert made.exit_code == 0, made.stderr
    listed = cli("token", "list", "--json").json()
    assert listed[0]["round"] == "kanta-hame-strategic-2026/1"  # the agreement's latest round


@pytest.mark.parametrize(
    "token",
    [
        "",
        "ratify_",
        "ratify_" + "A" * 42,
        "x" * 10_000,
        "ratify_" + "A" * 42 + "\u00c4",
        "Bearer x",
    ],
)
def test_malformed_tokens_are_refused_before_any_query(token: str, tmp_path: Path) -> None:
    engine = connect(f"sqlite:///{tmp_path / 'never-made.db'}")
    try:
        with pytest.raises(AccessDenied) as refused:
            authenticate(engine, token)
        assert refused.value.reason == "token"
    finally:
        engine.dispose()
    assert not (tmp_path / "never-made.db").exists()  # no database was even opened
