"""The workflows ratify knows: the shipped definitions, and those of any folder named in
``RATIFY_WORKFLOWS`` (``os.pathsep``-separated). This is the only module of ``workflows`` that
reads files; each catalog is read once per process."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from engine.errors import NotFound, WorkflowDefinitionError
from workflows.definition import WorkflowDefinition, parse_definition
from workflows.machine import ProcessMachine

__all__ = [
    "Catalog",
    "available_workflows",
    "default_catalog",
    "load_definition",
    "machine_for",
]

MAX_DEFINITION_BYTES = 256 * 1024


@dataclass
class Catalog:
    """Definitions by name and version, and one machine per definition, built when first asked."""

    definitions: dict[str, dict[int, WorkflowDefinition]] = field(default_factory=dict)
    _machines: dict[str, ProcessMachine] = field(default_factory=dict, repr=False)

    @classmethod
    def read(cls, *folders: Traversable) -> Catalog:
        catalog = cls()
        for folder in folders:
            for entry in sorted(folder.iterdir(), key=lambda e: e.name):
                if entry.name.endswith(".toml") and entry.is_file():
                    catalog.add(_parse(entry))
        return catalog

    def add(self, definition: WorkflowDefinition) -> None:
        versions = self.definitions.setdefault(definition.name, {})
        if definition.version in versions and versions[definition.version] != definition:
            raise WorkflowDefinitionError(
                f"workflow {definition.key} is defined twice, differently; give the new one "
                "another version"
            )
        versions[definition.version] = definition

    def available(self) -> list[WorkflowDefinition]:
        """The latest version of every workflow, by name."""
        return [v[max(v)] for _, v in sorted(self.definitions.items())]

    def load(self, name: str, version: int | None = None) -> WorkflowDefinition:
        """A workflow by name: the given version, or the latest one."""
        versions = self.definitions.get(name)
        if not versions:
            known = ", ".join(sorted(self.definitions))
            raise NotFound(
                f"unknown workflow {name!r}; known workflows: {known} (a workflow of your own: "
                "put its NAME.vN.toml in a folder named by RATIFY_WORKFLOWS)"
            )
        if version is None:
            return versions[max(versions)]
        if version not in versions:
            raise NotFound(f"workflow {name!r} has no version {version}; it has {sorted(versions)}")
        return versions[version]

    def machine(self, name: str, version: int) -> ProcessMachine:
        """The machine of one workflow version, built the first time it is asked for."""
        key = f"{name}@{version}"
        found = self._machines.get(key)
        if found is None:
            found = self._machines[key] = ProcessMachine(self.load(name, version))
        return found


def _parse(entry: Traversable) -> WorkflowDefinition:
    raw = entry.read_bytes()
    if len(raw) > MAX_DEFINITION_BYTES:
        raise WorkflowDefinitionError(
            f"workflow {entry.name}: larger than {MAX_DEFINITION_BYTES // 1024} KiB"
        )
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError) as exc:
        raise WorkflowDefinitionError(f"workflow {entry.name}: not UTF-8 TOML ({exc})") from None
    definition = parse_definition(data, entry.name)
    expected = f"{definition.name}.v{definition.version}.toml"
    if entry.name != expected:
        raise WorkflowDefinitionError(f"workflow {entry.name}: file must be named {expected}")
    return definition


@cache
def _catalog(extra: tuple[str, ...]) -> Catalog:
    shipped: list[Traversable] = [resources.files("workflows") / "definitions"]
    for folder in extra:
        path = Path(folder)
        if not path.is_dir():
            raise WorkflowDefinitionError(
                f"RATIFY_WORKFLOWS names {folder!r}, which is not a folder; give a folder of "
                "workflow definitions (NAME.vN.toml)"
            )
        shipped.append(path)
    return Catalog.read(*shipped)


def default_catalog() -> Catalog:
    """The shipped workflows and those of the folders in ``RATIFY_WORKFLOWS``."""
    extra = os.environ.get("RATIFY_WORKFLOWS", "")
    return _catalog(tuple(p for p in extra.split(os.pathsep) if p.strip()))


def available_workflows() -> list[WorkflowDefinition]:
    return default_catalog().available()


def load_definition(name: str, version: int | None = None) -> WorkflowDefinition:
    return default_catalog().load(name, version)


def machine_for(name: str, version: int) -> ProcessMachine:
    return default_catalog().machine(name, version)
