"""One `transitions` machine per workflow version, applied to a party's state on demand.

The machine never holds a party: it has one model, a token that takes a party's state and facts
for the time of one decision (under a lock), fires the trigger and gives the new state back. So
no SQLModel row ever gets trigger attributes, and the machine never grows with the number of
parties (``add_model`` is linear in the number of models).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workflows.definition import BodyKind, Role, WorkflowDefinition

if TYPE_CHECKING:
    from transitions import Machine

__all__ = ["Body", "PartyFacts", "ProcessMachine"]


@dataclass(frozen=True)
class Body:
    """An approving body of one party, in the order it decides."""

    name: str
    kind: BodyKind
    appeal_days: int


@dataclass(frozen=True)
class PartyFacts:
    """What the guards of a workflow ask about a party when one of its events is decided."""

    bodies: tuple[Body, ...]
    step: int  # index into bodies of the body now reviewing (or next to review)
    await_legal_force: bool
    signatures_required: int
    signatures: int  # collected so far, before the event being decided


class _Token:
    """The stand-in model: the party's facts, the guards, and the state `transitions` moves."""

    state: str
    facts: PartyFacts

    def __init__(self, facts: PartyFacts | None) -> None:
        self.facts = facts  # type: ignore[assignment]

    def starts_with_board(self) -> bool:
        return self.facts.bodies[0].kind == "board"

    def has_next_body(self) -> bool:
        return self.facts.step + 1 < len(self.facts.bodies)

    def awaits_legal_force(self) -> bool:
        return self.facts.await_legal_force

    def completes_signatures(self) -> bool:
        return self.facts.signatures + 1 >= self.facts.signatures_required


class ProcessMachine:
    def __init__(self, definition: WorkflowDefinition) -> None:
        self.definition = definition
        self._lock = threading.Lock()
        # Built at the first decision: what a state allows and its role are the (checked)
        # definition's, and reading them (a status, a page) needs no `transitions` machine.
        self._made: Machine | None = None
        # The machine's only model: set to a party's state and facts for each decision, under
        # the lock. (Adding and removing a model per decision costs more than the decision.)
        self._token = _Token(None)
        self._allowed = {
            state: sorted({t.event for t in definition.transitions if state in t.sources})
            for state in definition.states
        }
        self._roles = dict(definition.roles)

    @property
    def _machine(self) -> Machine:
        """The `transitions` machine, built the first time it is needed (a decision is made
        under the lock)."""
        if self._made is None:
            from transitions import Machine

            machine = Machine(
                model=None,
                states=list(self.definition.states),
                initial=self.definition.initial,
                transitions=[
                    _transition(t) for spec in self.definition.transitions for t in _expand(spec)
                ],
                auto_transitions=False,
                ignore_invalid_triggers=False,
            )
            machine.add_model(self._token, initial=self.definition.initial)
            self._made = machine
        return self._made

    def by_hand(self, state: str) -> list[str]:
        """The events a person may record from ``state`` (the timed ones are applied by a tick)."""
        manual = set(self.definition.hand_events)
        return [e for e in self.allowed(state) if e in manual]

    def role(self, state: str) -> Role:
        return self._roles[state]

    def allowed(self, state: str) -> list[str]:
        """The events the workflow has from ``state`` (before any guard is asked)."""
        return list(self._allowed.get(state, ()))

    def fire(self, state: str, event: str, facts: PartyFacts) -> str | None:
        """The state ``event`` leads to from ``state``; None when the workflow has no such move."""
        if event not in self._allowed.get(state, ()):
            return None
        from transitions import MachineError

        with self._lock:
            machine = self._machine
            token = self._token
            token.facts = facts
            machine.set_state(state, model=token)
            try:
                moved = token.trigger(event)  # type: ignore[attr-defined]
            except MachineError:
                moved = False
            return token.state if moved else None

    def mermaid(self) -> str:
        """The workflow as a Mermaid state diagram, drawn by `transitions`' diagram support."""
        from transitions.extensions import GraphMachine

        graph = GraphMachine(
            states=list(self.definition.states),
            initial=self.definition.initial,
            transitions=[_transition(t) for s in self.definition.transitions for t in _expand(s)],
            auto_transitions=False,
            graph_engine="mermaid",
            show_conditions=True,
            title=f"{self.definition.name} v{self.definition.version}",
        )
        text: str = graph.get_graph().draw(None)
        # Drop the styling that marks a "current" state: a definition has none.
        lines = [
            ln for ln in text.splitlines() if not ln.lstrip().startswith(("classDef", "Class "))
        ]
        return "\n".join(lines)


def _expand(spec: Any) -> list[Any]:
    return [(spec, source) for source in spec.sources]


def _transition(pair: Any) -> dict[str, Any]:
    spec, source = pair
    return {
        "trigger": spec.event,
        "source": source,
        "dest": spec.dest,
        "conditions": list(spec.conditions),
    }
