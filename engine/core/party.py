"""Pure decisions about one party: given its facts, its workflow's machine, an event, the
evidence and `now`, what happens.

Nothing here reads the clock, the database or the network, and nothing looks a workflow up: the
runtime passes the machine of the party's workflow version, as it passes `now`. What an event does
follows from the roles its workflow declares (workflows/definition.py), never from state names.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from engine.core.calendar import legal_force_date
from engine.core.evidence import Evidence, Signature, parse_decision_ref, same_person
from engine.errors import InvalidInput, TransitionRefused
from engine.wording import counted
from workflows import Body, PartyFacts, ProcessMachine, Role

__all__ = [
    "Decision",
    "PartySnapshot",
    "allowed",
    "body_in_charge",
    "decide",
    "had_approval",
    "reopened",
]

_EXAMPLE = {
    "ref": "{opt.ref} 'Kunnanhallitus 04.12.2026 § 198'",
    "reason": "{opt.reason} 'why'",
    "signatory": "{opt.signatory} 'Name'",
    "title": "{opt.title} 'Mayor'",
    "diary": "{opt.diary} '11026/00.01.00/2025'",
}


@dataclass(frozen=True)
class PartySnapshot:
    """A party's process as stored: enough to decide its next event."""

    id: str
    workflow: str
    workflow_version: int
    state: str
    bodies: tuple[Body, ...]
    step: int
    await_legal_force: bool
    notice_days: int
    signatures_required: int
    signatures: tuple[Signature, ...] = ()
    legal_force_from: date | None = None
    # Who may sign for the party (its administrative rules); empty: anyone the party names.
    signatories: tuple[Signature, ...] = ()

    @property
    def body(self) -> Body:
        """The body now reviewing the text, or next to review it."""
        return self.bodies[min(self.step, len(self.bodies) - 1)]

    def facts(self) -> PartyFacts:
        return PartyFacts(
            bodies=self.bodies,
            step=self.step,
            await_legal_force=self.await_legal_force,
            signatures_required=self.signatures_required,
            signatures=len(self.signatures),
        )


@dataclass(frozen=True)
class Decision:
    event: str
    from_state: str
    party: PartySnapshot  # the party after the event
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def to_state(self) -> str:
        return self.party.state


def allowed(machine: ProcessMachine, party: PartySnapshot) -> list[str]:
    """The events a person may record for this party now."""
    return machine.by_hand(party.state)


def body_in_charge(machine: ProcessMachine, party: PartySnapshot) -> Body | None:
    """The body the party's step waits on: while preparing, the next to decide; in review, the
    one deciding. None in the other roles."""
    return party.body if machine.role(party.state) in ("preparing", "review") else None


def _fire(machine: ProcessMachine, state: str, event: str, facts: PartyFacts) -> str | None:
    """Where ``event`` leads from ``state``: a machine's guards ask only the facts (frozen, so a
    key), and a machine is one workflow version's, never changed, so the answer is kept. Facts
    that cannot be a key (a tampered log's, replayed by verify: a list for a name) are asked
    afresh, for the machine to answer (or fail) as it always did."""
    try:
        return _kept(machine, state, event, facts)
    except TypeError:
        return machine.fire(state, event, facts)


@functools.lru_cache(maxsize=4096)
def _kept(machine: ProcessMachine, state: str, event: str, facts: PartyFacts) -> str | None:
    return machine.fire(state, event, facts)


def _refuse(
    machine: ProcessMachine,
    party: PartySnapshot,
    event: str,
    message: str,
    field: str | None = None,
) -> Exception:
    return TransitionRefused(
        message,
        party=party.id,
        state=party.state,
        allowed=allowed(machine, party),
        event=event,
        field=field,
    )


