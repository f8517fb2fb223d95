"""A workflow version's moves as a table, for replaying a log: from each state, the events it
accepts, what each asks of its evidence, and where it leads under which conditions.

:func:`~engine.core.party.decide` asks the `transitions` machine, firing a trigger, which is right
for recording one event and too dear for replaying a hundred thousand. Replay looks the move up
here instead (one dict lookup), and :func:`advance` applies it as ``decide`` would. Where
``decide`` would refuse the event, or the table cannot tell (a condition it does not know, a value
of a type ratify never writes, anything that raises), :func:`advance` answers None and the caller
asks ``decide`` itself, which gives the refusal in its own words. So the table only ever stands in
for an event ``decide`` accepts, with the party ``decide`` would make; tests/test_replay_stream.py
compares the two.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from datetime import date, datetime
from functools import lru_cache
from typing import Any
from weakref import WeakKeyDictionary

from engine.core.calendar import legal_force_date
from engine.core.evidence import DecisionRef, Signature, parse_decision_ref, person_key
from engine.core.party import PartySnapshot
from workflows import EventSpec, ProcessMachine, Role

__all__ = ["CONDITIONS", "Choice", "Move", "TransitionTable", "advance", "table_of"]

# The conditions a transition may name, asked of the party as the machine's model asks them of
# its facts (workflows/machine.py): the same expressions, on the same values.
Guard = Callable[[PartySnapshot], Any]
CONDITIONS: Mapping[str, Guard] = {
    "starts_with_board": lambda p: p.bodies[0].kind == "board",
    "has_next_body": lambda p: p.step + 1 < len(p.bodies),
    "awaits_legal_force": lambda p: p.await_legal_force,
    "completes_signatures": lambda p: len(p.signatures) + 1 >= p.signatures_required,
}
# The evidence an event may carry, as decide checks it (party._check_options), with the key of
# each in the Evidence it is given.
_OPTIONS = ("diary", "reason", "ref", "signatory", "title")


@dataclass(frozen=True, slots=True)
class Choice:
    """One transition of a move: taken when each of its conditions holds."""

    guards: tuple[Guard, ...]
    dest: str  # the state it leads to (its source, for an internal transition)
    resets: bool  # it leaves or enters a 'preparing' state: the bodies start afresh
    advances: bool  # 'review' to 'review': on to the next body
    enters_legal_force: bool  # into 'legal_force' from elsewhere: the decision's finality is dated


@dataclass(frozen=True, slots=True)
class Move:
    """An event from one state, with what decide asks of the definition for it."""

    event: str
    spec: EventSpec
    source: Role
    choices: tuple[Choice, ...]  # tried in order, as the machine tries its transitions
    required_at: tuple[int, ...]  # where in _OPTIONS the evidence it requires is
    refused_at: tuple[int, ...]  # where the evidence it does not take is
    signs: bool  # it takes a signatory: a signature is added
    decision: bool  # its reference must be the current body's, on the current text
    timed: bool  # it happens in time, once the legal-force date has come


class TransitionTable:
    """The moves of one machine's workflow version, by (state, event)."""

    def __init__(self, machine: ProcessMachine) -> None:
        self.machine = machine
        definition = machine.definition
        self.events = definition.events  # a tuple, as the definition has them
        self._event_set = frozenset(self.events)
        moves: dict[tuple[str, str], Move] = {}
        for state in definition.states:
            for event in machine.allowed(state):
                move = _move(machine, state, event)
                if move is not None:
                    moves[state, event] = move
        self.moves = moves  # by (state, event): what move() answers

    def has(self, event: Any) -> bool:
        """``event in self.events``, for an event of the log (text, if ratify wrote it)."""
        return event in self._event_set if type(event) is str else event in self.events

    def move(self, state: str, event: str) -> Move | None:
        """The move, or None: the event does not leave the state (or the table cannot say)."""
        return self.moves.get((state, event))


def _move(machine: ProcessMachine, state: str, event: str) -> Move | None:
    definition = machine.definition
    spec = definition.event(event)
    if spec is None or any(key not in _OPTIONS for key in spec.requires):
        return None
    source = machine.role(state)
    choices = []
    for t in definition.transitions:
        if t.event != event or state not in t.sources:
            continue
        if any(name not in CONDITIONS for name in t.conditions):
            return None  # a condition only the machine can ask: decide asks it
        dest = t.dest or state
        target = machine.role(dest)
        choices.append(
            Choice(
                guards=tuple(CONDITIONS[name] for name in t.conditions),
                dest=dest,
                resets="preparing" in (source, target),
                advances=source == "review" and target == "review",
                enters_legal_force=target == "legal_force" and source != "legal_force",
            )
        )
    if not choices:
        return None
    return Move(
        event=event,
        spec=spec,
        source=source,
        choices=tuple(choices),
        required_at=tuple(i for i, k in enumerate(_OPTIONS) if k in spec.requires),
        refused_at=tuple(i for i, k in enumerate(_OPTIONS) if not spec.takes(k)),
        signs="signatory" in spec.requires,
        decision=spec.decision,
        timed=spec.by == "time",
    )


_TABLES: WeakKeyDictionary[ProcessMachine, TransitionTable] = WeakKeyDictionary()


def table_of(machine: ProcessMachine) -> TransitionTable:
    """The table of a machine, built the first time it is asked for."""
    table = _TABLES.get(machine)
    if table is None:
        table = _TABLES[machine] = TransitionTable(machine)
    return table


@lru_cache(maxsize=4096)
def _person(name: str) -> str:
    """:func:`person_key`, kept: a round's signatories are compared with each signature given,
    and the key of a name (its NFKC forms, character by character) is dearer than the rest of
    the move. ``same_person(a, b)`` is ``_person(a) == _person(b)``."""
    return person_key(name)


