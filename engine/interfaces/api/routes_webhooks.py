"""Webhooks: add one (its secret is in the answer, once), list them, remove one, rotate its
secret, and follow its deliveries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from engine.errors import AccessDenied, NotFound
from engine.interfaces.api.auth import (
    INT_MAX,
    Client,
    Idempotency,
    Writer,
    config,
    once_of,
    reach,
)
from engine.interfaces.api.common import ERRORS
from engine.runtime.tokens import ApiClient
from engine.runtime.webhooks import DeliveryInfo, WebhookInfo

__all__ = ["router"]

router = APIRouter(tags=["webhooks"], responses=ERRORS)
Id = Annotated[int, PathParam(ge=1, le=INT_MAX)]


class WebhookBody(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "url": "https://asianhallinta.example.invalid/ratify",
                "events": ["approve", "sign", "activate"],
            }
        },
    )

    url: str = Field(max_length=2000, description="Where to post (https://…).")
    events: list[str] = Field(
        min_length=1, max_length=64, description='Events to post, or ["*"] for all.'
    )
    round: str | None = Field(None, max_length=200, description="Only this round's entries.")


@dataclass(frozen=True)
class NewWebhookOut:
    webhook: WebhookInfo
    secret: str  # whsec_…: shown here once; never stored


def _mine(request: Request, client: ApiClient, webhook_id: int) -> WebhookInfo:
    from engine.runtime.webhooks import webhooks

    for hook in webhooks(config(request).engine):
        if hook.id == webhook_id:
            if client.round is not None and hook.round != client.round:
                break  # not told whether another round's webhook exists
            return hook
    if client.round is not None:
        raise AccessDenied(
            f"token {client.name!r} reaches round {client.round} only", reason="scope"
        )
    raise NotFound(f"no webhook {webhook_id}", field="id")


@router.get("/webhooks", summary="List webhooks")
def list_webhooks(request: Request, client: Client) -> list[WebhookInfo]:
    """Every webhook the token reaches, with its deliveries waiting and given up."""
    from engine.runtime.webhooks import webhooks

    return webhooks(config(request).engine, client.round)


@router.post(
    "/webhooks",
    summary="Add a webhook",
    status_code=201,
    response_model=NewWebhookOut,
    responses={201: {"description": "The webhook, and its signing secret (shown once)."}},
)
def add(
    request: Request, client: Writer, body: WebhookBody, idempotency_key: Idempotency = None
) -> JSONResponse:
    """Post every later log entry of those events, signed (Standard Webhooks: ``webhook-id``,
    ``webhook-timestamp``, ``webhook-signature``). The same request with the same
    Idempotency-Key answers with the same webhook and secret, adding none."""
    from engine.runtime.webhooks import add_webhook

    cfg = config(request)
    scope = body.round if body.round is not None else client.round
    if client.round is not None:
        reach(client, scope or "")
    once = once_of(request, client, idempotency_key, body.model_dump_json().encode())
    made = add_webhook(
        cfg.engine,
        cfg.keys.secret,
        body.url,
        body.events,
        cfg.clock,
        client.name,
        round_ref=scope,
        once=once,
    )
    return JSONResponse(
        jsonable_encoder(NewWebhookOut(made.info, made.secret)),
        status_code=201,
        headers={"Location": f"/api/v1/webhooks/{made.info.id}"},
    )


@router.delete("/webhooks/{webhook_id}", summary="Remove a webhook")
def remove(
    request: Request, client: Writer, webhook_id: Id, idempotency_key: Idempotency = None
) -> WebhookInfo:
    """No more deliveries; those waiting are given up. Removing it again changes nothing."""
    from engine.runtime.webhooks import remove_webhook

    cfg = config(request)
    _mine(request, client, webhook_id)
    once = once_of(request, client, idempotency_key)
    return remove_webhook(cfg.engine, webhook_id, cfg.clock, once=once)


@router.post("/webhooks/{webhook_id}/rotate", summary="Rotate a webhook's secret")
def rotate(
    request: Request, client: Writer, webhook_id: Id, idempotency_key: Idempotency = None
) -> NewWebhookOut:
    """A new secret, in the answer; for 7 days deliveries carry a signature by each. The same
    Idempotency-Key again answers with that secret, rotating no further."""
    from engine.runtime.webhooks import rotate_webhook

    cfg = config(request)
    _mine(request, client, webhook_id)
    once = once_of(request, client, idempotency_key)
    made = rotate_webhook(cfg.engine, cfg.keys.secret, webhook_id, cfg.clock, once=once)
    return NewWebhookOut(made.info, made.secret)


@router.get("/webhooks/{webhook_id}/deliveries", summary="A webhook's deliveries")
def hook_deliveries(
    request: Request,
    client: Client,
    webhook_id: Id,
    state: Annotated[
        str | None, Query(description="pending, sending, delivered or failed.")
    ] = None,
) -> list[DeliveryInfo]:
    """Newest first: what was posted, what waits, and what was given up and why."""
    from engine.runtime.webhooks import deliveries

    _mine(request, client, webhook_id)
    return deliveries(config(request).engine, webhook_id, state)


@router.post("/webhooks/deliveries/{delivery_id}/retry", summary="Try a delivery again")
def retry(request: Request, client: Writer, delivery_id: Id) -> DeliveryInfo:
    """A delivery that was given up goes again at the next tick."""
    from engine.runtime.webhooks import deliveries, retry_delivery

    cfg = config(request)
    if client.round is not None:
        mine = {d.id for d in deliveries(cfg.engine, round_id=client.round, limit=10_000)}
        if delivery_id not in mine:
            raise AccessDenied(
                f"token {client.name!r} reaches round {client.round} only", reason="scope"
            )
    return retry_delivery(cfg.engine, delivery_id, cfg.clock)
