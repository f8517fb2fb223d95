"""Workflow definitions: versioned data, checked when they load, before any machine is built.

A definition declares the **role** of each state and **how** each event happens; the engine
derives everything else from those declarations, never from a state's or an event's name:

| role          | a party there…                                 | reminded | the round          |
|---------------|------------------------------------------------|----------|--------------------|
| `preparing`   | prepares the item for its (next) body          | yes      |                    |
| `review`      | awaits the decision of its current body        | yes      |                    |
| `legal_force` | waits for its decision to become legally final | no       |                    |
| `on_hold`     | is held up (an appeal)                         | no       |                    |
| `signing`     | collects its signatures                        | yes      |                    |
| `done`        | has approved and signed: final                 | no       | all done: active   |
| `failed`      | has rejected the agreement: final              | no       | any failed: failed |

An event is recorded by ``hand`` or happens in ``time`` (applied by a tick once its date has come:
the legal-force date of a decision). Its evidence is declared (``requires``, ``optional``); a
``decision`` event's reference must be the current body's, dated on the round's current text.
What an event does to the party's facts follows from the roles of where it leaves and enters:
entering or leaving ``preparing`` starts the bodies afresh, ``review`` to ``review`` moves on to
the next body, entering ``legal_force`` dates the decision's finality, and an event in
``signing`` that takes a signatory adds a signature.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Literal, get_args

from engine.errors import WorkflowDefinitionError

__all__ = [
    "EVIDENCE",
    "GUARDS",
    "PENDING_ROLES",
    "BodyKind",
    "EventSpec",
    "KnownBody",
    "Role",
    "Timing",
    "TransitionSpec",
    "WorkflowDefinition",
    "body_forms",
    "names_body",
    "parse_definition",
]

BodyKind = Literal["board", "council", "official"]
Role = Literal["preparing", "review", "legal_force", "on_hold", "signing", "done", "failed"]
Timing = Literal["hand", "time"]
ROLES: tuple[Role, ...] = get_args(Role)
FINAL_ROLES: frozenset[Role] = frozenset({"done", "failed"})
# Where a step waits on the party itself: reminders run while it is in one of these.
PENDING_ROLES: frozenset[Role] = frozenset({"preparing", "review", "signing"})
# What an event may carry: a decision reference, a reason, a signatory and their title, and the
# party's diary number.
EVIDENCE = ("ref", "reason", "signatory", "title", "diary")

# The conditions a transition may name. Each is a question about the party, answered in machine.py.
GUARDS = frozenset(
    {"starts_with_board", "has_next_body", "awaits_legal_force", "completes_signatures"}
)


@dataclass(frozen=True)
class KnownBody:
    name: str
    kind: BodyKind
    appeal_days: int


@dataclass(frozen=True)
class TransitionSpec:
    event: str
    sources: tuple[str, ...]
    dest: (
        str | None
    )  # None: an internal transition (the state stays, e.g. one of several signatures)
    conditions: tuple[str, ...] = ()


@dataclass(frozen=True)
class EventSpec:
    name: str
    by: Timing
    requires: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    decision: bool = False  # its reference must be the current body's, on the current text

    def takes(self, key: str) -> bool:
        return key in self.requires or key in self.optional


@dataclass(frozen=True)
class WorkflowDefinition:
    name: str
    version: int
    description: str
    default_bodies: tuple[str, ...]
    await_legal_force: bool
    notice_days: int
    bodies: tuple[KnownBody, ...]
    initial: str
    roles: tuple[tuple[str, Role], ...]  # every state, in order, with its role
    event_specs: tuple[EventSpec, ...]
    transitions: tuple[TransitionSpec, ...]

    @property
    def key(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def states(self) -> tuple[str, ...]:
        return tuple(state for state, _ in self.roles)

    @property
    def final(self) -> tuple[str, ...]:
        return tuple(state for state, role in self.roles if role in FINAL_ROLES)

    @property
    def events(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.event_specs)

    @property
    def hand_events(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.event_specs if e.by == "hand")

    def role(self, state: str) -> Role:
        for name, role in self.roles:
            if name == state:
                return role
        raise KeyError(f"workflow {self.key} has no state {state!r}")

    def states_of(self, *roles: Role) -> tuple[str, ...]:
        return tuple(state for state, role in self.roles if role in roles)

    def event(self, name: str) -> EventSpec | None:
        return next((e for e in self.event_specs if e.name == name), None)

    def known_body(self, name: str) -> KnownBody | None:
        """The known body ``name`` is, in any case and (in Swedish) in its definite form too:
        "Stadsstyrelsen" is the known "Stadsstyrelse"."""
        folded = " ".join(name.split()).casefold()
        return next((b for b in self.bodies if folded in body_forms(b.name)), None)


def body_forms(name: str) -> tuple[str, ...]:
    """How a body's name may be written, case folded: as it is, and in a Swedish definite form
    (styrelse → styrelsen, fullmäktige stays; a suffix -n, -en or -et)."""
    folded = " ".join(name.split()).casefold()
    return (folded, folded + "n", folded + "en", folded + "et")


def names_body(written: str, name: str) -> bool:
    """Whether ``written`` (as a decision cites its body) names the body ``name``: one of its
    forms (:func:`body_forms`), perhaps after the organisation's name ("Raseborgs
    stadsstyrelsen")."""
    cited = " ".join(written.split()).casefold()
    return any(cited == form or cited.endswith(" " + form) for form in body_forms(name))


