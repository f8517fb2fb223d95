"""The rows a write reads first (its round, locked; its party; its text's date), read as Core
rows through the session's connection, by statements made once.

The ORM's load of one row (a statement built per call, its cache key, the identity map, the
loading machinery) cost more than the database's work for it, and a write needs none of it: it
reads a row, decides, and writes back by version-guarded Core statements (:mod:`.journal`). The
rows come back as instances of the table classes, as the ORM's loading makes them (the columns'
values set on a new instance, no validation: the database's rows are trusted), but in no
session: nothing flushes them, and a later ``session.get`` in the transaction reads afresh.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Table, and_, bindparam, select
from sqlalchemy.orm import configure_mappers
from sqlmodel import Session, SQLModel

from engine.persistence.tables import DocumentRow, PartyRow, RoundRow
from engine.runtime.direct import Direct

__all__ = ["ForRecord", "for_record", "party_row", "text_recorded_at"]

T = TypeVar("T", bound=SQLModel)

_ROUNDS: Table = RoundRow.__table__  # type: ignore[attr-defined]
_PARTIES: Table = PartyRow.__table__  # type: ignore[attr-defined]
_DOCUMENTS: Table = DocumentRow.__table__  # type: ignore[attr-defined]

_PARTY = Direct(
    select(_PARTIES).where(
        _PARTIES.c.round_id == bindparam("round_id"), _PARTIES.c.party_id == bindparam("party_id")
    )
)
_TEXT_DATE = Direct(
    select(_DOCUMENTS.c.recorded_at).where(
        _DOCUMENTS.c.round_id == bindparam("round_id"),
        _DOCUMENTS.c.version == bindparam("version"),
    )
)

# A recorded event's three reads in one: the round, its current text's date, the party. FOR
# UPDATE OF rounds: PostgreSQL locks the round's row until the transaction ends (SQLite, which
# has no row locks, holds the database's write lock from BEGIN IMMEDIATE; its compiler leaves it
# out).
_ROUND_KEYS = tuple(c.key for c in _ROUNDS.columns)
_PARTY_KEYS = tuple(c.key for c in _PARTIES.columns)
_PARTY_ID = len(_ROUND_KEYS) + 1 + _PARTY_KEYS.index("party_id")
_FOR_RECORD = Direct(
    select(
        *(c.label(f"r_{c.key}") for c in _ROUNDS.columns),
        _DOCUMENTS.c.recorded_at.label("d_recorded_at"),
        *(c.label(f"p_{c.key}") for c in _PARTIES.columns),
    )
    .select_from(
        _ROUNDS.outerjoin(
            _DOCUMENTS,
            and_(
                _DOCUMENTS.c.round_id == _ROUNDS.c.id,
                _DOCUMENTS.c.version == _ROUNDS.c.document_version,
            ),
        ).outerjoin(
            _PARTIES,
            and_(_PARTIES.c.round_id == _ROUNDS.c.id, _PARTIES.c.party_id == bindparam("party")),
        )
    )
    .where(_ROUNDS.c.id == bindparam("id"))
    .with_for_update(of=_ROUNDS)
)


@dataclass(frozen=True)
class ForRecord:
    round: RoundRow
    text_from: datetime | None  # when its current text was launched or amended
    party: PartyRow | None  # None: the round has no such party


def for_record(session: Session, round_id: str, party_id: str) -> ForRecord | None:
    """The round's row under its lock, its text's date and the party's row, in one statement;
    None when there is no such round."""
    found = _FOR_RECORD.values(session.connection(), {"id": round_id, "party": party_id})
    if found is None:
        return None
    n = len(_ROUND_KEYS)
    party = None
    if found[_PARTY_ID] is not None:
        party = _instance(PartyRow, dict(zip(_PARTY_KEYS, found[n + 1 :], strict=True)))
    return ForRecord(
        _instance(RoundRow, dict(zip(_ROUND_KEYS, found[:n], strict=True))), found[n], party
    )


_mapped: list[bool] = []  # whether configure_mappers() has run in this process


def _instance(cls: type[T], values: dict[str, Any]) -> T:
    """A row as an instance of its table's class, made as the ORM's loading makes one."""
    if not _mapped:  # the ORM configures its classes at its first query; none may have run yet
        configure_mappers()
        _mapped.append(True)
    made: T = cls._sa_class_manager.new_instance()  # type: ignore[attr-defined]
    made.__dict__.update(values)
    return made


def party_row(session: Session, round_id: str, party_id: str) -> PartyRow | None:
    found = _PARTY.first(session.connection(), {"round_id": round_id, "party_id": party_id})
    return None if found is None else _instance(PartyRow, found)


def text_recorded_at(session: Session, round_id: str, version: int) -> datetime | None:
    """When the round's text of ``version`` was launched or amended (its row's date alone: not
    the text itself, which may be long)."""
    found = _TEXT_DATE.first(session.connection(), {"round_id": round_id, "version": version})
    return None if found is None else found["recorded_at"]
