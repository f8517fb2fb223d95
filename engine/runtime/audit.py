"""Reading the log for auditors: entries, exports, and verifying the database or an export."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from engine.agreement import sha256_text
from engine.core.chain import ChainReport, check_chain
from engine.core.export import from_csv, from_jsonl, to_csv, to_jsonl
from engine.core.replay import replay
from engine.errors import InvalidInput, VerificationFailed
from engine.persistence.database import ensure_schema, transaction
from engine.persistence.tables import DocumentRow, LogRow, PartyRow, RoundRow
from engine.runtime.journal import entry_dict, snapshot
from engine.runtime.rounds import resolve_round

__all__ = ["export", "log_entries", "verify_database", "verify_file"]


def _entries(session: Session, round_id: str) -> list[dict[str, Any]]:
    rows = session.exec(
        select(LogRow).where(LogRow.round_id == round_id).order_by(col(LogRow.seq))
    ).all()
    return [entry_dict(r) for r in rows]


def log_entries(engine: Engine, ref: str) -> list[dict[str, Any]]:
    ensure_schema(engine)
    with transaction(engine) as session:
        return _entries(session, resolve_round(session, ref).id)


def export(engine: Engine, ref: str, fmt: str) -> str:
    if fmt not in ("jsonl", "csv"):
        raise InvalidInput(f"--format {fmt!r}: use jsonl or csv")
    entries = log_entries(engine, ref)
    return to_jsonl(entries) if fmt == "jsonl" else to_csv(entries)


def verify_database(engine: Engine, ref: str | None = None) -> list[ChainReport]:
    """Check every round's chain, its anchors, and that replaying it gives the stored states.

    Returns the reports of rounds that verify; raises :class:`VerificationFailed` naming the first
    bad entry otherwise.
    """
    ensure_schema(engine)
    reports = []
    with transaction(engine) as session:
        if ref is None:
            rounds = list(session.exec(select(RoundRow).order_by(RoundRow.id)).all())
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
            entries = _entries(session, row.id)
            report = check_chain(
                row.id, entries, expected_length=row.log_length, expected_head=row.log_head
            )
            if report.problem:
                raise VerificationFailed(report.problem)
            _compare(session, row, entries)
            reports.append(report)
    return reports


def _compare(session: Session, row: RoundRow, entries: list[dict[str, Any]]) -> None:
    rebuilt = replay(entries)
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


def verify_file(path: Path) -> ChainReport:
    """Verify an export on its own, with no database: its chain, and its replay."""
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read it ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise VerificationFailed(f"{path}: not a ratify export (not UTF-8 text)") from None
    try:
        entries = from_csv(text) if path.suffix.lower() == ".csv" else from_jsonl(text)
    except (InvalidInput, ValueError, KeyError, TypeError) as exc:
        raise VerificationFailed(f"{path}: not a ratify export ({exc})") from None
    if not entries:
        raise VerificationFailed(f"{path}: has no entries")
    first = entries[0]
    round_id = first.get("round") if isinstance(first, dict) else None
    report = check_chain(str(round_id), entries)
    if report.problem:
        raise VerificationFailed(f"{path}: {report.problem}")
    replay(entries)
    return report
