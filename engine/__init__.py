"""ratify's engine: pure decisions in the core, persistence and use cases around them.

The public surface is small: the errors, the clock, the agreement loader and the use cases.
"""

from engine.agreement import Agreement, load_agreement
from engine.clock import Clock, FakeClock, FixedClock, SystemClock
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
from engine.evidence import Evidence

__all__ = [
    "Agreement",
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
    "load_agreement",
]
