"""Webhooks: log entries posted to other systems, signed, each delivery written with its entry.

Every log entry that a webhook wants becomes a delivery row **in the entry's own transaction**
(:func:`enqueue`, called as the journal seals), so an entry without its deliveries, or a delivery
of an entry that was rolled back, cannot exist. The workers send them (``webhook_sending``).

Signatures follow Standard Webhooks (standardwebhooks.com), so a receiver may use its libraries:
headers ``webhook-id`` (the delivery's id: drop a duplicate by it), ``webhook-timestamp`` (Unix
seconds) and ``webhook-signature`` (``v1,`` and the base64 HMAC-SHA256 of ``id.timestamp.body``,
one per secret in use, space-separated). A webhook's secret is never stored: it is an HMAC of
its id and generation under the server's secret (as party links are). ``rotate`` moves to the
next generation; for :data:`ROTATION` both are used, so a receiver can switch without a gap.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import Engine, func, update
from sqlmodel import Session, col, select

from engine.clock import Clock
from engine.errors import InvalidInput, NotFound
from engine.persistence.database import ensure_schema, transaction
from engine.persistence.tables import WebhookDeliveryRow, WebhookRow
from engine.runtime.lookup import aware, resolve_round
from engine.runtime.writes import OnceKey, check_once, earlier, keep

__all__ = [
    "ENGINE_EVENTS",
    "ROTATION",
    "DeliveryInfo",
    "NewWebhook",
    "WebhookInfo",
    "add_webhook",
    "deliveries",
    "known_events",
    "remove_webhook",
    "retry_delivery",
    "rotate_webhook",
    "secrets_of",
    "sign",
    "webhooks",
]

ROTATION = timedelta(days=7)  # how long the previous secret still signs after a rotation
URL_MAX = 2000
# What the engine itself writes to a log, beside each workflow's own events.
ENGINE_EVENTS = (
    "launch",
    "amend",
    "cancel",
    "activate",
    "fail",
    "remind",
    "escalate",
    "contacts",
    "link",
    "signatories",
    "annotate",
)
_EVENT = re.compile(r"[a-z][a-z0-9-]{0,63}")


@dataclass(frozen=True)
class WebhookInfo:
    id: int
    url: str
    events: tuple[str, ...]
    round: str | None
    generation: int
    created_by: str
    created_at: datetime
    removed_at: datetime | None
    pending: int  # deliveries waiting (or being tried again)
    failed: int  # deliveries given up


@dataclass(frozen=True)
class NewWebhook:
    info: WebhookInfo
    secret: str  # whsec_…: shown when made (and after a rotation); never stored


@dataclass(frozen=True)
class DeliveryInfo:
    id: int
    webhook: int
    round: str
    seq: int
    event: str
    state: str  # pending, sending, delivered, failed
    attempts: int
    next_attempt_at: datetime
    last_status: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


def known_events() -> set[str]:
    """Every event a log may hold: the engine's and every known workflow's."""
    from engine.runtime.catalog import workflows

    found = set(ENGINE_EVENTS)
    for definition in workflows():
        found.update(definition.events)
    return found


def _events(given: Sequence[str]) -> list[str]:
    names = [e.strip() for e in given if e.strip()]
    if not names:
        raise InvalidInput("name the events to send (or * for all)", field="events")
    if names == ["*"]:
        return names
    known = known_events()
    unknown = [e for e in names if not _EVENT.fullmatch(e) or e not in known]
    if unknown:
        raise InvalidInput(
            f"unknown event {unknown[0]!r}; the events: {', '.join(sorted(known))} (or *)",
            field="events",
        )
    return sorted(set(names))


def _url(url: str) -> str:
    parts = urlsplit(url)
    if (
        len(url) > URL_MAX
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or not url.isascii()
        or not url.isprintable()
        or parts.username is not None
        or parts.password is not None
    ):
        raise InvalidInput(
            f"webhook URL {url[:200]!r}: give an http:// or https:// URL with a host, in ASCII "
            "and without credentials (https:// in production)",
            field="url",
        )
    return url


def secret_bytes(server_secret: bytes, webhook_id: int, generation: int) -> bytes:
    message = f"ratify-webhook\0{webhook_id}\0{generation}".encode()
    return hmac.new(server_secret, message, hashlib.sha256).digest()


def _shown(key: bytes) -> str:
    return "whsec_" + base64.b64encode(key).decode()


def secrets_of(server_secret: bytes, row: WebhookRow, now: datetime) -> list[bytes]:
    """The secrets a delivery is signed with now: the current one, and the one before it while
    a rotation is recent."""
    assert row.id is not None
    keys = [secret_bytes(server_secret, row.id, row.generation)]
    if row.rotated_at is not None and now < aware(row.rotated_at) + ROTATION:
        keys.append(secret_bytes(server_secret, row.id, row.generation - 1))
    return keys


def sign(keys: Iterable[bytes], delivery_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header: one ``v1,<base64>`` per key, space-separated."""
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    return " ".join(
        "v1," + base64.b64encode(hmac.new(k, signed, hashlib.sha256).digest()).decode()
        for k in keys
    )


