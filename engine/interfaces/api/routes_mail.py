"""The outbox (every message and what became of it) and the reminders a tick would send."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam

from engine.errors import AccessDenied, InvalidInput
from engine.interfaces.api.auth import INT_MAX, Client, Number, Writer, config, reach, round_id
from engine.interfaces.api.common import ERRORS
from engine.runtime.results import OutboxMessage, ReminderPreview

__all__ = ["router"]

router = APIRouter(tags=["mail"], responses=ERRORS)


@router.get("/outbox", summary="The outbox")
def outbox(
    request: Request,
    client: Client,
    state: Annotated[
        str | None, Query(description="pending, sending, sent, failed or skipped.")
    ] = None,
    round: Annotated[str | None, Query(description="A round's id (agreement/n).")] = None,
) -> list[OutboxMessage]:
    """Every message (or those in one state, of one round), oldest first."""
    from engine.runtime import outbox_messages

    if client.round is not None:
        round = reach(client, round or client.round)
    return outbox_messages(config(request).engine, state, round)


@router.post("/outbox/{message_id}/retry", summary="Send a message again")
def retry(
    request: Request,
    client: Writer,
    message_id: Annotated[int, PathParam(ge=1, le=INT_MAX)],
) -> OutboxMessage:
    """A failed (or skipped) message goes again at the next tick."""
    from engine.runtime import outbox_messages, retry_message

    cfg = config(request)
    if client.round is not None:
        mine = {m.id for m in outbox_messages(cfg.engine, None, client.round)}
        if message_id not in mine:
            raise AccessDenied(
                f"token {client.name!r} reaches round {client.round} only", reason="scope"
            )
    return retry_message(cfg.engine, message_id, cfg.clock)


@router.get("/rounds/{agreement}/{number}/preview", summary="Reminders due")
def preview(
    request: Request,
    client: Client,
    agreement: str,
    number: Number,
    at: Annotated[
        datetime | None, Query(description="When (ISO 8601 with an offset); default: now.")
    ] = None,
) -> list[ReminderPreview]:
    """The reminders and escalations a tick at that time would queue, and those queued."""
    from engine.clock import FixedClock
    from engine.runtime import preview as do_preview

    ref = reach(client, round_id(agreement, number))
    cfg = config(request)
    if at is not None and at.tzinfo is None:
        raise InvalidInput("at: give the time with its offset (…T09:00+02:00)", field="at")
    return do_preview(cfg.engine, FixedClock(at) if at is not None else cfg.clock, ref)
