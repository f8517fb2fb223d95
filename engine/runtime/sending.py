"""Sending: claim what is due in the outbox, deliver it outside any transaction, and record what
became of each message, with a log entry for every reminder and escalation sent."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlmodel import Session, select

from engine.audit import format_time
from engine.clock import DEFAULT_ZONE, Clock
from engine.errors import ConcurrentUpdate
from engine.persistence.database import ensure_schema, transaction
from engine.persistence.tables import OutboxRow, PartyRow, RoundRow
from engine.runtime.journal import Journal
from engine.runtime.messages import to_coordinator
from notifications import outbox
from notifications.render import to_email

if TYPE_CHECKING:
    from notifications.mailer import Mailer

__all__ = ["send_due"]

BATCH = 50


def _still_due(session: Session, item: OutboxRow) -> str | None:
    """Why a reminder or escalation should no longer go out, or None when it should."""
    if not item.chase:
        return None
    row = session.get(RoundRow, item.round_id)
    if row is None or row.state != "open":
        return "the round is no longer open"
    party = session.get(PartyRow, (item.round_id, item.party_id))
    if party is None:
        return "the party is gone"
    if item.chase.get("deadline_days") is not None:
        return "the party has signed" if party.state in ("signed", "rejected") else None
    if party.state != item.chase["state"] or format_time(party.since) != item.chase["since"]:
        return f"the party has moved on to {party.state}"
    return None


def send_due(engine: Engine, clock: Clock, mailer: Mailer, mail_from: str) -> list[dict[str, Any]]:
    """Claim what is due in the outbox, deliver it, and record what became of each message."""
    ensure_schema(engine)
    with transaction(engine) as session:
        zones = sorted(set(session.exec(select(RoundRow.timezone)).all()))
    results: list[dict[str, Any]] = []
    for zone in zones:  # the clock's "now" in each round's own zone
        while batch := _claim(engine, clock.now(ZoneInfo(zone)), zone, mail_from, results):
            for delivery in mailer.deliver_sync(batch):
                item = cast(OutboxRow, delivery.ref)
                _settle(engine, clock, item, delivery.outcome, delivery.error, delivery.refused)
                results.append(_result(item, delivery.outcome, delivery.error, delivery.refused))
    return results


def _claim(
    engine: Engine, now: datetime, zone: str, mail_from: str, results: list[dict[str, Any]]
) -> list[tuple[object, Any]]:
    """A batch to deliver: claimed rows still worth sending, as MIME (the others are skipped)."""
    while True:
        with transaction(engine) as session:
            claimed = outbox.claim(session, now, BATCH, timezone=zone)
            batch: list[tuple[object, Any]] = []
            for item in claimed:
                reason = _still_due(session, item)
                if reason:
                    outbox.mark_skipped(session, item, reason)
                    results.append(_result(item, "skipped", reason))
                else:
                    batch.append((item, to_email(outbox.outgoing(item), mail_from, now)))
        if batch or not claimed:
            return batch


def _result(
    item: OutboxRow, outcome: str, error: str | None, refused: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "id": item.id,
        "key": item.key,
        "kind": item.kind,
        "round": item.round_id,
        "party": item.party_id,
        "recipients": list(item.recipients),
        "chase": item.chase,
        "outcome": outcome,
        "error": error,
        "refused": refused or {},
    }


def _settle(
    engine: Engine,
    clock: Clock,
    item: OutboxRow,
    outcome: str,
    error: str | None,
    refused: dict[str, str],
) -> None:
    """Write what became of one message; for a chase sent, its log entry too. Retried when a
    concurrent writer moved the round's version meanwhile."""
    from notifications.mailer import backoff

    for _ in range(8):
        try:
            with transaction(engine) as session:
                row = session.get(RoundRow, item.round_id)
                now = clock.now(ZoneInfo(row.timezone) if row else DEFAULT_ZONE)
                if outcome == "sent":
                    outbox.mark_sent(session, item, now, refused)
                    if item.chase and row is not None:
                        _log_chase(session, row, item, now, clock.source)
                elif outcome == "temporary":
                    outbox.mark_retry(session, item, now, backoff(item.attempts + 1), error or "")
                else:
                    outbox.mark_failed(session, item, now, error or "")
                    if row is not None and item.kind != "escalation":
                        _bounced(session, row, item, error or "", now)
            return
        except ConcurrentUpdate:
            continue
    raise ConcurrentUpdate("the round is busy with other writers; the outbox row stays claimed")


def _log_chase(
    session: Session, row: RoundRow, item: OutboxRow, now: datetime, source: str
) -> None:
    chase = item.chase or {}
    party = session.get(PartyRow, (row.id, item.party_id))
    state = party.state if party else chase.get("state")
    # The log only moves forward: a worker run --at an earlier time records at the latest entry.
    moment = max(now, row.last_entry_at)
    journal = Journal(session, row, actor="ratify", now=moment, clock=source)
    evidence = {
        "message": item.message_id,
        "kind": item.kind,
        "step_since": chase.get("since"),
        "recipients": len(item.recipients),
    }
    if item.kind == "reminder":
        key = "days_before_deadline" if chase.get("deadline_days") is not None else "reminder"
        evidence[key] = chase.get("number")
    journal.append(
        chase["event"], party=item.party_id, from_state=state, to_state=state, evidence=evidence
    )
    journal.seal()


def _bounced(session: Session, row: RoundRow, item: OutboxRow, error: str, now: datetime) -> None:
    """Tell the coordinator, once, that a message could not be delivered."""
    party = session.get(PartyRow, (row.id, item.party_id)) if item.party_id else None
    context = {"reason": "bounced", "recipients": list(item.recipients), "error": error}
    to_coordinator(session, row, "escalation", f"bounced:{item.key}", context, now, party)
