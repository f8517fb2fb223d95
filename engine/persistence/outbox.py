"""The durable outbox: every email is a row before it is sent, unique by its key.

Workers claim due rows (PostgreSQL: ``FOR UPDATE SKIP LOCKED``; SQLite: a conditional ``UPDATE``
inside the write lock), deliver them, and mark them. A claim is a lease: a worker that dies while
sending leaves rows that another worker takes over once the lease has run out.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Table, and_, bindparam, func, or_, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

from engine.errors import NotFound, Refused
from engine.persistence.tables import OutboxRow, PartyRow, RoundRow
from notifications.message import Attachment, OutgoingMessage

__all__ = [
    "CHASE_KINDS",
    "LEASE",
    "STATES",
    "Key",
    "chase_history",
    "claim",
    "counts",
    "enqueue",
    "exists",
    "latest",
    "mark_deferred",
    "mark_failed",
    "mark_retry",
    "mark_sent",
    "mark_skipped",
    "messages",
    "outgoing",
    "retry",
    "supersede",
    "waiting_zones",
]

STATES = ("pending", "sending", "sent", "failed", "skipped")
# The messages that chase a party (engine.runtime.chasing): reminders at fixed intervals, before
# the deadline, before a meeting's agenda closes and after a meeting; escalations.
CHASE_KINDS = ("reminder", "deadline", "agenda", "followup", "escalation")


@dataclass(frozen=True)
class Key:
    """What a message is about: its kind, then the round and what makes it unique in the round
    (the party, the step, the reminder's number…). Each of its rows adds whom it is for (a
    language, or ``coordinator``: :meth:`row`), so the rows of one message share the key as a
    stem. Stored as text, the parts joined by colons; the last part (the recipient) never holds
    one, so :func:`chase_history` can read a row's stem back."""

    kind: str
    about: tuple[str, ...] = ()

    def __str__(self) -> str:
        return ":".join((self.kind, *self.about))

    def then(self, *more: str) -> Key:
        """This key, narrowed by more parts (a party, a reminder's number)."""
        return Key(self.kind, (*self.about, *more))

    def row(self, recipient: str) -> str:
        """The stored key of the row for ``recipient``."""
        return f"{self}:{recipient}"


LEASE = timedelta(minutes=5)
_TABLE: Table = OutboxRow.__table__  # type: ignore[attr-defined]  # set by SQLModel


