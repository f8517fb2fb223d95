"""Messages about events: invitations at launch, receipts, and notices about the round.

They are queued in the same transaction as the event, so an event is never recorded without its
messages nor the other way round. Contacts are grouped by language: one message per language.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from engine.core.chain import Entry
from engine.core.party import PartySnapshot
from engine.persistence import outbox
from engine.persistence.tables import DocumentRow, OutboxRow, PartyRow, RoundRow
from engine.runtime import receipts
from engine.runtime.journal import machine_of, snapshot
from engine.runtime.languages import text_in, title_in
from notifications.message import OutgoingMessage
from notifications.policy import ReminderPolicy
from notifications.render import LINK, SITE, freeze, message, thaw
from workflows import ProcessMachine, Role

__all__ = [
    "bodies_of",
    "contacts_of",
    "on_event",
    "on_launch",
    "on_round",
    "policy_of",
    "queue",
    "step_of",
    "to_coordinator",
]


def step_of(machine: ProcessMachine, party: PartySnapshot) -> dict[str, Any]:
    """The party's state as the templates word it: its role, and the body it concerns (the next
    to decide while preparing, the deciding one in review, the last to have decided after)."""
    return {"role": machine.role(party.state), "body": party.body.name, "state": party.state}


def _steps(machine: ProcessMachine, party: PartySnapshot) -> list[dict[str, Any]]:
    """The steps ahead of a party from its start, derived from its roles and bodies: preparing,
    each body's review, the wait for legal force if it waits, the signatures, and done."""
    roles = {role for _, role in machine.definition.roles}
    steps: list[dict[str, Any]] = [{"role": "preparing", "body": party.bodies[0].name}]
    steps += [{"role": "review", "body": b.name} for b in party.bodies if "review" in roles]
    order: tuple[Role, ...] = ("legal_force", "signing", "done")
    for role in order:
        if role in roles and (role != "legal_force" or party.await_legal_force):
            steps.append({"role": role, "body": party.bodies[-1].name})
    return steps


def policy_of(row: RoundRow) -> ReminderPolicy:
    """The round's reminder policy (validated once per distinct table, not at every tick)."""
    return _policy(json.dumps(row.reminders or {}, sort_keys=True))


@functools.lru_cache(maxsize=64)
def _policy(table: str) -> ReminderPolicy:
    return ReminderPolicy.model_validate(json.loads(table))


def _base(row: RoundRow, party: PartyRow | None, personal: bool, language: str) -> dict[str, Any]:
    return {
        "title": title_in(row, language),  # the contact's language's, else the round's
        "round_id": row.id,
        "sha256": row.document_sha256,
        "party": party.name if party else None,
        "coordinator": row.coordinator,
        # A contact's own link, or the round's page for the coordinator: put in when sent.
        "link": LINK if personal else f"{SITE}/rounds/{row.id}",
        "link_is_personal": personal,
    }


def recipient(email: str) -> str:
    """The last part of a contact's row key: not the address itself (keys are shown and logged),
    and never a colon (:class:`outbox.Key`)."""
    return "to-" + hashlib.sha256(email.casefold().encode()).hexdigest()[:16]


def contacts_of(party: PartyRow) -> list[tuple[str, str]]:
    """The party's contacts as (address, language): one message each, since each carries its
    contact's personal link."""
    return [(c["email"], c["language"]) for c in party.contacts]


def bodies_of(party: PartyRow) -> list[str]:
    return [b["name"] for b in party.bodies]


def queue(
    session: Session,
    row: RoundRow,
    party: PartyRow | None,
    kind: str,
    key: str,  # the row's: outbox.Key(…).row(recipient)
    to: Sequence[str],
    language: str,
    context: dict[str, Any],
    now: datetime,
    *,
    deadline: bool = False,
    chase: dict[str, Any] | None = None,
    later: bool = False,
) -> bool:
    """Queue one message. ``later``: store its context and render it when it is sent, not in
    this transaction (a receipt: every recorded event queues one, inside the round's lock)."""
    personal = party is not None and list(to) != [row.coordinator["email"]]
    full = _base(row, party, personal, language) | context
    if row.titles and "text_sha256" not in full:  # several languages: the reader's text's own
        full["text_sha256"] = _text_sha256(session, row.id, str(full["sha256"]), language)
    extra = _personal(row, party, to, kind) if personal else None
    if later and not deadline:
        made = OutgoingMessage(key, kind, tuple(to), language, "", "", "")
        extra = (extra or {}) | {"render": freeze(full)}
        # The same row as outbox.enqueue's, by a statement prepared once: one for every event.
        return receipts.enqueue(
            session,
            made,
            round_id=row.id,
            party_id=party.party_id if party else None,
            now=now,
            chase=chase,
            personal=extra,
        )
    made = message(
        key,
        kind,
        to,
        language,
        full,
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
        personal=extra,
    )