def _counts(session: Session) -> dict[tuple[int, str], int]:
    rows = session.exec(
        select(WebhookDeliveryRow.webhook_id, WebhookDeliveryRow.state, func.count()).group_by(
            col(WebhookDeliveryRow.webhook_id), col(WebhookDeliveryRow.state)
        )
    ).all()
    return {(w, s): n for w, s, n in rows}


def _info(row: WebhookRow, counts: dict[tuple[int, str], int]) -> WebhookInfo:
    assert row.id is not None
    pending = counts.get((row.id, "pending"), 0) + counts.get((row.id, "sending"), 0)
    return WebhookInfo(
        row.id,
        row.url,
        tuple(row.events),
        row.round_id,
        row.generation,
        row.created_by,
        aware(row.created_at),
        aware(row.removed_at) if row.removed_at is not None else None,
        pending,
        counts.get((row.id, "failed"), 0),
    )


def add_webhook(
    engine: Engine,
    server_secret: bytes,
    url: str,
    events: Sequence[str],
    clock: Clock,
    actor: str,
    *,
    round_ref: str | None = None,
    once: OnceKey | None = None,
) -> NewWebhook:
    """Post every later log entry of those events (of that round) to ``url``. ``once``: the
    same key again answers with the same webhook (and its first secret), adding none."""
    ensure_schema(engine)
    check_once(once)
    url, wanted = _url(url), _events(events)
    with transaction(engine) as session:
        if (done := earlier(session, "webhook-add", once)) is not None:
            first = int(done["id"])
            return NewWebhook(
                _info(_row(session, first), _counts(session)),
                _shown(secret_bytes(server_secret, first, 1)),
            )
        round_id = resolve_round(session, round_ref).id if round_ref is not None else None
        row = WebhookRow(
            url=url,
            events=wanted,
            round_id=round_id,
            created_by=actor,
            created_at=clock.now(UTC),
        )
        session.add(row)
        session.flush()
        assert row.id is not None
        keep(session, "webhook-add", once, {"id": row.id}, row.created_at)
        return NewWebhook(_info(row, {}), _shown(secret_bytes(server_secret, row.id, 1)))


def _row(session: Session, webhook_id: int, *, lock: bool = False) -> WebhookRow:
    query = select(WebhookRow).where(WebhookRow.id == webhook_id)
    row = session.exec(query.with_for_update() if lock else query).first()
    if row is None:
        raise NotFound(f"no webhook {webhook_id}; `ratify webhook list` shows them", field="id")
    return row


def webhooks(engine: Engine, round_id: str | None = None) -> list[WebhookInfo]:
    """Every webhook (or those a round's entries reach: that round's and the unscoped ones)."""
    ensure_schema(engine)
    with transaction(engine) as session:
        query = select(WebhookRow).order_by(col(WebhookRow.id))
        if round_id is not None:
            query = query.where(col(WebhookRow.round_id) == round_id)
        counts = _counts(session)
        return [_info(r, counts) for r in session.exec(query).all()]


