"""Workflow definitions: versioned data files, loaded and checked before any machine is built."""

from __future__ import annotations

import tomllib
from collections import deque
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal

from engine.errors import NotFound, WorkflowDefinitionError

__all__ = [
    "GUARDS",
    "BodyKind",
    "KnownBody",
    "TransitionSpec",
    "WorkflowDefinition",
    "available_workflows",
    "load_definition",
    "parse_definition",
]

BodyKind = Literal["board", "council"]

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
class WorkflowDefinition:
    name: str
    version: int
    description: str
    default_bodies: tuple[str, ...]
    await_legal_force: bool
    notice_days: int
    bodies: tuple[KnownBody, ...]
    initial: str
    final: tuple[str, ...]
    states: tuple[str, ...]
    transitions: tuple[TransitionSpec, ...]

    @property
    def key(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def events(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t.event for t in self.transitions))

    def known_body(self, name: str) -> KnownBody | None:
        folded = name.casefold()
        return next((b for b in self.bodies if b.name.casefold() == folded), None)


def _fail(where: str, problem: str) -> WorkflowDefinitionError:
    return WorkflowDefinitionError(f"workflow {where}: {problem}")


def _as_tuple(value: Any) -> tuple[str, ...]:
    return tuple(value) if isinstance(value, list) else (value,)


def parse_definition(data: dict[str, Any], where: str = "<data>") -> WorkflowDefinition:
    """Build a definition from its TOML data and check its structure (see :func:`check`)."""
    try:
        process = data["process"]
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
            final=tuple(process["final"]),
            states=tuple(process["states"]),
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
    check(definition, where)
    return definition


def check(d: WorkflowDefinition, where: str) -> None:
    """The structural rules `transitions` does not check by itself."""
    states = set(d.states)
    if len(states) != len(d.states):
        raise _fail(where, "a state is listed twice")
    if d.initial not in states:
        raise _fail(where, f"initial state {d.initial!r} is not one of the states")
    for body in d.bodies:
        if body.kind not in ("board", "council"):
            raise _fail(where, f"body {body.name!r} has kind {body.kind!r}; use board or council")
    for name in d.default_bodies:
        if d.known_body(name) is None:
            raise _fail(where, f"default body {name!r} is not among its bodies")
    edges: dict[str, set[str]] = {s: set() for s in states}
    for t in d.transitions:
        for guard in t.conditions:
            if guard not in GUARDS:
                raise _fail(where, f"{t.event!r} names unknown condition {guard!r}")
        for source in t.sources:
            if source not in states:
                raise _fail(where, f"{t.event!r} leaves unknown state {source!r}")
            if t.dest is not None and t.dest not in states:
                raise _fail(where, f"{t.event!r} enters unknown state {t.dest!r}")
            edges[source].add(t.dest or source)
    for final in d.final:
        if final not in states:
            raise _fail(where, f"final state {final!r} is not one of the states")
        if edges[final]:
            raise _fail(where, f"final state {final!r} has exits: {sorted(edges[final])}")
    reached = _reachable(edges, {d.initial})
    if unreached := states - reached:
        raise _fail(where, f"unreachable from {d.initial!r}: {sorted(unreached)}")
    reverse: dict[str, set[str]] = {s: set() for s in states}
    for source, dests in edges.items():
        for dest in dests:
            reverse[dest].add(source)
    if stuck := states - _reachable(reverse, set(d.final)):
        raise _fail(where, f"no final state can be reached from {sorted(stuck)}")


def _reachable(edges: dict[str, set[str]], start: set[str]) -> set[str]:
    seen, todo = set(start), deque(start)
    while todo:
        for nxt in edges[todo.popleft()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


@cache
def _catalog() -> dict[str, dict[int, WorkflowDefinition]]:
    catalog: dict[str, dict[int, WorkflowDefinition]] = {}
    folder = resources.files("workflows") / "definitions"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".toml"):
            continue
        definition = parse_definition(tomllib.loads(entry.read_text("utf-8")), entry.name)
        expected = f"{definition.name}.v{definition.version}.toml"
        if entry.name != expected:
            raise _fail(entry.name, f"file must be named {expected}")
        catalog.setdefault(definition.name, {})[definition.version] = definition
    return catalog


def available_workflows() -> list[WorkflowDefinition]:
    """The latest version of every workflow, by name."""
    return [versions[max(versions)] for _, versions in sorted(_catalog().items())]


def load_definition(name: str, version: int | None = None) -> WorkflowDefinition:
    """A workflow by name: the given version, or the latest one."""
    versions = _catalog().get(name)
    if not versions:
        known = ", ".join(sorted(_catalog()))
        raise NotFound(f"unknown workflow {name!r}; known workflows: {known}")
    if version is None:
        return versions[max(versions)]
    if version not in versions:
        raise NotFound(f"workflow {name!r} has no version {version}; it has {sorted(versions)}")
    return versions[version]