def _text_sha256(session: Session, round_id: str, sha256: str, language: str) -> str | None:
    """The SHA-256 of the text in ``language`` (else the round's) of the version whose combined
    hash is ``sha256`` (the message's: for ``amended``, the new one's)."""
    document = session.exec(
        select(DocumentRow).where(DocumentRow.round_id == round_id, DocumentRow.sha256 == sha256)
    ).first()
    return text_in(document, language)[2] if document is not None else None


# The kinds that carry the text they are about: the invitation, and the notice of a new text.
DOCUMENT_KINDS = ("invitation", "amended")


def _personal(
    row: RoundRow, party: PartyRow | None, to: Sequence[str], kind: str
) -> dict[str, Any]:
    assert party is not None
    personal: dict[str, Any] = {"link": [party.party_id, to[0]]}
    if kind in DOCUMENT_KINDS:
        personal["document"] = row.document_sha256
    return personal


def _to_parties(
    session: Session,
    row: RoundRow,
    parties: Iterable[PartyRow],
    kind: str,
    key: outbox.Key,
    context: dict[str, Any],
    now: datetime,
    *,
    deadline: bool = False,
    later: bool = False,
) -> None:
    for party in parties:
        for email, language in contacts_of(party):
            queue(
                session,
                row,
                party,
                kind,
                key.then(party.party_id).row(recipient(email)),
                [email],
                language,
                context,
                now,
                deadline=deadline,
                later=later,
            )


def to_coordinator(
    session: Session,
    row: RoundRow,
    kind: str,
    key: outbox.Key,
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
        key.row("coordinator"),
        [row.coordinator["email"]],
        row.language,
        context,
        now,
        chase=chase,
    )


def on_launch(
    session: Session,
    row: RoundRow,
    parties: Sequence[PartyRow],
    now: datetime,
    again: str | None = None,
) -> None:
    """Invite every party: what is asked of it, by when, and the text's hash. ``again``: the
    invitation sent anew with a new link (the number of the log entry that withdrew the old)."""
    for party in parties:
        steps = _steps(machine_of(party), snapshot(party))
        context = {
            "bodies": bodies_of(party),
            "signatures_required": party.signatures_required,
            "signatories": [f"{s['name']} ({s['title']})" for s in party.signatories],
            "steps": steps,
            "deadline": row.deadline,
        }
        _to_parties(
            session,
            row,
            [party],
            "invitation",
            outbox.Key("invitation", (row.id,) if again is None else (row.id, "again", again)),
            context,
            now,
            deadline=True,
        )


def on_event(
    session: Session,
    row: RoundRow,
    party: PartyRow,
    machine: ProcessMachine,
    entry: Entry,
    before: PartySnapshot,
    after: PartySnapshot,
    now: datetime,
) -> None:
    """A receipt to the party for an event recorded for it (``before`` and ``after`` it)."""
    evidence = entry["evidence"]
    given = {
        "ref": evidence.get("decision"),
        "reason": evidence.get("reason"),
        "signatory": evidence.get("signatory"),
        "title": evidence.get("title"),
        "diary": evidence.get("diary"),
    }
    context = {
        "event": entry["event"],
        "from_step": step_of(machine, before),
        "to_step": step_of(machine, after),
        "evidence": {k: str(v) for k, v in given.items() if v},
        "recorded_at": now,
        "timezone": row.timezone,
        "signatures_given": len(after.signatures),
        "signatures_required": party.signatures_required,
    }
    key = outbox.Key("receipt", (row.id, str(entry["seq"])))
    _to_parties(session, row, [party], "receipt", key, context, now, later=True)


def on_round(
    session: Session,
    row: RoundRow,
    kind: str,
    now: datetime,
    context: dict[str, Any],
    version: int | None = None,
) -> None:
    """A notice about the round (active, failed, cancelled, amended: of text ``version``) to
    everyone."""
    parties = session.exec(
        select(PartyRow).where(PartyRow.round_id == row.id).order_by(col(PartyRow.position))
    ).all()
    key = outbox.Key(kind, (row.id,) if version is None else (row.id, str(version)))
    _to_parties(session, row, parties, kind, key, context, now)
    to_coordinator(session, row, kind, key, context, now)


def rendered(session: Session | None, item: OutboxRow) -> OutgoingMessage:
    """The stored message; one queued to be rendered when sent (a receipt) rendered now, and,
    with a session, stored so: the outbox keeps what went out."""
    made = outbox.outgoing(item)
    spec = (item.personal or {}).get("render")
    if spec is None:
        return made
    made = message(made.key, made.kind, made.to, made.language, thaw(spec))
    if session is not None:
        outbox.fill(session, item, made)
    return made
