"""Who is told what, and when: messages into the outbox, and the outbox out.

Messages about events (invitations, receipts, notices) are queued in the same transaction as the
event, so an event is never recorded without its messages nor the other way round. Reminders and
escalations are derived at each tick from the parties' states and the round's policy; their keys
(round, party, step, reminder number) make queueing them again a no-op. Sending happens outside
any transaction; what became of each message is written afterwards, with a log entry for every
reminder and escalation sent.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from engine.audit import format_time
from engine.clock import DEFAULT_ZONE, Clock
from engine.errors import ConcurrentUpdate
from engine.persistence.database import ensure_schema, transaction
from engine.persistence.tables import OutboxRow, PartyRow, RoundRow
from engine.runtime.journal import Journal
from notifications import outbox
from notifications.policy import (
    PENDING_STATES,
    ReminderPolicy,
    WorkCalendar,
    due_deadline_reminder,
    due_reminder,
    escalation_due,
)
from notifications.render import message, to_email

if TYPE_CHECKING:
    from notifications.mailer import Mailer

__all__ = [
    "Chase",
    "enqueue_due",
    "on_event",
    "on_launch",
    "on_round",
    "preview",
    "send_due",
]

BATCH = 50
# The states a party passes through, for the invitation's list of steps.
_STEPS = (
    "draft",
    "board_review",
    "council_review",
    "legal_force_wait",
    "awaiting_signature",
    "signed",
)


def policy_of(row: RoundRow) -> ReminderPolicy:
    return ReminderPolicy.model_validate(row.reminders or {})


def _base(row: RoundRow, party: PartyRow | None) -> dict[str, Any]:
    return {
        "title": row.title,
        "round_id": row.id,
        "sha256": row.document_sha256,
        "party": party.name if party else None,
        "coordinator": row.coordinator,
    }


def _by_language(party: PartyRow) -> dict[str, list[str]]:
    """The party's contacts grouped by language: one message per language."""
    groups: dict[str, list[str]] = defaultdict(list)
    for contact in party.contacts:
        groups[contact["language"]].append(contact["email"])
    return dict(groups)


def _bodies(party: PartyRow) -> list[str]:
    return [b["name"] for b in party.bodies]


def _queue(
    session: Session,
    row: RoundRow,
    party: PartyRow | None,
    kind: str,
    key: str,
    to: Sequence[str],
    language: str,
    context: dict[str, Any],
    now: datetime,
    *,
    deadline: bool = False,
    chase: dict[str, Any] | None = None,
) -> bool:
    made = message(
        key,
        kind,
        to,
        language,
        _base(row, party) | context,
        deadline=row.deadline if deadline else None,
        calendar_uid=f"deadline-{row.id}@ratify.invalid",
        stamp=now,
    )
    return outbox.enqueue(
        session,
        made,
        round_id=row.id,
        party_id=party.party_id if party else None,
        now=now,
        chase=chase,
    )


def _to_parties(
    session: Session,
    row: RoundRow,
    parties: Iterable[PartyRow],
    kind: str,
    key: str,
    context: dict[str, Any],
    now: datetime,
    *,
    deadline: bool = False,
) -> None:
    for party in parties:
        for language, to in _by_language(party).items():
            _queue(
                session,
                row,
                party,
                kind,
                f"{key}:{party.party_id}:{language}",
                to,
                language,
                context,
                now,
                deadline=deadline,
            )


def _to_coordinator(
    session: Session,
    row: RoundRow,
    kind: str,
    key: str,
    context: dict[str, Any],
    now: datetime,
    party: PartyRow | None = None,
    chase: dict[str, Any] | None = None,
) -> bool:
    return _queue(
        session,
        row,
        party,
        kind,
        f"{key}:coordinator",
        [row.coordinator["email"]],
        row.language,
        context,
        now,
        chase=chase,
    )


def on_launch(session: Session, row: RoundRow, parties: Sequence[PartyRow], now: datetime) -> None:
    """Invite every party: what is asked of it, by when, and the text's hash."""
    for party in parties:
        steps = [s for s in _STEPS if s != "council_review" or len(party.bodies) > 1]
        if not party.await_legal_force:
            steps.remove("legal_force_wait")
        context = {
            "bodies": _bodies(party),
            "signatures_required": party.signatures_required,
            "steps": steps,
            "deadline": row.deadline,
        }
        _to_parties(
            session, row, [party], "invitation", f"invitation:{row.id}", context, now, deadline=True
        )


