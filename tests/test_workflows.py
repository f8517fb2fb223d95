"""Workflow definitions: the shipped ones, the structural rules, the machines and the CLI."""

from __future__ import annotations

import copy
import json
import tomllib
from collections.abc import Callable
from importlib import resources
from typing import Any

import pytest
from typer.testing import CliRunner

from engine.errors import WorkflowDefinitionError
from engine.interfaces.cli import app
from workflows import (
    Body,
    PartyFacts,
    WorkflowDefinition,
    available_workflows,
    load_definition,
    machine_for,
    parse_definition,
)

SHIPPED = [d.name for d in available_workflows()]
DEFAULT_BODIES = {
    "municipality": "Kunnanhallitus",
    "regional-council": "Maakuntahallitus",
    "wellbeing-county": "Aluehallitus",
}


def _municipality_data() -> dict[str, Any]:
    source = resources.files("workflows") / "definitions" / "municipality.v1.toml"
    return tomllib.loads(source.read_text("utf-8"))


def _bodies_of(definition: WorkflowDefinition) -> tuple[Body, Body]:
    board = next(b for b in definition.bodies if b.kind == "board")
    council = next(b for b in definition.bodies if b.kind == "council")
    return (
        Body(board.name, "board", board.appeal_days),
        Body(council.name, "council", council.appeal_days),
    )


def _facts(
    bodies: tuple[Body, ...],
    *,
    step: int = 0,
    await_legal_force: bool = True,
    signatures_required: int = 1,
    signatures: int = 0,
) -> PartyFacts:
    return PartyFacts(
        bodies=bodies,
        step=step,
        await_legal_force=await_legal_force,
        signatures_required=signatures_required,
        signatures=signatures,
    )


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


# --- the shipped workflows -------------------------------------------------------------------


def test_the_three_workflows_ship() -> None:
    assert SHIPPED == ["municipality", "regional-council", "wellbeing-county"]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_workflow_loads_with_the_common_shape(name: str) -> None:
    d = load_definition(name)
    assert d.key == f"{name}@{d.version}"
    assert load_definition(name, d.version) is d
    assert d.initial == "draft"
    assert set(d.final) == {"signed", "rejected"}
    assert d.default_bodies == (DEFAULT_BODIES[name],)
    assert d.await_legal_force is True
    assert d.notice_days == 7
    kinds = {b.name: (b.kind, b.appeal_days) for b in d.bodies}
    assert kinds[DEFAULT_BODIES[name]] == ("board", 14)
    assert ("council", 30) in kinds.values()
    assert set(d.events) == {
        "submit",
        "approve",
        "return",
        "reject",
        "appeal",
        "appeal-resolved",
        "legal-force",
        "sign",
    }
    # The data the definition came from still passes the checks when parsed again.
    folder = resources.files("workflows") / "definitions"
    data = tomllib.loads((folder / f"{name}.v{d.version}.toml").read_text("utf-8"))
    assert parse_definition(data, name) == d


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_machine_decides_every_move(name: str) -> None:
    d = load_definition(name)
    machine = machine_for(d.name, d.version)
    board, council = _bodies_of(d)
    two = (board, council)

    # submit: to the first body's review
    assert machine.fire("draft", "submit", _facts((board,))) == "board_review"
    assert machine.fire("draft", "submit", _facts(two)) == "board_review"
    assert machine.fire("draft", "submit", _facts((council,))) == "council_review"

    # approve: on to the next body, then legal force or signature after the last one
    assert machine.fire("board_review", "approve", _facts(two, step=0)) == "council_review"
    assert machine.fire(
        "board_review", "approve", _facts(two, step=0, await_legal_force=False)
    ) == ("council_review")
    assert machine.fire("council_review", "approve", _facts(two, step=1)) == "legal_force_wait"
    assert machine.fire(
        "council_review", "approve", _facts(two, step=1, await_legal_force=False)
    ) == ("awaiting_signature")
    assert machine.fire("board_review", "approve", _facts((board,))) == "legal_force_wait"
    assert machine.fire("board_review", "approve", _facts((board,), await_legal_force=False)) == (
        "awaiting_signature"
    )
    assert machine.fire("council_review", "approve", _facts((council,))) == "legal_force_wait"

    # return, reject, appeal, legal force
    for review in ("board_review", "council_review"):
        assert machine.fire(review, "return", _facts(two)) == "draft"
        assert machine.fire(review, "reject", _facts(two)) == "rejected"
    assert machine.fire("legal_force_wait", "appeal", _facts(two)) == "appeal_pending"
    assert machine.fire("appeal_pending", "appeal-resolved", _facts(two)) == "awaiting_signature"
    assert machine.fire("appeal_pending", "return", _facts(two)) == "draft"
    assert machine.fire("legal_force_wait", "legal-force", _facts(two)) == "awaiting_signature"

    # sign: stays until the required number is reached
    assert machine.fire("awaiting_signature", "sign", _facts(two)) == "signed"
    for have in (0, 1):
        facts = _facts(two, signatures_required=3, signatures=have)
        assert machine.fire("awaiting_signature", "sign", facts) == "awaiting_signature"
    assert machine.fire(
        "awaiting_signature", "sign", _facts(two, signatures_required=3, signatures=2)
    ) == ("signed")


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_machine_has_no_other_moves(name: str) -> None:
    d = load_definition(name)
    machine = machine_for(d.name, d.version)
    board, council = _bodies_of(d)
    facts = _facts((board, council))
    assert machine.allowed("draft") == ["submit"]
    assert machine.allowed("awaiting_signature") == ["sign"]
    assert machine.allowed("signed") == []
    assert machine.allowed("rejected") == []
    assert machine.fire("draft", "approve", facts) is None
    assert machine.fire("draft", "sign", facts) is None
    assert machine.fire("board_review", "sign", facts) is None
    assert machine.fire("legal_force_wait", "sign", facts) is None
    assert machine.fire("awaiting_signature", "approve", facts) is None
    assert machine.fire("signed", "sign", facts) is None
    assert machine.fire("rejected", "submit", facts) is None
    assert machine.fire("draft", "no-such-event", facts) is None


