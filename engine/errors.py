"""The one exception tree of ratify.

Every error a user can cause is a :class:`RatifyError`. Its ``exit_code`` is what the CLI returns:
1 when the rules refused something (or a verification failed), 2 when the input was invalid.
"""

from __future__ import annotations

__all__ = [
    "AgreementFileError",
    "ConcurrentUpdate",
    "InvalidInput",
    "NotFound",
    "RatifyError",
    "Refused",
    "RoundClosed",
    "TransitionRefused",
    "VerificationFailed",
    "WorkflowDefinitionError",
]


class RatifyError(Exception):
    """Root of every error ratify raises on purpose."""

    exit_code = 1


class InvalidInput(RatifyError):
    """The input could not be understood: a bad file, a missing option, a malformed reference."""

    exit_code = 2


class AgreementFileError(InvalidInput):
    """An agreement file is invalid. ``problems`` lists every problem found, one line each."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{path}: invalid agreement file\n{lines}")


class WorkflowDefinitionError(InvalidInput):
    """A workflow definition breaks a structural rule (unreachable state, final with exits…)."""


class NotFound(InvalidInput):
    """A round, party or workflow named on the command line does not exist."""


class Refused(RatifyError):
    """The rules refuse the request. Nothing was written."""

    exit_code = 1


class TransitionRefused(Refused):
    """An event is not allowed for a party in its current state, or its evidence breaks a rule."""

    def __init__(self, message: str, *, party: str, state: str, allowed: list[str]) -> None:
        self.party = party
        self.state = state
        self.allowed = allowed
        super().__init__(message)


class RoundClosed(Refused):
    """The round is active, failed or cancelled: nothing more can be recorded on it."""


class ConcurrentUpdate(Refused):
    """Another writer changed the same row first; the caller may decide again from the new state."""


class VerificationFailed(RatifyError):
    """The audit log does not verify. ``message`` names the first bad entry."""

    exit_code = 1
