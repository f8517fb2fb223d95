"""The webhooks' deliveries of log entries, written in the entries' own transaction.

Apart from ``webhooks`` (which manages the webhooks and reads rounds) so that the journal, which
calls :func:`enqueue` as it seals, depends on nothing of the service layer.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, Table, bindparam, insert
from sqlmodel import col, select

from engine.core.chain import FIELDS, Entry
from engine.persistence.tables import WebhookDeliveryRow, WebhookRow
from engine.runtime.direct import Direct

__all__ = ["body_of", "enqueue"]

_COLUMNS = (
    "webhook_id",
    "round_id",
    "seq",
    "event",
    "body",
    "state",
    "attempts",
    "next_attempt_at",
    "created_at",
)
# Run on the driver's cursor (engine.runtime.direct): every recorded event asks for the webhooks.
_HOOKS = Direct(
    select(col(WebhookRow.id), col(WebhookRow.events), col(WebhookRow.round_id)).where(
        col(WebhookRow.removed_at).is_(None)
    )
)
_DELIVERY: Table = WebhookDeliveryRow.__table__  # type: ignore[attr-defined]  # set by SQLModel
_INSERT = Direct(insert(_DELIVERY).values({c: bindparam(c) for c in _COLUMNS}))


def body_of(entry: Entry) -> str:
    """The entry as exported (one line of ``audit export``, without its line break)."""
    return json.dumps({k: entry[k] for k in FIELDS}, ensure_ascii=False, sort_keys=False)  # type: ignore[literal-required]


def enqueue(connection: Connection, round_id: str, entries: Sequence[Entry], now: datetime) -> None:
    """The deliveries of these entries, in the transaction that writes them (on its connection:
    no ORM work): one query for the webhooks (a handful of rows), one insert when any is wanted."""
    if not entries:
        return
    hooks = _HOOKS.rows(connection, {})
    rows = [
        {
            "webhook_id": hook_id,
            "round_id": round_id,
            "seq": entry["seq"],
            "event": entry["event"],
            "body": body_of(entry),
            "state": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for hook_id, events, scope in hooks
        if scope is None or scope == round_id
        for entry in entries
        if events == ["*"] or entry["event"] in events
    ]
    if rows:
        _INSERT.many(connection, rows)