def enqueue(
    session: Session,
    message: OutgoingMessage,
    *,
    round_id: str,
    party_id: str | None,
    now: datetime,
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
    statement = _insert_statement(session)
    # A row comes back only when it was inserted (rowcount is not reliable here on psycopg).
    return session.execute(statement, values).first() is not None


# Made once per dialect (a statement built per message costs more than the driver's insert).
_INSERTS: dict[str, Any] = {}


def _insert_statement(session: Session) -> Any:
    name = session.get_bind().dialect.name
    if name not in _INSERTS:
        table = OutboxRow.__table__  # type: ignore[attr-defined]
        _INSERTS[name] = (
            _insert(session)(table)
            .on_conflict_do_nothing(index_elements=["key"])
            .returning(table.c.id)
        )
    return _INSERTS[name]


def fill(session: Session, row: OutboxRow, made: OutgoingMessage) -> None:
    """Store the bodies of a message rendered when it was sent (its row was queued without)."""
    personal = {k: v for k, v in (row.personal or {}).items() if k != "render"}
    session.execute(
        update(OutboxRow)
        .where(col(OutboxRow.id) == row.id)
        .values(
            subject=made.subject,
            text_body=made.text,
            html_body=made.html,
            personal=personal or None,
        )
        .execution_options(synchronize_session=False)
    )
    for key, value in (
        ("subject", made.subject),
        ("text_body", made.text),
        ("html_body", made.html),
        ("personal", personal or None),
    ):
        set_committed_value(row, key, value)


def _insert(session: Session) -> Any:
    """The dialect's INSERT, which has ON CONFLICT DO NOTHING (imported when first used: a
    command on SQLite loads nothing of PostgreSQL's)."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


def outgoing(row: OutboxRow) -> OutgoingMessage:
    return OutgoingMessage(
        key=row.key,
        kind=row.kind,
        to=tuple(row.recipients),
        language=row.language,
        subject=row.subject,
        text=row.text_body,
        html=row.html_body,
        attachments=tuple(
            Attachment(a["filename"], a["content_type"], base64.b64decode(a["data"]))
            for a in row.attachments
        ),
    )


def _due(now: datetime) -> Any:
    return or_(
        and_(col(OutboxRow.state) == "pending", col(OutboxRow.next_attempt_at) <= now),
        and_(col(OutboxRow.state) == "sending", col(OutboxRow.claimed_until) < now),
    )


def claim(
    session: Session,
    now: datetime,
    limit: int = 50,
    timezone: str | None = None,
    lease: timedelta = LEASE,
) -> list[OutboxRow]:
    """Take up to ``limit`` due rows for this worker, oldest first; with ``timezone``, only
    those of rounds in that zone (a simulated clock's wall time means a moment per zone)."""
    token = uuid.uuid4().hex
    due = select(OutboxRow.id).where(_due(now)).order_by(col(OutboxRow.id)).limit(limit)
    if timezone is not None:
        # Each row's round looked up by its key: "round_id IN (rounds of the zone)" would list
        # every round of the zone (on SQLite, a scan of the rounds) at every claim.
        in_zone = (
            select(RoundRow.id)
            .where(col(RoundRow.id) == col(OutboxRow.round_id), RoundRow.timezone == timezone)
            .exists()
        )
        due = due.where(in_zone)
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    # One statement chooses the rows (on PostgreSQL locking them, and passing over those another
    # worker has locked), claims them and returns them. The condition is repeated outside: on
    # SQLite it is what makes the claim exclusive.
    claimed = session.execute(
        update(OutboxRow)
        .where(col(OutboxRow.id).in_(due), _due(now))
        .values(state="sending", claimed_by=token, claimed_until=now + lease)
        .returning(OutboxRow)
        .execution_options(synchronize_session=False)
    )
    return sorted(claimed.scalars().all(), key=lambda row: row.id or 0)


def _set(session: Session | Connection, row: OutboxRow, **values: Any) -> bool:
    """Update a row this worker holds; False when its claim was lost (the lease ran out and
    another worker took it), in which case nothing is written."""
    # Once a message, so as cheap as it gets: one statement made once, its values bound as the
    # columns to set, run on the connection (past the ORM, which has nothing to do here).
    connection = session.connection() if isinstance(session, Session) else session
    params = {"held_id": row.id, "held_by": row.claimed_by, **values}
    return bool(connection.execute(_HELD, params).rowcount)


_HELD = (
    update(_TABLE)
    .where(
        _TABLE.c.id == bindparam("held_id"),
        _TABLE.c.claimed_by == bindparam("held_by"),
        _TABLE.c.state == "sending",
    )
    .values(claimed_until=None)
)


def mark_sent(
    session: Session | Connection, row: OutboxRow, now: datetime, refused: dict[str, str]
) -> bool:
    """Record that the server accepted the message (``refused``: the recipients it did not);
    False, and nothing written, when this worker's claim on it was lost. With a plain
    connection (a batch's messages, settled one by one, see ``Transactions``) or a session."""
    done = _set(
        session,
        row,
        state="sent",
        sent_at=now,
        attempts=row.attempts + 1,
        refused=refused,
        last_error=None,
    )
    if done and row.kind == "reminder" and row.party_id is not None:
        # The escalation is timed from the last reminder actually sent: the party is due for a
        # look (parties.due_at, engine.runtime.due).
        connection = session.connection() if isinstance(session, Session) else session
        mark_due(connection, row.round_id, row.party_id, now)
    return done


def mark_due(session: Session | Connection, round_id: str, party_id: str, now: datetime) -> None:
    """Something changed what may be due for a party: the next tick looks at it."""
    session.execute(_MARK_DUE, {"_round": round_id, "_party": party_id, "_now": now})


_PARTIES = PartyRow.__table__.c  # type: ignore[attr-defined]
_MARK_DUE = (  # made once: a reminder sent marks its party (a statement built each time costs more)
    update(PartyRow.__table__)  # type: ignore[attr-defined]
    .where(
        _PARTIES.round_id == bindparam("_round"),
        _PARTIES.party_id == bindparam("_party"),
        _PARTIES.due_at.is_(None) | (_PARTIES.due_at > bindparam("_now")),
    )
    .values(due_at=bindparam("_now"))
)


def mark_retry(
    session: Session | Connection, row: OutboxRow, now: datetime, delay: float, error: str
) -> bool:
    return _set(
        session,
        row,
        state="pending",
        attempts=row.attempts + 1,
        next_attempt_at=now + timedelta(seconds=delay),
        last_error=error[:500],
    )


def mark_deferred(session: Session, row: OutboxRow, until: datetime) -> bool:
    """Back to pending until ``until``, no attempt counted (a reminder outside working hours)."""
    return _set(session, row, state="pending", next_attempt_at=until)


def mark_failed(session: Session, row: OutboxRow, error: str) -> bool:
    return _set(session, row, state="failed", attempts=row.attempts + 1, last_error=error[:500])


def mark_skipped(session: Session, row: OutboxRow, reason: str) -> bool:
    return _set(session, row, state="skipped", last_error=reason[:500])


def withdraw(session: Session, row: OutboxRow, reason: str) -> bool:
    """Skip a message still waiting (not one a worker holds now: that one is in flight)."""
    result = session.execute(
        update(OutboxRow)
        .where(col(OutboxRow.id) == row.id, col(OutboxRow.state) == "pending")
        .values(state="skipped", last_error=reason[:500])
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def messages(
    session: Session, state: str | None = None, round_id: str | None = None
) -> Sequence[OutboxRow]:
    query = select(OutboxRow).order_by(col(OutboxRow.id))
    if state is not None:
        query = query.where(OutboxRow.state == state)
    if round_id is not None:
        query = query.where(OutboxRow.round_id == round_id)
    return session.exec(query).all()


def retry(session: Session, row_id: int, now: datetime) -> OutboxRow:
    """Send a failed (or skipped) message again at the next tick."""
    row = session.get(OutboxRow, row_id)
    if row is None:
        raise NotFound(f"no outbox message {row_id}; {{cmd.outbox}} lists them", field="id")
    if row.state not in ("failed", "skipped"):
        raise Refused(f"message {row_id} is {row.state}; only failed or skipped ones are retried")
    session.execute(
        update(OutboxRow)
        .where(col(OutboxRow.id) == row.id)
        .values(state="pending", next_attempt_at=now, last_error=None)
        .execution_options(synchronize_session=False)
    )
    session.refresh(row)
    return row


def counts(session: Session, round_id: str) -> dict[str, int]:
    """A round's messages by delivery state: a coordinator sees failures where they look."""
    rows = session.exec(
        select(OutboxRow.state, func.count())
        .where(OutboxRow.round_id == round_id)
        .group_by(col(OutboxRow.state))
    ).all()
    return {state: count for state, count in rows}


def _stem(key: str) -> str:
    """A chase's key, from the key of one of its rows (which adds the language or "coordinator",
    never containing a colon, as the last part)."""
    return key.rsplit(":", 1)[0]


def chase_history(session: Session, round_id: str) -> tuple[set[str], dict[str, datetime]]:
    """The chases (reminders, escalations) of a round already queued, and those sent, with when."""
    return chase_histories(session, [round_id])[round_id]


History = tuple[set[str], dict[str, datetime]]


def chase_histories(session: Session, round_ids: Sequence[str]) -> dict[str, History]:
    """:func:`chase_history` of several rounds, in a query per few hundred of them."""
    found: dict[str, History] = {r: (set(), {}) for r in round_ids}
    for start in range(0, len(round_ids), 500):
        rows = session.exec(
            select(OutboxRow.round_id, OutboxRow.key, OutboxRow.state, OutboxRow.sent_at).where(
                col(OutboxRow.round_id).in_(round_ids[start : start + 500]),
                col(OutboxRow.kind).in_(CHASE_KINDS),
            )
        ).all()
        for round_id, key, state, at in rows:
            queued, sent = found[round_id]
            queued.add(_stem(key))
            if state == "sent" and at:
                sent[_stem(key)] = at
    return found


def supersede(
    session: Session, round_id: str, party_id: str, step: str, key: str, kind: str = "reminder"
) -> None:
    """A newer reminder (``key``, of ``kind``) of a step replaces any older one of the same kind
    and step (its keys begin with ``step``) still waiting to go out: the party gets the newer
    one only."""
    params = {
        "_kind": kind,
        "_round": round_id,
        "_party": party_id,
        "_step": step,
        "_mine": key + ":",
        "_why": f"superseded by {key}",
    }
    session.execute(_SUPERSEDE, params)


_SUPERSEDE = (  # made once: every reminder queued runs it
    update(_TABLE)
    .where(
        _TABLE.c.round_id == bindparam("_round"),
        _TABLE.c.party_id == bindparam("_party"),
        _TABLE.c.kind == bindparam("_kind"),
        _TABLE.c.state == "pending",
        _TABLE.c.key.startswith(bindparam("_step")),
        ~_TABLE.c.key.startswith(bindparam("_mine")),
    )
    .values(state="skipped", last_error=bindparam("_why"))
)


def exists(session: Session, key: str) -> bool:
    """Whether a message with ``key`` was ever queued."""
    return session.exec(select(OutboxRow.id).where(OutboxRow.key == key)).first() is not None


def latest(session: Session, kind: str) -> OutboxRow | None:
    """The last message of ``kind`` queued, whatever became of it."""
    return session.exec(
        select(OutboxRow).where(OutboxRow.kind == kind).order_by(col(OutboxRow.id).desc())
    ).first()


def addressed_to(
    session: Session, round_id: str, party_id: str, email: str, states: tuple[str, ...]
) -> list[OutboxRow]:
    """A party's messages to one address alone, in these delivery states (a contact changed)."""
    rows = session.exec(
        select(OutboxRow).where(
            OutboxRow.round_id == round_id,
            OutboxRow.party_id == party_id,
            col(OutboxRow.state).in_(states),
        )
    ).all()
    return [r for r in rows if r.recipients == [email]]


def waiting_of_kind(session: Session, kind: str) -> list[tuple[str, str]]:
    """The (round id, language) pairs of the messages of a kind that wait to be sent."""
    rows = session.exec(
        select(OutboxRow.round_id, OutboxRow.language)
        .where(OutboxRow.kind == kind, col(OutboxRow.state).in_(("pending", "sending")))
        .distinct()
    ).all()
    return [(r, lang) for r, lang in rows]


def waiting_zones(session: Session) -> list[str]:
    """The timezones of the rounds with messages waiting to be sent (or held by a worker), in
    order: where a worker claims. Those of every round would be a scan of the rounds at every
    tick, for nothing to send in most of them."""
    waiting = select(OutboxRow.round_id).where(col(OutboxRow.state).in_(("pending", "sending")))
    zones = select(RoundRow.timezone).where(col(RoundRow.id).in_(waiting)).distinct()
    return sorted(session.exec(zones).all())
