"""Reading the log for auditors: entries, heads, exports, and verifying the database or an export.

The use cases return frozen values (:class:`HeadReport`, :class:`VerifyReport`); the interfaces
word them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from engine.agreement import sha256_text
from engine.core.chain import ChainReport, Entry, check_chain, parse_head, position_of
from engine.core.export import from_csv, from_jsonl, to_csv, to_jsonl
from engine.core.replay import Replayed, replay
from engine.errors import InvalidInput, VerificationFailed
from engine.persistence.database import ensure_schema, transaction
from engine.persistence.tables import DocumentRow, LogRow, PartyRow, RoundRow
from engine.runtime.journal import entry_dict, snapshot
from engine.runtime.lookup import resolve_round
from workflows import default_catalog

__all__ = [
    "HeadFound",
    "HeadReport",
    "VerifyReport",
    "export",
    "heads",
    "log_entries",
    "round_heads",
    "verify",
    "verify_database",
    "verify_file",
]


@dataclass(frozen=True)
class HeadReport:
    """A round's head as the database records it: its log's length and its last entry's hash.
    ``audit verify`` checks these anchors against the log; a copy kept elsewhere checks them."""

    round: str
    entries: int
    head: str


@dataclass(frozen=True)
class HeadFound:
    """Where a head an auditor noted is in a verified chain: entry #``seq`` of ``round``, with
    ``after`` entries after it (0: it is still the head; more: the log grew since)."""

    round: str
    seq: int
    after: int


@dataclass(frozen=True)
class VerifyReport:
    """What verified: one chain per round (one for a file), and where the expected head is."""

    chains: tuple[ChainReport, ...]
    file: Path | None = None  # the export verified; None: the database
    expected: HeadFound | None = None  # where the head asked for is, when one was


def _entries(session: Session, round_id: str) -> list[Entry]:
    rows = session.exec(
        select(LogRow).where(LogRow.round_id == round_id).order_by(col(LogRow.seq))
    ).all()
    return [entry_dict(r) for r in rows]


def log_entries(engine: Engine, ref: str) -> list[Entry]:
    ensure_schema(engine)
    with transaction(engine) as session:
        return _entries(session, resolve_round(session, ref).id)


def export(engine: Engine, ref: str, fmt: str) -> str:
    if fmt not in ("jsonl", "csv"):
        raise InvalidInput(f"{{opt.format}} {fmt!r}: use jsonl or csv", field="format")
    entries = log_entries(engine, ref)
    return to_jsonl(entries) if fmt == "jsonl" else to_csv(entries)


def _rounds(session: Session) -> list[RoundRow]:
    return list(
        session.exec(
            select(RoundRow).order_by(col(RoundRow.agreement_id), col(RoundRow.number))
        ).all()
    )


def round_heads(session: Session, ref: str | None = None) -> list[HeadReport]:
    """Every round's head (or one round's), oldest agreement and round first, as this session
    sees the database: read column by column, so an update earlier in the transaction counts."""
    query = select(RoundRow.id, RoundRow.log_length, RoundRow.log_head)
    if ref is not None:
        query = query.where(RoundRow.id == resolve_round(session, ref).id)
    rows = session.exec(query.order_by(col(RoundRow.agreement_id), col(RoundRow.number))).all()
    return [HeadReport(round_id, length, head) for round_id, length, head in rows]


def heads(engine: Engine, ref: str | None = None) -> list[HeadReport]:
    """``ratify audit head``: what to note down, or send a witness, to hold the log to account."""
    ensure_schema(engine)
    with transaction(engine) as session:
        return round_heads(session, ref)


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


def verify_database(engine: Engine, ref: str | None = None) -> list[ChainReport]:
    """The chains of :func:`verify`, for callers that want only those."""
    return list(verify(engine, ref).chains)


def _found(round_id: str, entries: Sequence[Mapping[str, Any]], head: str) -> HeadFound | None:
    seq = position_of(entries, head)
    return None if seq is None else HeadFound(round_id, seq, len(entries) - seq)


def _head_gone(head: str, reports: Sequence[ChainReport]) -> VerificationFailed:
    why = "the log was rewritten or cut short since that head was noted"
    if not reports:
        return VerificationFailed(
            f"no round's log has an entry with the hash {head}: there are no rounds"
        )
    if len(reports) == 1:
        (r,) = reports
        return VerificationFailed(
            f"round {r.round}: no entry of its log has the hash {head}: {why}; "
            f"it now ends at entry #{r.entries}, hash {r.head}"
        )
    return VerificationFailed(
        f"none of the {len(reports)} rounds' logs has an entry with the hash {head}: one was "
        f"rewritten or cut short since that head was noted (or the head is not of this database)"
    )


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
