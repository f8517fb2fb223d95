"""Reading rounds with the database's driver alone (sqlite3, or psycopg for PostgreSQL), without
SQLAlchemy or SQLModel: the command line's read-only commands start in a tenth of the time.

It answers only when sure: a URL it does not read the way SQLAlchemy would, a database that is
missing, empty or of another schema revision, a round it cannot find, any error of the driver's,
and it raises :class:`Unsure`; the caller then takes the full path, which says what is wrong in
its usual words (and makes the schema of an empty database). The columns read are the fields of
:class:`RoundRecord` and :class:`PartyRecord`, which tests hold to the tables of ``tables.py``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "MIGRATIONS",
    "SQLITE_BUSY_TIMEOUT_MS",
    "VERSION_TABLE",
    "PartyRecord",
    "RoundRecord",
    "StatusRows",
    "Unsure",
    "plain_head",
    "read_heads",
    "read_status_rows",
]

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "alembic_version"  # where Alembic keeps the schema's revision
SQLITE_BUSY_TIMEOUT_MS = 10_000  # a writer holds the lock for milliseconds


class Unsure(Exception):
    """This reader cannot answer for sure: take the full path."""


@dataclass(frozen=True)
class RoundRecord:
    """The columns of ``rounds`` a status shows (named as there)."""

    id: str
    agreement_id: str
    title: str
    state: str
    timezone: str
    effective_date: date | None
    document_sha256: str
    document_version: int
    deadline: date | None
    launched_at: datetime
    log_length: int


@dataclass(frozen=True)
class PartyRecord:
    """The columns of ``parties`` a status shows (named as there)."""

    party_id: str
    name: str
    workflow: str
    workflow_version: int
    bodies: list[dict[str, Any]]
    await_legal_force: bool
    notice_days: int
    signatures_required: int
    contacts: list[dict[str, Any]]
    state: str
    step: int
    signatures: list[dict[str, Any]]
    signatories: list[dict[str, Any]]
    legal_force_from: date | None
    since: datetime


# How SQLite holds what SQLAlchemy's types give back decoded (PostgreSQL's driver decodes them
# itself): tests hold these to the tables' column types.
DATES = frozenset({"effective_date", "deadline", "legal_force_from"})
MOMENTS = frozenset({"launched_at", "since"})
JSONS = frozenset({"bodies", "contacts", "signatures", "signatories"})
BOOLS = frozenset({"await_legal_force"})

ROUND_COLUMNS = tuple(f.name for f in dataclasses.fields(RoundRecord))
PARTY_COLUMNS = tuple(f.name for f in dataclasses.fields(PartyRecord))

StatusRows = tuple[RoundRecord, list[PartyRecord], dict[str, int]]


def _decode_sqlite(column: str, value: Any) -> Any:
    if value is None:
        return None
    if column in DATES:
        return date.fromisoformat(value)
    if column in MOMENTS:  # stored naive, in UTC (tables.UTCDateTime)
        moment = datetime.fromisoformat(value)
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    if column in JSONS:
        return json.loads(value)
    if column in BOOLS:
        return bool(value)
    return value


def _decode_postgres(column: str, value: Any) -> Any:
    if column in MOMENTS and value is not None:
        return value.astimezone(UTC)
    return value


class _Cursor(Protocol):
    def execute(self, query: str, params: Sequence[Any] = ..., /) -> Any: ...
    def fetchall(self) -> list[Any]: ...


@functools.cache
def plain_head() -> str | None:
    """This version's schema revision, read from the migration scripts' ``revision`` and
    ``down_revision`` lines; None when they are not that plain (a merge, a branch): Alembic
    must say."""
    found: dict[str, str | None] = {}
    for script in sorted((MIGRATIONS / "versions").glob("*.py")):
        source = script.read_text("utf-8")
        revision, before = _REVISION.search(source), _DOWN_REVISION.search(source)
        if revision is None and before is None:
            continue  # __init__.py, a helper
        if revision is None or before is None:
            return None
        down = before.group(1)
        found[revision.group(1)] = None if down == "None" else down.strip("\"'")
    heads = set(found) - set(found.values())
    if len(heads) != 1 or any(d is not None and d not in found for d in found.values()):
        return None
    return heads.pop()


_REVISION = re.compile(r"^revision(?:\s*:[^=]+)?\s*=\s*[\"']([0-9A-Za-z_]+)[\"']\s*$", re.M)
_DOWN_REVISION = re.compile(
    r"^down_revision(?:\s*:[^=]+)?\s*=\s*(None|[\"'][0-9A-Za-z_]+[\"'])\s*$", re.M
)


def read_status_rows(url: str, ref: str | None) -> list[StatusRows]:
    """Every round (or the one ``ref`` names: its id, or an agreement's latest round) with its
    parties in order and its messages by delivery state, read in one transaction. Raises
    :class:`Unsure` when in doubt."""
    try:
        with _opened(url) as (cursor, mark, decode):
            _check_revision(cursor)
            rounds = _rounds(cursor, mark, ref)
            found = []
            for values in rounds:
                record = RoundRecord(*_decoded(ROUND_COLUMNS, values, decode))
                cursor.execute(_PARTIES.format(mark=mark), (record.id,))
                parties = [
                    PartyRecord(*_decoded(PARTY_COLUMNS, row, decode)) for row in cursor.fetchall()
                ]
                cursor.execute(_OUTBOX.format(mark=mark), (record.id,))
                found.append((record, parties, {s: n for s, n in cursor.fetchall()}))
            return found
    except Unsure:
        raise
    except Exception as exc:  # the driver's errors, and any value not as expected
        raise Unsure(str(exc)) from exc


def _decoded(columns: Sequence[str], values: Sequence[Any], decode: Decode) -> list[Any]:
    return [decode(c, v) for c, v in zip(columns, values, strict=True)]


def read_heads(url: str, ref: str | None) -> list[tuple[str, int, str]]:
    """Every round's id, log length and log head (or the one ``ref`` names), oldest agreement
    and round first, as ``audit.round_heads`` reads them. Raises :class:`Unsure` when in doubt."""
    try:
        with _opened(url) as (cursor, mark, _decode):
            _check_revision(cursor)
            query = "SELECT id, log_length, log_head FROM rounds"
            params: tuple[str, ...] = ()
            if ref is not None:
                query += f" WHERE id = {mark}"
                params = (_rounds(cursor, mark, ref)[0][0],)
            cursor.execute(f"{query} ORDER BY agreement_id, number", params)
            return [(str(r), int(n), str(h)) for r, n, h in cursor.fetchall()]
    except Unsure:
        raise
    except Exception as exc:
        raise Unsure(str(exc)) from exc


_SELECT_ROUNDS = f"SELECT {', '.join(ROUND_COLUMNS)} FROM rounds"
_PARTIES = (
    f"SELECT {', '.join(PARTY_COLUMNS)} FROM parties WHERE round_id = {{mark}} ORDER BY position"
)
# As outbox.counts asks it, so that PostgreSQL gives the states back in the same order.
_OUTBOX = "SELECT state, count(*) FROM outbox WHERE round_id = {mark} GROUP BY state"


def _rounds(cursor: _Cursor, mark: str, ref: str | None) -> list[Any]:
    """As lookup.resolve_round finds them (a round it does not find: the full path says so)."""
    if ref is None:
        cursor.execute(f"{_SELECT_ROUNDS} ORDER BY id")
        return cursor.fetchall()
    cursor.execute(f"{_SELECT_ROUNDS} WHERE id = {mark}", (ref,))
    found = cursor.fetchall()
    if not found and "/" not in ref:
        latest = f"{_SELECT_ROUNDS} WHERE agreement_id = {mark} ORDER BY number DESC LIMIT 1"
        cursor.execute(latest, (ref,))
        found = cursor.fetchall()
    if not found:
        raise Unsure(f"no round {ref!r}")
    return found


def _check_revision(cursor: _Cursor) -> None:
    head = plain_head()
    cursor.execute(f"SELECT version_num FROM {VERSION_TABLE}")  # none: an error, so Unsure
    stored = cursor.fetchall()
    if head is None or len(stored) != 1 or stored[0][0] != head:
        raise Unsure("the schema is not this version's")


Decode = Callable[[str, Any], Any]


@contextmanager
def _opened(url: str) -> Iterator[tuple[_Cursor, str, Decode]]:
    """A cursor in a read-only transaction on ``url``, its parameter mark, and its decoder."""
    path = _sqlite_path(url)
    if path is not None:
        if not os.path.isfile(path):
            raise Unsure("no database file yet: the full path makes it")
        connection = sqlite3.connect(
            path, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000, isolation_level=None
        )
        try:
            cursor = connection.cursor()
            cursor.execute("BEGIN")  # deferred: one snapshot for every read, no write lock
            yield cursor, "?", _decode_sqlite
            cursor.execute("COMMIT")
        finally:
            connection.close()
        return
    conninfo = _postgres_conninfo(url)
    if conninfo is None:
        raise Unsure("a URL only SQLAlchemy reads")
    import psycopg

    with psycopg.connect(conninfo) as pg:
        pg.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        pg.read_only = True
        with pg.cursor() as pg_cursor:
            yield pg_cursor, "%s", _decode_postgres
        pg.rollback()


def _sqlite_path(url: str) -> str | None:
    """The file of a plain ``sqlite:///PATH`` URL; None for another."""
    for scheme in ("sqlite:///", "sqlite+pysqlite:///"):
        if url.startswith(scheme):
            path = url.removeprefix(scheme)
            if not path or any(c in path for c in "?%#") or path.startswith((":", "file:")):
                raise Unsure("a SQLite URL with more than a file's path")
            return os.path.abspath(path)
    return None


def _postgres_conninfo(url: str) -> str | None:
    """A plain ``postgresql[+psycopg]://…`` URL as libpq's; None for another (or with options)."""
    for scheme in ("postgresql://", "postgresql+psycopg://"):
        if url.startswith(scheme) and "?" not in url and "#" not in url:
            return "postgresql://" + url.removeprefix(scheme)
    return None
