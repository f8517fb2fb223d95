"""Correcting a running round: its parties' contacts and signatories, its links, and notes on its
log. Each correction is an entry of the log; none edits one.

Contacts stay out of the log (it holds what was decided, not whom to email): an entry about a
contact names it by a pseudonym, the one its messages are keyed by.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, update
from sqlmodel import Session, col

from engine.agreement import check_contact, check_signatory
from engine.clock import Clock
from engine.core.evidence import Evidence, same_person
from engine.core.text import check_evidence_text
from engine.errors import InvalidInput, NotFound, Refused
from engine.persistence import outbox
from engine.persistence.tables import LinkRow, PartyRow, RoundRow
from engine.runtime.access import new_link
from engine.runtime.journal import Journal, retrying
from engine.runtime.lookup import local_now, require_open, resolve_round
from engine.runtime.messages import recipient
from engine.runtime.results import Signatory
from engine.runtime.writes import OnceKey, Via, check_once, earlier, keep, with_via

__all__ = [
    "add_contact",
    "annotate",
    "change_contact",
    "remove_contact",
    "revoke_link",
    "set_signatories",
]


def _party(session: Session, row: RoundRow, party_id: str) -> PartyRow:
    party = session.get(PartyRow, (row.id, party_id), with_for_update=True)
    if party is None:
        raise NotFound(f"round {row.id} has no party {party_id!r}", field="party")
    return party


class _Repeat(Exception):
    """The same correction again (its once-only key seen): the first one's entry number."""

    def __init__(self, seq: int) -> None:
        self.seq = seq


def _locked(session: Session, ref: str, once: OnceKey | None) -> RoundRow:
    """The round, locked; a correction whose key was seen goes no further."""
    row = resolve_round(session, ref, lock=True)
    if (done := earlier(session, "correct", once)) is not None:
        raise _Repeat(int(done["seq"]))
    return row


def _open_party(
    session: Session, ref: str, party_id: str, clock: Clock, once: OnceKey | None
) -> tuple[RoundRow, PartyRow, datetime]:
    """The open round (locked), the party to correct in it, and the time in the round's zone."""
    row = _locked(session, ref, once)
    require_open(row)
    return row, _party(session, row, party_id), local_now(row, clock)


def _once(
    engine: Engine, once: OnceKey | None, clock: Clock, work: Callable[[Session], int]
) -> int:
    """``work`` in a transaction, once per key: the entry it appended, or the first one's."""
    check_once(once)

    def run(session: Session) -> int:
        try:
            seq = work(session)
        except _Repeat as repeat:
            return repeat.seq
        keep(session, "correct", once, {"seq": seq}, clock.now(UTC))
        return seq

    return retrying(engine, run)


def _reason(reason: str | None) -> str | None:
    if reason is None or not reason.strip():
        return None
    return check_evidence_text(Evidence(reason=reason)).reason


def _save_contacts(session: Session, party: PartyRow, contacts: list[dict[str, str]]) -> None:
    session.execute(
        update(PartyRow)
        .where(
            col(PartyRow.round_id) == party.round_id,
            col(PartyRow.party_id) == party.party_id,
        )
        .values(contacts=contacts, version=party.version + 1)
    )


