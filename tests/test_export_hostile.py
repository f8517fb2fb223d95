"""Exports handed in by someone hostile: `ratify audit verify --file` refuses what ratify never
wrote, naming the line and the key, and never ends in a traceback; csv cells a spreadsheet would
run as formulas are neutralised, and still verify.

Every file here is built from the golden logs (tests/golden) or random data; the csv injection
round also goes through the database, both backends, as an auditor's export would.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from engine.clock import FakeClock
from engine.core.chain import FIELDS, GENESIS, entry_hash
from engine.core.evidence import Evidence
from engine.core.export import MAX_DEPTH, NEUTRALISED, from_csv, from_jsonl, to_csv, to_jsonl
from engine.errors import RatifyError, VerificationFailed
from engine.runtime.audit import VerifyReport, verify_file
from engine.runtime.events import record
from tests.conftest import CLI, Ran, cli_on

GOLDEN = Path(__file__).parent / "golden"
NAMES = ("activation", "failure", "appeal-cancel")


def golden(name: str = "activation") -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = json.loads((GOLDEN / f"{name}.json").read_text("utf-8"))[
        "entries"
    ]
    return entries


def rechain(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Re-hash every entry (numbering kept), as a forger who knows the scheme would."""
    out = [dict(e) for e in entries]
    for i, entry in enumerate(out):
        entry["prev_hash"] = out[i - 1]["hash"] if i else GENESIS
        entry["hash"] = entry_hash(entry)
    return out


@pytest.fixture
def offline(tmp_path: Path) -> CLI:
    """The command line for `verify --file`, which never opens the database it is given."""
    return cli_on(f"sqlite:///{tmp_path / 'never-opened.db'}")


def verify(cli: CLI, path: Path) -> Ran:
    return cli("audit", "verify", "--file", str(path))


def jsonl_lines(name: str = "activation") -> list[str]:
    return to_jsonl(golden(name)).splitlines()


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), "utf-8")
    return path


def test_the_golden_exports_verify(offline: CLI, tmp_path: Path) -> None:
    for name in NAMES:
        entries = golden(name)
        for path, text in (
            (tmp_path / "g.jsonl", to_jsonl(entries)),
            (tmp_path / "g.csv", to_csv(entries)),
        ):
            path.write_text(text, "utf-8")
            ran = verify(offline, path)
            assert ran.exit_code == 0, ran.stderr
            assert f"{len(entries)} entries intact" in ran.stdout
            assert entries[-1]["hash"] in ran.stdout


# --- jsonl: keys --------------------------------------------------------------------------------


def edited(number: int, change: Callable[[dict[str, Any]], None]) -> list[str]:
    """The golden export with line ``number`` (1-based) parsed, changed and written back."""
    lines = jsonl_lines()
    entry = json.loads(lines[number - 1])
    change(entry)
    lines[number - 1] = json.dumps(entry, ensure_ascii=False)
    return lines


def raw(number: int, old: str, new: str) -> list[str]:
    """The golden export with ``old`` replaced by ``new`` in line ``number``'s text."""
    lines = jsonl_lines()
    assert old in lines[number - 1]
    lines[number - 1] = lines[number - 1].replace(old, new, 1)
    return lines