def on_event(
    session: Session,
    row: RoundRow,
    party: PartyRow,
    entry: dict[str, Any],
    to_state: str,
    signatures: int,
    now: datetime,
) -> None:
    """A receipt to the party for an event recorded for it."""
    evidence = entry["evidence"]
    given = {
        "ref": evidence.get("decision"),
        "reason": evidence.get("reason"),
        "signatory": evidence.get("signatory"),
        "title": evidence.get("title"),
    }
    context = {
        "bodies": _bodies(party),
        "event": entry["event"],
        "from_state": entry["from_state"],
        "to_state": to_state,
        "evidence": {k: str(v) for k, v in given.items() if v},
        "recorded_at": now,
        "timezone": row.timezone,
        "signatures_given": signatures,
        "signatures_required": party.signatures_required,
    }
    _to_parties(session, row, [party], "receipt", f"receipt:{row.id}:{entry['seq']}", context, now)


def on_round(
    session: Session,
    row: RoundRow,
    kind: str,
    now: datetime,
    context: dict[str, Any],
    key: str | None = None,
) -> None:
    """A notice about the round (active, failed, cancelled, amended) to everyone."""
    parties = session.exec(
        select(PartyRow).where(PartyRow.round_id == row.id).order_by(col(PartyRow.position))
    ).all()
    key = key or f"{kind}:{row.id}"
    _to_parties(session, row, parties, kind, key, context, now)
    _to_coordinator(session, row, kind, key, context, now)


# --- chasing: reminders and escalations, derived from the state at each tick ----------------


@dataclass(frozen=True)
class Chase:
    """A reminder or escalation that is due for a party's pending step."""

    round_id: str
    party_id: str
    kind: str  # reminder, escalation
    event: str  # the log's event once sent: remind, escalate
    state: str
    since: datetime
    number: int  # the reminder's number; for a deadline reminder, working days before it
    deadline_days: int | None
    key: str

    def chase(self) -> dict[str, Any]:
        return {
            "event": self.event,
            "state": self.state,
            "since": format_time(self.since),
            "number": self.number,
            "deadline_days": self.deadline_days,
        }


def _chases(row: RoundRow, parties: Sequence[PartyRow], now: datetime) -> list[Chase]:
    policy = policy_of(row)
    calendar = WorkCalendar(policy)
    tz = ZoneInfo(row.timezone)
    due: list[Chase] = []
    deadline_days = (
        due_deadline_reminder(policy, calendar, row.deadline, now, tz) if row.deadline else None
    )
    for party in parties:
        step = f"{row.id}:{party.party_id}:{party.state}:{format_time(party.since)}"
        if party.state in PENDING_STATES:
            number = due_reminder(policy, calendar, party.since, now, tz)
            if number is not None:
                due.append(
                    Chase(
                        row.id,
                        party.party_id,
                        "reminder",
                        "remind",
                        party.state,
                        party.since,
                        number,
                        None,
                        f"reminder:{step}:{number}",
                    )
                )
            if now >= escalation_due(policy, calendar, party.since, tz):
                due.append(
                    Chase(
                        row.id,
                        party.party_id,
                        "escalation",
                        "escalate",
                        party.state,
                        party.since,
                        policy.max_reminders,
                        None,
                        f"escalation:{step}",
                    )
                )
        if deadline_days is not None and party.state not in ("signed", "rejected"):
            due.append(
                Chase(
                    row.id,
                    party.party_id,
                    "reminder",
                    "remind",
                    party.state,
                    party.since,
                    deadline_days,
                    deadline_days,
                    f"deadline:{row.id}:{party.party_id}:{deadline_days}",
                )
            )
    return due


def _open_rounds(session: Session) -> list[tuple[RoundRow, list[PartyRow]]]:
    rounds = session.exec(select(RoundRow).where(RoundRow.state == "open").order_by(RoundRow.id))
    result = []
    for row in rounds.all():
        parties = session.exec(
            select(PartyRow).where(PartyRow.round_id == row.id).order_by(col(PartyRow.position))
        ).all()
        result.append((row, list(parties)))
    return result


def _queued(session: Session, round_id: str, chases: Sequence[Chase]) -> set[str]:
    """Which chases already have rows (a chase's key is the prefix of its rows' keys)."""
    if not chases:
        return set()
    keys = session.exec(
        select(OutboxRow.key).where(
            OutboxRow.round_id == round_id,
            col(OutboxRow.kind).in_(("reminder", "escalation")),
        )
    ).all()
    stems = {k.rsplit(":", 1)[0] for k in keys}
    return {c.key for c in chases if c.key in stems}


