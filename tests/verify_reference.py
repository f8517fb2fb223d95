"""ratify's verification as it was before it streamed (commit 8377b4e), kept verbatim as the oracle
the streaming one is held to: the same logs, the same reports, the same errors naming the same
entries (tests/test_verify_stream.py). Only the imports are new; the canonical JSON is json.dumps'
own, as it was.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from engine.agreement import sha256_text
from engine.core.chain import FIELDS, GENESIS, ChainReport, Entry, parse_head, position_of
from engine.core.export import from_csv, from_jsonl
from engine.core.replay import Machines, Replayed, _moment, _replay_one, _roles
from engine.core.round import settle
from engine.errors import InvalidInput, RatifyError, VerificationFailed
from engine.persistence.database import ensure_schema, transaction
from engine.persistence.tables import DocumentRow, LogRow, PartyRow, RoundRow
from engine.runtime.audit import HeadFound, VerifyReport, _head_gone
from engine.runtime.journal import entry_dict, snapshot
from engine.runtime.lookup import resolve_round
from workflows import default_catalog


def canonical(entry: Mapping[str, Any]) -> bytes:
    body = {k: entry[k] for k in FIELDS if k != "hash"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(entry: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(entry)).hexdigest()


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


def replay(entries: Sequence[Mapping[str, Any]], machines: Machines) -> Replayed:
    """Rebuild the round from its entries; raise :class:`VerificationFailed` at the first that
    its workflows would not have produced."""
    result = Replayed()
    tz = ZoneInfo("Europe/Helsinki")
    for entry in entries:
        name = f"round {entry['round']} entry #{entry['seq']} ({entry['event']})"
        try:
            tz = _replay_one(result, entry, tz, machines)
        except VerificationFailed as exc:
            raise VerificationFailed(f"{name}: {exc}") from None
        except (RatifyError, LookupError, TypeError, ValueError, AttributeError) as exc:
            # A forged entry (wrong types, a launch with no bodies…) is a failed verification.
            raise VerificationFailed(f"{name}: replaying it fails: {exc}") from None
        except (ArithmeticError, OSError) as exc:  # dates beyond what a calendar can count
            raise VerificationFailed(f"{name}: replaying it fails: {exc}") from None
    if entries and result.state == "open" and result.parties:
        last = _moment(entries[-1]["recorded_at"]).astimezone(tz)
        outcome = settle(_roles(result, machines), last)
        if outcome is not None:
            raise VerificationFailed(
                f"round {entries[-1]['round']}: its parties make it {outcome.state}, "
                "but no entry says so"
            )
    return result


def _rounds(session: Session) -> list[RoundRow]:
    return list(
        session.exec(
            select(RoundRow).order_by(col(RoundRow.agreement_id), col(RoundRow.number))
        ).all()
    )


def _entries(session: Session, round_id: str) -> list[Entry]:
    rows = session.exec(
        select(LogRow).where(LogRow.round_id == round_id).order_by(col(LogRow.seq))
    ).all()
    return [entry_dict(r) for r in rows]


def verify(
    engine: Engine, ref: str | None = None, *, expect_head: str | None = None
) -> VerifyReport:
    """Check every round's chain (or one round's), its anchors, and that replaying it gives the
    stored states; with ``expect_head``, also that the chain still holds that head.

    Raises :class:`VerificationFailed` naming the first bad entry, or when no chain verified holds
    the expected head: it was the head once, so the log was rewritten or cut short since.
    """
    wanted = parse_head(expect_head) if expect_head is not None else None
    ensure_schema(engine)
    reports = []
    found: HeadFound | None = None
    with transaction(engine) as session:
        if ref is None:
            rounds = _rounds(session)
            known = {r.id for r in rounds}
            orphans = session.exec(
                select(LogRow.round_id).where(col(LogRow.round_id).not_in(known)).limit(1)
            ).first()
            if orphans is not None:
                raise VerificationFailed(
                    f"log entries of round {orphans} exist but the round does not"
                )
        else:
            rounds = [resolve_round(session, ref)]
        for row in rounds:
            try:
                entries = _entries(session, row.id)
                report = check_chain(
                    row.id, entries, expected_length=row.log_length, expected_head=row.log_head
                )
            except RecursionError:  # JSON nested thousands deep: not something ratify wrote
                raise VerificationFailed(
                    f"round {row.id}: an entry's evidence nests too deeply to be read"
                ) from None
            if report.problem:
                raise VerificationFailed(report.problem)
            _compare(session, row, entries)
            reports.append(report)
            if wanted is not None and found is None:
                found = _found(row.id, entries, wanted)
    if wanted is not None and found is None:
        raise _head_gone(wanted, reports)
    return VerifyReport(tuple(reports), expected=found)


def _found(round_id: str, entries: Sequence[Mapping[str, Any]], head: str) -> HeadFound | None:
    seq = position_of(entries, head)
    return None if seq is None else HeadFound(round_id, seq, len(entries) - seq)


def _replayed(entries: Sequence[Mapping[str, Any]], where: str) -> Replayed:
    """Replay, with whatever a crafted log trips in it reported as the failure it is."""
    try:
        return replay(entries, default_catalog().machine)
    except VerificationFailed as exc:
        prefix = where.partition(": round ")[0]  # the file's path, for an export
        if prefix != where and not str(exc).startswith(prefix):
            raise VerificationFailed(f"{prefix}: {exc}") from None
        raise
    except (
        ArithmeticError,  # a time at the edge of the calendar, moved to the round's timezone
        AttributeError,
        LookupError,
        OSError,  # a "timezone" that is no file name
        RecursionError,
        TypeError,
        ValueError,
    ) as exc:
        detail = str(exc) if len(str(exc)) <= 200 else str(exc)[:197] + "..."
        raise VerificationFailed(
            f"{where}: replaying the log fails ({type(exc).__name__}: {detail}); it is not a log "
            "that ratify wrote"
        ) from None


def _compare(session: Session, row: RoundRow, entries: Sequence[Mapping[str, Any]]) -> None:
    rebuilt = _replayed(entries, f"round {row.id}")
    if rebuilt.state != row.state or rebuilt.effective_date != row.effective_date:
        raise VerificationFailed(
            f"round {row.id}: stored as {row.state} (effective {row.effective_date}) but its log "
            f"makes it {rebuilt.state} (effective {rebuilt.effective_date})"
        )
    if rebuilt.document_sha256 != row.document_sha256:
        raise VerificationFailed(
            f"round {row.id}: its document hash is not the one its log ends with"
        )
    stored = {
        p.party_id: p
        for p in session.exec(select(PartyRow).where(PartyRow.round_id == row.id)).all()
    }
    if set(stored) != set(rebuilt.parties):
        raise VerificationFailed(
            f"round {row.id}: parties {sorted(stored)} stored, {sorted(rebuilt.parties)} launched"
        )
    for party_id, party in rebuilt.parties.items():
        mine = snapshot(stored[party_id])
        if mine != party:
            differ = [
                f.name for f in fields(party) if getattr(mine, f.name) != getattr(party, f.name)
            ]
            raise VerificationFailed(
                f"round {row.id} party {party_id}: its stored {', '.join(differ)} "
                f"differ(s) from what its log makes it (state {party.state}); the party's row "
                "was changed outside ratify"
            )
    # The texts' hashes as the log has them: the launch's for version 1, each amend's after.
    logged = {1: entries[0]["document_sha256"]} if entries else {}
    for entry in entries:
        if entry["event"] == "amend" and entry["party"] is None:
            logged[entry["evidence"].get("version")] = entry["document_sha256"]
    documents = session.exec(select(DocumentRow).where(DocumentRow.round_id == row.id)).all()
    if {d.version: d.sha256 for d in documents} != logged:
        raise VerificationFailed(
            f"round {row.id}: its stored texts are not the versions its log records "
            f"({len(documents)} stored, {len(logged)} in the log); a text was replaced"
        )
    for document in documents:
        if sha256_text(document.text) != document.sha256:
            raise VerificationFailed(
                f"round {row.id}: the text of document version {document.version} does not "
                f"match its SHA-256 {document.sha256[:16]}…; it was changed"
            )


def verify_file(path: Path, *, expect_head: str | None = None) -> VerifyReport:
    """Verify an export on its own, with no database: its chain, its replay, and with
    ``expect_head`` that the chain holds that head.

    A file that cannot be read at all is :class:`InvalidInput` (exit 2); one that can but is no
    intact export (not UTF-8, not what ratify writes, a broken chain) :class:`VerificationFailed`.
    """
    wanted = parse_head(expect_head) if expect_head is not None else None
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(
            f"{{opt.file}} {path}: cannot read it ({exc.strerror or exc})", field="file"
        ) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise VerificationFailed(
            f"{path}: not a ratify export (not UTF-8 text: byte {exc.start} is not)"
        ) from None
    try:
        entries = from_csv(text) if path.suffix.lower() == ".csv" else from_jsonl(text)
    except VerificationFailed as exc:
        raise VerificationFailed(f"{path}: {exc.template}") from None
    if not entries:
        raise VerificationFailed(f"{path}: has no entries")
    round_id = entries[0]["round"]
    report = check_chain(round_id, entries)
    if report.problem:
        raise VerificationFailed(f"{path}: {report.problem}")
    _replayed(entries, f"{path}: round {round_id}")
    found = _found(round_id, entries, wanted) if wanted is not None else None
    if wanted is not None and found is None:
        raise VerificationFailed(f"{path}: {_head_gone(wanted, [report]).template}")
    return VerifyReport((report,), file=path, expected=found)