@pytest.mark.parametrize("name", SHIPPED)
def test_machine_is_built_once_per_version_and_keeps_one_model(name: str) -> None:
    d = load_definition(name)
    machine = machine_for(d.name, d.version)
    assert machine_for(d.name, d.version) is machine
    assert machine.definition is d
    board, council = _bodies_of(d)
    assert machine.fire("draft", "submit", _facts((board, council))) == "board_review"
    assert list(machine._machine.models) == [machine._token]
    assert machine.fire("awaiting_signature", "sign", _facts((board,), signatures_required=2)) == (
        "awaiting_signature"
    )
    assert list(machine._machine.models) == [machine._token]
    assert machine.fire("draft", "approve", _facts((board,))) is None
    assert list(machine._machine.models) == [machine._token]


# --- the structural rules --------------------------------------------------------------------


def _add_transition(**transition: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        data["process"]["transitions"].append(transition)

    return change


def _add_state(
    state: str, role: str = "review", **transition: Any
) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        data["process"]["states"][state] = role
        if transition:
            if transition["event"] not in data["process"]["events"]:
                data["process"]["events"][transition["event"]] = {"by": "hand"}
            data["process"]["transitions"].append(transition)

    return change


def _add_event(name: str, **spec: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        data["process"]["events"][name] = spec

    return change


def _set_role(state: str, role: str) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        data["process"]["states"][state] = role

    return change


def _set_initial(data: dict[str, Any]) -> None:
    data["process"]["initial"] = "start"


def _unknown_condition(data: dict[str, Any]) -> None:
    data["process"]["transitions"][0]["conditions"] = ["is_friday"]


def _unknown_default_body(data: dict[str, Any]) -> None:
    data["default_bodies"] = ["Seurakuntaneuvosto"]


def _bad_body_kind(data: dict[str, Any]) -> None:
    data["bodies"][0]["kind"] = "committee"


def _missing_process(data: dict[str, Any]) -> None:
    del data["process"]


BROKEN = [
    pytest.param(
        _add_transition(event="submit", source="signed", dest="draft"),
        "final state 'signed' has exits",
        id="final-state-with-exit",
    ),
    pytest.param(
        _add_transition(event="return", source="rejected"),
        "final state 'rejected' has exits",
        id="final-state-with-internal-exit",
    ),
    pytest.param(
        _add_transition(event="reopen", source="signed", dest="draft"),
        "'reopen' is not declared in [process.events]",
        id="undeclared-event",
    ),
    pytest.param(
        _add_event("vote", by="hand"),
        "event 'vote' is declared but no transition uses it",
        id="declared-event-unused",
    ),
    pytest.param(
        _add_event("vote", by="mail"),
        "event 'vote' is by 'mail'; use 'hand' or 'time'",
        id="event-timing-unknown",
    ),
    pytest.param(
        _add_event("vote", by="hand", requires=["quorum"]),
        "event 'vote' names evidence 'quorum'",
        id="evidence-unknown",
    ),
    pytest.param(
        _add_event("approve", by="hand", decision=True, requires=["reason"]),
        "event 'approve' is a decision, so it must take 'ref'",
        id="decision-without-ref",
    ),
    pytest.param(
        _set_role("board_review", "voting"),
        "state 'board_review' has role 'voting'",
        id="role-unknown",
    ),
    pytest.param(
        _set_role("draft", "review"),
        "initial state 'draft' must have the role 'preparing'",
        id="initial-not-preparing",
    ),
    pytest.param(
        _set_role("signed", "failed"),
        "no state has the role 'done'",
        id="nothing-done",
    ),
    pytest.param(
        _add_transition(event="legal-force", source="awaiting_signature", dest="signed"),
        "'legal-force' happens in time, so it may only leave a 'legal_force' state",
        id="timed-event-elsewhere",
    ),
    pytest.param(
        _set_role("appeal_pending", "legal_force"),
        "state 'appeal_pending' waits for legal force but no timed event leaves it",
        id="legal-force-without-timer",
    ),
    pytest.param(
        _add_state("limbo", event="leave", source="limbo", dest="signed"),
        "unreachable from 'draft': ['limbo']",
        id="unreachable-state",
    ),
    pytest.param(
        _add_state("stuck", event="park", source="awaiting_signature", dest="stuck"),
        "no final state can be reached from ['stuck']",
        id="dead-end-state",
    ),
    pytest.param(
        _set_initial,
        "initial state 'start' is not one of the states",
        id="initial-not-a-state",
    ),
    pytest.param(
        _add_transition(event="sign", source="awaiting_signature", dest="archive"),
        "'sign' enters unknown state 'archive'",
        id="transition-to-unknown-state",
    ),
    pytest.param(
        _add_transition(event="submit", source="asleep", dest="draft"),
        "'submit' leaves unknown state 'asleep'",
        id="transition-from-unknown-state",
    ),
    pytest.param(
        _unknown_condition,
        "unknown condition 'is_friday'",
        id="unknown-condition",
    ),
    pytest.param(
        _unknown_default_body,
        "default body 'Seurakuntaneuvosto' is not among its bodies",
        id="default-body-unknown",
    ),
    pytest.param(_bad_body_kind, "has kind 'committee'", id="bad-body-kind"),
    pytest.param(_missing_process, "missing key 'process'", id="missing-process"),
]


def test_unmodified_municipality_data_parses() -> None:
    assert parse_definition(_municipality_data(), "copy") == load_definition("municipality", 1)


@pytest.mark.parametrize(("change", "message"), BROKEN)
def test_broken_definition_is_refused(
    change: Callable[[dict[str, Any]], None], message: str
) -> None:
    data = copy.deepcopy(_municipality_data())
    change(data)
    assert data != _municipality_data()
    with pytest.raises(WorkflowDefinitionError) as caught:
        parse_definition(data, "broken.v1.toml")
    assert message in str(caught.value)
    assert "broken.v1.toml" in str(caught.value)
    assert caught.value.exit_code == 2


# --- the command line ------------------------------------------------------------------------


def test_workflows_list_json() -> None:
    code, stdout, stderr = _run("workflows", "list", "--json")
    assert code == 0, stderr
    listed = json.loads(stdout)
    assert [w["name"] for w in listed] == ["municipality", "regional-council", "wellbeing-county"]
    assert {w["name"]: w["default_bodies"] for w in listed} == {
        name: [body] for name, body in DEFAULT_BODIES.items()
    }
    assert all(w["version"] == 1 for w in listed)
    municipality = listed[0]
    assert municipality["await_legal_force"] is True
    assert {"name": "Kaupunginvaltuusto", "kind": "council", "appeal_days": 30} in municipality[
        "bodies"
    ]


def test_workflows_show_mermaid() -> None:
    code, stdout, stderr = _run("workflows", "show", "municipality", "--mermaid")
    assert code == 0, stderr
    assert "stateDiagram-v2" in stdout
    assert "draft --> board_review: submit" in stdout
    assert "draft --> council_review: submit" in stdout
    assert "awaiting_signature --> signed: sign" in stdout


def test_workflows_show_text() -> None:
    code, stdout, stderr = _run("workflows", "show", "wellbeing-county")
    assert code == 0, stderr
    assert "wellbeing-county" in stdout
    assert "Aluehallitus" in stdout
    for state in load_definition("wellbeing-county").states:
        assert state in stdout


def test_workflows_show_unknown_exits_2() -> None:
    code, stdout, stderr = _run("workflows", "show", "nope")
    assert code == 2
    assert stdout == ""
    assert "unknown workflow 'nope'" in stderr
    assert "municipality" in stderr


def test_workflows_show_unknown_version_exits_2() -> None:
    code, _, stderr = _run("workflows", "show", "municipality", "--version", "99")
    assert code == 2
    assert "no version 99" in stderr


@pytest.mark.parametrize("name", SHIPPED)
def test_what_a_state_allows_is_what_transitions_says_and_reading_it_builds_no_machine(
    name: str,
) -> None:
    from workflows.machine import ProcessMachine

    d = load_definition(name)
    machine = ProcessMachine(d)
    for state in d.states:
        machine.allowed(state)
        machine.role(state)
    assert machine._made is None  # a status or a page needs no `transitions` machine
    built = machine._machine
    for state in d.states:
        assert machine.allowed(state) == sorted(built.get_triggers(state)), state
