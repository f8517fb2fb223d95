"""Exports of a round's log: one entry a line (jsonl), or a spreadsheet (csv), and reading them
back for `audit verify --file`."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from typing import Any

from engine.core.chain import FIELDS
from engine.errors import InvalidInput

__all__ = ["from_csv", "from_jsonl", "to_csv", "to_jsonl"]


def to_jsonl(entries: Iterable[dict[str, Any]]) -> str:
    return "".join(
        json.dumps({k: e[k] for k in FIELDS}, ensure_ascii=False, sort_keys=False) + "\n"
        for e in entries
    )


def from_jsonl(text: str) -> list[dict[str, Any]]:
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise InvalidInput(f"line {number} is not JSON ({exc.msg})") from None
    return entries


def to_csv(entries: Iterable[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    for e in entries:
        writer.writerow(
            {**e, "evidence": json.dumps(e["evidence"], ensure_ascii=False, sort_keys=True)}
        )
    return out.getvalue()


def from_csv(text: str) -> list[dict[str, Any]]:
    """Read back :func:`to_csv`: empty cells are nulls, ``seq`` an integer, ``evidence`` JSON."""
    entries = []
    for row in csv.DictReader(io.StringIO(text)):
        entry: dict[str, Any] = {k: (v if v != "" else None) for k, v in row.items()}
        entry["seq"] = int(entry["seq"]) if entry.get("seq") else None
        entry["evidence"] = json.loads(entry["evidence"] or "{}")
        entries.append(entry)
    return entries
