"""The hash chain of the log: canonical entries, their hashes, and checking a chain.

Each round's log is its own chain, so a round's export verifies on its own. An entry's hash is the
SHA-256 of a canonical JSON of every field but the hash itself, the previous entry's hash included.

A chain proves its own order and content, not that it is the chain that was written: whoever can
rewrite every entry can re-chain them all. A head noted elsewhere (``parse_head``) holds it to
account: :func:`position_of` finds it in the chain, or finds that it is gone.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypedDict

from engine.errors import InvalidInput

__all__ = [
    "FIELDS",
    "GENESIS",
    "ChainReport",
    "Entry",
    "canonical",
    "check_chain",
    "entry_hash",
    "format_time",
    "parse_head",
    "position_of",
]

GENESIS = "0" * 64


class Entry(TypedDict):
    """One entry of a round's log, as it is hashed, exported and returned by `audit log`."""

    seq: int
    round: str
    party: str | None
    event: str
    from_state: str | None
    to_state: str | None
    actor: str
    recorded_at: str  # UTC, microseconds, "Z" (format_time)
    clock: str  # system, or at (a time given by hand)
    evidence: dict[str, Any]
    document_sha256: str
    prev_hash: str
    hash: str


FIELDS = (
    "seq",
    "round",
    "party",
    "event",
    "from_state",
    "to_state",
    "actor",
    "recorded_at",
    "clock",
    "evidence",
    "document_sha256",
    "prev_hash",
    "hash",
)


_HEAD = re.compile(r"[0-9a-f]{64}")


def parse_head(text: str) -> str:
    """A head hash as an auditor noted it: all 64 hex digits (any case, spaces around ignored),
    never a prefix, which a forger could match by trying."""
    value = text.strip().lower()
    if not _HEAD.fullmatch(value):
        shown = text if len(text) <= 80 else text[:77] + "..."
        raise InvalidInput(
            f"{{opt.expect_head}} {shown!r} is not a head hash: give all 64 hex digits of the "
            "SHA-256, as {cmd.audit_head} and {cmd.audit_verify} print it",
            field="expect_head",
        )
    return value


def position_of(entries: Sequence[Mapping[str, Any]], head: str) -> int | None:
    """The seq of the entry whose hash is ``head`` (1 for the first), or None: no entry has it."""
    for entry in entries:
        if entry.get("hash") == head:
            seq = entry.get("seq")
            return seq if isinstance(seq, int) else None
    return None


def format_time(moment: datetime) -> str:
    """UTC, microseconds, 'Z': one spelling of a moment whatever the database returns."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(entry: Mapping[str, Any]) -> bytes:
    body = {k: entry[k] for k in FIELDS if k != "hash"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(entry: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(entry)).hexdigest()


@dataclass(frozen=True)
class ChainReport:
    round: str
    entries: int
    head: str
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def _name(entry: Mapping[str, Any]) -> str:
    who = f" for {entry['party']}" if entry.get("party") else ""
    return f"entry #{entry.get('seq')} ({entry.get('event')}{who})"


def check_chain(
    round_id: str,
    entries: Sequence[Mapping[str, Any]],
    *,
    expected_length: int | None = None,
    expected_head: str | None = None,
) -> ChainReport:
    """Check one round's entries, oldest first; the report names the first bad entry."""
    prev = GENESIS
    for position, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict) or not isinstance(entry.get("seq"), int):
            return ChainReport(
                round_id, position - 1, prev, f"entry {position} is not a log entry (no seq)"
            )
        name = f"round {round_id} {_name(entry)}"
        missing = [k for k in FIELDS if k not in entry]
        if missing:
            return ChainReport(round_id, position - 1, prev, f"{name}: fields missing: {missing}")
        if entry["round"] != round_id:
            return ChainReport(
                round_id, position - 1, prev, f"{name}: belongs to round {entry['round']}"
            )
        if entry["seq"] != position:
            what = "missing or reordered" if entry["seq"] > position else "repeated or reordered"
            return ChainReport(
                round_id,
                position - 1,
                prev,
                f"{name}: expected entry #{position} here; entries are {what}",
            )
        if entry["prev_hash"] != prev:
            return ChainReport(
                round_id,
                position - 1,
                prev,
                f"{name}: does not follow the entry before it (prev_hash breaks the chain); "
                "an entry was inserted, deleted or reordered",
            )
        try:
            computed = entry_hash(entry)
        except (UnicodeEncodeError, RecursionError, TypeError, ValueError) as exc:
            # What no JSON of ratify's holds: a lone surrogate, nesting thousands deep, a value
            # json cannot write. Such an entry was not written by ratify.
            return ChainReport(
                round_id,
                position - 1,
                prev,
                f"{name}: its content cannot be hashed ({type(exc).__name__}); it was changed",
            )
        if computed != entry["hash"]:
            return ChainReport(
                round_id,
                position - 1,
                prev,
                f"{name}: its content does not match its hash; it was changed",
            )
        prev = entry["hash"]
    count = len(entries)
    if expected_length is not None and count != expected_length:
        return ChainReport(
            round_id,
            count,
            prev,
            f"round {round_id}: the round records {expected_length} entries but its log has "
            f"{count}; entry #{count + 1} onwards is missing"
            if count < expected_length
            else f"round {round_id}: the round records {expected_length} entries, its log {count}",
        )
    if expected_head is not None and prev != expected_head:
        return ChainReport(
            round_id,
            count,
            prev,
            f"round {round_id}: the last entry is not the one the round records",
        )
    return ChainReport(round_id, count, prev)