def nest(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


REFUSED_LINES: dict[str, tuple[list[str], list[str]]] = {
    "unknown key": (edited(3, lambda e: e.update(note="slipped in")), ["line 3", "'note'"]),
    "missing key": (edited(3, lambda e: e.pop("actor")), ["line 3", "actor"]),
    "duplicated key": (raw(3, '{"seq": 3,', '{"seq": 3, "seq": 4,'), ["line 3", "'seq'", "once"]),
    "duplicated key, other value kept": (
        raw(4, '"actor": ', '"actor": "Mallory", "actor": '),
        ["line 4", "'actor'"],
    ),
    "duplicated key inside the evidence": (
        raw(1, '"timezone": ', '"timezone": "UTC", "timezone": '),
        ["line 1", "'timezone'"],
    ),
    "a string": (raw(5, jsonl_lines()[4], '"an entry"'), ["line 5", "a string"]),
    "a number": (raw(5, jsonl_lines()[4], "5"), ["line 5", "a number"]),
    "null": (raw(5, jsonl_lines()[4], "null"), ["line 5", "null"]),
    "a list": (raw(5, jsonl_lines()[4], json.dumps(list(FIELDS))), ["line 5", "a list"]),
    "evidence a string": (
        edited(6, lambda e: e.update(evidence="decided")),
        ["line 6", "evidence", "a string"],
    ),
    "evidence a list": (edited(6, lambda e: e.update(evidence=[])), ["line 6", "evidence"]),
    "seq a string": (edited(2, lambda e: e.update(seq="2")), ["line 2", "seq", "a string"]),
    "seq a fraction": (edited(2, lambda e: e.update(seq=2.0)), ["line 2", "seq", "a number"]),
    "seq true": (edited(2, lambda e: e.update(seq=True)), ["line 2", "seq", "true or false"]),
    "seq null": (edited(2, lambda e: e.update(seq=None)), ["line 2", "seq", "null"]),
    "seq NaN": (raw(2, '{"seq": 2,', '{"seq": NaN,'), ["line 2", "NaN"]),
    "seq with 5000 digits": (raw(2, '{"seq": 2,', '{"seq": ' + "9" * 5000 + ","), ["line 2"]),
    "round a number": (edited(7, lambda e: e.update(round=7)), ["line 7", "round"]),
    "party an object": (edited(7, lambda e: e.update(party={})), ["line 7", "party"]),
    "actor null": (edited(7, lambda e: e.update(actor=None)), ["line 7", "actor", "null"]),
    "nested ten thousand deep": (
        raw(8, jsonl_lines()[7], "[" * 10_000 + "]" * 10_000),
        ["line 8", "too deeply"],
    ),
    "evidence nested past the limit": (
        edited(8, lambda e: e.update(evidence=nest(MAX_DEPTH + 5))),
        ["line 8", f"more than {MAX_DEPTH} levels"],
    ),
    "a NUL byte": (raw(9, '"clock": ', '"clock":\x00 '), ["line 9", "NUL"]),
    "a NUL byte inside a string": (raw(9, '"clock": "', '"clock": "\x00'), ["line 9", "NUL"]),
    "a lone surrogate, escaped": (
        raw(4, '"actor": "', '"actor": "\\ud800'),
        ["line 4", "surrogate"],
    ),
    "a lone surrogate as a key": (
        raw(1, '"timezone": ', '"\\udfff": 1, "timezone": '),
        ["line 1", "surrogate"],
    ),
    "cut short": (raw(6, jsonl_lines()[5], jsonl_lines()[5][:-2]), ["line 6", "not JSON"]),
}


@pytest.mark.parametrize("case", list(REFUSED_LINES))
def test_a_line_that_is_no_entry_is_refused_naming_it(
    offline: CLI, tmp_path: Path, case: str
) -> None:
    lines, named = REFUSED_LINES[case]
    ran = verify(offline, write(tmp_path / "export.jsonl", lines))
    assert ran.exit_code == 1, ran.stderr
    assert "Traceback" not in ran.stderr
    message = " ".join(ran.stderr.split())
    for words in named:
        assert words in message, message


def test_an_escaped_nul_inside_a_string_is_json_and_the_chain_judges_it(
    offline: CLI, tmp_path: Path
) -> None:
    lines = edited(4, lambda e: e.update(actor="Hanna\x00"))
    assert "\\u0000" in lines[3]
    ran = verify(offline, write(tmp_path / "export.jsonl", lines))
    assert ran.exit_code == 1
    assert "entry #4" in ran.stderr
    assert "does not match its hash" in ran.stderr


def test_lines_end_at_newlines_only(tmp_path: Path) -> None:
    """A value holding U+2028 or U+0085 (which str.splitlines() would cut at) reads back whole."""
    entries = golden()
    entries[3]["actor"] = "Hanna\u2028Hallitus\x85sihteeri\x1c"
    forged = rechain(entries)
    assert from_jsonl(to_jsonl(forged)) == forged
    path = tmp_path / "export.jsonl"
    path.write_text(to_jsonl(forged), "utf-8")
    assert verify_file(path).chains[0].entries == len(forged)


def test_a_byte_order_mark_and_crlf_line_ends_are_read(tmp_path: Path) -> None:
    entries = golden()
    path = tmp_path / "export.jsonl"
    path.write_text("\ufeff" + to_jsonl(entries).replace("\n", "\r\n"), "utf-8", newline="")
    assert verify_file(path).chains[0].head == entries[-1]["hash"]


def test_a_file_that_cannot_be_read_is_invalid_input(offline: CLI, tmp_path: Path) -> None:
    ran = verify(offline, tmp_path / "no-such-export.jsonl")
    assert ran.exit_code == 2
    assert "--file" in ran.stderr
    assert "cannot read it" in ran.stderr
    ran = verify(offline, tmp_path)  # a folder
    assert ran.exit_code == 2
    assert "cannot read it" in ran.stderr


def test_a_file_that_is_not_utf8_fails_verification(offline: CLI, tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    path.write_bytes(to_jsonl(golden()).encode("utf-8").replace(b"Cora", b"C\xf6ra"))
    ran = verify(offline, path)
    assert ran.exit_code == 1
    assert "not UTF-8" in ran.stderr


# --- csv: header, rows, cells -------------------------------------------------------------------


def csv_table(name: str = "activation") -> list[list[str]]:
    return list(csv.reader(io.StringIO(to_csv(golden(name)), newline="")))


def csv_text(table: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(table)
    return out.getvalue()


def with_cell(table: list[list[str]], row: int, key: str, value: str) -> list[list[str]]:
    table[row][table[0].index(key)] = value
    return table


def without_column(table: list[list[str]], key: str) -> list[list[str]]:
    at = table[0].index(key)
    return [r[:at] + r[at + 1 :] for r in table]


REFUSED_CSV: dict[str, tuple[Callable[[list[list[str]]], list[list[str]]], list[str]]] = {
    "unknown key in the header": (
        lambda t: [[*t[0], "note"]] + [[*r, ""] for r in t[1:]],
        ["line 1", "'note'", "not a key"],
    ),
    "missing key in the header": (lambda t: without_column(t, "actor"), ["line 1", "actor"]),
    "duplicated key in the header": (
        lambda t: [[*t[0], "seq"]] + [[*r, r[0]] for r in t[1:]],
        ["line 1", "'seq'", "twice"],
    ),
    "a row with a cell too many": (
        lambda t: [*t[:3], [*t[3], "extra"], *t[4:]],
        ["line 4", "14 cells", "13 keys"],
    ),
    "a row with cells missing": (lambda t: [*t[:3], t[3][:10], *t[4:]], ["line 4", "prev_hash"]),
    "seq a fraction": (lambda t: with_cell(t, 2, "seq", "2.0"), ["line 3", "seq", "'2.0'"]),
    "seq in other digits": (lambda t: with_cell(t, 2, "seq", "\u0662"), ["line 3", "seq"]),
    "seq with a leading zero": (lambda t: with_cell(t, 2, "seq", "02"), ["line 3", "seq"]),
    "seq empty": (lambda t: with_cell(t, 2, "seq", ""), ["line 3", "seq"]),
    "evidence not JSON": (lambda t: with_cell(t, 5, "evidence", "{decided"), ["line 6", "JSON"]),
    "evidence a list": (lambda t: with_cell(t, 5, "evidence", "[]"), ["line 6", "evidence"]),
    "evidence with a duplicated key": (
        lambda t: with_cell(t, 5, "evidence", '{"reason": "a", "reason": "b"}'),
        ["line 6", "'reason'", "once"],
    ),
    "a formula left unneutralised": (
        lambda t: with_cell(t, 4, "actor", "=HYPERLINK(1)"),
        ["line 5", "actor", "'='"],
    ),
    "a quote ratify never writes": (
        lambda t: with_cell(t, 4, "actor", "'Hanna"),
        ["line 5", "actor", "never writes"],
    ),
    "an empty event": (lambda t: with_cell(t, 4, "event", ""), ["line 5", "event", "null"]),
}


@pytest.mark.parametrize("case", list(REFUSED_CSV))
def test_a_csv_row_or_header_that_is_no_entry_is_refused_naming_it(
    offline: CLI, tmp_path: Path, case: str
) -> None:
    change, named = REFUSED_CSV[case]
    path = tmp_path / "export.csv"
    path.write_text(csv_text(change(csv_table())), "utf-8")
    ran = verify(offline, path)
    assert ran.exit_code == 1, ran.stderr
    message = " ".join(ran.stderr.split())
    for words in named:
        assert words in message, message


def test_a_csv_with_broken_quoting_is_refused(offline: CLI, tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    lines = to_csv(golden()).splitlines()
    lines[3] = lines[3].replace(",", ',"x"y,', 1)
    path.write_text("\n".join(lines) + "\n", "utf-8")
    ran = verify(offline, path)
    assert ran.exit_code == 1
    assert "line 4" in ran.stderr
    assert "not csv" in ran.stderr


HOSTILE_ACTORS = [
    '=HYPERLINK("https://example.invalid")',
    "+1",
    "-2+3",
    "@SUM(A1:A9)",
    "\tclerk",
    "\rclerk",
    "'quoted",
    "''twice",
    "'",
    "",
    "ordinary clerk",
]


@pytest.mark.parametrize("actor", HOSTILE_ACTORS)
def test_one_cell_neutralised_and_restored(actor: str) -> None:
    entries = golden()
    entries[3]["actor"] = actor
    forged = rechain(entries)
    table = list(csv.reader(io.StringIO(to_csv(forged), newline="")))
    cell = table[4][table[0].index("actor")]
    if actor == "" or actor.startswith((*NEUTRALISED, "'")):
        assert cell == "'" + actor
    else:
        assert cell == actor
    assert from_csv(to_csv(forged)) == forged


def test_every_cell_a_spreadsheet_would_run_is_neutralised_and_still_verifies(
    db: Engine, database_url: str, tmp_path: Path
) -> None:
    """Through the database and the CLI: a round recorded by hostile actors, with a hostile
    reason, exported as csv; no cell starts a formula, and the file verifies."""
    from tests.conftest import write_agreement

    path = write_agreement(tmp_path, [{"id": "alpha", "name": "Alpha"}])
    cli = cli_on(database_url)
    by = HOSTILE_ACTORS[0]
    launched = cli("launch", str(path), "--at", "2026-12-01T09:00", "--by", by, "--json")
    assert launched.exit_code == 0, launched.stderr
    round_id = launched.json()["round"]
    clock = FakeClock(datetime(2026, 12, 1, 9, 0, tzinfo=ZoneInfo("Europe/Helsinki")))
    for i, actor in enumerate(HOSTILE_ACTORS[1:], start=1):
        clock.advance(hours=1)
        event, evidence = ("submit", Evidence()) if i % 2 else ("return", Evidence(reason="=1+1"))
        record(db, round_id, "alpha", event, evidence, clock, actor)
    export = tmp_path / "export.csv"
    ran = cli("audit", "export", round_id, "--format", "csv", "--output", str(export))
    assert ran.exit_code == 0, ran.stderr
    text = export.read_bytes().decode("utf-8")  # as verify reads it: no newline translated
    table = list(csv.reader(io.StringIO(text, newline="")))
    cells = [cell for row in table[1:] for cell in row]
    assert not [c for c in cells if c.startswith(NEUTRALISED)]
    actors = [row[table[0].index("actor")] for row in table[1:]]
    assert actors[0] == "'" + HOSTILE_ACTORS[0]
    assert "'\rclerk" in actors
    assert "''quoted" in actors
    reasons = [json.loads(row[table[0].index("evidence")]).get("reason") for row in table[1:]]
    assert "=1+1" in reasons  # inside the evidence's JSON, which starts with "{"
    ran = cli("audit", "verify", "--file", str(export))
    assert ran.exit_code == 0, ran.stderr
    assert f"{len(HOSTILE_ACTORS)} entries intact" in ran.stdout
    log = cli("audit", "log", round_id, "--json").json()
    assert from_csv(text) == log


# --- properties and fuzzing ---------------------------------------------------------------------

# Text as a value of an entry may hold (a NUL is refused in a csv file; see export.py).
VALUES = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=30)


@settings(max_examples=300, deadline=None)
@given(actor=VALUES, reason=VALUES)
def test_any_text_survives_both_formats_exactly(actor: str, reason: str) -> None:
    entries = golden()
    entries[3]["actor"] = actor
    entries[4]["evidence"] = {**entries[4]["evidence"], "note": reason}
    forged = rechain(entries)
    assert from_jsonl(to_jsonl(forged)) == forged
    assert from_csv(to_csv(forged)) == forged


def outcome(path: Path) -> VerifyReport | RatifyError:
    """What verifying ``path`` gives: a report or a RatifyError; anything else fails the test."""
    try:
        result: VerifyReport | RatifyError = verify_file(path)
    except RatifyError as exc:
        result = exc
    if isinstance(result, RatifyError):
        assert str(result)
        assert result.exit_code in (1, 2)
    else:
        assert isinstance(result, VerifyReport)
    return result


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
    | st.sampled_from(
        ["9999-12-31T23:59:59.999999Z", "0001-01-01T00:00:00.000000Z", "../zone", "\ud800"]
    ),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from([*FIELDS, "parties", "id", "name", "bodies"]), inner)
    ),
    max_leaves=10,
)
SUFFIXES = st.sampled_from([".jsonl", ".csv"])


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile")


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(text=st.text(), suffix=SUFFIXES)
def test_fuzz_random_text(folder: Path, text: str, suffix: str) -> None:
    path = folder / f"random{suffix}"
    path.write_text(text, "utf-8")
    result = outcome(path)
    if not text.strip():
        assert isinstance(result, VerificationFailed)


