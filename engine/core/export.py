"""Exports of a round's log: one entry a line (jsonl), or a spreadsheet (csv), and reading them
back for `audit verify --file`.

Reading is strict, because an export is evidence handed over by someone else: each line (or csv
row) must hold exactly an entry's keys (:data:`~engine.core.chain.FIELDS`), each once, with the
types ratify writes; anything else is refused with :class:`VerificationFailed` naming the line
and the key. Nothing a file holds may end in any other exception.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from engine.core.chain import FIELDS
from engine.errors import VerificationFailed

__all__ = ["MAX_DEPTH", "NEUTRALISED", "from_csv", "from_jsonl", "to_csv", "to_jsonl"]

# What a spreadsheet would take for the start of a formula (OWASP, "CSV injection").
NEUTRALISED = ("=", "+", "-", "@", "\t", "\r")
_QUOTE = "'"
# How deep an entry's JSON may nest: a launch's evidence is 5 levels deep. Deeper is refused before
# anything recurses over it (hashing, replaying).
MAX_DEPTH = 32
_NULLABLE = frozenset({"party", "from_state", "to_state"})
_BOM = "\ufeff"
_SEQ = re.compile(r"0|[1-9][0-9]{0,17}")
_SURROGATE = re.compile("[\ud800-\udfff]")


def to_jsonl(entries: Iterable[Mapping[str, Any]]) -> str:
    return "".join(
        json.dumps({k: e[k] for k in FIELDS}, ensure_ascii=False, sort_keys=False) + "\n"
        for e in entries
    )


def from_jsonl(text: str) -> list[dict[str, Any]]:
    """Read back :func:`to_jsonl`: one entry object a line; blank lines are skipped."""
    text = _opened(text)
    entries = []
    # Lines end at "\n" only: str.splitlines() would also cut at U+2028 or U+0085, which
    # json.dumps(ensure_ascii=False) leaves as they are inside strings.
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            where = f"line {number}"
            entries.append(_entry(_loads(line, where), where))
    return entries


# The csv neutralisation, and its exact inverse. Writing, a cell is prefixed with one "'" when it
# starts with a character in NEUTRALISED, or with "'" itself, or is the empty string (which would
# otherwise read back as a null); every other cell is written as it is. So a cell that starts with
# "'" always carries a prefix, and reading removes exactly that one character. Reading refuses what
# writing never produces (a "'" before anything else, a NEUTRALISED character unprefixed), so each
# file reads one way only, and verifying it is verifying exactly what ratify wrote.


def _neutralised(value: str) -> str:
    if value == "" or value.startswith((*NEUTRALISED, _QUOTE)):
        return _QUOTE + value
    return value


def _restored(cell: str, where: str, key: str) -> str | None:
    if cell == "":
        return None
    if cell.startswith(_QUOTE):
        value = cell[1:]
        if value == "" or value.startswith((*NEUTRALISED, _QUOTE)):
            return value
        raise _not_an_entry(where, f"its {key} cell starts with a ' that ratify never writes")
    if cell.startswith(NEUTRALISED):
        raise _not_an_entry(
            where, f"its {key} cell starts with {cell[0]!r} without the ' that ratify writes there"
        )
    return cell


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return _neutralised(str(value))


def to_csv(entries: Iterable[Mapping[str, Any]]) -> str:
    out = io.StringIO(newline="")
    # CRLF ends a row (RFC 4180). The csv module quotes a cell only for the characters of the line
    # terminator: with "\n" alone, a "\r" inside a cell went out bare and cut the row in two.
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(FIELDS)
    for e in entries:
        writer.writerow([_cell(e[k]) for k in FIELDS])
    return out.getvalue()


def from_csv(text: str) -> list[dict[str, Any]]:
    """Read back :func:`to_csv`: a header naming every key once, then one entry a row; an empty
    cell is a null, ``seq`` a whole number, ``evidence`` a JSON object (see the neutralisation
    above)."""
    text = _opened(text)
    # The default limit (128 KiB a cell) is less than a launch's evidence with some hundreds of
    # parties; the whole text is in memory already, so the limit protects nothing here.
    csv.field_size_limit(max(csv.field_size_limit(), len(text)))
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            return []
        keys = _header(header)
        entries: list[dict[str, Any]] = []
        while True:
            where = f"line {reader.line_num + 1}"
            row = next(reader, None)
            if row is None:
                return entries
            if row:  # an empty line is no row
                entries.append(_row(keys, row, where))
    except csv.Error as exc:
        raise VerificationFailed(
            f"line {reader.line_num} is not csv as ratify writes it ({exc})"
        ) from None


def _header(header: list[str]) -> list[str]:
    seen: set[str] = set()
    for key in header:
        if key not in FIELDS:
            raise _bad_header(f"{_shown(key)} is not a key of an entry{_KEYS}")
        if key in seen:
            raise _bad_header(f"it names the key {_shown(key)} twice")
        seen.add(key)
    if missing := [k for k in FIELDS if k not in seen]:
        raise _bad_header(f"it lacks the key(s) {', '.join(missing)}")
    return header


def _row(keys: list[str], row: list[str], where: str) -> dict[str, Any]:
    if len(row) > len(keys):
        raise _not_an_entry(
            where, f"it has {len(row)} cells, more than the header's {len(keys)} keys"
        )
    if len(row) < len(keys):
        raise _not_an_entry(where, f"it lacks the key(s) {', '.join(keys[len(row) :])}")
    cells = {key: _restored(cell, where, key) for key, cell in zip(keys, row, strict=True)}
    entry: dict[str, Any] = dict(cells)
    seq = cells["seq"]
    if seq is None or not _SEQ.fullmatch(seq):
        raise _not_an_entry(where, f"its seq {_shown(seq)} is not a whole number")
    entry["seq"] = int(seq)
    if cells["evidence"] is None:
        raise _not_an_entry(where, "its evidence is empty")
    entry["evidence"] = _loads(cells["evidence"], f"{where} (evidence)")
    return _entry(entry, where)


def _opened(text: str) -> str:
    """The text without a byte-order mark (a spreadsheet may add one); no NUL byte in it."""
    text = text.removeprefix(_BOM)
    if (nul := text.find("\x00")) >= 0:
        raise VerificationFailed(
            f"line {text.count(chr(10), 0, nul) + 1} holds a NUL byte; an export never does"
        )
    return text


class _Duplicate(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last of two equal keys: another reader may keep the first, so the one
    # file would say two things. Refused, at every level.
    made: dict[str, Any] = {}
    for key, value in pairs:
        if key in made:
            raise _Duplicate(key)
        made[key] = value
    return made


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _loads(text: str, where: str) -> Any:
    try:
        value = json.loads(text, object_pairs_hook=_unique, parse_constant=_constant)
    except _Duplicate as exc:
        raise _not_an_entry(where, f"the key {_shown(exc.key)} appears more than once") from None
    except json.JSONDecodeError as exc:
        raise VerificationFailed(f"{where} is not JSON ({exc.msg}, column {exc.colno})") from None
    except RecursionError:
        raise _not_an_entry(where, "its JSON nests too deeply") from None
    except ValueError as exc:  # NaN, Infinity; an integer of more than 4300 digits
        raise VerificationFailed(f"{where} is not JSON that ratify writes ({exc})") from None
    if problem := _unfit(value):
        raise _not_an_entry(where, problem)
    return value


def _unfit(value: Any) -> str | None:
    """What makes parsed JSON unfit to be hashed, without recursing: nesting deeper than
    MAX_DEPTH, or text no UTF-8 can hold (a lone surrogate, which JSON can escape: "\\ud800")."""
    stack = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            if level >= MAX_DEPTH:
                return f"its JSON nests more than {MAX_DEPTH} levels deep"
            children = [*item, *item.values()] if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
        elif isinstance(item, str) and _SURROGATE.search(item):
            return f"it holds a lone surrogate ({_shown(item)}), which is no character"
    return None


_KEYS = "; an entry's keys are " + ", ".join(FIELDS)
_KIND = {
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "true or false",
    list: "a list",
    dict: "an object",
}


def _kind(value: Any) -> str:
    return "null" if value is None else _KIND.get(type(value), type(value).__name__)


def _entry(value: Any, where: str) -> dict[str, Any]:
    """``value`` as an entry, or VerificationFailed naming what is wrong with it."""
    if not isinstance(value, dict):
        raise _not_an_entry(where, f"it is {_kind(value)}, not an object")
    for key in value:
        if key not in FIELDS:
            raise _not_an_entry(where, f"{_shown(key)} is not a key of an entry{_KEYS}")
    if missing := [k for k in FIELDS if k not in value]:
        raise _not_an_entry(where, f"it lacks the key(s) {', '.join(missing)}")
    for key in FIELDS:
        field = value[key]
        if key == "seq":
            fits = type(field) is int  # not a bool, not 1.0
            wanted = "a whole number"
        elif key == "evidence":
            fits = isinstance(field, dict)
            wanted = "an object"
        else:
            fits = isinstance(field, str) or (field is None and key in _NULLABLE)
            wanted = "a string or null" if key in _NULLABLE else "a string"
        if not fits:
            raise _not_an_entry(where, f"its {key} is {_kind(field)}, not {wanted}")
    return {key: value[key] for key in FIELDS}


def _shown(text: str | None) -> str:
    if text is None:
        return "(empty)"
    return repr(text if len(text) <= 40 else text[:37] + "...")


def _not_an_entry(where: str, why: str) -> VerificationFailed:
    return VerificationFailed(f"{where} is not a log entry: {why}")


def _bad_header(why: str) -> VerificationFailed:
    return VerificationFailed(f"line 1 is not an export's header: {why}")
