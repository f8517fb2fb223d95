"""Reads a page shows together, made in one transaction: one consistent picture, and one
connection's round trip instead of three."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from engine.core.chain import Entry
from engine.persistence import outbox
from engine.persistence.database import ensure_schema, transaction
from engine.runtime.audit import _entries
from engine.runtime.lookup import resolve_round
from engine.runtime.queue import _message
from engine.runtime.results import OutboxMessage, RoundStatus
from engine.runtime.rounds import _round_status

__all__ = ["RoundView", "round_view"]


@dataclass(frozen=True)
class RoundView:
    """A round as its page shows it: its status, its log, and its mail that failed."""

    status: RoundStatus
    entries: list[Entry]
    failed: list[OutboxMessage]


def round_view(engine: Engine, ref: str) -> RoundView:
    ensure_schema(engine)
    with transaction(engine) as session:
        row = resolve_round(session, ref)
        return RoundView(
            _round_status(session, row),
            _entries(session, row.id),
            [_message(m) for m in outbox.messages(session, "failed", row.id)],
        )