@FUZZ
@given(values=st.lists(JSON, min_size=1, max_size=4), suffix=SUFFIXES)
def test_fuzz_random_json_values_per_line(folder: Path, values: list[Any], suffix: str) -> None:
    path = folder / f"values{suffix}"
    path.write_text("".join(json.dumps(v) + "\n" for v in values), "utf-8")
    assert isinstance(outcome(path), RatifyError)


@FUZZ
@given(
    name=st.sampled_from(NAMES),
    suffix=SUFFIXES,
    cuts=st.lists(
        st.tuples(st.floats(0, 1), st.integers(0, 8), st.text(max_size=8)), min_size=1, max_size=4
    ),
)
def test_fuzz_mutated_real_exports(
    folder: Path, name: str, suffix: str, cuts: list[tuple[float, int, str]]
) -> None:
    entries = golden(name)
    text = to_csv(entries) if suffix == ".csv" else to_jsonl(entries)
    for where, length, insert in cuts:  # at a place, delete some characters and insert others
        at = int(where * len(text))
        text = text[:at] + insert + text[at + length :]
    path = folder / f"mutated{suffix}"
    path.write_text(text, "utf-8")
    result = outcome(path)
    if isinstance(result, VerifyReport):
        # Only a change that leaves the entries as they were verifies (blank space, say), or one
        # that cuts the tail off, which a chain cannot tell: hence --expect-head.
        read = from_csv(text) if suffix == ".csv" else from_jsonl(text)
        assert read == entries[: len(read)]


