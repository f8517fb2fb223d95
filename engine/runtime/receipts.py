"""Queueing a message to be rendered when it is sent (a receipt: one for every recorded event), by
an INSERT prepared once and run on the driver's cursor (:mod:`engine.runtime.direct`).

The row is the one :func:`engine.persistence.outbox.enqueue` writes, column for column (a test
holds the two to each other); only the way it is executed differs.
"""

from __future__ import annotations

import base64
from typing import Any

from sqlalchemy import Table, bindparam
from sqlmodel import Session

from engine.persistence.tables import OutboxRow
from engine.runtime.direct import Direct
from notifications.message import OutgoingMessage

__all__ = ["enqueue"]

_OUTBOX: Table = OutboxRow.__table__  # type: ignore[attr-defined]
_COLUMNS = (
    "key",
    "round_id",
    "party_id",
    "kind",
    "recipients",
    "language",
    "subject",
    "text_body",
    "html_body",
    "attachments",
    "message_id",
    "state",
    "attempts",
    "next_attempt_at",
    "refused",
    "chase",
    "personal",
    "created_at",
)
_INSERTS: dict[str, Direct] = {}


def _insert(dialect: str) -> Direct:
    """The dialect's INSERT … ON CONFLICT (key) DO NOTHING RETURNING id (made once)."""
    if dialect not in _INSERTS:
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
        statement = (
            insert(_OUTBOX)
            .values({name: bindparam(name) for name in _COLUMNS})
            .on_conflict_do_nothing(index_elements=["key"])
            .returning(_OUTBOX.c.id)
        )
        _INSERTS[dialect] = Direct(statement)
    return _INSERTS[dialect]


def enqueue(
    session: Session,
    message: OutgoingMessage,
    *,
    round_id: str,
    party_id: str | None,
    now: Any,
    chase: dict[str, Any] | None = None,
    personal: dict[str, Any] | None = None,
) -> bool:
    """Add ``message`` unless a row with its key exists; True when it was added."""
    values = {
        "key": message.key,
        "round_id": round_id,
        "party_id": party_id,
        "kind": message.kind,
        "recipients": list(message.to),
        "language": message.language,
        "subject": message.subject,
        "text_body": message.text,
        "html_body": message.html,
        "attachments": [
            {
                "filename": a.filename,
                "content_type": a.content_type,
                "data": base64.b64encode(a.data).decode("ascii"),
            }
            for a in message.attachments
        ],
        "message_id": message.message_id,
        "state": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "refused": {},
        "chase": chase,
        "personal": personal,
        "created_at": now,
    }
    connection = session.connection()
    return _insert(connection.dialect.name).first(connection, values) is not None
