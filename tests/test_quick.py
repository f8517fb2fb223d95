"""The command line's fast read of `ratify status` (interfaces.fast, runtime.quick,
persistence.reader, engine.environment) against the full one: the same bytes out over rounds in
every state, on SQLite and PostgreSQL; the full path whenever it is unsure; and its columns,
decoding and settings held to the tables and Settings they stand in for."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import JSON, Boolean, Date, Engine, text
from sqlmodel import Session, select

from engine.environment import CHECKS, DEFAULT_DATABASE_URL, surely_database_url
from engine.interfaces.fast import answer
from engine.persistence import reader
from engine.persistence.tables import PartyRow, RoundRow, UTCDateTime
from engine.runtime import quick_heads, quick_status
from engine.runtime.journal import snapshot
from engine.runtime.status_view import PartyFields, RoundFields, party_snapshot
from engine.settings import Settings
from tests.conftest import CLI, write_agreement


def _launch(cli: CLI, folder: Path, agreement: str, parties: list[dict[str, Any]]) -> str:
    folder.mkdir(exist_ok=True)
    path = write_agreement(folder, parties, agreement={"id": agreement, "title": agreement})
    ran = cli("launch", str(path), "--at", "2026-12-01T09:00", "--json")
    assert ran.exit_code == 0, ran.stderr
    return str(ran.json()["round"])


def _ok(cli: CLI, *args: str) -> None:
    ran = cli(*args)
    assert ran.exit_code == 0, (args, ran.stderr)


TWO = [
    {"id": "alpha", "name": "Alpha", "await_legal_force": False},
    {
        "id": "beta",
        "name": "Beta",
        "bodies": ["Kaupunginhallitus", "Kaupunginvaltuusto"],
        "signatures_required": 2,
        "await_legal_force": False,
    },
]


@pytest.fixture
def rounds(cli: CLI, tmp_path: Path) -> list[str]:
    """Rounds in every state: fresh, midway, active, amended, failed, cancelled and relaunched."""
    submit = ("submit", "--at", "2026-12-02")
    approve = ("approve", "--ref", "Kunnanhallitus 07.12.2026 § 5", "--at", "2026-12-07T18:00")
    sign = ("sign", "--signatory", "Aino A", "--title", "Mayor", "--at", "2026-12-15")
    fresh = _launch(cli, tmp_path / "fresh", "fresh", TWO)
    midway = _launch(cli, tmp_path / "midway", "midway", [*TWO, {"id": "gamma", "name": "G"}])
    _ok(cli, "record", midway, "alpha", *submit)
    _ok(cli, "record", midway, "beta", *submit)
    _ok(cli, "record", midway, "alpha", *approve)
    beta = ("--ref", "Kaupunginhallitus 08.12.2026 § 7", "--at", "2026-12-08T18:00")
    _ok(cli, "record", midway, "beta", "approve", *beta)
    _ok(cli, "record", midway, "alpha", *sign)
    active = _launch(cli, tmp_path / "active", "active", TWO[:1])
    for event in (submit, approve, sign):
        _ok(cli, "record", active, "alpha", *event)
    amended = _launch(cli, tmp_path / "amended", "amended", TWO)
    _ok(cli, "record", amended, "alpha", *submit)
    _ok(cli, "record", amended, "alpha", *approve)
    new_text = tmp_path / "amended" / "v2.md"
    new_text.write_text("The agreement's amended text.\n", "utf-8")
    _ok(cli, "amend", amended, str(new_text), "--reason", "a clause changed", "--at", "2026-12-09")
    failed = _launch(cli, tmp_path / "failed", "failed", TWO[:1])
    _ok(cli, "record", failed, "alpha", *submit)
    no = ("--ref", "Kunnanhallitus 03.12.2026 § 9", "--reason", "We do not commit to it")
    _ok(cli, "record", failed, "alpha", "reject", *no, "--at", "2026-12-03T18:00")
    cancelled = _launch(cli, tmp_path / "cancelled", "cancelled", TWO)
    _ok(cli, "cancel", cancelled, "--reason", "the text went back", "--at", "2026-12-02")
    again = _launch(cli, tmp_path / "cancelled", "cancelled", TWO)
    assert again == "cancelled/2"
    return [fresh, midway, active, amended, failed, cancelled, again]


def _fast(url: str, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    assert answer(["--db", url, "status", *args]) == 0, "the fast path did not answer"
    return capsys.readouterr().out


def test_the_fast_status_is_the_full_one_byte_for_byte(
    cli: CLI, database_url: str, rounds: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    full = cli("status", "--json")
    assert full.exit_code == 0, full.stderr
    states = {r["round"]: r["state"] for r in full.json()}
    assert set(states.values()) == {"open", "active", "failed", "cancelled"}
    assert _fast(database_url, capsys, "--json") == full.stdout
    refs = [*rounds, "fresh", "cancelled", "midway"]  # an agreement: its latest round
    for ref in refs:
        assert _fast(database_url, capsys, ref, "--json") == cli("status", ref, "--json").stdout
    assert cli("status", "cancelled", "--json").json()["round"] == "cancelled/2"
    # The table too, for every round and for one.
    assert _fast(database_url, capsys) == cli("status").stdout
    assert (
        _fast(database_url, capsys, "--json", rounds[1])
        == cli("status", rounds[1], "--json").stdout
    )


def _fast_heads(url: str, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    assert answer(["--db", url, "audit", "head", *args]) == 0, "the fast path did not answer"
    return capsys.readouterr().out


def test_the_fast_heads_are_the_full_ones_byte_for_byte(
    cli: CLI, database_url: str, rounds: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    full = cli("audit", "head", "--json")
    assert full.exit_code == 0, full.stderr
    assert [h["round"] for h in full.json()] == sorted(rounds)  # by agreement, then number
    assert _fast_heads(database_url, capsys, "--json") == full.stdout
    assert _fast_heads(database_url, capsys) == cli("audit", "head").stdout
    for ref in [*rounds, "cancelled"]:
        for args in (("--json",), ()):
            expected = cli("audit", "head", ref, *args).stdout
            assert _fast_heads(database_url, capsys, ref, *args) == expected
    assert answer(["--db", database_url, "audit", "head", "nope"]) is None
    assert answer(["--db", database_url, "audit", "head", "--expect", "x"]) is None


def test_no_rounds_yet_is_answered_alike(
    cli: CLI, database_url: str, db: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _fast(database_url, capsys, "--json") == cli("status", "--json").stdout == "[]\n"
    assert _fast(database_url, capsys) == cli("status").stdout
    assert _fast_heads(database_url, capsys) == cli("audit", "head").stdout == "No rounds.\n"


def test_quick_status_is_status(db: Engine, database_url: str, rounds: list[str]) -> None:
    from engine.runtime import heads, status

    assert quick_status(database_url, None) == status(db, None)
    assert quick_status(database_url, rounds[3]) == status(db, rounds[3])
    assert quick_heads(database_url, None) == [
        (h.round, h.entries, h.head) for h in heads(db, None)
    ]
    assert quick_heads(database_url, "cancelled") == [
        (h.round, h.entries, h.head) for h in heads(db, "cancelled")
    ]


def test_what_it_is_unsure_of_goes_the_full_way(
    cli: CLI, database_url: str, rounds: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    for args in (
        ["status", "no-such-round"],
        ["status", "no-such/1", "--json"],
        ["status", ""],
        ["status", "a\nb"],
        ["status", rounds[0], rounds[1]],
        ["status", "--help"],
        ["status", "--", rounds[0]],
        ["status", "--jsonx"],
        ["--help"],
        ["audit", "log", rounds[0]],
        ["launch", "x.toml"],
    ):
        assert answer(["--db", database_url, *args]) is None, args
    assert answer(["status", "--json", "--db", database_url]) is None
    assert answer(["--db", database_url, "--db", database_url, "status"]) is None
    assert answer([]) is None
    assert capsys.readouterr().out == ""  # nothing written before it was sure
    missing = cli("status", "no-such-round")
    assert missing.exit_code != 0
    assert "no round 'no-such-round'" in missing.stderr


def test_an_older_schema_goes_the_full_way(cli: CLI, database_url: str, db: Engine) -> None:
    with db.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0005'"))
    assert quick_status(database_url, None) is None
    ran = cli("status", "--json")
    assert ran.exit_code == 2
    assert "older than this ratify's" in ran.stderr


def test_a_missing_sqlite_file_is_left_to_the_full_path(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'none.db'}"
    assert quick_status(url, None) is None
    assert not (tmp_path / "none.db").exists()  # the full path makes it, with its schema


@pytest.mark.parametrize(
    "url",
    [
        "sqlite://",
        "sqlite:///:memory:",
        "sqlite:///file.db?mode=ro",
        "sqlite:///a%20b.db",
        "postgresql://u@h/db?sslmode=require",
        "mysql://u@h/db",
        "",
    ],
)
def test_urls_only_sqlalchemy_reads_go_the_full_way(url: str) -> None:
    assert quick_status(url, None) is None


def test_a_setting_the_full_settings_refuse_goes_the_full_way(
    cli: CLI, database_url: str, rounds: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert quick_status(database_url, None) is not None  # answered, but for the setting
    monkeypatch.setenv("RATIFY_SMTP_PORT", "many")
    assert answer(["--db", database_url, "status", "--json"]) is None
    assert answer(["--db", database_url, "audit", "head"]) is None
    ran = cli("status", "--json")
    assert ran.exit_code == 2
    assert "RATIFY_SMTP_PORT" in ran.stderr


# --- held to what they stand in for -------------------------------------------------------------


def _columns(row: type[Any]) -> dict[str, Any]:
    return {c.name: c for c in row.__table__.columns}


def test_the_readers_columns_are_the_tables() -> None:
    rounds, parties = _columns(RoundRow), _columns(PartyRow)
    assert set(reader.ROUND_COLUMNS) <= set(rounds)
    assert set(reader.PARTY_COLUMNS) <= set(parties)
    read = {
        **{c: rounds[c] for c in reader.ROUND_COLUMNS},
        **{c: parties[c] for c in reader.PARTY_COLUMNS},
    }

    def typed(kind: type[Any]) -> set[str]:
        return {name for name, column in read.items() if isinstance(column.type, kind)}

    assert typed(Date) == reader.DATES
    assert typed(UTCDateTime) == reader.MOMENTS
    assert typed(JSON) == reader.JSONS
    assert typed(Boolean) == reader.BOOLS


def test_the_view_reads_the_columns_the_reader_reads() -> None:
    def members(protocol: type[Any]) -> set[str]:
        return {n for n, v in vars(protocol).items() if isinstance(v, property)}

    assert members(RoundFields) == set(reader.ROUND_COLUMNS)
    assert members(PartyFields) == set(reader.PARTY_COLUMNS)


def test_the_views_snapshot_is_the_journals(db: Engine, rounds: list[str]) -> None:
    with Session(db) as session:
        rows = session.exec(select(PartyRow)).all()
        assert len(rows) > 10
        for row in rows:
            assert party_snapshot(row) == snapshot(row)
    records = [p for _, parties, _ in reader.read_status_rows(str(db.url), None) for p in parties]
    assert {(p.party_id, p.state) for p in records} == {(r.party_id, r.state) for r in rows}
    assert all(dataclasses.is_dataclass(p) for p in records)


def test_the_environment_checks_every_setting() -> None:
    assert set(CHECKS) == set(Settings.model_fields)
    assert Settings.model_fields["database_url"].default == DEFAULT_DATABASE_URL


SAMPLES = {
    "database_url": ["sqlite:///x.db", "a\nb", ""],
    "actor": ["Kim", "  ", "a\u202eb", "x" * 500],
    "smtp_host": ["mail.example", "a\rb"],
    "smtp_port": ["25", "0", "65536", "08025", " 25", "many", "1e3"],
    "smtp_username": ["kim", "a\nb"],
    "smtp_password": ["anything at all"],
    "smtp_tls": ["tls", "starttls", "none", "TLS", "ssl"],
    "smtp_timeout": ["30", "0", "0.5", "-1", "inf", "nan"],
    "mail_from": ["ratify <r@example.invalid>", "a\nb"],
    "witness_email": ["", "w@example.invalid", "no at", "a@b@c"],
    "base_url": ["https://ratify.example", "http://127.0.0.1:8000/r", "ftp://x", "https://"],
    "secret_key": ["s" * 40],
    "secret_file": ["ratify.secret"],
    "link_days": ["30", "0", "3651", "x"],
    "fake_clock_file": ["clock.txt", ""],
}


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_what_the_environment_takes_the_settings_take(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert name in SAMPLES
    for value in SAMPLES[name]:
        monkeypatch.setenv(f"RATIFY_{name.upper()}", value)
        if surely_database_url(None) is None:
            continue
        assert CHECKS[name](value)
        Settings()  # raises if the environment took what Settings refuses


def test_the_environment_reads_the_url_as_the_settings_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RATIFY_DATABASE_URL", raising=False)
    assert surely_database_url(None, {}) == DEFAULT_DATABASE_URL
    assert surely_database_url("sqlite:///given.db", {}) == "sqlite:///given.db"
    monkeypatch.setenv("ratify_database_url", "sqlite:///lower.db")  # any case, as Settings
    assert surely_database_url(None) == Settings().database_url == "sqlite:///lower.db"
    assert (
        surely_database_url(None, {"RATIFY_DATABASE_URL": "a", "ratify_database_url": "b"}) is None
    )
    assert surely_database_url(None, {"RATIFY_SMTP_PORT": "many"}) is None
    assert surely_database_url(None, {"OTHER_SMTP_PORT": "many", "RATIFY_UNKNOWN": "x"}) == (
        DEFAULT_DATABASE_URL
    )
