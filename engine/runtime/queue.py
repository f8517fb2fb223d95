"""The outbox as a coordinator sees it: its messages and their delivery state, and sending a
failed one again."""

from __future__ import annotations

from sqlalchemy import Engine

from engine.clock import DEFAULT_ZONE, Clock
from engine.errors import InvalidInput
from engine.persistence import outbox
from engine.persistence.database import ensure_schema, transaction
from engine.persistence.tables import OutboxRow
from engine.runtime.lookup import now_in
from engine.runtime.messages import rendered
from engine.runtime.results import OutboxMessage

__all__ = ["outbox_messages", "retry_message"]


def _message(row: OutboxRow) -> OutboxMessage:
    assert row.id is not None  # stored rows have their id
    return OutboxMessage(
        id=row.id,
        round=row.round_id,
        party=row.party_id,
        kind=row.kind,
        recipients=tuple(row.recipients),
        # A receipt is rendered when sent: until then its subject is made here, for the listing.
        subject=row.subject or rendered(None, row).subject,
        state=row.state,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        sent_at=row.sent_at,
        last_error=row.last_error,
        refused=dict(row.refused),
        message_id=row.message_id,
    )


def outbox_messages(
    engine: Engine, state: str | None = None, round_id: str | None = None
) -> list[OutboxMessage]:
    """Every message (or those in ``state``, of one round), oldest first."""
    if state is not None and state not in outbox.STATES:
        raise InvalidInput(
            f"{{opt.state}} {state!r}: use one of {', '.join(outbox.STATES)}", field="state"
        )
    ensure_schema(engine)
    with transaction(engine) as session:
        return [_message(r) for r in outbox.messages(session, state, round_id)]


def retry_message(engine: Engine, message_id: int, clock: Clock) -> OutboxMessage:
    """Send a failed (or skipped) message again at the next tick."""
    ensure_schema(engine)
    with transaction(engine) as session:
        return _message(outbox.retry(session, message_id, now_in(clock, DEFAULT_ZONE.key)))
