"""`audit verify` streams: one entry at a time, through a chain checker, a replayer and a table of
each workflow's moves; and it answers exactly what it answered when it read whole logs.

The oracle is the verification as it was before it streamed, kept verbatim in
tests/verify_reference.py: the golden logs, tampered in many ways (tests/test_replay.py's
mutations, random values, random bytes in exports, SQL behind ratify's back) verify, or fail naming
the same entry in the same words, under both. The transition table is held to ``decide`` itself.
And a test that counts entries alive shows the log is never held whole.
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import weakref
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import JSON, Engine, bindparam, event, text

from engine.core import transitions_table
from engine.core.chain import (
    GENESIS,
    ChainChecker,
    _canonical_text,
    canonical,
    check_chain,
    format_time,
)
from engine.core.evidence import Evidence, Signature
from engine.core.export import from_csv, from_jsonl, to_csv, to_jsonl
from engine.core.export_stream import ExportStream
from engine.core.party import PartySnapshot, decide
from engine.core.replay import Replayer, replay
from engine.core.transitions_table import CONDITIONS, advance, table_of
from engine.errors import RatifyError
from engine.persistence.tables import LogRow
from engine.runtime import audit
from engine.runtime.audit import log_entries, verify, verify_file
from tests import verify_reference as reference
from tests.tampering import tamper
from tests.test_audit import ROUND, build_round
from tests.test_replay import MUTATIONS, TRIPS, load
from workflows import EVIDENCE, GUARDS, Body, Catalog, default_catalog

NAMES = ["activation", "failure", "appeal-cancel"]
HELSINKI = ZoneInfo("Europe/Helsinki")


def outcome(work: Callable[[], Any]) -> tuple[Any, ...]:
    """What ``work`` answers: its value, or the type and words of what it raises."""
    try:
        return ("ok", work())
    except Exception as exc:
        return (type(exc).__name__, str(exc))


def rechained(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = [dict(e) for e in entries]
    for i, entry in enumerate(out):
        entry["prev_hash"] = out[i - 1]["hash"] if i else GENESIS
        entry["hash"] = reference.entry_hash(entry)
    return out


def fed_checker(round_id: str, entries: list[Any], **anchors: Any) -> Any:
    checker = ChainChecker(round_id, **anchors)
    for entry in entries:
        checker.feed(entry)  # past a break too: it ignores the rest
    return checker.report()


def fed_replayer(entries: list[Any]) -> Any:
    replayer = Replayer(default_catalog().machine)
    for entry in entries:
        replayer.feed(entry)
    return replayer.finish()


def assert_both_agree(entries: list[Any], round_id: str = "r") -> None:
    """The chain and the replay, list and incremental, answer as the reference does."""
    for length, head in ((None, None), (len(entries) + 1, GENESIS)):
        anchors: dict[str, Any] = {"expected_length": length, "expected_head": head}
        expected = outcome(partial(reference.check_chain, round_id, entries, **anchors))
        assert outcome(partial(check_chain, round_id, entries, **anchors)) == expected
        assert outcome(partial(fed_checker, round_id, entries, **anchors)) == expected
    expected = outcome(lambda: reference.replay(entries, default_catalog().machine))
    assert outcome(lambda: replay(entries, default_catalog().machine)) == expected
    assert outcome(lambda: fed_replayer(entries)) == expected


# --- the golden logs and their tampered copies --------------------------------------------------


def tampered() -> Iterator[tuple[str, list[Any]]]:
    for name in NAMES:
        entries = load(name)["entries"]
        yield f"{name}", entries
        yield f"{name}-cut", entries[:-1]
        yield f"{name}-swapped", [entries[1], entries[0], *entries[2:]]
        yield f"{name}-rechained-swapped", rechained([entries[1], entries[0], *entries[2:]])
        yield f"{name}-edited", [*entries[:3], {**entries[3], "actor": "someone"}, *entries[4:]]
        yield f"{name}-no-seq", [*entries[:2], {k: v for k, v in entries[2].items() if k != "seq"}]
        yield f"{name}-not-a-dict", [*entries[:2], [1, 2]]
        yield (
            f"{name}-field-gone",
            [*entries[:4], {k: v for k, v in entries[4].items() if k != "clock"}],
        )
    for golden, mutate, _ in MUTATIONS:
        entries = load(golden)["entries"]
        mutate(entries)
        yield f"{golden}-{mutate.__name__}", rechained(entries)
        entries = load(golden)["entries"]
        mutate(entries)
        yield f"{golden}-{mutate.__name__}-unchained", entries
    for trip, seq, change in TRIPS:
        entries = load("activation")["entries"]
        change(entries[seq - 1])
        yield f"trip-{trip}", rechained(entries)


CASES = list(tampered())


@pytest.mark.parametrize("entries", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_incremental_chain_and_replay_answer_as_the_lists_did(entries: list[Any]) -> None:
    round_id = entries[0]["round"] if isinstance(entries[0], dict) else "r"
    assert_both_agree(entries, round_id)


# Values a forger might put in a field: the log's own words, near misses, other types.
VALUES = st.one_of(
    st.sampled_from(
        [
            None,
            "",
            " ",
            0,
            1,
            -1,
            True,
            1.5,
            [],
            {},
            ["x"],
            {"a": 1},
            "draft",
            "board_review",
            "council_review",
            "awaiting_signature",
            "signed",
            "submit",
            "approve",
            "sign",
            "legal-force",
            "amend",
            "remind",
            "annotate",
            "Kunnanhallitus 10.11.2026 § 101",
            "Kaupunginvaltuusto 18.11.2026 § 45",
            "Kunnanhallitus 31.12.2099 § 1",
            "2026-12-29",
            "2026-11-10T10:00:00.000000Z",
            "9999-12-31T23:59:59.999999Z",
            "Europe/Helsinki",
            "Mars/Olympus",
            "Raimo Rautio",
            "RAIMO RAUTIO",
            "\ud800",
            "0" * 64,
        ]
    ),
    st.text(max_size=12),
    st.integers(),
)
KEYS = st.sampled_from(
    [
        "party",
        "event",
        "from_state",
        "to_state",
        "recorded_at",
        "document_sha256",
        "actor",
        "seq",
        "round",
        "evidence",
        "evidence.decision",
        "evidence.reason",
        "evidence.signatory",
        "evidence.title",
        "evidence.version",
        "evidence.timezone",
        "evidence.refers_to",
        "evidence.effective_date",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(NAMES),
    changes=st.lists(st.tuples(st.integers(0, 40), KEYS, VALUES), min_size=1, max_size=3),
    chain_again=st.booleans(),
)
def test_random_forgeries_are_answered_as_the_lists_did(
    name: str, changes: list[tuple[int, str, Any]], chain_again: bool
) -> None:
    entries = load(name)["entries"]
    for index, key, value in changes:
        entry = entries[index % len(entries)]
        if key.startswith("evidence."):
            if isinstance(entry["evidence"], dict):
                entry["evidence"] = {**entry["evidence"], key.partition(".")[2]: value}
        else:
            entry[key] = value
    if chain_again:
        with contextlib.suppress(TypeError, ValueError, UnicodeEncodeError, KeyError):
            entries = rechained(entries)  # what cannot be hashed is checked unchained
    assert_both_agree(entries, load(name)["entries"][0]["round"])


# --- the canonical text, the time's spelling -----------------------------------------------------

FIELD_VALUES = st.one_of(
    st.none(), st.text(), st.integers(), st.booleans(), st.floats(allow_nan=False)
)


@settings(max_examples=500, deadline=None)
@given(
    fields=st.fixed_dictionaries(
        {k: FIELD_VALUES for k in ("round", "party", "event", "from_state", "to_state", "actor")}
        | {k: FIELD_VALUES for k in ("recorded_at", "clock", "document_sha256", "prev_hash")}
    ),
    seq=st.one_of(st.integers(), st.booleans(), st.none()),
    evidence=st.one_of(
        st.dictionaries(st.text(max_size=5), st.recursive(FIELD_VALUES, st.lists, max_leaves=5)),
        st.lists(st.integers()),
        st.none(),
    ),
)
def test_the_canonical_text_is_json_dumps_text(
    fields: dict[str, Any], seq: Any, evidence: Any
) -> None:
    entry = {**fields, "seq": seq, "evidence": evidence, "hash": "h"}
    text_ = _canonical_text(entry)
    typed = (
        type(seq) is int
        and type(evidence) is dict
        and all(v is None or type(v) is str for v in fields.values())
    )
    if not typed:
        assert text_ is None
        return
    assert text_ is not None
    expected = json.dumps(
        {k: v for k, v in entry.items() if k != "hash"},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    assert text_ == expected
    if "\ud800" not in expected and not any(0xD800 <= ord(c) <= 0xDFFF for c in expected):
        assert text_.encode() == canonical(entry) == reference.canonical(entry)


@settings(max_examples=500, deadline=None)
@given(
    moment=st.datetimes(
        min_value=datetime(1, 1, 2),  # noqa: DTZ001
        max_value=datetime(9999, 12, 30),  # noqa: DTZ001
        timezones=st.one_of(st.none(), st.just(UTC), st.timezones()),
    )
)
def test_format_time_is_strftimes_text(moment: datetime) -> None:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    expected = outcome(lambda: aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    assert outcome(lambda: format_time(moment)) == expected


@pytest.mark.parametrize(
    "stored",
    [
        "2026-12-01 07:00:00.000000",
        "2026-12-01 07:00:00.123456",
        "2026-12-01 07:00:00",
        "2026-12-01T07:00:00.000000",
        "2026-12-01 07:00:00.000000+02:00",
        "2026-W48-2 07:00:00.000000",
        "0999-01-01 00:00:00.000000",
        "1000-01-01 00:00:00.000000",
        "9999-12-31 23:59:59.999999",
        "2026-02-30 07:00:00.000000",
        "2026-12-01 24:00:00.000000",
        "2026-12-01 07:00:00.00000\uff10",  # a fullwidth digit
        "yesterday",
        "",
    ],
)
def test_sqlite_times_read_as_through_the_column_type(stored: str) -> None:
    from sqlalchemy.dialects import sqlite

    dialect = sqlite.dialect()
    processor: Any = audit._LOG.c.recorded_at.type.dialect_impl(dialect).result_processor(
        dialect, None
    )
    expected = outcome(lambda: format_time(processor(stored)))
    assert outcome(lambda: audit._sqlite_times(dialect)(stored)) == expected


# --- the transition table against decide ---------------------------------------------------------


def catalog() -> Catalog:
    return Catalog.read(
        resources.files("workflows") / "definitions", Path(__file__).parent / "workflows"
    )


CATALOG = catalog()
MACHINES = [
    CATALOG.machine(d.name, d.version) for v in CATALOG.definitions.values() for d in v.values()
]


def test_the_table_knows_every_condition_and_every_kind_of_evidence() -> None:
    assert set(CONDITIONS) == set(GUARDS)
    assert set(transitions_table._OPTIONS) == set(EVIDENCE)
    assert transitions_table._copies_are_replacements()


@pytest.mark.parametrize("machine", MACHINES, ids=[m.definition.key for m in MACHINES])
def test_the_table_has_the_moves_the_machine_allows(machine: Any) -> None:
    table = table_of(machine)
    assert table_of(machine) is table  # built once
    for state in machine.definition.states:
        for name in machine.definition.events:
            move = table.move(state, name)
            assert (move is not None) == (name in machine.allowed(state))


def test_the_table_vouches_for_every_event_of_the_golden_logs() -> None:
    """Replaying a log that ratify wrote never needs decide: the table answers for each event
    (otherwise replay would be right but slow, and nothing else would tell)."""
    for name in NAMES:
        replayer = Replayer(default_catalog().machine)
        for entry in load(name)["entries"]:
            party = replayer.result.parties.get(entry["party"] or "")
            if party is not None:
                machine = default_catalog().machine(party.workflow, party.workflow_version)
                move = table_of(machine).move(party.state, entry["event"])
                if entry["event"] in machine.definition.events:
                    assert move is not None
                    now = datetime.fromisoformat(entry["recorded_at"]).astimezone(replayer._tz)
                    got = advance(move, party, entry["evidence"], now, replayer.result.text_from)
                    assert got is not None, (name, entry["seq"])
            replayer.feed(entry)


def evidence_values(body_names: list[str]) -> st.SearchStrategy[Any]:
    refs = [
        f"{b} {d} § {n}" for b in body_names for d in ("01.12.2026", "20.11.2026") for n in (1, 0)
    ]
    return st.one_of(
        st.sampled_from(
            [
                None,
                "",
                "  ",
                "why",
                " why ",
                "Aino A",
                "AINO  A",
                "Bert B",
                "Mayor",
                "Kunnanhallitus 31.12.2099 § 1",
                "Kunnanhallitus 30.02.2026 § 1",
                "not a ref",
                "Organisation Kunnanhallitus 01.12.2026 § 3",
                7,
                0,
                ["x"],
                *refs,
            ]
        ),
        st.text(max_size=6),
    )


@st.composite
def situations(draw: st.DrawFn) -> tuple[Any, PartySnapshot, str, dict[str, Any], datetime, Any]:
    machine = draw(st.sampled_from(MACHINES))
    definition = machine.definition
    known = [Body(b.name, b.kind, b.appeal_days) for b in definition.bodies]
    bodies = draw(
        st.one_of(
            st.lists(st.sampled_from(known), min_size=1, max_size=2).map(tuple),
            st.just(()),
            st.just((Body([], "board", 14),)),  # type: ignore[arg-type]
        )
    )
    names = st.sampled_from(["Aino A", "aino a", "Bert B", "Cecilia C"])
    signature = st.builds(Signature, names, st.sampled_from(["Mayor", "Chair", ""]))
    party = PartySnapshot(
        id="p",
        workflow=definition.name,
        workflow_version=definition.version,
        state=draw(st.sampled_from(definition.states)),
        bodies=bodies,
        step=draw(st.integers(0, 2)),
        # What a forged launch can give: values of other types too.
        await_legal_force=draw(st.sampled_from([True, False, 1, 0, "yes", None])),  # type: ignore[arg-type]
        notice_days=draw(st.integers(0, 30)),
        signatures_required=draw(st.sampled_from([0, 1, 2, 3, 1.5, "2"])),  # type: ignore[arg-type]
        signatures=tuple(draw(st.lists(signature, max_size=2))),
        legal_force_from=draw(st.one_of(st.none(), st.dates(date(2026, 11, 1), date(2027, 2, 1)))),
        signatories=tuple(draw(st.lists(signature, max_size=2))),
    )
    allowed = machine.allowed(party.state) or list(definition.events)
    name = draw(
        st.sampled_from(allowed) if draw(st.integers(0, 9)) else st.sampled_from(definition.events)
    )
    values = evidence_values([b.name for b in definition.bodies])
    keys = st.sampled_from(["decision", "reason", "signatory", "title", "diary", "signature"])
    evidence = draw(st.dictionaries(keys, values, max_size=4))
    spec = definition.event(name)
    if spec is not None and draw(st.booleans()):  # mostly what the event needs, as ratify writes it
        body = bodies[min(party.step, len(bodies) - 1)].name if bodies else "Kunnanhallitus"
        plausible = {
            "ref": ("decision", f"{body} 20.11.2026 § 4"),
            "reason": ("reason", "why"),
            "signatory": ("signatory", draw(names)),
            "title": ("title", "Mayor"),
            "diary": ("diary", "12/00.01/2026"),
        }
        wanted = [*spec.requires, *draw(st.lists(st.sampled_from(spec.optional or ("ref",))))]
        evidence = dict(plausible[k] for k in wanted if k in plausible) | draw(
            st.dictionaries(keys, values, max_size=1)
        )
    now = draw(
        st.datetimes(datetime(2026, 11, 15), datetime(2027, 1, 31))  # noqa: DTZ001
    ).replace(tzinfo=HELSINKI)
    text_from = draw(st.one_of(st.none(), st.dates(date(2026, 11, 1), date(2026, 12, 31))))
    return machine, party, name, evidence, now, text_from


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(situations())
def test_the_table_moves_a_party_as_decide_does(
    situation: tuple[Any, PartySnapshot, str, dict[str, Any], datetime, Any],
) -> None:
    machine, party, name, evidence, now, text_from = situation
    move = table_of(machine).move(party.state, name)
    if move is None:
        assert name not in machine.allowed(party.state)
        return
    given_ = Evidence(
        ref=evidence.get("decision"),
        reason=evidence.get("reason"),
        signatory=evidence.get("signatory"),
        title=evidence.get("title"),
        diary=evidence.get("diary"),
    )
    try:
        decided: PartySnapshot | None = decide(machine, party, name, given_, now, text_from).party
    except (RatifyError, LookupError, TypeError, ValueError, AttributeError, ArithmeticError):
        decided = None
    got = advance(move, party, evidence, now, text_from)
    if got is not None:  # the table vouches only for what decide accepts, as decide makes it
        assert decided is not None
        assert got == decided
        assert type(got) is type(decided)
        assert got.__dict__ == decided.__dict__


def test_a_copied_party_is_the_replaced_one() -> None:
    party = load_party()
    args = ("signed", 2, (Signature("A", "B"),), date(2027, 1, 1))
    copied = transitions_table._copied(party, *args)
    replaced = transitions_table._replaced(party, *args)
    assert copied == replaced
    assert hash(copied) == hash(replaced)
    assert repr(copied) == repr(replaced)
    with pytest.raises(AttributeError):
        copied.state = "draft"  # type: ignore[misc]
    assert party.state != "signed"  # the original untouched


def load_party() -> PartySnapshot:
    replayer = Replayer(default_catalog().machine)
    replayer.feed(load("activation")["entries"][0])
    return next(iter(replayer.result.parties.values()))


# --- the database: streaming, and answering as before ---------------------------------------------


def rewrite(engine: Engine, entries: list[dict[str, Any]]) -> None:
    """Store ``entries`` over the round's log (their evidence, states, hashes), as a forger would,
    and anchor the round at the last."""
    statement = text(
        "UPDATE log_entries SET evidence = :evidence, event = :event, from_state = :from_state, "
        "to_state = :to_state, prev_hash = :prev_hash, hash = :hash WHERE round_id = :round AND "
        "seq = :seq"
    ).bindparams(bindparam("evidence", type_=JSON))
    for entry in entries:
        tamper(engine, statement, **{k: entry[k] for k in entry if k not in ("party",)})
    tamper(
        engine,
        "UPDATE rounds SET log_head = :h, log_length = :n WHERE id = :r",
        h=entries[-1]["hash"],
        n=len(entries),
        r=ROUND,
    )


def forge(engine: Engine, seq: int, **changes: Any) -> None:
    """Change entry ``seq`` and re-chain the log from it: only replay can tell."""
    entries: list[dict[str, Any]] = [dict(e) for e in log_entries(engine, ROUND)]
    entries[seq - 1] = {**entries[seq - 1], **changes}
    rewrite(engine, rechained(entries))


def deep(engine: Engine, seq: int) -> None:
    value = "CAST(:ev AS json)" if engine.dialect.name == "postgresql" else ":ev"
    tamper(
        engine,
        f"UPDATE log_entries SET evidence = {value} WHERE round_id = :r AND seq = :s",
        ev="[" * 3000 + "]" * 3000,
        r=ROUND,
        s=seq,
    )


def edit(engine: Engine, seq: int, column: str = "actor", value: Any = "someone") -> None:
    tamper(
        engine,
        f"UPDATE log_entries SET {column} = :v WHERE round_id = :r AND seq = :s",
        v=value,
        r=ROUND,
        s=seq,
    )


SQLITE_ONLY = {
    "time-text-short",
    "time-text-impossible",
    "evidence-not-json",
    "evidence-a-number",
    "evidence-spaced",
    "party-bodies-not-json",
    "party-signatures-a-number",
    "party-signatures-spaced",
    "party-date-text",
    "party-flag-text",
    "document-text-a-number",
}
Step = Callable[[Engine], None]


def sql(statement: str) -> Step:
    return lambda db: tamper(db, statement, r=ROUND)


TAMPERINGS: dict[str, list[Step]] = {
    "none": [],
    "edited": [partial(edit, seq=7)],
    "edited-twice": [partial(edit, seq=9), partial(edit, seq=4)],
    "forged": [partial(forge, seq=6, to_state="signed")],
    "forged-then-edited-later": [partial(forge, seq=6, to_state="signed"), partial(edit, seq=11)],
    "edited-then-deep": [partial(edit, seq=3), partial(deep, seq=9)],
    "deep-then-edited": [partial(deep, seq=3), partial(edit, seq=9)],
    "forged-evidence": [
        partial(forge, seq=5, evidence={"decision": "Kunnanhallitus 08.12.2026 § 7"})
    ],
    "forged-event": [partial(forge, seq=8, event="bogus")],
    "cut-short": [sql("DELETE FROM log_entries WHERE round_id = :r AND seq > 12")],
    "all-gone": [sql("DELETE FROM log_entries WHERE round_id = :r")],
    "length": [sql("UPDATE rounds SET log_length = 14 WHERE id = :r")],
    "party-state": [
        sql("UPDATE parties SET state = 'signed' WHERE round_id = :r AND party_id = 'delta'")
    ],
    "document": [sql("UPDATE documents SET text = 'changed' WHERE round_id = :r")],
    "orphans": [sql("UPDATE log_entries SET round_id = 'elsewhere/1' WHERE seq = 15")],
    "time-text-short": [partial(edit, seq=4, column="recorded_at", value="2026-12-07 16:00:00")],
    "time-text-impossible": [
        partial(edit, seq=4, column="recorded_at", value="2026-02-30 16:00:00.000000")
    ],
    "evidence-not-json": [partial(edit, seq=6, column="evidence", value="{not json")],
    "evidence-a-number": [partial(edit, seq=6, column="evidence", value=5)],
    "evidence-spaced": [partial(edit, seq=6, column="evidence", value=' {"x": 1} ')],
    "party-bodies-not-json": [
        sql("UPDATE parties SET bodies = '[{' WHERE round_id = :r AND party_id = 'delta'")
    ],
    "party-signatures-a-number": [
        sql("UPDATE parties SET signatures = 7 WHERE round_id = :r AND party_id = 'delta'")
    ],
    "party-signatures-spaced": [
        sql("UPDATE parties SET signatures = ' [] ' WHERE round_id = :r AND party_id = 'delta'")
    ],
    "party-date-text": [
        sql("UPDATE parties SET legal_force_from = 'x' WHERE round_id = :r AND party_id = 'delta'")
    ],
    "party-flag-text": [
        sql(
            "UPDATE parties SET await_legal_force = 'no' WHERE round_id = :r AND party_id = 'delta'"
        )
    ],
    "party-step": [sql("UPDATE parties SET step = step + 1 WHERE round_id = :r")],
    "party-gone": [sql("DELETE FROM parties WHERE round_id = :r AND party_id = 'delta'")],
    "document-text-a-number": [sql("UPDATE documents SET text = 5 WHERE round_id = :r")],
    "document-gone": [sql("DELETE FROM documents WHERE round_id = :r")],
    "round-state": [sql("UPDATE rounds SET state = 'active' WHERE id = :r")],
}


@pytest.mark.parametrize("tampering", list(TAMPERINGS))
def test_verify_answers_as_reading_whole_logs_did(
    db: Engine, tmp_path: Path, tampering: str
) -> None:
    if tampering in SQLITE_ONLY and db.dialect.name != "sqlite":
        pytest.skip("a value only SQLite's dynamic types let in")
    build_round(db, tmp_path)
    for step in TAMPERINGS[tampering]:
        step(db)
    expected = outcome(lambda: reference.verify(db))
    assert outcome(lambda: verify(db)) == expected
    assert outcome(lambda: verify(db, ROUND)) == outcome(lambda: reference.verify(db, ROUND))
    if tampering == "none":
        assert expected[0] == "ok"


def test_verify_finds_a_noted_head_as_before(db: Engine, tmp_path: Path) -> None:
    build_round(db, tmp_path)
    entries = log_entries(db, ROUND)
    for head in (entries[4]["hash"], entries[-1]["hash"], entries[0]["hash"], "ab" * 32):
        expected = outcome(lambda: reference.verify(db, expect_head=head))  # noqa: B023
        assert outcome(lambda: verify(db, expect_head=head)) == expected  # noqa: B023


def most_alive(db: Engine, monkeypatch: pytest.MonkeyPatch) -> int:
    """The most entries alive at once while ``verify`` runs, its rows fetched two at a time; and
    that it made no ORM object of a log entry."""
    alive: set[int] = set()
    most = 0

    class Counted(dict[str, Any]):
        pass

    made = audit._entry

    def counted(row: Any, *how: Any, **how_named: Any) -> Any:
        nonlocal most
        entry = Counted(made(row, *how, **how_named))
        alive.add(id(entry))
        most = max(most, len(alive))
        weakref.finalize(entry, alive.discard, id(entry))
        return entry

    monkeypatch.setattr(audit, "YIELD_PER", 2)
    monkeypatch.setattr(audit, "_entry", counted)
    loaded: list[Any] = []

    def load_of_an_entry(target: Any, context: Any) -> None:
        loaded.append(target)

    event.listen(LogRow, "load", load_of_an_entry)
    gc.disable()  # reference counting alone frees them: what is alive is what is held
    try:
        report = verify(db)
    finally:
        gc.enable()
        event.remove(LogRow, "load", load_of_an_entry)
    assert report.chains[0].entries == 15
    assert loaded == []
    return most


def test_verify_holds_a_few_entries_at_a_time(
    db: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No more than a few entries are ever alive (the one being checked, the one before it): the
    log is streamed, never gathered, and no ORM object of it is made."""
    build_round(db, tmp_path)
    assert 1 <= most_alive(db, monkeypatch) <= 3


