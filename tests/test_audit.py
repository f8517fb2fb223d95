"""The log as an auditor sees it: tampering with the database or an export is caught, entry named.

A round with four parties and fifteen entries is built through the runtime API (fast), then the
database is changed behind ratify's back with plain SQL, and ``ratify audit verify`` must exit 1
naming the first bad entry. Exports are checked the same way with ``ratify audit verify --file``.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import JSON, Boolean, Date, Engine, Integer, bindparam, text

from engine.agreement import load_agreement
from engine.clock import FakeClock
from engine.core.chain import FIELDS, GENESIS, entry_hash
from engine.core.evidence import Evidence
from engine.persistence.tables import UTCDateTime
from engine.runtime.events import record
from engine.runtime.rounds import launch
from tests.conftest import CLI
from tests.tampering import tamper

ROUND = "test-agreement/1"
ENTRIES = 15

PARTIES: list[dict[str, Any]] = [
    {"id": "alpha", "name": "Alpha", "await_legal_force": False},
    {
        "id": "beta",
        "name": "Beta",
        "bodies": ["Kaupunginhallitus", "Kaupunginvaltuusto"],
        "signatures_required": 2,
        "await_legal_force": False,
    },
    {"id": "gamma", "name": "Gamma", "await_legal_force": False},
    {"id": "delta", "name": "Delta", "await_legal_force": True},
]

HELSINKI = ZoneInfo("Europe/Helsinki")


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=HELSINKI)


# (party, event, evidence, local time): entries #2..#15 after the launch (#1).
STEPS: list[tuple[str, str, Evidence, datetime]] = [
    ("alpha", "submit", Evidence(), local(2026, 12, 2, 10, 0)),
    ("beta", "submit", Evidence(), local(2026, 12, 2, 10, 5)),
    ("gamma", "submit", Evidence(), local(2026, 12, 2, 10, 10)),
    ("alpha", "approve", Evidence(ref="Kunnanhallitus 07.12.2026 § 5"), local(2026, 12, 7, 18)),
    (
        "beta",
        "approve",
        Evidence(ref="Kaupunginhallitus 08.12.2026 § 7"),
        local(2026, 12, 8, 18),
    ),
    ("gamma", "return", Evidence(reason="needs more preparation"), local(2026, 12, 9, 12)),
    ("gamma", "submit", Evidence(), local(2026, 12, 10, 9)),
    (
        "beta",
        "approve",
        Evidence(ref="Kaupunginvaltuusto 14.12.2026 § 70"),
        local(2026, 12, 14, 20),
    ),
    ("alpha", "sign", Evidence(signatory="Aino A", title="Mayor"), local(2026, 12, 15, 10)),
    (
        "gamma",
        "approve",
        Evidence(ref="Kunnanhallitus 15.12.2026 § 12"),
        local(2026, 12, 15, 18),
    ),
    ("beta", "sign", Evidence(signatory="Bert B", title="Mayor"), local(2026, 12, 16, 10)),
    ("gamma", "sign", Evidence(signatory="Greta G", title="Mayor"), local(2026, 12, 16, 12)),
    ("delta", "submit", Evidence(), local(2026, 12, 17, 9)),
    ("delta", "approve", Evidence(ref="Kunnanhallitus 17.12.2026 § 3"), local(2026, 12, 17, 18)),
]


def build_round(engine: Engine, folder: Path) -> str:
    """Launch the round and record STEPS: 15 entries, the round still open."""
    path = folder / "agreement.toml"
    if not path.exists():
        from tests.conftest import write_agreement

        write_agreement(folder, PARTIES)
    clock = FakeClock(local(2026, 12, 1, 9, 0))
    round_id = launch(engine, load_agreement(path), clock, "Cora Coordinator").round
    for party, event, evidence, moment in STEPS:
        clock.set(moment)
        record(engine, round_id, party, event, evidence, clock, f"clerk of {party}")
    return round_id


@pytest.fixture
def built(db: Engine, tmp_path: Path) -> str:
    round_id = build_round(db, tmp_path)
    assert round_id == ROUND
    return round_id


def sql(engine: Engine, statement: str, **params: Any) -> None:
    tamper(engine, statement, **params)


def rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        result = conn.execute(
            text("SELECT * FROM log_entries WHERE round_id = :r ORDER BY seq"), {"r": ROUND}
        )
        return [dict(r._mapping) for r in result]


def set_evidence(engine: Engine, seq: int, evidence: dict[str, Any]) -> None:
    statement = text(
        "UPDATE log_entries SET evidence = :ev WHERE round_id = :r AND seq = :s"
    ).bindparams(bindparam("ev", type_=JSON))
    tamper(engine, statement, ev=evidence, r=ROUND, s=seq)


def shift_seqs(engine: Engine, start: int, by: int) -> None:
    """Renumber the entries from ``start`` on by ``by`` (two steps: no key clash)."""
    sql(
        engine,
        "UPDATE log_entries SET seq = seq + 1000 WHERE round_id = :r AND seq >= :s",
        r=ROUND,
        s=start,
    )
    sql(
        engine,
        "UPDATE log_entries SET seq = seq - 1000 + :by WHERE round_id = :r AND seq >= 1000",
        r=ROUND,
        by=by,
    )


def insert_entry(engine: Engine, entry: dict[str, Any]) -> None:
    statement = text(
        "INSERT INTO log_entries (round_id, seq, party_id, event, from_state, to_state, actor, "
        "recorded_at, clock, evidence, document_sha256, prev_hash, hash) VALUES (:round, :seq, "
        ":party, :event, :from_state, :to_state, :actor, :recorded_at, :clock, :evidence, "
        ":document_sha256, :prev_hash, :hash)"
    ).bindparams(bindparam("evidence", type_=JSON), bindparam("recorded_at", type_=UTCDateTime()))
    moment = datetime.fromisoformat(entry["recorded_at"].replace("Z", "+00:00"))
    with engine.begin() as conn:
        conn.execute(statement, {**entry, "recorded_at": moment})


def set_time(engine: Engine, seq: int, moment: datetime) -> None:
    statement = text(
        "UPDATE log_entries SET recorded_at = :t WHERE round_id = :r AND seq = :s"
    ).bindparams(bindparam("t", type_=UTCDateTime()))
    tamper(engine, statement, t=moment, r=ROUND, s=seq)


def verify(cli: CLI, *args: str) -> tuple[int, str]:
    ran = cli("audit", "verify", *args)
    return ran.exit_code, ran.stderr


def log(cli: CLI) -> list[dict[str, Any]]:
    ran = cli("audit", "log", ROUND, "--json")
    assert ran.exit_code == 0, ran.stderr
    entries: list[dict[str, Any]] = ran.json()
    return entries


# --- the database ------------------------------------------------------------------------------


def test_intact_round_verifies(cli: CLI, built: str) -> None:
    ran = cli("audit", "verify", built)
    assert ran.exit_code == 0, ran.stderr
    assert f"{ENTRIES} entries intact" in ran.stdout
    everything = cli("audit", "verify")
    assert everything.exit_code == 0, everything.stderr


def test_the_log_table_shows_which_text_each_decision_and_signature_binds(
    cli: CLI, built: str
) -> None:
    from rich.console import Console

    from engine.interfaces.render import log_table

    entries = log(cli)
    console = Console(width=400, record=True)
    console.print(log_table(entries))
    shown = console.export_text()
    lines = [line for line in shown.splitlines() if "│" in line]
    for entry in entries:
        (row,) = [line for line in lines if line.split("│")[1].strip() == str(entry["seq"])]
        binds = entry["event"] in ("approve", "return", "reject", "sign")
        assert (f"text={entry['document_sha256'][:12]}" in row) == binds, row
    assert "times in Europe/Helsinki" in shown


Tamper = Callable[[Engine], None]

FIELD_EDITS: dict[str, tuple[Tamper, str]] = {
    "evidence": (
        lambda e: set_evidence(e, 5, {"decision": "Kunnanhallitus 07.12.2026 § 6"}),
        "entry #5",
    ),
    "evidence-added-key": (
        lambda e: set_evidence(e, 7, {"reason": "needs more preparation", "note": "x"}),
        "entry #7",
    ),
    "actor": (
        lambda e: sql(
            e, "UPDATE log_entries SET actor = 'Mallory' WHERE round_id = :r AND seq = 4", r=ROUND
        ),
        "entry #4",
    ),
    "to_state": (
        lambda e: sql(
            e,
            "UPDATE log_entries SET to_state = 'signed' WHERE round_id = :r AND seq = 11",
            r=ROUND,
        ),
        "entry #11",
    ),
    "event": (
        lambda e: sql(
            e, "UPDATE log_entries SET event = 'reject' WHERE round_id = :r AND seq = 9", r=ROUND
        ),
        "entry #9",
    ),
    "party": (
        lambda e: sql(
            e, "UPDATE log_entries SET party_id = 'delta' WHERE round_id = :r AND seq = 2", r=ROUND
        ),
        "entry #2",
    ),
    "clock": (
        lambda e: sql(
            e, "UPDATE log_entries SET clock = 'system' WHERE round_id = :r AND seq = 3", r=ROUND
        ),
        "entry #3",
    ),
    "document_sha256": (
        lambda e: sql(
            e,
            "UPDATE log_entries SET document_sha256 = :h WHERE round_id = :r AND seq = 6",
            r=ROUND,
            h="f" * 64,
        ),
        "entry #6",
    ),
    "recorded_at": (
        lambda e: set_time(e, 10, datetime(2026, 12, 15, 7, 0, tzinfo=UTC)),
        "entry #10",
    ),
    "hash-of-last": (
        lambda e: sql(
            e,
            "UPDATE log_entries SET hash = :h WHERE round_id = :r AND seq = 15",
            r=ROUND,
            h="a" * 64,
        ),
        "entry #15",
    ),
}


@pytest.mark.parametrize("field", list(FIELD_EDITS))
def test_edited_entry_is_named(cli: CLI, db: Engine, built: str, field: str) -> None:
    tamper, named = FIELD_EDITS[field]
    tamper(db)
    code, stderr = verify(cli, built)
    assert code == 1, stderr
    assert named in stderr
    # Verifying every round finds it too.
    code, stderr = verify(cli)
    assert code == 1
    assert named in stderr


def test_deleted_middle_entry_is_named(cli: CLI, db: Engine, built: str) -> None:
    sql(db, "DELETE FROM log_entries WHERE round_id = :r AND seq = 8", r=ROUND)
    code, stderr = verify(cli, built)
    assert code == 1
    assert "entry #8" in stderr


def test_deleted_middle_entry_with_seqs_closed_up_is_named(
    cli: CLI, db: Engine, built: str
) -> None:
    """The forger renumbers the entries after the gap: the chain still breaks right there."""
    sql(db, "DELETE FROM log_entries WHERE round_id = :r AND seq = 8", r=ROUND)
    shift_seqs(db, 9, -1)
    code, stderr = verify(cli, built)
    assert code == 1
    assert "entry #8" in stderr


def test_deleted_last_entry_is_named(cli: CLI, db: Engine, built: str) -> None:
    sql(db, "DELETE FROM log_entries WHERE round_id = :r AND seq = :s", r=ROUND, s=ENTRIES)
    code, stderr = verify(cli, built)
    assert code == 1
    assert f"entry #{ENTRIES}" in stderr


def test_deleted_last_entry_with_anchors_moved_back_is_caught(
    cli: CLI, db: Engine, built: str
) -> None:
    """Deleting the last entry and moving the round's anchors back to the one before: the
    stored party state (delta in legal_force_wait) no longer follows from the log."""
    previous = rows(db)[ENTRIES - 2]
    sql(db, "DELETE FROM log_entries WHERE round_id = :r AND seq = :s", r=ROUND, s=ENTRIES)
    sql(
        db,
        "UPDATE rounds SET log_length = :n, log_head = :h WHERE id = :r",
        n=ENTRIES - 1,
        h=previous["hash"],
        r=ROUND,
    )
    code, stderr = verify(cli, built)
    assert code == 1
    assert "delta" in stderr


def forged_after(engine: Engine, seq: int) -> dict[str, Any]:
    """A forged entry that follows entry ``seq`` properly and carries a correct hash of its own."""
    before = next(e for e in rows(engine) if e["seq"] == seq)
    entry = {
        "seq": seq + 1,
        "round": ROUND,
        "party": "alpha",
        "event": "appeal",
        "from_state": "awaiting_signature",
        "to_state": "appeal_pending",
        "actor": "Mallory",
        "recorded_at": "2026-12-10T10:00:00.000000Z",
        "clock": "at",
        "evidence": {"reason": "forged"},
        "document_sha256": before["document_sha256"],
        "prev_hash": before["hash"],
    }
    entry["hash"] = entry_hash(entry)
    return entry


def test_inserted_entry_is_caught_where_the_chain_breaks(cli: CLI, db: Engine, built: str) -> None:
    shift_seqs(db, 8, 1)
    insert_entry(db, forged_after(db, 7))
    code, stderr = verify(cli, built)
    assert code == 1
    # The forged #8 hashes correctly and follows #7; the old #8, now #9, no longer follows it.
    assert "entry #9" in stderr


def test_inserted_entry_with_bad_hash_is_named(cli: CLI, db: Engine, built: str) -> None:
    shift_seqs(db, 8, 1)
    forged = forged_after(db, 7) | {"hash": "b" * 64}
    insert_entry(db, forged)
    code, stderr = verify(cli, built)
    assert code == 1
    assert "entry #8" in stderr


def rechain(entries: list[dict[str, Any]], start: int = 1) -> list[dict[str, Any]]:
    """Renumber and re-hash entries from ``start`` (1-based) on, as a careful forger would."""
    out = [dict(e) for e in entries]
    for i in range(start - 1, len(out)):
        out[i]["seq"] = i + 1
        out[i]["prev_hash"] = out[i - 1]["hash"] if i else GENESIS
        out[i]["hash"] = entry_hash(out[i])
    return out


def replace_log(engine: Engine, entries: list[dict[str, Any]], *, anchors: bool) -> None:
    sql(engine, "DELETE FROM log_entries WHERE round_id = :r", r=ROUND)
    for entry in entries:
        insert_entry(engine, entry)
    if anchors:
        sql(
            engine,
            "UPDATE rounds SET log_length = :n, log_head = :h WHERE id = :r",
            n=len(entries),
            h=entries[-1]["hash"],
            r=ROUND,
        )


def test_inserted_and_rechained_entry_is_caught_by_the_anchors(
    cli: CLI, db: Engine, built: str
) -> None:
    entries = log(cli)
    forged = forged_after(db, 7)
    replace_log(db, rechain([*entries[:7], forged, *entries[7:]], 8), anchors=False)
    code, stderr = verify(cli, built)
    assert code == 1
    assert ROUND in stderr


def test_inserted_rechained_and_anchored_entry_is_caught_by_replay(
    cli: CLI, db: Engine, built: str
) -> None:
    """A forger who rewrites the whole chain and the anchors: replaying names the forged entry
    (alpha had signed by then, so it cannot leave awaiting_signature again)."""
    entries = log(cli)
    forged = forged_after(db, 10)  # after alpha's signature: alpha is signed, not awaiting
    replace_log(db, rechain([*entries[:10], forged, *entries[10:]], 11), anchors=True)
    code, stderr = verify(cli, built)
    assert code == 1
    assert "entry #11" in stderr


def test_swapped_entries_are_named(cli: CLI, db: Engine, built: str) -> None:
    sql(db, "UPDATE log_entries SET seq = 1005 WHERE round_id = :r AND seq = 5", r=ROUND)
    sql(db, "UPDATE log_entries SET seq = 5 WHERE round_id = :r AND seq = 6", r=ROUND)
    sql(db, "UPDATE log_entries SET seq = 6 WHERE round_id = :r AND seq = 1005", r=ROUND)
    code, stderr = verify(cli, built)
    assert code == 1
    assert "entry #5" in stderr


def test_swapped_and_rechained_entries_are_caught_by_replay(
    cli: CLI, db: Engine, built: str
) -> None:
    """Reorder the log (alpha's approve before its submit), re-hash it and move the anchors."""
    entries = log(cli)
    reordered = [entries[0], entries[4], *entries[1:4], *entries[5:]]
    replace_log(db, rechain(reordered), anchors=True)
    code, stderr = verify(cli, built)
    assert code == 1
    assert "entry #2" in stderr


def test_every_entry_deleted_is_caught(cli: CLI, db: Engine, built: str) -> None:
    sql(db, "DELETE FROM log_entries WHERE round_id = :r", r=ROUND)
    code, stderr = verify(cli, built)
    assert code == 1
    assert "entry #1" in stderr
    code, stderr = verify(cli)
    assert code == 1
    assert "entry #1" in stderr


def test_every_entry_deleted_and_anchors_reset_is_caught(cli: CLI, db: Engine, built: str) -> None:
    sql(db, "DELETE FROM log_entries WHERE round_id = :r", r=ROUND)
    sql(db, "UPDATE rounds SET log_length = 0, log_head = :g WHERE id = :r", g=GENESIS, r=ROUND)
    code, stderr = verify(cli, built)
    assert code == 1
    assert ROUND in stderr


@pytest.mark.parametrize(
    ("evidence", "named"),
    [
        ('{"reason": "\\ud800"}', "entry #7"),  # a lone surrogate: no UTF-8 holds it
        ("[" * 3000 + "]" * 3000, ROUND),  # nests deeper than any JSON reader recurses
    ],
    ids=["lone-surrogate", "nested-3000-deep"],
)
def test_evidence_no_json_of_ratify_holds_fails_verification(
    cli: CLI, db: Engine, built: str, evidence: str, named: str
) -> None:
    value = "CAST(:ev AS json)" if db.dialect.name == "postgresql" else ":ev"
    sql(
        db,
        f"UPDATE log_entries SET evidence = {value} WHERE round_id = :r AND seq = 7",
        ev=evidence,
        r=ROUND,
    )
    code, stderr = verify(cli, built)
    assert code == 1
    assert named in stderr


def test_changed_party_state_is_named(cli: CLI, db: Engine, built: str) -> None:
    sql(
        db,
        "UPDATE parties SET state = 'signed' WHERE round_id = :r AND party_id = 'delta'",
        r=ROUND,
    )
    code, stderr = verify(cli, built)
    assert code == 1
    assert "delta" in stderr


def test_changed_party_signatures_are_named(cli: CLI, db: Engine, built: str) -> None:
    statement = text(
        "UPDATE parties SET signatures = :s WHERE round_id = :r AND party_id = 'beta'"
    ).bindparams(bindparam("s", type_=JSON))
    with db.begin() as conn:
        conn.execute(
            statement,
            {
                "s": [{"name": "Bert B", "title": "Mayor"}, {"name": "Eve E", "title": "Chair"}],
                "r": ROUND,
            },
        )
    code, stderr = verify(cli, built)
    assert code == 1
    assert "beta" in stderr


def set_party(engine: Engine, party: str, column: str, value: Any, type_: Any) -> None:
    statement = text(
        f"UPDATE parties SET {column} = :v WHERE round_id = :r AND party_id = :p"
    ).bindparams(bindparam("v", type_=type_))
    with engine.begin() as conn:
        conn.execute(statement, {"v": value, "r": ROUND, "p": party})


# A party's stored facts that drive its next events: each must still be what its log says.
PARTY_EDITS: dict[str, tuple[str, str, Any, Any]] = {
    # By its log delta is final from 08.01.2027; an earlier date lets `ratify tick` cut it short.
    "legal_force_from": ("delta", "legal_force_from", date(2026, 12, 18), Date()),
    "signatures_required": ("beta", "signatures_required", 1, Integer()),
    "await_legal_force": ("delta", "await_legal_force", False, Boolean()),
    "bodies": (
        "delta",
        "bodies",
        [{"name": "Kunnanhallitus", "kind": "board", "appeal_days": 1}],
        JSON(),
    ),
    "signature title": (
        "beta",
        "signatures",
        [{"name": "Bert B", "title": "Chair of the board"}],
        JSON(),
    ),
    # Who may sign: a list slipped in that the launch never had.
    "authorised signatories": (
        "gamma",
        "signatories",
        [{"name": "Mallory M", "title": "Mayor"}],
        JSON(),
    ),
}


@pytest.mark.parametrize("edit", list(PARTY_EDITS))
def test_changed_party_facts_are_named(cli: CLI, db: Engine, built: str, edit: str) -> None:
    party, column, value, type_ = PARTY_EDITS[edit]
    set_party(db, party, column, value, type_)
    code, stderr = verify(cli, built)
    assert code == 1, f"changing {party}'s {column} behind ratify's back went unnoticed"
    assert party in stderr


def test_wait_cut_short_in_the_database_is_caught_once_acted_on(
    cli: CLI, db: Engine, built: str
) -> None:
    """Whether or not verify notices the changed date at rest, the legal-force entry that
    `ratify tick` then writes too early cannot be replayed."""
    set_party(db, "delta", "legal_force_from", date(2026, 12, 18), Date())
    ticked = cli("tick", "--at", "2026-12-20T09:00", "--json")
    assert ticked.exit_code == 0, ticked.stderr
    assert [m["party"] for m in ticked.json()] == ["delta"]
    code, stderr = verify(cli, built)
    assert code == 1
    assert f"entry #{ENTRIES + 1}" in stderr


def test_changed_document_text_is_caught(cli: CLI, db: Engine, built: str) -> None:
    """The stored text is what the log's document hash is of: changing it must not pass."""
    sql(db, "UPDATE documents SET text = 'A different agreement.' WHERE round_id = :r", r=ROUND)
    code, _ = verify(cli, built)
    assert code == 1, "the round's stored text no longer has the SHA-256 its log records"


def test_round_set_active_is_caught(cli: CLI, db: Engine, built: str) -> None:
    sql(db, "UPDATE rounds SET state = 'active' WHERE id = :r", r=ROUND)
    code, stderr = verify(cli, built)
    assert code == 1
    assert ROUND in stderr
    assert "active" in stderr


def test_round_set_active_with_effective_date_is_caught(cli: CLI, db: Engine, built: str) -> None:
    statement = text(
        "UPDATE rounds SET state = 'active', effective_date = :d WHERE id = :r"
    ).bindparams(bindparam("d", type_=Date()))
    with db.begin() as conn:
        conn.execute(statement, {"d": date(2026, 12, 18), "r": ROUND})
    code, stderr = verify(cli, built)
    assert code == 1
    assert ROUND in stderr


def test_round_document_hash_changed_is_caught(cli: CLI, db: Engine, built: str) -> None:
    sql(db, "UPDATE rounds SET document_sha256 = :h WHERE id = :r", h="c" * 64, r=ROUND)
    code, stderr = verify(cli, built)
    assert code == 1
    assert ROUND in stderr


# --- exports -----------------------------------------------------------------------------------


@pytest.fixture
def exported(cli: CLI, built: str, tmp_path: Path) -> Path:
    path = tmp_path / "export.jsonl"
    ran = cli("audit", "export", built, "--format", "jsonl", "--output", str(path))
    assert ran.exit_code == 0, ran.stderr
    return path


def lines_of(path: Path) -> list[str]:
    return path.read_text("utf-8").splitlines()


def write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines), "utf-8")


