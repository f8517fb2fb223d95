"""Use cases on parties: record an event, and apply the timed ones (legal force)."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from engine.clock import Clock
from engine.core.evidence import Evidence
from engine.core.party import LEGAL_FORCE, Decision, decide, round_outcome
from engine.core.text import check_evidence_text
from engine.errors import InvalidInput, NotFound
from engine.persistence.database import ensure_schema, transaction
from engine.persistence.tables import DocumentRow, PartyRow, RoundRow
from engine.runtime import notify
from engine.runtime.journal import Journal, lock_round, retrying, save_party, snapshot
from engine.runtime.rounds import moves_forward, require_open, resolve_round

__all__ = ["record", "tick"]


def record(
    engine: Engine,
    ref: str,
    party_id: str,
    event: str,
    evidence: Evidence,
    clock: Clock,
    actor: str,
) -> dict[str, Any]:
    """Decide ``event`` for a party and write its new state and log entry in one transaction."""
    ensure_schema(engine)
    if event == LEGAL_FORCE:
        raise InvalidInput(f'"{LEGAL_FORCE}" is applied by `ratify tick` once the date has come')
    evidence = check_evidence_text(evidence)

    def work(session: Session) -> dict[str, Any]:
        row = resolve_round(session, ref, lock=True)
        require_open(row)
        now = clock.now(ZoneInfo(row.timezone))
        party = session.get(PartyRow, (row.id, party_id))
        if party is None:
            ids = session.exec(
                select(PartyRow.party_id)
                .where(PartyRow.round_id == row.id)
                .order_by(col(PartyRow.position))
            ).all()
            raise NotFound(
                f"round {row.id} has no party {party_id!r}; its parties: {', '.join(ids)}"
            )
        text = session.get(DocumentRow, (row.id, row.document_version))
        text_from = text.recorded_at.astimezone(now.tzinfo).date() if text else None
        decision = decide(snapshot(party), event, evidence, now, text_from)
        moves_forward(row, now)  # after the input checks: a typo is reported as a typo
        journal = Journal(session, row, actor=actor, now=now, clock=clock.source)
        return _apply(session, row, party, decision, journal)

    return retrying(engine, work)


def _apply(
    session: Session, row: RoundRow, party: PartyRow, decision: Decision, journal: Journal
) -> dict[str, Any]:
    save_party(session, party, decision.party, journal.now)
    entry = journal.append(
        decision.event,
        party=party.party_id,
        from_state=decision.from_state,
        to_state=decision.to_state,
        evidence=decision.evidence,
    )
    notify.on_event(
        session, row, party, entry, decision.to_state, len(decision.party.signatures), journal.now
    )
    changes: dict[str, Any] = {}
    if decision.to_state in ("signed", "rejected"):
        others = session.exec(
            select(PartyRow.state).where(
                PartyRow.round_id == row.id, PartyRow.party_id != party.party_id
            )
        ).all()
        outcome = round_outcome([*others, decision.to_state])
        if outcome == "active":
            effective = journal.now.date()
            journal.append(
                "activate",
                from_state="open",
                to_state="active",
                evidence={"effective_date": effective.isoformat(), "last_party": party.party_id},
            )
            changes = {"state": "active", "effective_date": effective, "closed_at": journal.now}
            notify.on_round(session, row, "active", journal.now, {"effective_date": effective})
        elif outcome == "failed":
            journal.append(
                "fail",
                from_state="open",
                to_state="failed",
                evidence={"party": party.party_id, "decision": decision.evidence.get("decision")},
            )
            changes = {"state": "failed", "closed_at": journal.now}
            context = {
                "rejected_by": party.name,
                "ref": decision.evidence.get("decision", ""),
                "reason": decision.evidence.get("reason"),
            }
            notify.on_round(session, row, "failed", journal.now, context)
    journal.seal(**changes)
    return {
        "round": row.id,
        "party": party.party_id,
        "event": decision.event,
        "from_state": decision.from_state,
        "to_state": decision.to_state,
        "seq": entry["seq"],
        "hash": entry["hash"],
        "round_state": changes.get("state", row.state),
        "effective_date": changes["effective_date"].isoformat()
        if "effective_date" in changes
        else None,
        "legal_force_from": (
            decision.party.legal_force_from.isoformat() if decision.party.legal_force_from else None
        ),
        "signatures": len(decision.party.signatures),
        "signatures_required": decision.party.signatures_required,
    }


def tick(engine: Engine, clock: Clock, actor: str = "ratify") -> list[dict[str, Any]]:
    """Move every party whose legal-force wait has ended to awaiting signature."""
    ensure_schema(engine)
    with transaction(engine) as session:
        waiting = session.exec(
            select(RoundRow, PartyRow)
            .join(PartyRow, col(RoundRow.id) == col(PartyRow.round_id))
            .where(RoundRow.state == "open", PartyRow.state == "legal_force_wait")
            .order_by(col(PartyRow.round_id), col(PartyRow.position))
        ).all()
        if clock.source == "at":
            # A tick at a time given by hand that would have to skip a due party, because its
            # round's log is already past that time, is refused before anything is written.
            for row, party in waiting:
                now = clock.now(ZoneInfo(row.timezone))
                if party.legal_force_from is not None and party.legal_force_from <= now.date():
                    moves_forward(row, now)
        due = [(row.id, party.party_id) for row, party in waiting]
    moved = []
    for round_id, party_id in due:

        def work(
            session: Session, round_id: str = round_id, party_id: str = party_id
        ) -> dict[str, Any] | None:
            row = lock_round(session, round_id)
            party = session.get(PartyRow, (round_id, party_id))
            if (
                row is None
                or party is None
                or row.state != "open"
                or party.state != "legal_force_wait"
            ):
                return None  # someone else moved it meanwhile
            now = clock.now(ZoneInfo(row.timezone))
            if party.legal_force_from is None or now.date() < party.legal_force_from:
                return None
            if now < row.last_entry_at:  # the round's log is already past this moment
                return None
            decision = decide(snapshot(party), LEGAL_FORCE, Evidence(), now)
            journal = Journal(session, row, actor=actor, now=now, clock=clock.source)
            return _apply(session, row, party, decision, journal)

        result = retrying(engine, work)
        if result is not None:
            moved.append(result)
    return moved
