"""Use cases on parties: record an event, and apply the timed ones (legal force)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from engine.clock import Clock
from engine.core.evidence import Evidence
from engine.core.party import Decision, PartySnapshot, decide
from engine.core.round import settle
from engine.core.text import check_evidence_text
from engine.errors import InvalidInput, NotFound
from engine.persistence.database import ensure_schema, transaction
from engine.persistence.tables import PartyRow, RoundRow
from engine.runtime import messages
from engine.runtime.files import Upload, check_upload, store
from engine.runtime.journal import Journal, lock_round, machine_of, retrying, save_party, snapshot
from engine.runtime.lookup import (
    check_id,
    id_problem,
    moves_forward,
    now_in,
    require_open,
    resolve_round,
)
from engine.runtime.results import RecordResult
from engine.runtime.rows import for_record, party_row, text_recorded_at
from engine.runtime.witness import witness_on_activation
from engine.runtime.writes import OnceKey, Via, check_once, earlier, keep
from workflows import ProcessMachine

__all__ = ["Via", "record", "tick"]


def record(
    engine: Engine,
    ref: str,
    party_id: str,
    event: str,
    evidence: Evidence,
    clock: Clock,
    actor: str,
    *,
    via: Via | None = None,
    minutes: Upload | None = None,
    once: OnceKey | None = None,
    provenance: Mapping[str, str] | None = None,
    then: Callable[[Session, RecordResult], None] | None = None,
) -> RecordResult:
    """Decide ``event`` for a party and write its new state and log entry in one transaction.

    ``via``: how it was recorded when not from the command line (``link``: by the party's contact
    from their link; ``web``: by a coordinator's page; ``api``), kept in the entry. ``minutes``: the
    decision's minutes extract (a PDF), kept with the round and named by its SHA-256 in the entry.
    ``once``: a key that makes the write happen once; the same key again returns its result.
    ``provenance``: where the decision was read (a confirmed proposal's source address, fetch
    time and the SHA-256 of what was fetched), kept in the entry's evidence. ``then``: what else
    to write in the same transaction once the event is recorded (a proposal marked confirmed)."""
    ensure_schema(engine)
    evidence = check_evidence_text(evidence)
    if minutes is not None:
        minutes = check_upload(minutes)
    check_once(once)

    def work(session: Session) -> RecordResult:
        check_id(ref, "round")
        # A round's id and a well-formed party id (the common case): the round's row (locked),
        # its text's date and the party's row in one read; else each looked up.
        read = None
        if "/" in ref and id_problem(party_id) is None:
            read = for_record(session, ref, party_id)
        row = read.round if read is not None else resolve_round(session, ref, lock=True)
        if (done := earlier(session, "record", once)) is not None:
            return RecordResult.from_json(done)  # the same form again: its first answer
        require_open(row)
        now = now_in(clock, row.timezone)
        if read is not None:  # the party's id was found well-formed before it was read
            party = read.party
        else:
            check_id(party_id, "party")
            party = party_row(session, row.id, party_id)
        if party is None:
            ids = session.exec(
                select(PartyRow.party_id)
                .where(PartyRow.round_id == row.id)
                .order_by(col(PartyRow.position))
            ).all()
            raise NotFound(
                f"round {row.id} has no party {party_id!r}; its parties: {', '.join(ids)}",
                field="party",
            )
        machine = machine_of(party)
        spec = machine.definition.event(event)
        if spec is not None and spec.by == "time":
            raise InvalidInput(
                f'"{event}" is applied by {{cmd.tick}} once the date has come', field="event"
            )
        if read is not None:
            launched = read.text_from
        else:
            launched = text_recorded_at(session, row.id, row.document_version)
        text_from = launched.astimezone(now.tzinfo).date() if launched else None
        before = snapshot(party)
        decision = decide(machine, before, event, evidence, now, text_from)
        if minutes is not None and not (spec is not None and spec.takes("ref")):
            raise InvalidInput(
                f'"{event}" is no decision of a body: it takes no minutes extract', field="minutes"
            )
        moves_forward(row, now)  # after the input checks: a typo is reported as a typo
        extra: dict[str, Any] = {}
        if minutes is not None:
            extra["minutes_sha256"] = store(session, row.id, minutes, now)
            extra["minutes_file"] = minutes.filename
        if via is not None:
            extra["via"] = via
        if provenance:
            extra.update(provenance)
        if extra:
            decision = replace(decision, evidence={**decision.evidence, **extra})
        journal = Journal(session, row, actor=actor, now=now, clock=clock.source)
        result = _apply(session, row, party, decision, journal, machine, before)
        if then is not None:
            then(session, result)
        if once is not None:
            keep(session, "record", once, result.to_json(), now)
        return result

    return retrying(engine, work)


def _apply(
    session: Session,
    row: RoundRow,
    party: PartyRow,
    decision: Decision,
    journal: Journal,
    machine: ProcessMachine,
    before: PartySnapshot,
) -> RecordResult:
    """Write ``decision``, made by the party's ``machine`` from its state ``before``."""
    save_party(session, party, decision.party, journal.now)
    entry = journal.append(
        decision.event,
        party=party.party_id,
        from_state=decision.from_state,
        to_state=decision.to_state,
        evidence=decision.evidence,
    )
    messages.on_event(session, row, party, machine, entry, before, decision.party, journal.now)
    role = machine.role(decision.to_state)
    changes: dict[str, object] = {}
    effective: date | None = None
    if role in ("done", "failed"):  # the party has ended: the round may have too
        others = session.exec(
            select(PartyRow.workflow, PartyRow.workflow_version, PartyRow.state).where(
                PartyRow.round_id == row.id, PartyRow.party_id != party.party_id
            )
        ).all()
        roles = [machine_of(name, version).role(state) for name, version, state in others]
        outcome = settle([*roles, role], journal.now)
        if outcome is not None and outcome.state == "active":
            effective = outcome.effective_date
            assert effective is not None  # an active outcome has its date
            journal.append(
                "activate",
                from_state="open",
                to_state="active",
                evidence={"effective_date": effective.isoformat(), "last_party": party.party_id},
            )
            changes = {"state": "active", "effective_date": effective, "closed_at": journal.now}
            messages.on_round(session, row, "active", journal.now, {"effective_date": effective})
        elif outcome is not None:
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
            messages.on_round(session, row, "failed", journal.now, context)
    journal.seal(**changes)
    if changes.get("state") == "active":  # after the seal: it reads the new head
        witness_on_activation(session, row, journal.now)
    return RecordResult(
        round=row.id,
        party=party.party_id,
        event=decision.event,
        from_state=decision.from_state,
        to_state=decision.to_state,
        role=role,
        seq=entry["seq"],
        hash=entry["hash"],
        round_state=str(changes.get("state", row.state)),
        effective_date=effective,
        legal_force_from=decision.party.legal_force_from,
        signatures=len(decision.party.signatures),
        signatures_required=decision.party.signatures_required,
    )


def _timed(session: Session, instant: datetime) -> list[tuple[RoundRow, PartyRow, str]]:
    """The parties of open rounds waiting for legal force and due by ``instant`` (their due time
    is at the latest the day legal force comes), with the timed event that ends the wait."""
    rows = session.exec(
        select(RoundRow, PartyRow)
        .join(PartyRow, col(RoundRow.id) == col(PartyRow.round_id))
        .where(
            col(PartyRow.due_at) <= instant,
            RoundRow.state == "open",
            col(PartyRow.legal_force_from).is_not(None),
        )
        .order_by(col(PartyRow.round_id), col(PartyRow.position))
    ).all()
    waiting = []
    for row, party in rows:
        machine = machine_of(party)
        if machine.role(party.state) != "legal_force":
            continue
        timed = [
            e
            for e in machine.allowed(party.state)
            if (spec := machine.definition.event(e)) is not None and spec.by == "time"
        ]
        if timed:
            waiting.append((row, party, timed[0]))
    return waiting


def tick(engine: Engine, clock: Clock, actor: str = "ratify") -> list[RecordResult]:
    """Apply every timed event whose date has come (a decision has become legally final)."""
    ensure_schema(engine)
    with transaction(engine) as session:
        waiting = _timed(session, clock.now(UTC))
        if clock.source == "at":
            # A tick at a time given by hand that would have to skip a due party, because its
            # round's log is already past that time, is refused before anything is written.
            for row, party, _ in waiting:
                now = now_in(clock, row.timezone)
                if party.legal_force_from is not None and party.legal_force_from <= now.date():
                    moves_forward(row, now)
        due = [(row.id, party.party_id, event) for row, party, event in waiting]
    moved = []
    for round_id, party_id, event in due:

        def work(
            session: Session, round_id: str = round_id, party_id: str = party_id, event: str = event
        ) -> RecordResult | None:
            row = lock_round(session, round_id)
            party = session.get(PartyRow, (round_id, party_id))
            if row is None or party is None or row.state != "open":
                return None  # someone else moved it meanwhile
            machine = machine_of(party)
            if event not in machine.allowed(party.state):
                return None
            now = now_in(clock, row.timezone)
            if party.legal_force_from is None or now.date() < party.legal_force_from:
                return None
            if now < row.last_entry_at:  # the round's log is already past this moment
                return None
            before = snapshot(party)
            decision = decide(machine, before, event, Evidence(), now)
            journal = Journal(session, row, actor=actor, now=now, clock=clock.source)
            return _apply(session, row, party, decision, journal, machine, before)

        result = retrying(engine, work)
        if result is not None:
            moved.append(result)
    return moved
