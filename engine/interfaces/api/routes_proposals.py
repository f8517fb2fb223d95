"""Decisions proposed from the parties' published minutes: list them, confirm one (recorded as
the party's decision, with where it was read), dismiss one."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from engine.interfaces.api.auth import (
    Client,
    Idempotency,
    Number,
    Writer,
    config,
    once_of,
    reach,
    round_id,
)
from engine.interfaces.api.common import ERRORS
from engine.runtime import Proposal, ProposalConfirmed, SourceInfo

__all__ = ["router"]

router = APIRouter(tags=["proposals"], responses=ERRORS)
PROPOSALS = "/rounds/{agreement}/{number}/proposals"


class ConfirmBody(BaseModel):
    """How the proposed decision is recorded (by default: approved)."""

    model_config = ConfigDict(extra="forbid")

    event: str = Field(default="approve", description="approve, reject or return.")
    reason: str | None = Field(default=None, max_length=2000, description="Why (reject, return).")


@router.get(PROPOSALS, summary="A round's proposed decisions")
def list_proposals(
    request: Request,
    client: Client,
    agreement: str,
    number: Number,
    party: str | None = None,
    pending: bool = False,
) -> list[Proposal]:
    """The decisions found in the parties' published minutes (of one party with ``party``;
    only those not yet confirmed or dismissed with ``pending``), oldest first."""
    from engine.runtime import proposals

    ref = reach(client, round_id(agreement, number))
    return proposals(config(request).engine, ref, party, pending=pending)


@router.get("/rounds/{agreement}/{number}/sources", summary="The parties' decision sources")
def list_sources(
    request: Request, client: Client, agreement: str, number: Number
) -> list[SourceInfo]:
    """Each party's decision source as its agreement file names it, when it was last read and
    is next, the SHA-256 of what was fetched, and the warning kept when the reading failed."""
    from engine.runtime import sources

    return sources(config(request).engine, reach(client, round_id(agreement, number)))


@router.post(PROPOSALS + "/{pid}/confirm", summary="Confirm a proposed decision")
def confirm(
    request: Request,
    client: Writer,
    agreement: str,
    number: Number,
    pid: int,
    body: ConfirmBody | None = None,
    idempotency_key: Idempotency = None,
) -> ProposalConfirmed:
    """Record the decision through the normal record path, its entry keeping the source's
    address, the fetch time and the SHA-256 of what was fetched. Refused (409) when the party
    has moved on, or the proposal is already settled (the same Idempotency-Key again answers as
    the first time)."""
    from engine.runtime import confirm_proposal

    ref = reach(client, round_id(agreement, number))
    cfg = config(request)
    given = body or ConfirmBody()
    once = once_of(request, client, idempotency_key, given.model_dump_json().encode())
    return confirm_proposal(
        cfg.engine,
        pid,
        cfg.clock,
        client.name,
        event=given.event,
        reason=given.reason,
        via="api",
        round_ref=ref,
        once=once,
    )


@router.post(PROPOSALS + "/{pid}/dismiss", summary="Dismiss a proposed decision")
def dismiss(request: Request, client: Writer, agreement: str, number: Number, pid: int) -> Proposal:
    """The item was not the party's decision: set it aside; nothing is recorded."""
    from engine.runtime import dismiss_proposal

    ref = reach(client, round_id(agreement, number))
    cfg = config(request)
    return dismiss_proposal(cfg.engine, pid, cfg.clock, client.name, round_ref=ref)
