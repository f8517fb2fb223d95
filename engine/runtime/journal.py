"""Writing inside one transaction: a party's new state, the round's anchors and the log entries.

Every write is guarded by the row's version column: when another writer got there first the
UPDATE matches no row, :class:`ConcurrentUpdate` is raised and the whole transaction rolls back.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Engine, Table, bindparam, insert, inspect, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session

from engine.core.chain import Entry, entry_hash, format_time
from engine.core.evidence import Signature
from engine.core.party import PartySnapshot
from engine.errors import ConcurrentUpdate, NotFound
from engine.persistence.database import transaction
from engine.persistence.tables import LogRow, PartyRow, RoundRow
from engine.runtime import deliveries
from engine.runtime.direct import Direct
from workflows import Body, ProcessMachine, default_catalog

__all__ = [
    "Journal",
    "entry_dict",
    "lock_round",
    "machine_of",
    "retrying",
    "save_party",
    "snapshot",
]

T = TypeVar("T")

# The statements of every write, made once: building one per event (and its cache key) costs as
# much as the driver's work. Parameters named _x are the WHERE's; the others are the values.
_rounds, _parties = RoundRow.__table__.c, PartyRow.__table__.c  # type: ignore[attr-defined]
_ROUND_SEAL = update(RoundRow.__table__).where(  # type: ignore[attr-defined]
    _rounds.id == bindparam("_id"), _rounds.version == bindparam("_v")
)
_ROUND_SEAL_PLAIN = Direct(
    _ROUND_SEAL.values(
        log_length=bindparam("log_length"),
        log_head=bindparam("log_head"),
        last_entry_at=bindparam("last_entry_at"),
        version=bindparam("version"),
    )
)
_PARTY_SAVE = Direct(
    update(PartyRow.__table__)  # type: ignore[attr-defined]
    .where(
        _parties.round_id == bindparam("_round"),
        _parties.party_id == bindparam("_party"),
        _parties.version == bindparam("_v"),
    )
    .values(
        state=bindparam("state"),
        step=bindparam("step"),
        signatures=bindparam("signatures"),
        legal_force_from=bindparam("legal_force_from"),
        version=bindparam("version"),
        due_at=bindparam("due_at"),
        since=bindparam("since"),
    )
)
_LOG: Table = LogRow.__table__  # type: ignore[attr-defined]
_LOG_INSERT = Direct(insert(_LOG).values({c.key: bindparam(c.key) for c in _LOG.columns}))
ATTEMPTS = 8  # a writer that loses a race decides again from the new state, at most this often


def retrying(engine: Engine, work: Callable[[Session], T]) -> T:
    """Run ``work`` in a transaction; again, from the new state, when a concurrent writer won."""
    for _ in range(ATTEMPTS):
        try:
            with transaction(engine) as session:
                return work(session)
        except ConcurrentUpdate:
            continue
    raise ConcurrentUpdate("the round is busy with other writers; try again")


def lock_round(session: Session, round_id: str) -> RoundRow:
    """The round's row, read afresh under a row lock."""
    row = session.get(RoundRow, round_id, with_for_update=True, populate_existing=True)
    if row is None:
        raise NotFound(f"no round {round_id!r}")
    return row


def machine_of(party: PartyRow | str, version: int | None = None) -> ProcessMachine:
    """The machine of a party's workflow version (or of a name and version), from the catalog:
    the shell looks it up; the pure core is given it."""
    if isinstance(party, PartyRow):
        return default_catalog().machine(party.workflow, party.workflow_version)
    assert version is not None
    return default_catalog().machine(party, version)


def snapshot(row: PartyRow) -> PartySnapshot:
    return PartySnapshot(
        id=row.party_id,
        workflow=row.workflow,
        workflow_version=row.workflow_version,
        state=row.state,
        bodies=tuple(Body(b["name"], b["kind"], b["appeal_days"]) for b in row.bodies),
        step=row.step,
        await_legal_force=row.await_legal_force,
        notice_days=row.notice_days,
        signatures_required=row.signatures_required,
        signatures=tuple(Signature(s["name"], s["title"]) for s in row.signatures),
        signatories=tuple(Signature(s["name"], s["title"]) for s in row.signatories),
        legal_force_from=row.legal_force_from,
    )