def advance(
    move: Move,
    party: PartySnapshot,
    evidence: dict[str, Any],
    now: datetime,
    text_from: date | None,
) -> PartySnapshot | None:
    """The party after ``move``'s event at ``now`` (local time), as ``decide`` makes it given the
    :class:`Evidence` of the entry's ``evidence`` (its decision, reason, signatory, title and
    diary); None where ``decide`` would refuse it or the table cannot tell: ask ``decide``."""
    try:
        return _advance(move, party, evidence, now, text_from)
    except Exception:  # whatever decide would make of it, in its own words
        return None


def _advance(
    move: Move,
    party: PartySnapshot,
    evidence: dict[str, Any],
    now: datetime,
    text_from: date | None,
) -> PartySnapshot | None:
    if evidence:
        get = evidence.get
        ref, signatory, title = get("decision"), get("signatory"), get("title")
        values = [get("diary"), get("reason"), ref, signatory, title]  # in _OPTIONS' order
        for value in values:
            if value is not None and type(value) is not str:
                return None  # decide reads its evidence as text: let it say what this is
    else:  # no evidence (a submit…): none of it given
        ref = signatory = title = None
        values = [None, None, None, None, None]
    if move.signs and party.signatories:  # party._as_authorised
        name = " ".join((signatory or "").split())
        if name:
            key = _person(name)
            listed = next((s for s in party.signatories if _person(s.name) == key), None)
            if listed is None:
                return None  # not an authorised signatory: refused
            title = (title or "").strip() or listed.title
            signatory = listed.name
            if not (type(signatory) is str and (title is None or type(title) is str)):
                return None
            values[3:] = [signatory, title]
    # party._check_options: every evidence the event requires is given, none it does not take.
    for at in move.required_at:
        value = values[at]
        if value is None or not value.strip():
            return None
    for at in move.refused_at:
        value = values[at]
        if value is not None and value.strip():
            return None
    today = now.date()
    cited = None
    if ref is not None:
        cited = parse_decision_ref(ref)
        if cited.decided > today:
            return None
        if move.decision and text_from and cited.decided < text_from:
            return None
        if move.decision and not cited.names(party.body.name):
            return None
    signatures = party.signatures
    if move.signs:
        name = " ".join((signatory or "").split())
        key = _person(name)
        if any(_person(s.name) == key for s in signatures):
            return None  # signed already
        signatures = (*signatures, Signature(name, " ".join((title or "").split())))
    if move.timed and (party.legal_force_from is None or today < party.legal_force_from):
        return None
    for choice in move.choices:
        # `transitions` takes a transition when each condition's answer == True, asked in turn.
        for guard in choice.guards:
            if not guard(party) == True:  # noqa: E712, SIM201
                break
        else:
            break
    else:
        return None  # no transition's conditions hold: refused
    step, legal_force_from = party.step, party.legal_force_from
    if choice.resets:
        step, signatures, legal_force_from = 0, (), None
    if choice.advances:
        step = party.step + 1
    if choice.enters_legal_force:
        if cited is None:
            return None  # legal force runs from a decision: refused
        legal_force_from = legal_force_date(
            _read_back(cited), party.body.appeal_days, party.notice_days
        )
    if type(party) is not PartySnapshot:
        return _replaced(party, choice.dest, step, signatures, legal_force_from)
    return _evolved(party, choice.dest, step, signatures, legal_force_from)


def _read_back(cited: DecisionRef) -> date:
    """The date of ``parse_decision_ref(str(cited))``, the decision as decide reads it back from
    its record. From year 1000 that is ``cited.decided`` itself: str() writes the body (stripped,
    starting with no space, on one line, as parsed), the date as dd.mm.yyyy and the section, and
    the pattern reads those same three back (its body ends where the last date before "§ n"
    begins, which is the one str() wrote). Before year 1000 strftime's year has fewer than the
    pattern's four digits: the text is read back, and refused."""
    if cited.decided.year >= 1000:
        return cited.decided
    return parse_decision_ref(str(cited)).decided


def _replaced(
    party: PartySnapshot,
    state: str,
    step: int,
    signatures: tuple[Signature, ...],
    legal_force_from: date | None,
) -> PartySnapshot:
    return replace(
        party, state=state, step=step, signatures=signatures, legal_force_from=legal_force_from
    )


def _copied(
    party: PartySnapshot,
    state: str,
    step: int,
    signatures: tuple[Signature, ...],
    legal_force_from: date | None,
) -> PartySnapshot:
    """:func:`dataclasses.replace` of the four fields an event changes, made as a copy of the
    party's fields. A frozen dataclass's ``__init__`` sets each of its fields through
    ``object.__setattr__``: for PartySnapshot's twelve, that was half the cost of replaying an
    entry. The copy is the same value (its fields are all there is to a PartySnapshot: it has no
    ``__post_init__``, no field left out of ``__init__``, no slots)."""
    new = object.__new__(PartySnapshot)
    fields_of = new.__dict__
    fields_of.update(party.__dict__)
    fields_of["state"] = state
    fields_of["step"] = step
    fields_of["signatures"] = signatures
    fields_of["legal_force_from"] = legal_force_from
    return new


def _copies_are_replacements() -> bool:
    """Whether PartySnapshot is still the plain dataclass :func:`_copied` copies."""
    return (
        not hasattr(PartySnapshot, "__post_init__")
        and "__slots__" not in vars(PartySnapshot)
        and all(f.init for f in fields(PartySnapshot))
    )


_evolved = _copied if _copies_are_replacements() else _replaced