def _revoke(session: Session, row: RoundRow, party_id: str, email: str, now: datetime) -> int:
    result = session.execute(
        update(LinkRow)
        .where(
            col(LinkRow.round_id) == row.id,
            col(LinkRow.party_id) == party_id,
            col(LinkRow.email) == email,
            col(LinkRow.revoked_at).is_(None),
        )
        .values(revoked_at=now.astimezone(UTC))
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def _redirect(
    session: Session, row: RoundRow, party_id: str, old: str, new: str | None, now: datetime
) -> int:
    """What was waiting for, or failed to reach, a contact's old address goes to its new one (or,
    with no new one, no longer goes); how many messages were sent on."""
    moved = 0
    for item in outbox.addressed_to(session, row.id, party_id, old, ("pending", "failed")):
        if item.state == "pending" and not outbox.withdraw(session, item, "the contact changed"):
            continue  # a worker took it meanwhile: it is on its way to the old address
        if new is None:
            continue
        personal = dict(item.personal or {})
        if "link" in personal:
            personal["link"] = [party_id, new]
        outbox.enqueue(
            session,
            # The same message, once, to the new address.
            replace(outbox.outgoing(item), key=f"{item.key}:{recipient(new)}", to=(new,)),
            round_id=row.id,
            party_id=party_id,
            now=now,
            chase=item.chase,
            personal=personal,
        )
        moved += 1
    return moved


def _entry(
    session: Session,
    row: RoundRow,
    party: PartyRow,
    how: tuple[Clock, str, Via | None],
    now: datetime,
    event: str,
    evidence: dict[str, Any],
) -> int:
    clock, actor, via = how
    journal = Journal(session, row, actor=actor, now=now, clock=clock.source)
    entry = journal.append(
        event,
        party=party.party_id,
        from_state=party.state,
        to_state=party.state,
        evidence=with_via({k: v for k, v in evidence.items() if v is not None}, via),
    )
    journal.seal()
    return entry["seq"]


def add_contact(
    engine: Engine,
    ref: str,
    party_id: str,
    name: str,
    email: str,
    language: str,
    clock: Clock,
    actor: str,
    reason: str | None = None,
    *,
    via: Via | None = None,
    once: OnceKey | None = None,
) -> int:
    """Add a contact to a party of an open round; the log entry's number."""
    contact = check_contact(name, email, language)
    why = _reason(reason)

    def work(session: Session) -> int:
        row, party, now = _open_party(session, ref, party_id, clock, once)
        if any(c["email"].casefold() == contact.email.casefold() for c in party.contacts):
            raise Refused(f"{contact.email} is already a contact of {party.name}")
        _save_contacts(session, party, [*party.contacts, asdict(contact)])
        evidence = {
            "change": "added",
            "contact": recipient(contact.email),
            "language": contact.language,
            "contacts": len(party.contacts) + 1,
            "reason": why,
        }
        return _entry(session, row, party, (clock, actor, via), now, "contacts", evidence)

    return _once(engine, once, clock, work)


def change_contact(
    engine: Engine,
    ref: str,
    party_id: str,
    email: str,
    *,
    name: str,
    new_email: str,
    language: str,
    clock: Clock,
    actor: str,
    reason: str | None = None,
    via: Via | None = None,
    once: OnceKey | None = None,
) -> int:
    """Change a contact (a wrong address, another person): its link is withdrawn and what was
    waiting for, or bounced from, the old address goes to the new one."""
    contact = check_contact(name, new_email, language)
    why = _reason(reason)

    def work(session: Session) -> int:
        row, party, now = _open_party(session, ref, party_id, clock, once)
        old = _find(party, email)
        moved = contact.email.casefold() != old["email"].casefold()
        if moved and any(c["email"].casefold() == contact.email.casefold() for c in party.contacts):
            raise Refused(f"{contact.email} is already a contact of {party.name}")
        contacts = [asdict(contact) if c is old else c for c in party.contacts]
        _save_contacts(session, party, contacts)
        revoked = sent_on = 0
        if moved:
            revoked = _revoke(session, row, party.party_id, old["email"], now)
            sent_on = _redirect(session, row, party.party_id, old["email"], contact.email, now)
        evidence = {
            "change": "changed",
            "contact": recipient(old["email"]),
            "now": recipient(contact.email) if moved else None,
            "language": contact.language,
            "links_withdrawn": revoked,
            "messages_sent_on": sent_on,
            "reason": why,
        }
        return _entry(session, row, party, (clock, actor, via), now, "contacts", evidence)

    return _once(engine, once, clock, work)


def remove_contact(
    engine: Engine,
    ref: str,
    party_id: str,
    email: str,
    clock: Clock,
    actor: str,
    reason: str | None = None,
    *,
    via: Via | None = None,
    once: OnceKey | None = None,
) -> int:
    """Remove a contact (not the last): its link is withdrawn, its waiting messages dropped."""
    why = _reason(reason)

    def work(session: Session) -> int:
        row, party, now = _open_party(session, ref, party_id, clock, once)
        old = _find(party, email)
        if len(party.contacts) == 1:
            raise Refused(
                f"{party.name} would have no contact left; add the new contact first, or change "
                "this one"
            )
        _save_contacts(session, party, [c for c in party.contacts if c is not old])
        revoked = _revoke(session, row, party.party_id, old["email"], now)
        _redirect(session, row, party.party_id, old["email"], None, now)
        evidence = {
            "change": "removed",
            "contact": recipient(old["email"]),
            "contacts": len(party.contacts) - 1,
            "links_withdrawn": revoked,
            "reason": why,
        }
        return _entry(session, row, party, (clock, actor, via), now, "contacts", evidence)

    return _once(engine, once, clock, work)


def revoke_link(
    engine: Engine,
    ref: str,
    party_id: str,
    email: str,
    clock: Clock,
    actor: str,
    *,
    reissue: bool = False,
    reason: str | None = None,
    via: Via | None = None,
    once: OnceKey | None = None,
) -> int:
    """Withdraw a contact's link; with ``reissue``, send the contact a new one (the invitation
    again, with it)."""
    why = _reason(reason)

    def work(session: Session) -> int:
        from engine.runtime.messages import on_launch

        row, party, now = _open_party(session, ref, party_id, clock, once)
        old = _find(party, email)
        revoked = _revoke(session, row, party.party_id, old["email"], now)
        seq = _entry(
            session,
            row,
            party,
            (clock, actor, via),
            now,
            "link",
            {
                "change": "reissued" if reissue else "withdrawn",
                "contact": recipient(old["email"]),
                "links_withdrawn": revoked,
                "reason": why,
            },
        )
        if reissue:  # a new link, after the withdrawn one, and the invitation again with it
            session.add(new_link(row, party.party_id, old["email"], now))
            session.flush()
            only = PartyRow(**{**party.model_dump(), "contacts": [old]})
            on_launch(session, row, [only], now, again=str(seq))
        return seq

    return _once(engine, once, clock, work)


def set_signatories(
    engine: Engine,
    ref: str,
    party_id: str,
    signatories: list[tuple[str, str]],
    clock: Clock,
    actor: str,
    reason: str | None = None,
    *,
    via: Via | None = None,
    once: OnceKey | None = None,
) -> int:
    """Replace the party's list of who may sign (empty: anyone the party names). Signatures
    already given stay."""
    checked = [check_signatory(name, title) for name, title in signatories]
    for i, (name, _) in enumerate(checked):
        if any(same_person(name, other) for other, _ in checked[:i]):
            raise InvalidInput(f"signatory {name!r} is listed twice", field="signatories")
    why = _reason(reason)

    def work(session: Session) -> int:
        row, party, now = _open_party(session, ref, party_id, clock, once)
        listed = [asdict(Signatory(n, t)) for n, t in checked]
        session.execute(
            update(PartyRow)
            .where(
                col(PartyRow.round_id) == party.round_id,
                col(PartyRow.party_id) == party.party_id,
            )
            .values(signatories=listed, version=party.version + 1)
        )
        evidence = {"signatories": listed, "reason": why}
        return _entry(session, row, party, (clock, actor, via), now, "signatories", evidence)

    return _once(engine, once, clock, work)


def annotate(
    engine: Engine,
    ref: str,
    seq: int,
    note: str,
    clock: Clock,
    actor: str,
    *,
    via: Via | None = None,
    once: OnceKey | None = None,
) -> int:
    """Append a note on an entry (a correction, a clarification): the entry itself stays as it
    was. Allowed on closed rounds too: an auditor's finding may come after the end."""
    text = check_evidence_text(Evidence(reason=note)).reason
    if not text or not text.strip():
        raise InvalidInput(
            "the note is empty; say what the entry needs to be read with", field="note"
        )

    def work(session: Session) -> int:
        row = _locked(session, ref, once)
        now = local_now(row, clock)
        if not 1 <= seq <= row.log_length:
            raise NotFound(
                f"round {row.id} has no entry #{seq}; its entries are #1 to #{row.log_length}",
                field="seq",
            )
        journal = Journal(
            session, row, actor=actor, now=max(now, row.last_entry_at), clock=clock.source
        )
        entry = journal.append(
            "annotate", evidence=with_via({"refers_to": seq, "note": text.strip()}, via)
        )
        journal.seal()
        return entry["seq"]

    return _once(engine, once, clock, work)


def _find(party: PartyRow, email: str) -> dict[str, str]:
    for contact in party.contacts:
        if contact["email"].casefold() == email.strip().casefold():
            return contact
    raise NotFound(
        f"{email!r} is not a contact of {party.name}; its contacts: "
        + ", ".join(c["email"] for c in party.contacts),
        field="email",
    )