def remove_webhook(
    engine: Engine, webhook_id: int, clock: Clock, *, once: OnceKey | None = None
) -> WebhookInfo:
    """Stop a webhook: no new deliveries; those waiting are given up. Removing it again changes
    nothing (``once``: a key used before with another request is refused)."""
    ensure_schema(engine)
    check_once(once)
    now = clock.now(UTC)
    with transaction(engine) as session:
        row = _row(session, webhook_id, lock=True)
        if earlier(session, "webhook-remove", once) is None:
            keep(session, "webhook-remove", once, {"id": webhook_id}, now)
        if row.removed_at is None:
            row.removed_at = now
            session.add(row)
            session.execute(
                update(WebhookDeliveryRow)
                .where(
                    col(WebhookDeliveryRow.webhook_id) == webhook_id,
                    col(WebhookDeliveryRow.state).in_(("pending", "sending")),
                )
                .values(state="failed", last_error="the webhook was removed")
            )
            session.flush()
        return _info(row, _counts(session))


def rotate_webhook(
    engine: Engine,
    server_secret: bytes,
    webhook_id: int,
    clock: Clock,
    *,
    once: OnceKey | None = None,
) -> NewWebhook:
    """A new secret; the old one still signs (beside it) for :data:`ROTATION`. ``once``: the
    same key again answers with the secret that rotation made, rotating no further."""
    ensure_schema(engine)
    check_once(once)
    with transaction(engine) as session:
        row = _row(session, webhook_id, lock=True)
        if (done := earlier(session, "webhook-rotate", once)) is not None:
            made = _shown(secret_bytes(server_secret, webhook_id, int(done["generation"])))
            return NewWebhook(_info(row, _counts(session)), made)
        if row.removed_at is not None:
            raise InvalidInput(f"webhook {webhook_id} was removed", field="id")
        row.generation += 1
        row.rotated_at = clock.now(UTC)
        session.add(row)
        session.flush()
        done = {"id": webhook_id, "generation": row.generation}
        keep(session, "webhook-rotate", once, done, row.rotated_at)
        secret = _shown(secret_bytes(server_secret, webhook_id, row.generation))
        return NewWebhook(_info(row, _counts(session)), secret)


def _delivery(row: WebhookDeliveryRow) -> DeliveryInfo:
    assert row.id is not None
    return DeliveryInfo(
        row.id,
        row.webhook_id,
        row.round_id,
        row.seq,
        row.event,
        row.state,
        row.attempts,
        aware(row.next_attempt_at),
        row.last_status,
        row.last_error,
        aware(row.created_at),
        aware(row.delivered_at) if row.delivered_at is not None else None,
    )


def deliveries(
    engine: Engine,
    webhook_id: int | None = None,
    state: str | None = None,
    round_id: str | None = None,
    limit: int = 200,
) -> list[DeliveryInfo]:
    """Deliveries, newest first (of a webhook, in a state, of a round)."""
    states = ("pending", "sending", "delivered", "failed")
    if state is not None and state not in states:
        raise InvalidInput(f"state {state!r}: use one of {', '.join(states)}", field="state")
    ensure_schema(engine)
    with transaction(engine) as session:
        query = select(WebhookDeliveryRow).order_by(col(WebhookDeliveryRow.id).desc())
        if webhook_id is not None:
            _row(session, webhook_id)
            query = query.where(WebhookDeliveryRow.webhook_id == webhook_id)
        if state is not None:
            query = query.where(WebhookDeliveryRow.state == state)
        if round_id is not None:
            query = query.where(WebhookDeliveryRow.round_id == round_id)
        return [_delivery(r) for r in session.exec(query.limit(limit)).all()]


def retry_delivery(engine: Engine, delivery_id: int, clock: Clock) -> DeliveryInfo:
    """Try a delivery that was given up again, at the next tick."""
    ensure_schema(engine)
    with transaction(engine) as session:
        row = session.get(WebhookDeliveryRow, delivery_id, with_for_update=True)
        if row is None:
            raise NotFound(f"no delivery {delivery_id}", field="id")
        hook = _row(session, row.webhook_id)
        if hook.removed_at is not None:
            raise InvalidInput(f"webhook {hook.id} was removed", field="id")
        if row.state == "failed":
            row.state, row.next_attempt_at, row.attempts = "pending", clock.now(UTC), 0
            row.created_at = clock.now(UTC)  # the time to give up counts from now
            session.add(row)
            session.flush()
        return _delivery(row)
