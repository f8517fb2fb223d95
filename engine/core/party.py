"""Pure decisions: given a party's facts, an event, its evidence and `now`, what happens.

Nothing here reads the clock, the database or the network. The runtime loads a party, asks
:func:`decide`, and writes the :class:`Decision` and its log entry in one transaction; the replayer
asks the same function about every stored entry.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from engine.core.calendar import legal_force_date
from engine.core.evidence import Evidence, Signature, parse_decision_ref, same_person
from engine.errors import InvalidInput, TransitionRefused
from engine.wording import counted
from workflows import Body, PartyFacts, machine_for

__all__ = [
    "EVENTS",
    "LEGAL_FORCE",
    "USER_EVENTS",
    "Decision",
    "PartySnapshot",
    "decide",
    "had_approval",
    "reopened",
    "round_outcome",
]

USER_EVENTS = ("submit", "approve", "return", "reject", "sign", "appeal", "appeal-resolved")
LEGAL_FORCE = "legal-force"  # applied by `ratify tick`, never recorded by hand
EVENTS = (*USER_EVENTS, LEGAL_FORCE)

# Which evidence each event needs (required) and accepts (optional).
_NEEDS: dict[str, tuple[set[str], set[str]]] = {
    "submit": (set(), {"reason", "diary"}),
    "approve": ({"ref"}, {"diary"}),
    "return": ({"reason"}, {"ref", "diary"}),
    "reject": ({"ref", "reason"}, {"diary"}),
    "sign": ({"signatory", "title"}, set()),
    "appeal": ({"reason"}, set()),
    "appeal-resolved": (set(), {"reason", "ref"}),
    LEGAL_FORCE: (set(), set()),
}
_OPTION = {
    "ref": "--ref",
    "reason": "--reason",
    "signatory": "--signatory",
    "title": "--title",
    "diary": "--diary",
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

    def refuse(self, message: str) -> TransitionRefused:
        return TransitionRefused(message, party=self.id, state=self.state, allowed=self.allowed())

    def allowed(self) -> list[str]:
        """The events a person may record for this party now."""
        machine = machine_for(self.workflow, self.workflow_version)
        return [e for e in machine.allowed(self.state) if e != LEGAL_FORCE]


@dataclass(frozen=True)
class Decision:
    event: str
    from_state: str
    party: PartySnapshot  # the party after the event
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def to_state(self) -> str:
        return self.party.state


def decide(
    party: PartySnapshot,
    event: str,
    evidence: Evidence,
    now: datetime,
    text_from: date | None = None,
) -> Decision:
    """Decide ``event`` for ``party`` at ``now`` (local time); raise if refused. Writes nothing.

    ``text_from`` is the local date the round's current text was launched or amended: a body
    cannot have decided on a text before then."""
    if event not in EVENTS:
        raise InvalidInput(f"unknown event {event!r}; the events are {', '.join(USER_EVENTS)}")
    machine = machine_for(party.workflow, party.workflow_version)
    if event == "sign" and party.signatories and event in machine.allowed(party.state):
        evidence = _as_authorised(party, evidence)
    _check_options(event, evidence)
    allowed = party.allowed()
    if event not in machine.allowed(party.state):
        raise _refusal(party, event, allowed)
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
                f"decision {ref} is dated after {today:%d.%m.%Y}; record a decision once it is made"
            )
        if event in ("approve", "reject", "return") and text_from and ref.decided < text_from:
            raise InvalidInput(
                f"decision {ref} is dated before the text it decides on was put to the parties "
                f"({text_from:%d.%m.%Y}); check the decision's date: it must be on this round's "
                "current text"
            )
        if event in ("approve", "reject", "return") and not ref.names(party.body.name):
            raise party.refuse(
                f'Party "{party.id}" is in {party.state}, awaiting the decision of '
                f'{party.body.name}; decision "{ref}" is by {ref.body}.'
            )
        record["decision"] = str(ref)
    if event == "sign":
        name = " ".join((evidence.signatory or "").split())
        if any(same_person(s.name, name) for s in party.signatures):
            others = party.signatures_required - len(party.signatures)
            raise party.refuse(
                f'Party "{party.id}" is {party.state}; {name} has already signed; '
                f"{counted(others, 'other signatory', 'other signatories')} needed."
            )
        signature = Signature(name, " ".join((evidence.title or "").split()))
        changes["signatures"] = (*party.signatures, signature)
        record |= {
            "signatory": signature.name,
            "title": signature.title,
            "signature": len(party.signatures) + 1,
            "of": party.signatures_required,
        }
    if event == LEGAL_FORCE:
        if party.legal_force_from is None or today < party.legal_force_from:
            raise party.refuse(
                f'Party "{party.id}" awaits legal force until {party.legal_force_from}.'
            )
        record["legal_force_from"] = party.legal_force_from.isoformat()

    dest = machine.fire(party.state, event, party.facts())
    if dest is None:  # every transition's conditions failed: the definition has no fallback
        raise _refusal(party, event, allowed)
    if event == "submit" or dest == "draft":
        changes |= {"step": 0, "signatures": (), "legal_force_from": None}
    if event == "approve":
        if dest in ("board_review", "council_review"):
            changes["step"] = party.step + 1
        if dest == "legal_force_wait":
            ref = parse_decision_ref(record["decision"])
            final = legal_force_date(ref.decided, party.body.appeal_days, party.notice_days)
            changes["legal_force_from"] = final
            record["legal_force_from"] = final.isoformat()
    return Decision(event, party.state, replace(party, state=dest, **changes), record)


def _as_authorised(party: PartySnapshot, evidence: Evidence) -> Evidence:
    """A signature by one of the party's authorised signatories: their name as listed, and their
    listed title unless another is given. Anyone else is refused."""
    name = " ".join((evidence.signatory or "").split())
    if not name:
        return evidence  # _check_options asks for --signatory
    listed = next((s for s in party.signatories if same_person(s.name, name)), None)
    if listed is None:
        raise party.refuse(
            f'Party "{party.id}" is {party.state}; {name} is not one of its '
            f"authorised signatories ({', '.join(map(str, party.signatories))}); "
            f"{party.signatures_required} of them sign."
        )
    title = (evidence.title or "").strip() or listed.title
    return replace(evidence, signatory=listed.name, title=title)


def _check_options(event: str, evidence: Evidence) -> None:
    required, optional = _NEEDS[event]
    given = {k for k in _OPTION if (getattr(evidence, k) or "").strip()}
    if missing := sorted(required - given):
        needs = ", ".join(_OPTION[k] for k in missing)
        example = {
            "ref": "--ref 'Kunnanhallitus 04.12.2026 § 198'",
            "reason": "--reason 'why'",
            "signatory": "--signatory 'Name'",
            "title": "--title 'Mayor'",
        }[missing[0]]
        raise InvalidInput(f'"{event}" needs {needs}, for example {example}')
    if extra := sorted(given - required - optional):
        raise InvalidInput(
            f'"{event}" does not take {", ".join(_OPTION[k] for k in extra)}; leave it out'
        )


def _refusal(party: PartySnapshot, event: str, allowed: list[str]) -> TransitionRefused:
    machine = machine_for(party.workflow, party.workflow_version)
    where = [s for s in machine.definition.states if event in machine.allowed(s)]
    now = ", ".join(f'"{e}"' for e in allowed) or "nothing (a final state)"
    hint = ""
    if party.state == "legal_force_wait" and party.legal_force_from:
        hint = f" It awaits legal force from {party.legal_force_from:%d.%m.%Y} (`ratify tick`)."
    return party.refuse(
        f'Party "{party.id}" is {party.state}; "{event}" is allowed only in '
        f"{', '.join(where)}. Allowed now: {now}.{hint}"
    )


def round_outcome(states: Iterable[str]) -> str | None:
    """The round's new state once its parties are in ``states``: active, failed, or unchanged."""
    states = list(states)
    if "rejected" in states:
        return "failed"
    if states and all(s == "signed" for s in states):
        return "active"
    return None


def had_approval(party: PartySnapshot) -> bool:
    """Whether a body of the party has approved the current text (or it has been signed)."""
    if party.state in ("board_review", "council_review"):
        return party.step > 0
    return party.state not in ("draft", "rejected")


def reopened(party: PartySnapshot) -> PartySnapshot:
    """The party after the text it approved was amended: back to preparation."""
    return replace(party, state="draft", step=0, signatures=(), legal_force_from=None)
