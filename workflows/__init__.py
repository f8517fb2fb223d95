"""Declarative, versioned party workflows and the `transitions` machines built from them."""

from workflows.catalog import (
    Catalog,
    available_workflows,
    default_catalog,
    load_definition,
    machine_for,
)
from workflows.definition import (
    EVIDENCE,
    GUARDS,
    PENDING_ROLES,
    BodyKind,
    EventSpec,
    KnownBody,
    Role,
    TransitionSpec,
    WorkflowDefinition,
    parse_definition,
)
from workflows.machine import Body, PartyFacts, ProcessMachine

__all__ = [
    "EVIDENCE",
    "GUARDS",
    "PENDING_ROLES",
    "Body",
    "BodyKind",
    "Catalog",
    "EventSpec",
    "KnownBody",
    "PartyFacts",
    "ProcessMachine",
    "Role",
    "TransitionSpec",
    "WorkflowDefinition",
    "available_workflows",
    "default_catalog",
    "load_definition",
    "machine_for",
    "parse_definition",
]
