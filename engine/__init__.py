"""ratify's engine: pure decisions in the core, persistence and use cases around them.

Importing ``engine`` stays light (the CLI's ``--help`` depends on it): the errors, the clock and
the evidence here; the agreement loader in ``engine.agreement``; the use cases in
``engine.runtime``.
"""

from engine.clock import Clock, FakeClock, FixedClock, SystemClock
from engine.core.evidence import Evidence
from engine.errors import (
    AgreementFileError,
    ConcurrentUpdate,
    InvalidInput,
    NotFound,
    RatifyError,
    Refused,
    RoundClosed,
    TransitionRefused,
    VerificationFailed,
    WorkflowDefinitionError,
)

__all__ = [
    "AgreementFileError",
    "Clock",
    "ConcurrentUpdate",
    "Evidence",
    "FakeClock",
    "FixedClock",
    "InvalidInput",
    "NotFound",
    "RatifyError",
    "Refused",
    "RoundClosed",
    "SystemClock",
    "TransitionRefused",
    "VerificationFailed",
    "WorkflowDefinitionError",
]
