"""Sending webhook deliveries: claimed like the outbox's messages (on PostgreSQL with SKIP
LOCKED, so workers never take the same row), posted signed, tried again with a growing wait,
given up after :data:`GIVE_UP`.

A worker that dies while posting leaves its rows claimed; once the lease ends another worker
takes them again, so a receiver may get a delivery twice: ``webhook-id`` is the same each time.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, or_, update
from sqlmodel import Session, col, select

from engine.clock import Clock
from engine.persistence.database import ensure_schema, transaction
from engine.persistence.tables import WebhookDeliveryRow, WebhookRow
from engine.runtime.lookup import aware
from engine.runtime.webhooks import secrets_of, sign

__all__ = ["BACKOFF", "GIVE_UP", "Post", "WebhookResult", "send_webhooks"]

BACKOFF = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=6),
    timedelta(hours=12),
)
GIVE_UP = timedelta(days=3)  # after this long undelivered, a delivery is failed and shown
TIMEOUT = 10.0  # seconds for a receiver to answer
BATCH = 20
LEASE = timedelta(seconds=BATCH * TIMEOUT + 60)  # a batch's worst case, and a margin
ERROR_MAX = 300


@dataclass(frozen=True)
class WebhookResult:
    id: int
    webhook: int
    event: str
    outcome: str  # delivered, retry, failed, claim lost
    status: int | None
    error: str | None


# How a delivery is posted: (url, body, headers) → status code; raises OSError-like on failure.
Post = Callable[[str, bytes, dict[str, str]], int]


def _http_post(url: str, body: bytes, headers: dict[str, str]) -> int:
    import httpx2

    with httpx2.Client(timeout=TIMEOUT, follow_redirects=False) as client:
        return client.post(url, content=body, headers=headers).status_code


def _due(now: datetime) -> Any:
    return or_(
        and_(
            col(WebhookDeliveryRow.state) == "pending",
            col(WebhookDeliveryRow.next_attempt_at) <= now,
        ),
        and_(
            col(WebhookDeliveryRow.state) == "sending",
            col(WebhookDeliveryRow.claimed_until) < now,
        ),
    )


def _claim(session: Session, now: datetime) -> list[WebhookDeliveryRow]:
    token = uuid.uuid4().hex
    due = (
        select(WebhookDeliveryRow.id)
        .where(_due(now))
        .order_by(col(WebhookDeliveryRow.id))
        .limit(BATCH)
    )
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    claimed = session.execute(
        update(WebhookDeliveryRow)
        .where(col(WebhookDeliveryRow.id).in_(due), _due(now))
        .values(state="sending", claimed_by=token, claimed_until=now + LEASE)
        .returning(WebhookDeliveryRow)
        .execution_options(synchronize_session=False)
    )
    return sorted(claimed.scalars().all(), key=lambda row: row.id or 0)


def _settle(engine: Engine, row: WebhookDeliveryRow, **values: Any) -> bool:
    """Write what became of a delivery this worker holds; False when its claim was lost."""
    with transaction(engine) as session:
        done = session.execute(
            update(WebhookDeliveryRow)
            .where(
                col(WebhookDeliveryRow.id) == row.id,
                col(WebhookDeliveryRow.claimed_by) == row.claimed_by,
                col(WebhookDeliveryRow.state) == "sending",
            )
            .values(claimed_by=None, claimed_until=None, **values)
        )
        return bool(done.rowcount)  # type: ignore[attr-defined]


def _attempt(
    row: WebhookDeliveryRow, hook: WebhookRow | None, secret: bytes, now: datetime, post: Post
) -> tuple[int | None, str | None]:
    if hook is None or hook.removed_at is not None:
        return None, "the webhook was removed"
    body = row.body.encode()
    stamp = int(now.timestamp())
    delivery_id = f"ratify-{row.id}"
    headers = {
        "content-type": "application/json",
        "user-agent": "ratify-webhooks/1",
        "webhook-id": delivery_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign(secrets_of(secret, hook, now), delivery_id, stamp, body),
        "ratify-event": row.event,
        "ratify-round": row.round_id,
    }
    try:
        status = post(hook.url, body, headers)
    except Exception as exc:  # a refused connection, a timeout, a bad answer: try again later
        return None, f"{type(exc).__name__}: {exc}"[:ERROR_MAX]
    if 200 <= status < 300:
        return status, None
    return status, f"the receiver answered {status}"


def send_webhooks(
    engine: Engine, clock: Clock, secret: bytes, post: Post | None = None
) -> list[WebhookResult]:
    """Post every delivery due, a batch at a time, until none is left."""
    ensure_schema(engine)
    send = post or _http_post
    results: list[WebhookResult] = []
    while True:
        now = clock.now(UTC)
        with transaction(engine) as session:
            rows = _claim(session, now)
            ids = {r.webhook_id for r in rows}
            found = session.exec(select(WebhookRow).where(col(WebhookRow.id).in_(ids))).all()
            hooks = {h.id: h for h in found}
            for kept in hooks.values():
                session.expunge(kept)
        if not rows:
            return results
        for row in rows:
            hook = hooks.get(row.webhook_id)
            status, error = _attempt(row, hook, secret, now, send)
            attempts = row.attempts + 1
            if error is None:
                values: dict[str, Any] = {
                    "state": "delivered",
                    "delivered_at": now,
                    "last_status": status,
                    "last_error": None,
                }
                outcome = "delivered"
            elif (
                hook is None
                or hook.removed_at is not None
                or now - aware(row.created_at) >= GIVE_UP
            ):
                values = {"state": "failed", "last_status": status, "last_error": error}
                outcome = "failed"
            else:
                wait = BACKOFF[min(attempts, len(BACKOFF)) - 1]
                values = {
                    "state": "pending",
                    "next_attempt_at": now + wait,
                    "last_status": status,
                    "last_error": error,
                }
                outcome = "retry"
            values["attempts"] = attempts
            if not _settle(engine, row, **values):
                outcome = "claim lost"
            assert row.id is not None
            results.append(WebhookResult(row.id, row.webhook_id, row.event, outcome, status, error))
