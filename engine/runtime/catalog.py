"""The workflows a round can run, as the interfaces show them."""

from __future__ import annotations

from workflows import ProcessMachine, WorkflowDefinition, default_catalog

__all__ = ["workflow", "workflows"]


def workflows() -> list[WorkflowDefinition]:
    """The latest version of every workflow ratify knows."""
    return default_catalog().available()


def workflow(name: str, version: int | None = None) -> tuple[WorkflowDefinition, ProcessMachine]:
    """One workflow (the latest version by default) and its machine."""
    definition = default_catalog().load(name, version)
    return definition, default_catalog().machine(definition.name, definition.version)
