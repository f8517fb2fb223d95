"""The one exception tree of ratify, and how its messages name options and commands.

Every error a user can cause is a :class:`RatifyError`. Its ``exit_code`` is what the CLI returns:
1 when the rules refused something (or a verification failed), 2 when the input was invalid.

The core does not know which interface it serves, so a message names an input or an action with a
marker: ``{opt.ref}`` (the decision reference), ``{cmd.tick}`` (applying timed transitions). Each
interface words them with its own :class:`Words` (the CLI: ``--ref``, ```ratify tick```); ``str()``
of an error uses :data:`PLAIN` words. Only these markers are replaced: other braces stay as written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "PLAIN",
    "AccessDenied",
    "AgreementFileError",
    "ConcurrentUpdate",
    "InvalidInput",
    "NotFound",
    "RatifyError",
    "Refused",
    "RoundClosed",
    "TransitionRefused",
    "VerificationFailed",
    "Words",
    "WorkflowDefinitionError",
]

_MARKER = re.compile(r"\{(opt|cmd)\.([a-z][a-z0-9_-]*)\}")


@dataclass(frozen=True)
class Words:
    """How an interface names inputs (``opt``) and actions (``cmd``); unknown ones stay plain."""

    options: Mapping[str, str] = field(default_factory=dict)
    commands: Mapping[str, str] = field(default_factory=dict)

    def option(self, name: str) -> str:
        return self.options.get(name, name.replace("_", " "))

    def command(self, name: str) -> str:
        return self.commands.get(name, name.replace("_", " ").replace("-", " "))

    def __call__(self, template: str) -> str:
        def one(match: re.Match[str]) -> str:
            kind, name = match.groups()
            return self.option(name) if kind == "opt" else self.command(name)

        return _MARKER.sub(one, template)


# Interface-neutral words: what str() of an error says, and what the API returns.
PLAIN = Words(
    options={"at": "the time given", "by": "the actor"},
    commands={"tick": "a tick", "init": "the schema upgrade (init)"},
)


class RatifyError(Exception):
    """Root of every error ratify raises on purpose. ``template`` may hold markers (see above);
    ``details`` carries the structured facts an interface may show beside the words."""

    exit_code = 1

    def __init__(self, template: str = "", **details: Any) -> None:
        self.template = template
        self.details = details
        super().__init__(PLAIN(template))

    def worded(self, words: Words) -> str:
        """The message with this interface's names for options and commands."""
        return words(self.template)


class InvalidInput(RatifyError):
    """The input could not be understood: a bad file, a missing option, a malformed reference.
    ``field``: the input concerned, when there is one (``ref``, ``at``, ``agreement.id``…)."""

    exit_code = 2

    def __init__(self, template: str = "", *, field: str | None = None, **details: Any) -> None:
        self.field = field
        super().__init__(template, **details)


class AgreementFileError(InvalidInput):
    """An agreement file is invalid. ``problems`` lists every problem found, one line each, and
    ``keys`` the key each concerns (``agreement.id``, ``parties[1].contacts[0].email``…)."""

    def __init__(self, path: str, problems: list[str], keys: list[str] | None = None) -> None:
        self.path = path
        self.problems = problems
        self.keys = keys if keys is not None else [p.split(":", 1)[0] for p in problems]
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{path}: invalid agreement file\n{lines}")

    def worded(self, words: Words) -> str:
        return str(self)  # names keys of the file, never options


class WorkflowDefinitionError(InvalidInput):
    """A workflow definition breaks a structural rule (unreachable state, final with exits…)."""


class NotFound(InvalidInput):
    """A round, party, workflow or message that was asked for does not exist."""


class Refused(RatifyError):
    """The rules refuse the request. Nothing was written."""

    exit_code = 1


class TransitionRefused(Refused):
    """An event is not allowed for a party in its current state, or its evidence breaks a rule.
    It carries the party, its state, the event and the events allowed now."""

    def __init__(
        self,
        message: str,
        *,
        party: str,
        state: str,
        allowed: list[str],
        event: str = "",
        field: str | None = None,
    ) -> None:
        self.party = party
        self.state = state
        self.allowed = allowed
        self.event = event
        self.field = field  # the evidence the refusal is about (ref, signatory), when one is
        super().__init__(message, party=party, state=state, allowed=allowed, event=event)


class RoundClosed(Refused):
    """The round is active, failed or cancelled: nothing more can be recorded on it."""


class ConcurrentUpdate(Refused):
    """Another writer changed the same row first; the caller may decide again from the new state."""


class AccessDenied(RatifyError):
    """Who is asking may not: a wrong password, an unknown, expired or revoked link or session,
    or a role or party that does not reach what was asked. ``reason`` says which, for the page."""

    exit_code = 3

    def __init__(self, template: str = "", *, reason: str = "denied", **details: Any) -> None:
        self.reason = reason
        super().__init__(template, reason=reason, **details)


class VerificationFailed(RatifyError):
    """The audit log does not verify. ``message`` names the first bad entry."""

    exit_code = 1
