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
import operator
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from json.encoder import c_make_encoder  # type: ignore[attr-defined]
from json.encoder import encode_basestring as _quote  # how json writes a string
from typing import Any

# typing_extensions: pydantic (the API describes entries) reads its TypedDicts on Python 3.11.
from typing_extensions import TypedDict

from engine.errors import InvalidInput

__all__ = [
    "FIELDS",
    "GENESIS",
    "ChainChecker",
    "ChainReport",
    "Entry",
    "canonical",
    "check_chain",
    "combined_sha256",
    "entry_hash",
    "format_time",
    "parse_head",
    "position_of",
    "sha256_text",
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


def sha256_text(text: str) -> str:
    """The SHA-256 of a text's UTF-8 bytes, hex: what an approval binds to."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def combined_sha256(hashes: Mapping[str, str]) -> str:
    """The hash of a version's texts together, from each language's SHA-256 (hex, by language
    code). One text: its own hash, so a one-language agreement's hash is its text's. Several: the
    SHA-256 of the lines ``<language> <sha256>`` sorted by language code, each ending in a
    newline, as UTF-8 (``"fi 3a…\nsv 9c…\n"``): the order they are given in does not count, and
    changing any one text changes it."""
    if len(hashes) == 1:
        return next(iter(hashes.values()))
    lines = "".join(f"{language} {hashes[language]}\n" for language in sorted(hashes))
    return sha256_text(lines)


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
    moment = moment.astimezone(UTC)
    if moment.year >= 1000:  # strftime's text, in half the time
        return "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (  # noqa: UP031
            moment.year,
            moment.month,
            moment.day,
            moment.hour,
            moment.minute,
            moment.second,
            moment.microsecond,
        )
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # the year unpadded, as it always was


# What json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False) builds on every
# call, built once: the same encoder, the same text.
_ENCODE = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def canonical(entry: Mapping[str, Any]) -> bytes:
    body = {k: entry[k] for k in FIELDS if k != "hash"}
    return _ENCODE(body).encode()


# json's C encoder with canonical()'s options, made once: JSONEncoder.encode makes one on every
# call, and its Python frames around that cost as much as encoding an entry's evidence. Made
# without check_circular's markers, so that it keeps no state between calls (calls from many
# threads share it): what it is given here is read from JSON, which has no cycles.
_C_ENCODE: Any = (
    (lambda value, _level: (_ENCODE(value),))
    if c_make_encoder is None
    else c_make_encoder(None, json.JSONEncoder().default, _quote, None, ":", ",", True, False, True)
)  # (value, 0) -> the chunks of _ENCODE(value)'s text


# The keys of canonical()'s text but evidence and seq, in the order sort_keys writes them.
_TEXT_KEYS = tuple(sorted(k for k in FIELDS if k not in ("hash", "evidence", "seq")))
assert _TEXT_KEYS == (
    "actor",
    "clock",
    "document_sha256",
    "event",
    "from_state",
    "party",
    "prev_hash",
    "recorded_at",
    "round",
    "to_state",
)

_TEXT_VALUES = operator.itemgetter(*_TEXT_KEYS)


def _canonical_text(entry: Mapping[str, Any]) -> str | None:
    """``canonical(entry)`` before it is encoded to UTF-8, for an entry of the types ratify writes
    (text or null, a whole number for seq, an object for evidence): each value written as json
    writes it, in the order sort_keys puts them; only the evidence goes through the encoder. That
    is a third of the work of encoding the whole entry. None for any other types: ask
    :func:`canonical`."""
    seq, evidence = entry["seq"], entry["evidence"]
    if type(seq) is not int or type(evidence) is not dict:
        return None
    values = _TEXT_VALUES(entry)
    try:  # every one of them text, as in most entries (_quote takes nothing else)
        quoted = [*map(_quote, values)]
    except TypeError:
        quoted = []
        for value in values:
            if type(value) is str:
                quoted.append(_quote(value))
            elif value is None:
                quoted.append("null")
            else:
                return None
    actor, clock, document, event, from_state, party, prev, at, round_id, to_state = quoted
    return (
        f'{{"actor":{actor},"clock":{clock},"document_sha256":{document},"event":{event},'
        f'"evidence":{"".join(_C_ENCODE(evidence, 0)) if evidence else "{}"},'
        f'"from_state":{from_state},'
        f'"party":{party},'
        f'"prev_hash":{prev},"recorded_at":{at},"round":{round_id},"seq":{seq},'
        f'"to_state":{to_state}}}'
    )


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


_FIELD_SET = frozenset(FIELDS)


class ChainChecker:
    """:func:`check_chain` one entry at a time, oldest first, holding none of them: ``feed`` each
    entry, then ``report``. Once an entry is bad, ``problem`` names it and later entries are not
    looked at (``feed`` returns False). With ``watch``, ``seen`` is the seq of the first entry
    whose hash is that head (:func:`position_of` over the entries fed)."""

    __slots__ = ("_head", "_length", "_watch", "entries", "prev", "problem", "round", "seen")

    def __init__(
        self,
        round_id: str,
        *,
        expected_length: int | None = None,
        expected_head: str | None = None,
        watch: str | None = None,
    ) -> None:
        self.round = round_id
        self._length = expected_length
        self._head = expected_head
        self._watch = watch
        self.entries = 0  # how many verified
        self.prev = GENESIS  # the hash of the last one verified
        self.problem: str | None = None
        self.seen: int | None = None

    def feed(self, entry: Any) -> bool:
        """Check the next entry; False once the chain is broken (at it or before it)."""
        if self.problem is not None:
            return False
        position = self.entries + 1
        if not (type(entry) is dict and entry.keys() >= _FIELD_SET and type(entry["seq"]) is int):
            # Not a plain dict of every field with a whole number for seq: asked in turn.
            if not isinstance(entry, dict) or not isinstance(entry.get("seq"), int):
                return self._broken(f"entry {position} is not a log entry (no seq)")
            if missing := [k for k in FIELDS if k not in entry]:
                return self._broken(f"{self._named(entry)}: fields missing: {missing}")
        if entry["round"] != self.round:
            return self._broken(f"{self._named(entry)}: belongs to round {entry['round']}")
        seq = entry["seq"]
        if seq != position:
            what = "missing or reordered" if seq > position else "repeated or reordered"
            return self._broken(
                f"{self._named(entry)}: expected entry #{position} here; entries are {what}"
            )
        if entry["prev_hash"] != self.prev:
            return self._broken(
                f"{self._named(entry)}: does not follow the entry before it (prev_hash breaks the "
                "chain); an entry was inserted, deleted or reordered"
            )
        try:
            text = _canonical_text(entry)
            if text is None:
                computed = entry_hash(entry)
            else:
                computed = hashlib.sha256(text.encode()).hexdigest()
        except (UnicodeEncodeError, RecursionError, TypeError, ValueError) as exc:
            # What no JSON of ratify's holds: a lone surrogate, nesting thousands deep, a value
            # json cannot write. Such an entry was not written by ratify.
            return self._broken(
                f"{self._named(entry)}: its content cannot be hashed ({type(exc).__name__}); "
                "it was changed"
            )
        if computed != entry["hash"]:
            return self._broken(
                f"{self._named(entry)}: its content does not match its hash; it was changed"
            )
        self.entries = position
        self.prev = computed
        if computed == self._watch and self.seen is None:
            self.seen = seq
        return True

    def _broken(self, problem: str) -> bool:
        self.problem = problem
        return False

    def _named(self, entry: Mapping[str, Any]) -> str:
        return f"round {self.round} {_name(entry)}"

    def report(self) -> ChainReport:
        """The chain as fed so far: the first bad entry, else the anchors checked."""
        round_id, count, prev = self.round, self.entries, self.prev
        if self.problem is not None:
            return ChainReport(round_id, count, prev, self.problem)
        expected_length = self._length
        if expected_length is not None and count != expected_length:
            return ChainReport(
                round_id,
                count,
                prev,
                f"round {round_id}: the round records {expected_length} entries but its log has "
                f"{count}; entry #{count + 1} onwards is missing"
                if count < expected_length
                else f"round {round_id}: the round records {expected_length} entries, its log "
                f"{count}",
            )
        if self._head is not None and prev != self._head:
            return ChainReport(
                round_id,
                count,
                prev,
                f"round {round_id}: the last entry is not the one the round records",
            )
        return ChainReport(round_id, count, prev)


def check_chain(
    round_id: str,
    entries: Iterable[Mapping[str, Any]],
    *,
    expected_length: int | None = None,
    expected_head: str | None = None,
) -> ChainReport:
    """Check one round's entries, oldest first; the report names the first bad entry."""
    checker = ChainChecker(round_id, expected_length=expected_length, expected_head=expected_head)
    for entry in entries:
        if not checker.feed(entry):
            break
    return checker.report()