def _fail(where: str, problem: str) -> WorkflowDefinitionError:
    return WorkflowDefinitionError(f"workflow {where}: {problem}")


def _as_tuple(value: Any) -> tuple[str, ...]:
    return tuple(value) if isinstance(value, list) else (value,)


def parse_definition(data: dict[str, Any], where: str = "<data>") -> WorkflowDefinition:
    """Build a definition from its TOML data and check its structure (see :func:`check`)."""
    try:
        process = data["process"]
        states = process["states"]
        events = process["events"]
        if not isinstance(states, dict) or not isinstance(events, dict):
            raise _fail(where, "[process.states] and [process.events] must be tables")
        definition = WorkflowDefinition(
            name=data["name"],
            version=int(data["version"]),
            description=data.get("description", ""),
            default_bodies=tuple(data["default_bodies"]),
            await_legal_force=bool(data.get("await_legal_force", False)),
            notice_days=int(data.get("notice_days", 7)),
            bodies=tuple(
                KnownBody(b["name"], b["kind"], int(b["appeal_days"])) for b in data["bodies"]
            ),
            initial=process["initial"],
            roles=tuple((str(state), role) for state, role in states.items()),
            event_specs=tuple(
                EventSpec(
                    name=str(name),
                    by=spec["by"],
                    requires=tuple(spec.get("requires", ())),
                    optional=tuple(spec.get("optional", ())),
                    decision=bool(spec.get("decision", False)),
                )
                for name, spec in events.items()
            ),
            transitions=tuple(
                TransitionSpec(
                    event=t["event"],
                    sources=_as_tuple(t["source"]),
                    dest=t.get("dest"),
                    conditions=tuple(t.get("conditions", ())),
                )
                for t in process["transitions"]
            ),
        )
    except KeyError as missing:
        raise _fail(where, f"missing key {missing}") from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise _fail(where, f"malformed ({exc})") from None
    check(definition, where)
    return definition