@FUZZ
@given(name=st.sampled_from(NAMES), suffix=SUFFIXES, data=st.data(), value=JSON)
def test_fuzz_rechained_entries_with_a_value_replaced(
    folder: Path, name: str, suffix: str, data: st.DataObject, value: Any
) -> None:
    """A forger's file: one value anywhere in an entry replaced, every hash recomputed, so that
    only the checks of types and the replay stand between it and a pass."""
    entries = golden(name)
    target = entries[data.draw(st.integers(0, len(entries) - 1), label="entry")]
    places: list[tuple[Any, Any]] = []
    stack: list[Any] = [target]
    while stack:
        container = stack.pop()
        keys = list(container) if isinstance(container, dict) else range(len(container))
        for key in keys:
            places.append((container, key))
            if isinstance(container[key], dict | list):
                stack.append(container[key])
    container, key = data.draw(st.sampled_from(places), label="place")
    container[key] = value
    try:
        forged = rechain(entries)
    except (TypeError, KeyError, ValueError):  # the forger's tool cannot hash it (a lone
        return  # surrogate, a seq made a list...); the cases above cover such files
    path = folder / f"forged{suffix}"
    path.write_text(to_csv(forged) if suffix == ".csv" else to_jsonl(forged), "utf-8")
    outcome(path)


@FUZZ
@given(data=st.binary(max_size=200))
def test_fuzz_random_bytes(folder: Path, data: bytes) -> None:
    path = folder / "bytes.jsonl"
    path.write_bytes(data)
    outcome(path)