def test_export_verifies_without_the_database(cli: CLI, exported: Path) -> None:
    lines = lines_of(exported)
    assert len(lines) == ENTRIES
    entries = [json.loads(line) for line in lines]
    assert [e["seq"] for e in entries] == list(range(1, ENTRIES + 1))
    # An auditor can recompute every hash from the export alone.
    assert all(entry_hash(e) == e["hash"] for e in entries)
    assert entries[0]["prev_hash"] == GENESIS
    assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(entries))
    ran = cli("audit", "verify", "--file", str(exported))
    assert ran.exit_code == 0, ran.stderr
    assert f"{ENTRIES} entries intact" in ran.stdout


def test_export_to_stdout_matches_the_file(cli: CLI, built: str, exported: Path) -> None:
    ran = cli("audit", "export", built, "--format", "jsonl")
    assert ran.exit_code == 0, ran.stderr
    assert ran.stdout == exported.read_text("utf-8")


def test_export_matches_the_log(cli: CLI, exported: Path) -> None:
    assert [json.loads(line) for line in lines_of(exported)] == log(cli)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("actor", "Mallory"),
        ("to_state", "rejected"),
        ("evidence", {"reason": "added"}),
        ("recorded_at", "2026-12-02T08:10:00.000000Z"),
    ],
)
def test_export_with_an_edited_line_is_named(
    cli: CLI, exported: Path, field: str, value: Any
) -> None:
    lines = lines_of(exported)
    entry = json.loads(lines[2])
    assert entry[field] != value
    entry[field] = value
    lines[2] = json.dumps(entry)
    write_lines(exported, lines)
    code, stderr = verify(cli, "--file", str(exported))
    assert code == 1
    assert "entry #3" in stderr