def save_party(session: Session, row: PartyRow, new: PartySnapshot, now: datetime) -> None:
    values: dict[str, Any] = {
        "_round": row.round_id,
        "_party": row.party_id,
        "_v": row.version,
        "state": new.state,
        "step": new.step,
        "signatures": [{"name": s.name, "title": s.title} for s in new.signatures],
        "legal_force_from": new.legal_force_from,
        "version": row.version + 1,
        "due_at": now,  # what is due for it may have changed: the next tick looks (runtime.due)
        "since": now if new.state != row.state else row.since,
    }
    if _PARTY_SAVE.rowcount(session.connection(), values) != 1:
        raise ConcurrentUpdate(f"party {row.party_id} was changed by another writer")
    _written(row, {k: v for k, v in values.items() if not k.startswith("_")})


def _written(row: RoundRow | PartyRow, values: dict[str, Any]) -> None:
    """The loaded row as the statement left it in the database (the statements bypass the ORM,
    which would otherwise hand later code of the transaction the old values)."""
    state = inspect(row)
    if state.session_id is None and not state.committed_state:
        row.__dict__.update(values)  # a row read without the ORM (.rows): in no session
        return
    for key, value in values.items():
        set_committed_value(row, key, value)


def entry_dict(row: LogRow) -> Entry:
    return {
        "seq": row.seq,
        "round": row.round_id,
        "party": row.party_id,
        "event": row.event,
        "from_state": row.from_state,
        "to_state": row.to_state,
        "actor": row.actor,
        "recorded_at": format_time(row.recorded_at),
        "clock": row.clock,
        "evidence": row.evidence,
        "document_sha256": row.document_sha256,
        "prev_hash": row.prev_hash,
        "hash": row.hash,
    }


class Journal:
    """The entries one transaction adds to a round's log, and the round's update that seals them."""

    def __init__(
        self, session: Session, round_row: RoundRow, *, actor: str, now: datetime, clock: str
    ) -> None:
        self.session = session
        self.round = round_row
        self.actor = actor
        self.now = now
        self.clock = clock
        self.length = round_row.log_length
        self.head = round_row.log_head
        self.document_sha256 = round_row.document_sha256
        self.entries: list[Entry] = []
        self._rows: list[dict[str, Any]] = []

    def append(
        self,
        event: str,
        *,
        party: str | None = None,
        from_state: str | None = None,
        to_state: str | None = None,
        evidence: dict[str, Any] | None = None,
    ) -> Entry:
        entry: Entry = {
            "seq": self.length + 1,
            "round": self.round.id,
            "party": party,
            "event": event,
            "from_state": from_state,
            "to_state": to_state,
            "actor": self.actor,
            "recorded_at": format_time(self.now),
            "clock": self.clock,
            "evidence": evidence or {},
            "document_sha256": self.document_sha256,
            "prev_hash": self.head,
            "hash": "",  # hashed over every field but this one, next
        }
        entry["hash"] = entry_hash(entry)
        self._rows.append(
            {
                "round_id": self.round.id,
                "seq": entry["seq"],
                "party_id": party,
                "event": event,
                "from_state": from_state,
                "to_state": to_state,
                "actor": self.actor,
                "recorded_at": self.now,
                "clock": self.clock,
                "evidence": entry["evidence"],
                "document_sha256": self.document_sha256,
                "prev_hash": self.head,
                "hash": entry["hash"],
            }
        )
        self.length, self.head = entry["seq"], entry["hash"]
        self.entries.append(entry)
        return entry

    def seal(self, **changes: Any) -> None:
        """Move the round's anchors to the new head (and apply ``changes``), guarded by version,
        then insert the entries. The round goes first: a concurrent writer then waits on the
        round's row and finds its version changed, instead of colliding on the entries' keys."""
        values = {
            "log_length": self.length,
            "log_head": self.head,
            "last_entry_at": self.now,
            "version": self.round.version + 1,
        }
        # On the session's connection: Core statements need none of the ORM's execution (nor
        # its autoflush), and the entries are written, never read back here.
        connection = self.session.connection()
        if changes:
            statement = _ROUND_SEAL.values(**values, **changes)
            params = {"_id": self.round.id, "_v": self.round.version}
            matched = connection.execute(statement, params).rowcount
        else:  # the common case: one statement made once, parameters bound
            params = {"_id": self.round.id, "_v": self.round.version, **values}
            matched = _ROUND_SEAL_PLAIN.rowcount(connection, params)
        if matched != 1:
            raise ConcurrentUpdate(f"round {self.round.id} was changed by another writer")
        _written(self.round, values | changes)
        _LOG_INSERT.many(connection, self._rows)
        # The webhooks' deliveries of these entries, in the same transaction.
        deliveries.enqueue(connection, self.round.id, self.entries, self.now)
