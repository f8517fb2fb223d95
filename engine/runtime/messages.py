"""Messages about events: invitations at launch, receipts, and notices about the round.

They are queued in the same transaction as the event, so an event is never recorded without its
messages nor the other way round. Contacts are grouped by language: one message per language.
"""

from __future__ import annotations

import functools
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from engine.persistence import outbox
from engine.persistence.tables import PartyRow, RoundRow
from notifications.policy import ReminderPolicy
from notifications.render import message

__all__ = [
    "bodies_of",
    "by_language",
    "on_event",
    "on_launch",
    "on_round",
    "policy_of",
    "queue",
    "to_coordinator",
]

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
    """The round's reminder policy (validated once per distinct table, not at every tick)."""
    return _policy(json.dumps(row.reminders or {}, sort_keys=True))


@functools.lru_cache(maxsize=64)
def _policy(table: str) -> ReminderPolicy:
    return ReminderPolicy.model_validate(json.loads(table))


def _base(row: RoundRow, party: PartyRow | None) -> dict[str, Any]:
    return {
        "title": row.title,
        "round_id": row.id,
        "sha256": row.document_sha256,
        "party": party.name if party else None,
        "coordinator": row.coordinator,
    }


def by_language(party: PartyRow) -> dict[str, list[str]]:
    """The party's contacts grouped by language: one message per language."""
    groups: dict[str, list[str]] = defaultdict(list)
    for contact in party.contacts:
        groups[contact["language"]].append(contact["email"])
    return dict(groups)


def bodies_of(party: PartyRow) -> list[str]:
    return [b["name"] for b in party.bodies]


def queue(
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
        for language, to in by_language(party).items():
            queue(
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


def to_coordinator(
    session: Session,
    row: RoundRow,
    kind: str,
    key: str,
    context: dict[str, Any],
    now: datetime,
    party: PartyRow | None = None,
    chase: dict[str, Any] | None = None,
) -> bool:
    return queue(
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
            "bodies": bodies_of(party),
            "signatures_required": party.signatures_required,
            "signatories": [f"{s['name']} ({s['title']})" for s in party.signatories],
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
        "diary": evidence.get("diary"),
    }
    context = {
        "bodies": bodies_of(party),
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
    to_coordinator(session, row, kind, key, context, now)