def test_the_count_would_see_a_log_gathered(
    db: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The test above can fail: had verify gathered the entries, all fifteen would be alive."""
    build_round(db, tmp_path)
    streamed = audit._stream

    def gathered(session: Any, round_id: str) -> Iterator[Any]:
        return iter(list(streamed(session, round_id)))

    monkeypatch.setattr(audit, "_stream", gathered)
    assert most_alive(db, monkeypatch) == 15


# --- exports ------------------------------------------------------------------------------------


def whole(data: bytes, csv_format: bool) -> tuple[Any, ...]:
    """What reading ``data`` whole gave: entries, or the failure (as verify_file words it)."""
    try:
        text_ = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return ("undecodable", exc.start)
    return outcome(lambda: from_csv(text_) if csv_format else from_jsonl(text_))


def streamed(data: bytes, csv_format: bool) -> tuple[Any, ...]:
    reading = ExportStream(io.BytesIO(data), csv_format=csv_format, size=len(data))
    entries = list(reading)
    if reading.undecodable is not None:
        return ("undecodable", reading.undecodable)
    if reading.problem is not None:
        return ("VerificationFailed", str(reading.problem))
    return ("ok", entries)


def exports() -> list[tuple[str, bytes, bool]]:
    out = []
    for name in NAMES:
        entries = load(name)["entries"]
        out.append((f"{name}.jsonl", to_jsonl(entries).encode(), False))
        out.append((f"{name}.csv", to_csv(entries).encode(), True))
    return out


EXPORTS = exports()
SNIPPETS = st.sampled_from(
    [
        b"\x00",
        b"\xff",
        b"\xe2\x82",
        b"\n",
        b"\r",
        b"\r\n",
        b"\xef\xbb\xbf",
        b'"',
        b",",
        b"{",
        b"}",
        b"[]",
        b'{"seq": 1}',
        b"\\u0000",
        b"'",
        b"=",
        b"\xc3\xa4",
        b" ",
        b"\t",
    ]
)


@st.composite
def mutated_exports(draw: st.DrawFn) -> tuple[bytes, bool]:
    _, data, csv_format = draw(st.sampled_from(EXPORTS))
    for _ in range(draw(st.integers(0, 3))):
        action = draw(st.sampled_from(["insert", "delete", "drop-line", "swap-lines", "crlf"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if action == "insert":
            data = data[:at] + draw(SNIPPETS) + data[at:]
        elif action == "delete":
            data = data[:at] + data[at + draw(st.integers(1, 40)) :]
        else:
            lines = data.split(b"\n")
            i = draw(st.integers(0, len(lines) - 1))
            if action == "drop-line":
                del lines[i]
            elif action == "swap-lines" and len(lines) > 1:
                lines[i], lines[i - 1] = lines[i - 1], lines[i]
            elif action == "crlf":
                lines[i] += b"\r"
            data = b"\n".join(lines)
    return data, csv_format


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_exports())
def test_an_export_streamed_reads_as_read_whole(export: tuple[bytes, bool]) -> None:
    data, csv_format = export
    assert streamed(data, csv_format) == whole(data, csv_format)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(export=mutated_exports(), head=st.sampled_from([None, "verified", "other"]))
def test_verify_file_answers_as_before(
    tmp_path: Path, export: tuple[bytes, bool], head: str | None
) -> None:
    data, csv_format = export
    path = tmp_path / ("export.csv" if csv_format else "export.jsonl")
    path.write_bytes(data)
    noted = {"other": "ab" * 32}.get(head or "")
    if head == "verified":  # the head the file holds, when it verifies
        verified = outcome(lambda: reference.verify_file(path))
        noted = verified[1].chains[0].head if verified[0] == "ok" else "cd" * 32
    expected = outcome(lambda: reference.verify_file(path, expect_head=noted))
    assert outcome(lambda: verify_file(path, expect_head=noted)) == expected


def test_verify_file_of_a_forged_export_names_what_reading_it_whole_named(tmp_path: Path) -> None:
    """A chain broken after a line replay refuses: the chain's problem is the answer, as when the
    whole file was checked first and replayed after."""
    entries = load("activation")["entries"]
    forged = rechained([*entries[:5], {**entries[5], "to_state": "signed"}, *entries[6:]])
    forged[8] = {**forged[8], "actor": "someone"}
    path = tmp_path / "forged.jsonl"
    path.write_text(to_jsonl(forged), "utf-8")
    expected = outcome(lambda: reference.verify_file(path))
    assert outcome(lambda: verify_file(path)) == expected
    assert "entry #9" in expected[1]


def test_an_unreadable_file_is_invalid_input_as_before(tmp_path: Path) -> None:
    for path in (tmp_path / "missing.jsonl", tmp_path):
        assert outcome(lambda: verify_file(path)) == outcome(lambda: reference.verify_file(path))  # noqa: B023