def _queue_chase(
    session: Session, row: RoundRow, party: PartyRow, chase: Chase, now: datetime
) -> None:
    policy = policy_of(row)
    if chase.kind == "escalation":
        context = {
            "reason": "stalled",
            "bodies": _bodies(party),
            "state": chase.state,
            "since": chase.since,
            "timezone": row.timezone,
            "reminders_sent": _sent_reminders(session, row, party, chase),
        }
        _to_coordinator(session, row, "escalation", chase.key, context, now, party, chase.chase())
        return
    deadline_days = policy.before_deadline_days
    context = {
        "bodies": _bodies(party),
        "state": chase.state,
        "since": chase.since,
        "timezone": row.timezone,
        "reminder_number": (
            chase.number
            if chase.deadline_days is None
            else deadline_days.index(chase.deadline_days) + 1
        ),
        "max_reminders": policy.max_reminders
        if chase.deadline_days is None
        else len(deadline_days),
        "deadline": row.deadline,
    }
    for language, to in _by_language(party).items():
        _queue(
            session,
            row,
            party,
            "reminder",
            f"{chase.key}:{language}",
            to,
            language,
            context,
            now,
            deadline=True,
            chase=chase.chase(),
        )


def _sent_reminders(session: Session, row: RoundRow, party: PartyRow, chase: Chase) -> int:
    prefix = f"reminder:{row.id}:{party.party_id}:{chase.state}:{format_time(chase.since)}:"
    keys = session.exec(
        select(OutboxRow.key).where(
            OutboxRow.round_id == row.id,
            OutboxRow.party_id == party.party_id,
            OutboxRow.state == "sent",
            col(OutboxRow.key).startswith(prefix),
        )
    ).all()
    return len({k.removeprefix(prefix).split(":")[0] for k in keys})


def enqueue_due(engine: Engine, clock: Clock) -> list[str]:
    """Queue every reminder and escalation due now that is not queued yet; their keys."""
    ensure_schema(engine)
    queued: list[str] = []
    with transaction(engine) as session:
        for row, parties in _open_rounds(session):
            now = clock.now(ZoneInfo(row.timezone))
            chases = _chases(row, parties, now)
            already = _queued(session, row.id, chases)
            by_id = {p.party_id: p for p in parties}
            for chase in chases:
                if chase.key not in already:
                    _queue_chase(session, row, by_id[chase.party_id], chase, now)
                    queued.append(chase.key)
    return queued


def preview(engine: Engine, clock: Clock, ref: str | None = None) -> list[dict[str, Any]]:
    """What a tick at the clock's time would send, without writing anything."""
    from engine.runtime.rounds import resolve_round

    ensure_schema(engine)
    result: list[dict[str, Any]] = []
    with transaction(engine) as session:
        wanted = resolve_round(session, ref).id if ref else None
        for row, parties in _open_rounds(session):
            if wanted and row.id != wanted:
                continue
            now = clock.now(ZoneInfo(row.timezone))
            chases = _chases(row, parties, now)
            already = _queued(session, row.id, chases)
            by_id = {p.party_id: p for p in parties}
            for chase in chases:
                if chase.key in already:
                    continue
                party = by_id[chase.party_id]
                recipients = (
                    [row.coordinator["email"]]
                    if chase.kind == "escalation"
                    else [c["email"] for c in party.contacts]
                )
                result.append(
                    {
                        "round": row.id,
                        "party": chase.party_id,
                        "kind": chase.kind,
                        "number": chase.number,
                        "state": chase.state,
                        "recipients": recipients,
                        "due": now.isoformat(timespec="minutes"),
                        "queued": False,
                    }
                )
        now_utc = clock.now(DEFAULT_ZONE)
        for item in session.exec(
            select(OutboxRow)
            .where(OutboxRow.state == "pending", OutboxRow.next_attempt_at <= now_utc)
            .order_by(col(OutboxRow.id))
        ).all():
            if wanted and item.round_id != wanted:
                continue
            result.append(
                {
                    "round": item.round_id,
                    "party": item.party_id,
                    "kind": item.kind,
                    "number": None,
                    "state": None,
                    "recipients": item.recipients,
                    "due": item.next_attempt_at.isoformat(timespec="minutes"),
                    "queued": True,
                }
            )
    return result


# --- sending --------------------------------------------------------------------------------


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
    results: list[dict[str, Any]] = []
    while True:
        now = clock.now(DEFAULT_ZONE)
        with transaction(engine) as session:
            claimed = outbox.claim(session, now, BATCH)
            batch: list[tuple[object, Any]] = []
            for item in claimed:
                reason = _still_due(session, item)
                if reason:
                    outbox.mark_skipped(session, item, reason)
                    results.append(_result(item, "skipped", reason))
                else:
                    batch.append((item, to_email(outbox.outgoing(item), mail_from, now)))
        if not claimed:
            return results
        deliveries = mailer.deliver_sync(batch) if batch else []
        for delivery in deliveries:
            item = cast(OutboxRow, delivery.ref)
            _settle(engine, clock, item, delivery.outcome, delivery.error, delivery.refused)
            results.append(_result(item, delivery.outcome, delivery.error, delivery.refused))


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
    _to_coordinator(session, row, "escalation", f"bounced:{item.key}", context, now, party)
