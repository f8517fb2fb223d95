"""The witness: every round's head, by email, to an address outside the database.

Whoever can write the database can rewrite a round's log and its anchors so that `audit verify`
passes (README, "The log and its verification"). A head kept elsewhere catches that: `audit verify
--expect-head` fails once the log no longer holds it. With ``RATIFY_WITNESS_EMAIL`` set, ratify
sends every round's head there itself: when a round becomes active (:func:`witness_on_activation`,
in the activation's own transaction), and from the worker's tick once a day when a log changed
since the last witness message (:func:`queue_daily`).

Each is an outbox row of kind ``witness`` like every other email, made once by its key
(``witness:activate:<round>``; ``witness:<local date>`` for the daily one), and filed under one
round (the activated one; for the daily one, the round whose log changed last), whose language and
timezone it takes. It lists the heads in its text and attaches them as ``heads.json``: what the
witness may keep as a file, and what the next tick compares the heads with.
"""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from engine.clock import Clock
from engine.core.chain import format_time
from engine.errors import InvalidInput
from engine.persistence import outbox
from engine.persistence.database import ensure_schema, transaction
from engine.persistence.tables import OutboxRow, RoundRow
from engine.runtime.audit import HeadReport, round_heads
from engine.runtime.lookup import now_in
from engine.settings import load_settings
from notifications.message import Attachment
from notifications.render import message

__all__ = ["HEADS_FILE", "KIND", "queue_daily", "witness_address", "witness_on_activation"]

KIND = "witness"
HEADS_FILE = "heads.json"


def witness_address() -> str | None:
    """``RATIFY_WITNESS_EMAIL``, or None when it is not set (or blank)."""
    try:
        address = load_settings().witness_email
    except ValidationError as exc:
        problems = "; ".join(
            f"RATIFY_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidInput(f"invalid setting: {problems}") from None
    return address or None


def witness_on_activation(session: Session, row: RoundRow, now: datetime) -> bool:
    """Queue every round's head for the witness in the transaction that makes ``row`` active.

    Call it once the transaction's entries are sealed (after ``Journal.seal``): it reads the
    round's state and every head as the transaction sees them, and queues only when the round is
    active, so a call after an event that activated nothing queues nothing. True when queued.
    """
    address = witness_address()
    if address is None:
        return False
    state = session.exec(select(RoundRow.state).where(RoundRow.id == row.id)).first()
    if state != "active":
        return False
    key = str(outbox.Key(KIND, ("activate", row.id)))
    if _queued(session, key):
        return False
    _queue(session, row, "activation", key, address, round_heads(session), now)
    return True


def queue_daily(engine: Engine, clock: Clock) -> list[str]:
    """The worker's witness message: queued when a round's head is not what the last witness
    message recorded (or none was queued yet), at most once a local day. Its key, if queued."""
    address = witness_address()
    if address is None:
        return []
    ensure_schema(engine)
    with transaction(engine) as session:
        latest = session.exec(
            select(RoundRow)
            .order_by(col(RoundRow.last_entry_at).desc(), col(RoundRow.id).desc())
            .limit(1)
        ).first()
        if latest is None:
            return []  # nothing to witness yet
        now = now_in(clock, latest.timezone)
        key = str(outbox.Key(KIND, (now.date().isoformat(),)))
        if _queued(session, key):
            return []  # today's is queued already
        heads = round_heads(session)
        last = outbox.latest(session, KIND)
        if last is not None and _recorded(last) == ((address,), heads):
            return []  # nothing changed since the last one
        _queue(session, latest, "daily", key, address, heads, now)
        return [key]


def _queued(session: Session, key: str) -> bool:
    return outbox.exists(session, key)


def _queue(
    session: Session,
    row: RoundRow,
    reason: str,
    key: str,
    address: str,
    heads: list[HeadReport],
    now: datetime,
) -> None:
    rounds = [{"round": h.round, "entries": h.entries, "head": h.head} for h in heads]
    context: dict[str, Any] = {
        "title": row.title,
        "round_id": row.id,
        "sha256": row.document_sha256,
        "party": None,
        "coordinator": row.coordinator,
        "reason": reason,
        "rounds": rounds,
        "as_of": now,
        "timezone": row.timezone,
    }
    made = message(key, KIND, [address], row.language, context)
    record = {"as_of": format_time(now), "rounds": rounds}
    data = (json.dumps(record, ensure_ascii=False, indent=2) + "\n").encode()
    made = replace(made, attachments=(Attachment(HEADS_FILE, "application/json", data),))
    # A concurrent writer with the same key: its row stands, this one is dropped (ON CONFLICT).
    outbox.enqueue(session, made, round_id=row.id, party_id=None, now=now)


def _recorded(row: OutboxRow) -> tuple[tuple[str, ...], list[HeadReport]] | None:
    """To whom a witness message went and the heads it recorded; None if it holds none."""
    for attachment in row.attachments:
        if attachment.get("filename") != HEADS_FILE:
            continue
        try:
            record = json.loads(base64.b64decode(attachment["data"]))
            heads = [HeadReport(r["round"], r["entries"], r["head"]) for r in record["rounds"]]
        except (ValueError, KeyError, TypeError):
            return None
        return tuple(row.recipients), heads
    return None
