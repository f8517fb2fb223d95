"""Reads a page shows together, made in one transaction: one consistent picture, and one
connection's round trip instead of three."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Engine, case, func, select

from engine.core.chain import Entry
from engine.persistence import outbox
from engine.persistence.database import ensure_schema, transaction
from engine.persistence.tables import LogRow, PartyRow, RoundRow
from engine.runtime.audit import _entries
from engine.runtime.journal import machine_of
from engine.runtime.lookup import resolve_round
from engine.runtime.queue import _message
from engine.runtime.results import OutboxMessage, RoundStatus
from engine.runtime.rounds import _round_status

__all__ = ["RoundSummary", "RoundView", "round_summaries", "round_view"]


@dataclass(frozen=True)
class RoundView:
    """A round as its page shows it: its status, its log, and its mail that failed."""

    status: RoundStatus
    entries: list[Entry]
    failed: list[OutboxMessage]


def round_view(engine: Engine, ref: str) -> RoundView:
    ensure_schema(engine)
    with transaction(engine) as session:
        row = resolve_round(session, ref)
        return RoundView(
            _round_status(session, row),
            _entries(session, row.id),
            [_message(m) for m in outbox.messages(session, "failed", row.id)],
        )


@dataclass(frozen=True)
class RoundSummary:
    """A round as a list of rounds shows it (the dashboard): its progress and who holds it up.
    ``entries`` and ``head`` name the log it was read at: a copy is good while they stand."""

    round: str
    title: str
    state: str
    zone: str
    deadline: date | None
    effective_date: date | None
    signed: int
    total: int
    unfinished: tuple[str, ...]  # names of the parties neither done nor failed
    escalated: tuple[str, ...]  # names of those escalated since their step began
    entries: int
    head: str


def round_summaries(engine: Engine, only: Collection[str] | None = None) -> list[RoundSummary]:
    """Every round's summary (or those named), in three queries whatever the number of rounds:
    the rounds, their parties' states, and which parties were escalated since they last moved."""
    ensure_schema(engine)
    rounds_t = RoundRow.__table__  # type: ignore[attr-defined]
    parties_t = PartyRow.__table__  # type: ignore[attr-defined]
    log_t = LogRow.__table__  # type: ignore[attr-defined]
    wanted = list(only) if only is not None else None
    with transaction(engine) as session:
        query = select(
            rounds_t.c.id,
            rounds_t.c.title,
            rounds_t.c.state,
            rounds_t.c.timezone,
            rounds_t.c.deadline,
            rounds_t.c.effective_date,
            rounds_t.c.log_length,
            rounds_t.c.log_head,
        ).order_by(rounds_t.c.id)
        members = select(
            parties_t.c.round_id,
            parties_t.c.party_id,
            parties_t.c.name,
            parties_t.c.workflow,
            parties_t.c.workflow_version,
            parties_t.c.state,
        ).order_by(parties_t.c.round_id, parties_t.c.position)
        # A party is escalated when its last escalation is newer than its last change of state.
        moved = case((log_t.c.from_state != log_t.c.to_state, log_t.c.seq), else_=None)
        chased = case((log_t.c.event == "escalate", log_t.c.seq), else_=None)
        escalations = (
            select(log_t.c.round_id, log_t.c.party_id, func.max(chased), func.max(moved))
            .where(log_t.c.party_id.is_not(None))
            .where(log_t.c.round_id.in_(select(rounds_t.c.id).where(rounds_t.c.state == "open")))
            .group_by(log_t.c.round_id, log_t.c.party_id)
            .having(func.max(chased).is_not(None))
        )
        if wanted is not None:
            query = query.where(rounds_t.c.id.in_(wanted))
            members = members.where(parties_t.c.round_id.in_(wanted))
            escalations = escalations.where(log_t.c.round_id.in_(wanted))
        rounds = session.execute(query).all()
        parties = session.execute(members).all()
        escalated = {
            (r, p)
            for r, p, last_chase, last_move in session.execute(escalations).all()
            if last_chase > (last_move or 0)
        }
    by_round: dict[str, list[tuple[str, str, str]]] = {}
    for round_id, party_id, name, workflow, version, state in parties:
        role = machine_of(workflow, version).role(state)
        by_round.setdefault(round_id, []).append((party_id, name, role))
    summaries = []
    for round_id, title, state, zone, deadline, effective, entries, head in rounds:
        members_of = by_round.get(round_id, [])
        unfinished = [(p, n) for p, n, role in members_of if role not in ("done", "failed")]
        summaries.append(
            RoundSummary(
                round=round_id,
                title=title,
                state=state,
                zone=zone,
                deadline=deadline,
                effective_date=effective,
                signed=sum(role == "done" for _, _, role in members_of),
                total=len(members_of),
                unfinished=tuple(n for _, n in unfinished),
                escalated=tuple(n for p, n in unfinished if (round_id, p) in escalated),
                entries=entries,
                head=head,
            )
        )
    return summaries