def decide(
    machine: ProcessMachine,
    party: PartySnapshot,
    event: str,
    evidence: Evidence,
    now: datetime,
    text_from: date | None = None,
) -> Decision:
    """Decide ``event`` for ``party`` at ``now`` (local time); raise if refused. Writes nothing.

    ``text_from`` is the local date the round's current text was launched or amended: a body
    cannot have decided on a text before then."""
    definition = machine.definition
    spec = definition.event(event)
    if spec is None:
        events = ", ".join(definition.hand_events)
        raise InvalidInput(
            f"unknown event {event!r}; the events of workflow {definition.name} are {events}",
            field="event",
        )
    source: Role = machine.role(party.state)
    if "signatory" in spec.requires and party.signatories and event in machine.allowed(party.state):
        evidence = _as_authorised(machine, party, event, evidence)
    _check_options(spec.name, spec.requires, spec.optional, evidence)
    if event not in machine.allowed(party.state):
        raise _refusal(machine, party, event)
    today = now.date()
    record: dict[str, Any] = {}
    if evidence.reason:
        record["reason"] = evidence.reason.strip()
    if evidence.diary:
        record["diary"] = evidence.diary.strip()
    changes: dict[str, Any] = {}

    if evidence.ref is not None:
        ref = parse_decision_ref(evidence.ref)
        if ref.decided > today:
            raise InvalidInput(
                f"decision {ref} is dated after {today:%d.%m.%Y}; "
                "record a decision once it is made",
                field="ref",
            )
        if spec.decision and text_from and ref.decided < text_from:
            raise InvalidInput(
                f"decision {ref} is dated before the text it decides on was put to the parties "
                f"({text_from:%d.%m.%Y}); check the decision's date: it must be on this round's "
                "current text",
                field="ref",
            )
        if spec.decision and not ref.names(party.body.name):
            raise _refuse(
                machine,
                party,
                event,
                f'Party "{party.id}" is in {party.state}, awaiting the decision of '
                f'{party.body.name}; decision "{ref}" is by {ref.body}.',
                field="ref",
            )
        record["decision"] = str(ref)
    if "signatory" in spec.requires:
        name = " ".join((evidence.signatory or "").split())
        if any(same_person(s.name, name) for s in party.signatures):
            others = party.signatures_required - len(party.signatures)
            raise _refuse(
                machine,
                party,
                event,
                f'Party "{party.id}" is {party.state}; {name} has already signed; '
                f"{counted(others, 'other signatory', 'other signatories')} needed.",
                field="signatory",
            )
        signature = Signature(name, " ".join((evidence.title or "").split()))
        changes["signatures"] = (*party.signatures, signature)
        record |= {
            "signatory": signature.name,
            "title": signature.title,
            "signature": len(party.signatures) + 1,
            "of": party.signatures_required,
        }
    if spec.by == "time":
        if party.legal_force_from is None or today < party.legal_force_from:
            raise _refuse(
                machine,
                party,
                event,
                f'Party "{party.id}" awaits legal force until {party.legal_force_from}.',
            )
        record["legal_force_from"] = party.legal_force_from.isoformat()

    dest = _fire(machine, party.state, event, party.facts())
    if dest is None:  # every transition's conditions failed: the definition has no fallback
        raise _refusal(machine, party, event)
    target: Role = machine.role(dest)
    if "preparing" in (source, target):  # the bodies start afresh, on the current text
        changes |= {"step": 0, "signatures": (), "legal_force_from": None}
    if source == "review" and target == "review":
        changes["step"] = party.step + 1
    if target == "legal_force" and source != "legal_force":
        if "decision" not in record:
            raise _refuse(
                machine,
                party,
                event,
                f'"{event}" leads party "{party.id}" to wait for legal force, which runs from a '
                "decision; give its reference",
                field="ref",
            )
        decided = parse_decision_ref(record["decision"])
        final = legal_force_date(decided.decided, party.body.appeal_days, party.notice_days)
        changes["legal_force_from"] = final
        record["legal_force_from"] = final.isoformat()
    return Decision(event, party.state, replace(party, state=dest, **changes), record)


def _as_authorised(
    machine: ProcessMachine, party: PartySnapshot, event: str, evidence: Evidence
) -> Evidence:
    """A signature by one of the party's authorised signatories: their name as listed, and their
    listed title unless another is given. Anyone else is refused."""
    name = " ".join((evidence.signatory or "").split())
    if not name:
        return evidence  # _check_options asks for the signatory
    listed = next((s for s in party.signatories if same_person(s.name, name)), None)
    if listed is None:
        raise _refuse(
            machine,
            party,
            event,
            f'Party "{party.id}" is {party.state}; {name} is not one of its '
            f"authorised signatories ({', '.join(map(str, party.signatories))}); "
            f"{party.signatures_required} of them sign.",
            field="signatory",
        )
    title = (evidence.title or "").strip() or listed.title
    return replace(evidence, signatory=listed.name, title=title)


def _check_options(
    event: str, required: tuple[str, ...], optional: tuple[str, ...], evidence: Evidence
) -> None:
    keys = sorted(_EXAMPLE)  # the order today's messages name them in
    given = {k for k in keys if (getattr(evidence, k) or "").strip()}
    if missing := [k for k in keys if k in required and k not in given]:
        needs = ", ".join(f"{{opt.{k}}}" for k in missing)
        raise InvalidInput(
            f'"{event}" needs {needs}, for example {_EXAMPLE[missing[0]]}', field=missing[0]
        )
    if extra := [k for k in keys if k in given and k not in required and k not in optional]:
        raise InvalidInput(
            f'"{event}" does not take {", ".join(f"{{opt.{k}}}" for k in extra)}; leave it out',
            field=extra[0],
        )


def _refusal(machine: ProcessMachine, party: PartySnapshot, event: str) -> Exception:
    definition = machine.definition
    where = [s for s in definition.states if event in machine.allowed(s)]
    now = ", ".join(f'"{e}"' for e in allowed(machine, party)) or "nothing (a final state)"
    hint = ""
    if machine.role(party.state) == "legal_force" and party.legal_force_from:
        hint = f" It awaits legal force from {party.legal_force_from:%d.%m.%Y} ({{cmd.tick}})."
    return _refuse(
        machine,
        party,
        event,
        f'Party "{party.id}" is {party.state}; "{event}" is allowed only in '
        f"{', '.join(where)}. Allowed now: {now}.{hint}",
    )


def had_approval(machine: ProcessMachine, party: PartySnapshot) -> bool:
    """Whether a body of the party has approved the current text (or it has been signed)."""
    role = machine.role(party.state)
    if role == "review":
        return party.step > 0
    return role not in ("preparing", "failed")


def reopened(machine: ProcessMachine, party: PartySnapshot) -> PartySnapshot:
    """The party after the text it approved was amended: back to preparation."""
    initial = machine.definition.initial
    return replace(party, state=initial, step=0, signatures=(), legal_force_from=None)
