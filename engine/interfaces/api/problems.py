"""Errors as problem details (RFC 9457, ``application/problem+json``).

Each carries the message the command line gives for the same error (with the API's names for
inputs: ``ref``, not ``--ref``) and its structured facts: the party, its state, the event and the
events allowed now for a refused transition; the key of each problem of a bad agreement file.
A refused transition is 409, invalid input 422, no valid token 401, a role or scope that does
not reach 403, an unknown round or party 404.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from engine.errors import (
    AccessDenied,
    AgreementFileError,
    InvalidInput,
    NotFound,
    RatifyError,
    Refused,
    TransitionRefused,
    Words,
)

__all__ = ["API_WORDS", "MEDIA_TYPE", "Problem", "problem_of", "problem_response"]

MEDIA_TYPE = "application/problem+json"
BASE = "https://ratify.example.invalid/problems/"  # names, not pages: RFC 9457 allows either

# How the API names what the core's messages mark as {opt.…} and {cmd.…}: the JSON fields.
API_WORDS = Words(
    options={
        name: f"`{name}`"
        for name in (
            "ref",
            "reason",
            "signatory",
            "title",
            "diary",
            "by",
            "state",
            "format",
            "language",
            "expect_head",
            "event",
        )
    }
    | {"at": "the time"},
    commands={
        "tick": "the worker's tick",
        "init": "`ratify init`",
        "outbox": "the outbox (`GET /api/v1/outbox`)",
        "cancel": "cancelling the round (`POST …/cancel`)",
        "audit_head": "the log's head (`GET …/head`)",
        "audit_verify": "verification (`GET …/verify`)",
    },
)


class Problem(BaseModel):
    """What went wrong. ``type`` names the kind of problem; ``detail`` is the message for a
    person; the other fields are there when they apply."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "type": BASE + "transition-refused",
                "title": "Refused",
                "status": 409,
                "detail": "hattula: 'sign' is not allowed in state 'board_review'; "
                "allowed now: approve, return, reject",
                "party": "hattula",
                "state": "board_review",
                "event": "sign",
                "allowed": ["approve", "return", "reject"],
            }
        }
    )

    type: str = Field(description="A URI naming the kind of problem.")
    title: str = Field(description="The kind of problem, in words.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="What went wrong, as the command line says it.")
    field: str | None = Field(None, description="The input concerned (`ref`, `once`, …).")
    party: str | None = Field(None, description="The party, for a refused transition.")
    state: str | None = Field(None, description="The party's state, for a refused transition.")
    event: str | None = Field(None, description="The event refused.")
    allowed: list[str] | None = Field(None, description="The events allowed now.")
    keys: list[str] | None = Field(
        None, description="For a bad agreement file: the key each problem concerns."
    )
    problems: list[str] | None = Field(
        None, description="For a bad agreement file: every problem, one line each."
    )
    errors: list[dict[str, Any]] | None = Field(
        None, description="For a malformed request: each input found wrong, by where it is."
    )
    reason: str | None = Field(None, description="For 401 and 403: why access was denied.")


def _kind(exc: RatifyError) -> tuple[int, str, str]:
    if isinstance(exc, AccessDenied):
        if exc.reason == "token":
            return 401, "unauthorized", "Unauthorized"
        return 403, "forbidden", "Forbidden"
    if isinstance(exc, NotFound):
        return 404, "not-found", "Not Found"
    if isinstance(exc, AgreementFileError):
        return 422, "invalid-agreement-file", "Invalid agreement file"
    if isinstance(exc, InvalidInput):
        return 422, "invalid-input", "Invalid input"
    if isinstance(exc, TransitionRefused):
        return 409, "transition-refused", "Refused"
    if isinstance(exc, Refused):
        return 409, "refused", "Refused"
    return 409, "failed", "Failed"  # a verification that failed, a log that does not hold


def problem_of(exc: RatifyError) -> Problem:
    status, name, title = _kind(exc)
    found: dict[str, Any] = {}
    if isinstance(exc, InvalidInput | TransitionRefused):
        found["field"] = exc.field
    if isinstance(exc, TransitionRefused):
        found |= {"party": exc.party, "state": exc.state, "event": exc.event or None}
        found["allowed"] = list(exc.allowed)
    if isinstance(exc, AgreementFileError):
        found |= {"keys": list(exc.keys), "problems": list(exc.problems)}
    if isinstance(exc, AccessDenied):
        found["reason"] = exc.reason
    return Problem(
        type=BASE + name, title=title, status=status, detail=exc.worded(API_WORDS), **found
    )


def problem_response(problem: Problem, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        problem.model_dump(exclude_none=True),
        status_code=problem.status,
        media_type=MEDIA_TYPE,
        headers=headers,
    )