def check(d: WorkflowDefinition, where: str) -> None:
    """The structural rules `transitions` does not check by itself."""
    states = set(d.states)
    for state, role in d.roles:
        if role not in ROLES:
            raise _fail(where, f"state {state!r} has role {role!r}; use one of {', '.join(ROLES)}")
    if d.initial not in states:
        raise _fail(where, f"initial state {d.initial!r} is not one of the states")
    if d.role(d.initial) != "preparing":
        raise _fail(where, f"initial state {d.initial!r} must have the role 'preparing'")
    if not d.states_of("done"):
        raise _fail(where, "no state has the role 'done': a party could never finish")
    for body in d.bodies:
        if body.kind not in get_args(BodyKind):
            kinds = ", ".join(get_args(BodyKind))
            raise _fail(where, f"body {body.name!r} has kind {body.kind!r}; use one of {kinds}")
    for name in d.default_bodies:
        if d.known_body(name) is None:
            raise _fail(where, f"default body {name!r} is not among its bodies")
    _check_events(d, where)
    edges: dict[str, set[str]] = {s: set() for s in states}
    for t in d.transitions:
        spec = d.event(t.event)
        if spec is None:
            raise _fail(where, f"{t.event!r} is not declared in [process.events]")
        for guard in t.conditions:
            if guard not in GUARDS:
                raise _fail(where, f"{t.event!r} names unknown condition {guard!r}")
        for source in t.sources:
            if source not in states:
                raise _fail(where, f"{t.event!r} leaves unknown state {source!r}")
            if t.dest is not None and t.dest not in states:
                raise _fail(where, f"{t.event!r} enters unknown state {t.dest!r}")
            if spec.by == "time" and d.role(source) != "legal_force":
                raise _fail(
                    where,
                    f"{t.event!r} happens in time, so it may only leave a 'legal_force' state, "
                    f"not {source!r}",
                )
            if "signatory" in spec.requires and d.role(source) != "signing":
                raise _fail(
                    where, f"{t.event!r} takes a signatory, so it must leave a 'signing' state"
                )
            edges[source].add(t.dest or source)
    for used in d.events:
        if not any(t.event == used for t in d.transitions):
            raise _fail(where, f"event {used!r} is declared but no transition uses it")
    for final in d.final:
        if edges[final]:
            raise _fail(where, f"final state {final!r} has exits: {sorted(edges[final])}")
    for waiting in d.states_of("legal_force"):
        if not any(
            waiting in t.sources and (spec := d.event(t.event)) and spec.by == "time"
            for t in d.transitions
        ):
            raise _fail(
                where, f"state {waiting!r} waits for legal force but no timed event leaves it"
            )
    reached = _reachable(edges, {d.initial})
    if unreached := states - reached:
        raise _fail(where, f"unreachable from {d.initial!r}: {sorted(unreached)}")
    reverse: dict[str, set[str]] = {s: set() for s in states}
    for source, dests in edges.items():
        for dest in dests:
            reverse[dest].add(source)
    if stuck := states - _reachable(reverse, set(d.final)):
        raise _fail(where, f"no final state can be reached from {sorted(stuck)}")


def _check_events(d: WorkflowDefinition, where: str) -> None:
    for spec in d.event_specs:
        if spec.by not in get_args(Timing):
            raise _fail(where, f"event {spec.name!r} is by {spec.by!r}; use 'hand' or 'time'")
        for key in (*spec.requires, *spec.optional):
            if key not in EVIDENCE:
                raise _fail(
                    where, f"event {spec.name!r} names evidence {key!r}; use {', '.join(EVIDENCE)}"
                )
        if both := sorted(set(spec.requires) & set(spec.optional)):
            raise _fail(where, f"event {spec.name!r} both requires and accepts {both}")
        if spec.by == "time" and (spec.requires or spec.optional):
            raise _fail(where, f"event {spec.name!r} happens in time and can carry no evidence")
        if spec.decision and not spec.takes("ref"):
            raise _fail(where, f"event {spec.name!r} is a decision, so it must take 'ref'")
        if ("signatory" in spec.requires) != ("title" in spec.requires):
            raise _fail(where, f"event {spec.name!r}: a signatory and a title go together")


def _reachable(edges: dict[str, set[str]], start: set[str]) -> set[str]:
    seen, todo = set(start), deque(start)
    while todo:
        for nxt in edges[todo.popleft()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen
