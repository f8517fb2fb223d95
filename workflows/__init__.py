"""Declarative, versioned party workflows and the `transitions` machines built from them."""

from workflows.definition import (
    GUARDS,
    KnownBody,
    TransitionSpec,
    WorkflowDefinition,
    available_workflows,
    load_definition,
    parse_definition,
)
from workflows.machine import Body, PartyFacts, ProcessMachine, machine_for

__all__ = [
    "GUARDS",
    "Body",
    "KnownBody",
    "PartyFacts",
    "ProcessMachine",
    "TransitionSpec",
    "WorkflowDefinition",
    "available_workflows",
    "load_definition",
    "machine_for",
    "parse_definition",
]