def test_export_with_a_deleted_line_is_named(cli: CLI, exported: Path) -> None:
    lines = lines_of(exported)
    del lines[1]
    write_lines(exported, lines)
    code, stderr = verify(cli, "--file", str(exported))
    assert code == 1
    assert "entry #2" in stderr


def test_export_with_swapped_lines_is_named(cli: CLI, exported: Path) -> None:
    lines = lines_of(exported)
    lines[3], lines[4] = lines[4], lines[3]
    write_lines(exported, lines)
    code, stderr = verify(cli, "--file", str(exported))
    assert code == 1
    assert "entry #4" in stderr


def test_export_with_a_line_inserted_is_named(cli: CLI, db: Engine, exported: Path) -> None:
    lines = lines_of(exported)
    lines.insert(7, json.dumps(forged_after(db, 7)))
    write_lines(exported, lines)
    code, stderr = verify(cli, "--file", str(exported))
    assert code == 1
    # The forged #8 is consistent; the genuine #8 after it is where the chain breaks.
    assert "entry #8" in stderr


def test_export_rechained_after_an_edit_is_caught_by_replay(cli: CLI, exported: Path) -> None:
    """An auditor re-hashing the chain cannot launder a decision by the wrong body."""
    entries = [json.loads(line) for line in lines_of(exported)]
    assert entries[4]["event"] == "approve"
    entries[4]["evidence"] = {"decision": "Kunnanvaltuusto 07.12.2026 § 5"}
    write_lines(exported, [json.dumps(e) for e in rechain(entries)])
    code, stderr = verify(cli, "--file", str(exported))
    assert code == 1
    assert "entry #5" in stderr


def test_export_that_is_not_json_fails(cli: CLI, exported: Path) -> None:
    lines = lines_of(exported)
    lines[5] = lines[5][:-3]
    write_lines(exported, lines)
    code, stderr = verify(cli, "--file", str(exported))
    assert code == 1
    assert "line 6" in stderr


def test_empty_export_fails(cli: CLI, tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", "utf-8")
    code, stderr = verify(cli, "--file", str(empty))
    assert code == 1
    assert "no entries" in stderr


@pytest.fixture
def csv_export(cli: CLI, built: str, tmp_path: Path) -> Path:
    path = tmp_path / "export.csv"
    ran = cli("audit", "export", built, "--format", "csv", "--output", str(path))
    assert ran.exit_code == 0, ran.stderr
    return path


def test_csv_export_round_trips_through_verify(cli: CLI, csv_export: Path) -> None:
    table = list(csv.DictReader(io.StringIO(csv_export.read_text("utf-8"))))
    assert len(table) == ENTRIES
    assert tuple(table[0]) == FIELDS
    ran = cli("audit", "verify", "--file", str(csv_export))
    assert ran.exit_code == 0, ran.stderr
    assert f"{ENTRIES} entries intact" in ran.stdout


def test_csv_export_with_an_edited_cell_is_named(cli: CLI, csv_export: Path) -> None:
    table = list(csv.DictReader(io.StringIO(csv_export.read_text("utf-8"))))
    assert table[5]["actor"] != "Mallory"
    table[5]["actor"] = "Mallory"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(table)
    csv_export.write_text(out.getvalue(), "utf-8")
    code, stderr = verify(cli, "--file", str(csv_export))
    assert code == 1
    assert "entry #6" in stderr


def test_csv_export_with_a_deleted_row_is_named(cli: CLI, csv_export: Path) -> None:
    lines = lines_of(csv_export)
    del lines[3]  # the header is line 0: this is entry #3
    write_lines(csv_export, lines)
    code, stderr = verify(cli, "--file", str(csv_export))
    assert code == 1
    assert "entry #3" in stderr


def test_export_format_is_checked(cli: CLI, built: str) -> None:
    ran = cli("audit", "export", built, "--format", "xml")
    assert ran.exit_code == 2
    assert "jsonl or csv" in ran.stderr


# --- what verify can prove: heads noted elsewhere ------------------------------------------------


def heads(cli: CLI, *args: str) -> list[dict[str, Any]]:
    ran = cli("audit", "head", *args, "--json")
    assert ran.exit_code == 0, ran.stderr
    found: list[dict[str, Any]] = ran.json()
    return found


def test_audit_head_prints_each_rounds_head(cli: CLI, built: str) -> None:
    last = log(cli)[-1]
    assert heads(cli) == [{"round": ROUND, "entries": ENTRIES, "head": last["hash"]}]
    assert heads(cli, built) == heads(cli)
    ran = cli("audit", "head")
    assert ran.exit_code == 0, ran.stderr
    assert f"round {ROUND}: {ENTRIES} entries; head {last['hash']}\n" in ran.stdout
    unknown = cli("audit", "head", "no-such-agreement")
    assert unknown.exit_code == 2
    assert "no round" in unknown.stderr


def test_audit_head_with_no_rounds(cli: CLI) -> None:
    assert heads(cli) == []
    assert "No rounds." in cli("audit", "head").stdout


def test_a_rewritten_and_reanchored_log_verifies_but_not_against_a_noted_head(
    cli: CLI, db: Engine, built: str
) -> None:
    """What the README says a chain cannot prove: an intruder who rewrites an entry, re-chains
    every entry after it and moves the round's anchors passes `verify`. A head noted before
    does not pass."""
    (noted,) = heads(cli)
    entries = log(cli)
    entries[3]["actor"] = "Mallory"  # who recorded it: replay cannot tell
    replace_log(db, rechain(entries, 4), anchors=True)
    ran = cli("audit", "verify", built)
    assert ran.exit_code == 0, ran.stderr  # the chain, the anchors and the replay all agree
    assert noted["head"] not in ran.stdout
    code, stderr = verify(cli, built, "--expect-head", noted["head"])
    assert code == 1
    message = " ".join(stderr.split())
    assert f"round {ROUND}: no entry of its log has the hash {noted['head']}" in message
    assert "rewritten or cut short" in message
    code, stderr = verify(cli, "--expect-head", noted["head"])  # every round: the same
    assert code == 1
    assert noted["head"] in stderr


def test_a_noted_head_passes_while_the_log_grows(cli: CLI, built: str) -> None:
    (noted,) = heads(cli)
    third = log(cli)[2]["hash"]
    ran = cli("audit", "verify", built, "--expect-head", noted["head"])
    assert ran.exit_code == 0, ran.stderr
    assert f"round {ROUND}: its head is the one expected" in ran.stdout
    grown = cli(
        "record", built, "delta", "appeal", "--reason", "an appeal", "--at", "2026-12-20T10:00"
    )
    assert grown.exit_code == 0, grown.stderr
    ran = cli("audit", "verify", built, "--expect-head", noted["head"])
    assert ran.exit_code == 0, ran.stderr
    assert f"the expected head is entry #{ENTRIES}; 1 entry has been added since" in ran.stdout
    ran = cli("audit", "verify", "--expect-head", third.upper())  # any case; every round
    assert ran.exit_code == 0, ran.stderr
    assert f"entry #3; {ENTRIES - 2} entries have been added since" in ran.stdout
    (now,) = heads(cli)
    assert now["entries"] == ENTRIES + 1
    assert "is the one expected" in cli("audit", "verify", "--expect-head", now["head"]).stdout


def test_verify_returns_where_the_expected_head_is(db: Engine, built: str) -> None:
    from engine.runtime.audit import HeadFound, HeadReport, heads, verify

    (head,) = heads(db)
    assert head == HeadReport(ROUND, ENTRIES, head.head)
    report = verify(db, expect_head=head.head)
    assert report.expected == HeadFound(ROUND, ENTRIES, 0)
    assert [c.head for c in report.chains] == [head.head]
    assert report.file is None
    assert verify(db, built).expected is None


def test_an_export_cut_short_fails_against_a_noted_head(
    cli: CLI, exported: Path, tmp_path: Path
) -> None:
    entries = [json.loads(line) for line in lines_of(exported)]
    cut = tmp_path / "cut.jsonl"
    write_lines(cut, lines_of(exported)[:-2])
    ran = cli("audit", "verify", "--file", str(cut))
    assert ran.exit_code == 0, ran.stderr  # a chain's tail cut off leaves a chain
    assert f"{ENTRIES - 2} entries intact" in ran.stdout
    code, stderr = verify(cli, "--file", str(cut), "--expect-head", entries[-1]["hash"])
    assert code == 1
    assert entries[-1]["hash"] in stderr
    assert "no entry of its log has the hash" in " ".join(stderr.split())
    ran = cli("audit", "verify", "--file", str(cut), "--expect-head", entries[-3]["hash"])
    assert ran.exit_code == 0, ran.stderr
    assert "its head is the one expected" in ran.stdout
    ran = cli("audit", "verify", "--file", str(exported), "--expect-head", entries[-3]["hash"])
    assert ran.exit_code == 0, ran.stderr
    assert f"entry #{ENTRIES - 2}; 2 entries have been added since" in ran.stdout


def test_with_several_rounds_the_expected_head_names_its_round(
    cli: CLI, built: str, tmp_path: Path
) -> None:
    from tests.conftest import write_agreement

    other = write_agreement(
        tmp_path, PARTIES[:1], agreement={"id": "other-agreement"}, name="other.toml"
    )
    launched = cli("launch", str(other), "--at", "2026-12-03T09:00", "--json")
    assert launched.exit_code == 0, launched.stderr
    found = {h["round"]: h["head"] for h in heads(cli)}
    assert set(found) == {ROUND, "other-agreement/1"}
    for round_id, head in found.items():
        ran = cli("audit", "verify", "--expect-head", head)
        assert ran.exit_code == 0, ran.stderr
        assert f"round {round_id}: its head is the one expected" in ran.stdout
    code, stderr = verify(cli, "--expect-head", "f" * 64)
    assert code == 1
    assert "none of the 2 rounds' logs has an entry with the hash" in " ".join(stderr.split())
    # Asked of one round, another round's head is not its own.
    code, stderr = verify(cli, ROUND, "--expect-head", found["other-agreement/1"])
    assert code == 1
    assert f"round {ROUND}: no entry" in stderr


@pytest.mark.parametrize(
    "given",
    ["abc", "a" * 63, "a" * 65, "g" * 64, "", "sha256:" + "a" * 64, "a" * 32 + " " + "a" * 32],
)
def test_a_malformed_expected_head_is_invalid_input(
    cli: CLI, built: str, exported: Path, given: str
) -> None:
    for args in ((built,), (), ("--file", str(exported))):
        code, stderr = verify(cli, *args, "--expect-head", given)
        assert code == 2, (args, stderr)
        assert "--expect-head" in stderr
        assert "64 hex digits" in stderr


def test_a_prefix_of_the_head_is_not_enough(cli: CLI, built: str) -> None:
    (noted,) = heads(cli)
    code, stderr = verify(cli, built, "--expect-head", noted["head"][:16])
    assert code == 2
    assert "64 hex digits" in stderr


def test_a_round_and_a_file_together_are_refused(cli: CLI, built: str, exported: Path) -> None:
    code, stderr = verify(cli, built, "--file", str(exported))
    assert code == 2
    assert "not both" in stderr


# --- the log as JSON ---------------------------------------------------------------------------


def test_log_json_fields_and_chain(cli: CLI, built: str) -> None:
    entries = log(cli)
    assert len(entries) == ENTRIES
    assert [e["seq"] for e in entries] == list(range(1, ENTRIES + 1))
    for entry in entries:
        assert list(entry) == list(FIELDS)
        assert entry["round"] == ROUND
        assert entry_hash(entry) == entry["hash"]
        assert entry["clock"] == "at"
        assert entry["recorded_at"].endswith("Z")
    assert entries[0]["prev_hash"] == GENESIS
    for before, after in itertools.pairwise(entries):
        assert after["prev_hash"] == before["hash"]
    assert entries[0]["event"] == "launch"
    assert entries[0]["party"] is None
    assert entries[0]["actor"] == "Cora Coordinator"
    # Oldest first, with the events in the order they were recorded.
    assert [(e["party"], e["event"]) for e in entries[1:]] == [(p, ev) for p, ev, _, _ in STEPS]
    assert [e["actor"] for e in entries[1:]] == [f"clerk of {p}" for p, _, _, _ in STEPS]
    # Times are UTC: 10:00 in Helsinki in December is 08:00Z.
    assert entries[1]["recorded_at"] == "2026-12-02T08:00:00.000000Z"
    approve = entries[4]
    assert approve["from_state"] == "board_review"
    assert approve["to_state"] == "awaiting_signature"
    assert approve["evidence"]["decision"] == "Kunnanhallitus 07.12.2026 § 5"
    sign = entries[9]
    assert sign["evidence"]["signatory"] == "Aino A"
    assert sign["evidence"]["title"] == "Mayor"


def test_log_actor_is_by_else_ratify_actor(cli: CLI, agreement_file: Callable[..., Path]) -> None:
    path = agreement_file([{"id": "alpha", "name": "Alpha", "await_legal_force": False}])
    env = {"RATIFY_ACTOR": "Ritva Registrar"}
    launched = cli("launch", str(path), "--at", "2026-12-01T09:00", "--json", env=env)
    assert launched.exit_code == 0, launched.stderr
    round_id = launched.json()["round"]
    ran = cli(
        "record", round_id, "alpha", "submit", "--at", "2026-12-02", "--by", "Olli Officer", env=env
    )
    assert ran.exit_code == 0, ran.stderr
    ran = cli(
        "record",
        round_id,
        "alpha",
        "approve",
        "--ref",
        "Kunnanhallitus 03.12.2026 § 1",
        "--at",
        "2026-12-03T12:00",
        env=env,
    )
    assert ran.exit_code == 0, ran.stderr
    ran = cli(
        "record",
        round_id,
        "alpha",
        "sign",
        "--signatory",
        "Aino A",
        "--title",
        "Mayor",
        "--at",
        "2026-12-04",
        "--by",
        "  Saara   Secretary ",
        env=env,
    )
    assert ran.exit_code == 0, ran.stderr
    entries = cli("audit", "log", round_id, "--json").json()
    assert [e["event"] for e in entries] == ["launch", "submit", "approve", "sign", "activate"]
    assert [e["actor"] for e in entries] == [
        "Ritva Registrar",
        "Olli Officer",
        "Ritva Registrar",
        "Saara Secretary",
        "Saara Secretary",
    ]
    assert entries[-1]["evidence"]["effective_date"] == "2026-12-04"
    assert entries[0]["prev_hash"] == GENESIS
    assert all(entry_hash(e) == e["hash"] for e in entries)
    assert cli("audit", "verify", round_id).exit_code == 0


def test_log_records_the_clock_source(cli: CLI, agreement_file: Callable[..., Path]) -> None:
    path = agreement_file([{"id": "alpha", "name": "Alpha", "await_legal_force": False}])
    round_id = cli("launch", str(path), "--json", env={"RATIFY_ACTOR": "x"}).json()["round"]
    entries = cli("audit", "log", round_id, "--json").json()
    assert entries[0]["clock"] == "system"
    assert entries[0]["actor"] == "x"
    recorded = datetime.fromisoformat(entries[0]["recorded_at"].replace("Z", "+00:00"))
    assert abs((datetime.now(recorded.tzinfo) - recorded).total_seconds()) < 300


def test_refused_events_write_no_entry(cli: CLI, db: Engine, built: str) -> None:
    before = log(cli)
    with db.connect() as conn:
        parties_before = conn.execute(
            text("SELECT party_id, state, version FROM parties ORDER BY party_id")
        ).all()
    duplicate = cli(
        "record",
        built,
        "beta",
        "sign",
        "--signatory",
        "bert  b",
        "--title",
        "Mayor",
        "--at",
        "2026-12-20",
    )
    assert duplicate.exit_code == 1
    assert "already signed" in duplicate.stderr
    early = cli(
        "record",
        built,
        "delta",
        "sign",
        "--signatory",
        "Dora D",
        "--title",
        "Mayor",
        "--at",
        "2026-12-20",
    )
    assert early.exit_code == 1
    assert "legal_force_wait" in early.stderr
    wrong_body = cli(
        "record",
        built,
        "beta",
        "approve",
        "--ref",
        "Kunnanhallitus 20.12.2026 § 1",
        "--at",
        "2026-12-20",
    )
    assert wrong_body.exit_code == 1
    assert log(cli) == before
    with db.connect() as conn:
        parties_after = conn.execute(
            text("SELECT party_id, state, version FROM parties ORDER BY party_id")
        ).all()
    assert parties_after == parties_before
    assert cli("audit", "verify", built).exit_code == 0
