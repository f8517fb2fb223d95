"""Reading the log for auditors: entries, heads, exports, and verifying the database or an export.

The use cases return frozen values (:class:`HeadReport`, :class:`VerifyReport`); the interfaces
word them.
"""

from __future__ import annotations

import json
import os
import re
from collections import namedtuple
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from functools import partial
from pathlib import Path
from typing import Any, Protocol, cast
from weakref import WeakKeyDictionary

from sqlalchemy import JSON, Connection, Dialect, Engine, String, Table, bindparam, type_coerce
from sqlalchemy import select as core_select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.elements import BindParameter
from sqlmodel import Session, col, select

from engine.agreement import sha256_text
from engine.core.chain import (
    ChainChecker,
    ChainReport,
    Entry,
    combined_sha256,
    format_time,
    parse_head,
)
from engine.core.export import to_csv, to_jsonl
from engine.core.export_stream import ExportStream
from engine.core.replay import Replayed, Replayer
from engine.errors import InvalidInput, VerificationFailed
from engine.persistence.database import ensure_schema, transaction
from engine.persistence.tables import DocumentRow, LogRow, PartyRow, RoundRow
from engine.runtime.journal import entry_dict, snapshot
from engine.runtime.lookup import resolve_round
from workflows import default_catalog

__all__ = [
    "HeadFound",
    "HeadReport",
    "VerifyReport",
    "export",
    "heads",
    "log_entries",
    "round_heads",
    "verify",
    "verify_database",
    "verify_file",
]


@dataclass(frozen=True)
class HeadReport:
    """A round's head as the database records it: its log's length and its last entry's hash.
    ``audit verify`` checks these anchors against the log; a copy kept elsewhere checks them."""

    round: str
    entries: int
    head: str


@dataclass(frozen=True)
class HeadFound:
    """Where a head an auditor noted is in a verified chain: entry #``seq`` of ``round``, with
    ``after`` entries after it (0: it is still the head; more: the log grew since)."""

    round: str
    seq: int
    after: int


@dataclass(frozen=True)
class VerifyReport:
    """What verified: one chain per round (one for a file), and where the expected head is."""

    chains: tuple[ChainReport, ...]
    file: Path | None = None  # the export verified; None: the database
    expected: HeadFound | None = None  # where the head asked for is, when one was


def _entries(session: Session, round_id: str) -> list[Entry]:
    rows = session.exec(
        select(LogRow).where(LogRow.round_id == round_id).order_by(col(LogRow.seq))
    ).all()
    return [entry_dict(r) for r in rows]


# How many log rows verify fetches from the database at a time: it holds no more than these.
YIELD_PER = 1000
_LOG: Table = LogRow.__table__  # type: ignore[attr-defined]
_LOG_COLUMNS = (
    _LOG.c.seq,
    _LOG.c.round_id,
    _LOG.c.party_id,
    _LOG.c.event,
    _LOG.c.from_state,
    _LOG.c.to_state,
    _LOG.c.actor,
    _LOG.c.recorded_at,
    _LOG.c.clock,
    _LOG.c.evidence,
    _LOG.c.document_sha256,
    _LOG.c.prev_hash,
    _LOG.c.hash,
)
_EVIDENCE = _LOG_COLUMNS.index(_LOG.c.evidence)


def _entry(
    row: Sequence[Any],
    recorded_at: Callable[[Any], str] = format_time,
    evidence_of: Callable[[Any], Any] | None = None,
) -> Entry:
    """:func:`~engine.runtime.journal.entry_dict` of a row of :data:`_LOG_COLUMNS`, its time
    spelt by ``recorded_at`` (and its evidence, as the driver gave it, read by ``evidence_of``)."""
    seq, round_id, party, event, from_state, to_state, actor, at, clock, evidence, doc, prev, h = (
        row
    )
    if evidence_of is not None:  # read before the time, as SQLAlchemy's row would have it read
        evidence = evidence_of(evidence)
    return {
        "seq": seq,
        "round": round_id,
        "party": party,
        "event": event,
        "from_state": from_state,
        "to_state": to_state,
        "actor": actor,
        "recorded_at": recorded_at(at),
        "clock": clock,
        "evidence": evidence,
        "document_sha256": doc,
        "prev_hash": prev,
        "hash": h,
    }


# How SQLite keeps an entry's time: the text SQLAlchemy writes for a UTC moment (years from 1000).
_STORED_TIME = re.compile(r"[1-9][0-9]{3}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}")


def _sqlite_times(dialect: Dialect) -> Callable[[Any], str]:
    """How an entry's time reads from SQLite's text, as it reads through its column's type (the
    text parsed to a UTC datetime, spelt by :func:`format_time`), but without the datetime when
    the text is what SQLAlchemy writes: that spelling is the text's own, "T" and "Z" added. Any
    other text, or an impossible date, goes through the type and meets its fate there."""
    processor = _LOG.c.recorded_at.type.dialect_impl(dialect).result_processor(dialect, None)
    assert processor is not None  # UTCDateTime's: the impl's parsing, then process_result_value
    parse: Callable[[Any], Any] = processor

    def recorded_at(text: Any) -> str:
        if type(text) is str and _STORED_TIME.fullmatch(text):
            try:
                datetime.fromisoformat(text)  # a date and time that exist
            except ValueError:
                pass
            else:
                return f"{text[:10]}T{text[11:]}Z"
        return format_time(parse(text))

    return recorded_at


_ROUND_ID: BindParameter[Any] = bindparam("round_id")


@dataclass(frozen=True)
class _LogQuery:
    """How verify reads a round's log on one dialect: the statement, how an entry's time is spelt,
    and on SQLite the statement's SQL to run on the driver's own cursor, with the evidence
    column's result processor (the only column but the time with one there)."""

    statement: Any
    recorded_at: Callable[[Any], str]
    sql: str | None = None
    evidence: Callable[[Any], Any] | None = None


# The statement that streams a round's log, by engine's dialect: built once, not per round (a
# select and its cache key cost as much as reading a short log).
_LOG_QUERIES: WeakKeyDictionary[Dialect, _LogQuery] = WeakKeyDictionary()


def _log_query(dialect: Dialect) -> _LogQuery:
    found = _LOG_QUERIES.get(dialect)
    if found is None:
        found = _LOG_QUERIES[dialect] = _made_log_query(dialect)
    return found


def _made_log_query(dialect: Dialect) -> _LogQuery:
    statement = core_select(*_LOG_COLUMNS).where(_LOG.c.round_id == _ROUND_ID).order_by(_LOG.c.seq)
    if dialect.name != "sqlite":
        return _LogQuery(statement, format_time)
    # SQLite's times come as text: spelt from the text (_sqlite_times). Its rows are read from the
    # driver's cursor, a row at a time, and each column processed as SQLAlchemy would process it
    # (its type's result processor): the same values, without SQLAlchemy's work per row, which
    # was a third of reading one. Only where no column but the time and the evidence has one.
    at = _LOG_COLUMNS.index(_LOG.c.recorded_at)
    coerced = (*_LOG_COLUMNS[:at], type_coerce(_LOG.c.recorded_at, String), *_LOG_COLUMNS[at + 1 :])
    statement = core_select(*coerced).where(_LOG.c.round_id == _ROUND_ID).order_by(_LOG.c.seq)
    recorded_at = _sqlite_times(dialect)
    processors = [_processor(c.type, dialect) for c in coerced]
    evidence = processors[_EVIDENCE]
    compiled = statement.compile(dialect=dialect)
    if (
        any(p is not None for i, p in enumerate(processors) if i != _EVIDENCE)
        or evidence is None
        or not compiled.positional
        or list(compiled.positiontup or ()) != ["round_id"]
    ):
        return _LogQuery(statement, recorded_at)
    return _LogQuery(statement, recorded_at, compiled.string, evidence)


def _processor(type_: Any, dialect: Dialect) -> Callable[[Any], Any] | None:
    """The result processor of a column of ``type_`` on ``dialect``, as SQLAlchemy's rows apply
    it; a JSON column's with json.loads's scanner called at once (:func:`_json_values`)."""
    processor: Callable[[Any], Any] | None = type_.dialect_impl(dialect).result_processor(
        dialect, None
    )
    if processor is not None and isinstance(type_, JSON) and dialect._json_deserializer is None:
        return _json_values(processor)
    return processor


def _json_values(processor: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """The JSON column's ``processor`` (json.loads, on SQLite), with the scanner json.loads ends in
    called at once for the text of an object or an array: json.loads of such a text is
    scan_once's value when it reads the text to its end (json.loads skips the whitespace before
    it, finds none after). Anything else (another text, an error, text after the value) goes
    through the processor, which raises what it raises."""
    decoder = json.JSONDecoder()  # json.loads's: json's defaults
    scan: Callable[[str, int], tuple[Any, int]] = decoder.scan_once  # type: ignore[attr-defined]

    def value_of(value: Any) -> Any:
        if type(value) is str and value[:1] in _OPENING:
            try:
                found, end = scan(value, 0)
            except Exception:  # the processor says what it is
                pass
            else:
                if end == len(value):
                    return found
        return processor(value)

    return value_of


_OPENING = ("{", "[")


def _stream(session: Session, round_id: str) -> Iterator[Entry]:
    """A round's entries, oldest first, read :data:`YIELD_PER` rows at a time as plain rows (no
    ORM objects; on SQLite a row at a time from the driver) and made entries one by one: the log
    is never in memory whole."""
    connection = session.connection()
    query = _log_query(connection.dialect)
    if query.sql is None or query.evidence is None:
        rows = connection.execute(
            query.statement, {"round_id": round_id}, execution_options={"yield_per": YIELD_PER}
        )
        yield from map(partial(_entry, recorded_at=query.recorded_at), rows)
        return
    made = partial(_entry, recorded_at=query.recorded_at, evidence_of=query.evidence)
    yield from map(made, _driver_rows(connection, query.sql, round_id))


def _driver_rows(connection: Connection, sql: str, round_id: str) -> Iterator[Any]:
    """The rows of ``sql`` run on the driver's cursor of the session's connection (in its
    transaction), as tuples; the driver's errors as SQLAlchemy raises them."""
    dbapi_error = connection.dialect.loaded_dbapi.Error
    try:
        cursor = connection.connection.cursor()
        try:
            cursor.execute(sql, (round_id,))
            yield from cast(Iterable[Any], cursor)
        finally:
            cursor.close()
    except dbapi_error as exc:
        raise DBAPIError.instance(sql, (round_id,), exc, dbapi_error) from exc


def log_entries(engine: Engine, ref: str) -> list[Entry]:
    ensure_schema(engine)
    with transaction(engine) as session:
        return _entries(session, resolve_round(session, ref).id)


def export(engine: Engine, ref: str, fmt: str) -> str:
    if fmt not in ("jsonl", "csv"):
        raise InvalidInput(f"{{opt.format}} {fmt!r}: use jsonl or csv", field="format")
    entries = log_entries(engine, ref)
    return to_jsonl(entries) if fmt == "jsonl" else to_csv(entries)


class _Anchored(Protocol):
    """What verify reads of a round: a RoundRow, or a plain row of :data:`_ROUNDS`."""

    @property
    def id(self) -> str: ...
    @property
    def log_length(self) -> int: ...
    @property
    def log_head(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def effective_date(self) -> date | None: ...
    @property
    def document_sha256(self) -> str: ...


_ROUND: Table = RoundRow.__table__  # type: ignore[attr-defined]
_ROUNDS = core_select(
    *(_ROUND.c[name] for name in ("id", "log_length", "log_head", "state", "effective_date")),
    _ROUND.c.document_sha256,
).order_by(_ROUND.c.agreement_id, _ROUND.c.number)


def _rounds(session: Session) -> list[_Anchored]:
    """Every round, oldest agreement and round first, as plain rows of what verify checks."""
    return list(session.connection().execute(_ROUNDS))


def round_heads(session: Session, ref: str | None = None) -> list[HeadReport]:
    """Every round's head (or one round's), oldest agreement and round first, as this session
    sees the database: read column by column, so an update earlier in the transaction counts."""
    query = select(RoundRow.id, RoundRow.log_length, RoundRow.log_head)
    if ref is not None:
        query = query.where(RoundRow.id == resolve_round(session, ref).id)
    rows = session.exec(query.order_by(col(RoundRow.agreement_id), col(RoundRow.number))).all()
    return [HeadReport(round_id, length, head) for round_id, length, head in rows]


def heads(engine: Engine, ref: str | None = None) -> list[HeadReport]:
    """``ratify audit head``: what to note down, or send a witness, to hold the log to account."""
    ensure_schema(engine)
    with transaction(engine) as session:
        return round_heads(session, ref)


def verify(
    engine: Engine, ref: str | None = None, *, expect_head: str | None = None
) -> VerifyReport:
    """Check every round's chain (or one round's), its anchors, and that replaying it gives the
    stored states; with ``expect_head``, also that the chain still holds that head.

    Raises :class:`VerificationFailed` naming the first bad entry, or when no chain verified holds
    the expected head: it was the head once, so the log was rewritten or cut short since.
    """
    wanted = parse_head(expect_head) if expect_head is not None else None
    ensure_schema(engine)
    reports = []
    found: HeadFound | None = None
    with transaction(engine) as session:
        if ref is None:
            rounds = _rounds(session)
            known = {r.id for r in rounds}
            orphans = (
                session.connection()
                .execute(core_select(_LOG.c.round_id).where(_LOG.c.round_id.not_in(known)).limit(1))
                .scalar()
            )
            if orphans is not None:
                raise VerificationFailed(
                    f"log entries of round {orphans} exist but the round does not"
                )
        else:
            rounds = [resolve_round(session, ref)]
        for row in rounds:
            report, seen = _verify_round(session, row, wanted if found is None else None)
            reports.append(report)
            if seen is not None:
                found = HeadFound(row.id, seen, report.entries - seen)
    if wanted is not None and found is None:
        raise _head_gone(wanted, reports)
    return VerifyReport(tuple(reports), expected=found)


@dataclass
class _Texts:
    """What the log says of the round's texts, gathered as it streams: the launch's hash (version
    1) and each round amendment's evidence and hash."""

    first: list[Any] = field(default_factory=list)  # the first entry's hash, once there is one
    amends: list[tuple[Any, Any]] = field(default_factory=list)

    def feed(self, entry: Mapping[str, Any]) -> None:
        if not self.first:
            self.first.append(entry["document_sha256"])
        if entry["event"] == "amend" and entry["party"] is None:
            self.amends.append((entry["evidence"], entry["document_sha256"]))

    def versions(self) -> dict[Any, Any]:
        """The texts' hashes by version: the launch's for version 1, each amend's after."""
        logged: dict[Any, Any] = {1: self.first[0]} if self.first else {}
        for evidence, sha256 in self.amends:
            logged[evidence.get("version")] = sha256
        return logged


def _verify_round(
    session: Session, row: _Anchored, watch: str | None
) -> tuple[ChainReport, int | None]:
    """Check one round as its entries stream by: the chain, its anchors, the replay, the stored
    states and texts. The report, and the seq of the entry whose hash is ``watch`` (or None).

    Nothing is raised before every row is read, so that what is reported is what reading the whole
    log first, then checking its chain, then replaying it would report: a row that cannot be read
    at all, else the chain's first bad entry, else the first entry replay refuses."""
    checker = ChainChecker(
        row.id, expected_length=row.log_length, expected_head=row.log_head, watch=watch
    )
    replayer = Replayer(default_catalog().machine)
    refused: Exception | None = None  # what replaying an entry raised: raised once the chain holds
    texts = _Texts()
    try:
        for entry in _stream(session, row.id):
            if not checker.feed(entry):
                continue  # the chain is broken: the rest is read, not checked
            texts.feed(entry)
            if refused is None:
                try:
                    replayer.feed(entry)
                except Exception as exc:  # raised below, after the chain's own problems
                    refused = exc
    except RecursionError:  # JSON nested thousands deep: not something ratify wrote
        raise VerificationFailed(
            f"round {row.id}: an entry's evidence nests too deeply to be read"
        ) from None
    report = checker.report()
    if report.problem:
        raise VerificationFailed(report.problem)
    rebuilt = _replayed(replayer, refused, f"round {row.id}")
    _compare(session, row, rebuilt, texts)
    return report, checker.seen


def verify_database(engine: Engine, ref: str | None = None) -> list[ChainReport]:
    """The chains of :func:`verify`, for callers that want only those."""
    return list(verify(engine, ref).chains)


def _head_gone(head: str, reports: Sequence[ChainReport]) -> VerificationFailed:
    why = "the log was rewritten or cut short since that head was noted"
    if not reports:
        return VerificationFailed(
            f"no round's log has an entry with the hash {head}: there are no rounds"
        )
    if len(reports) == 1:
        (r,) = reports
        return VerificationFailed(
            f"round {r.round}: no entry of its log has the hash {head}: {why}; "
            f"it now ends at entry #{r.entries}, hash {r.head}"
        )
    return VerificationFailed(
        f"none of the {len(reports)} rounds' logs has an entry with the hash {head}: one was "
        f"rewritten or cut short since that head was noted (or the head is not of this database)"
    )


def _replayed(replayer: Replayer, refused: Exception | None, where: str) -> Replayed:
    """The replay's outcome (``refused``: what feeding it an entry raised), with whatever a
    crafted log trips in it reported as the failure it is."""
    try:
        if refused is not None:
            raise refused
        return replayer.finish()
    except VerificationFailed as exc:
        prefix = where.partition(": round ")[0]  # the file's path, for an export
        if prefix != where and not str(exc).startswith(prefix):
            raise VerificationFailed(f"{prefix}: {exc}") from None
        raise
    except (
        ArithmeticError,  # a time at the edge of the calendar, moved to the round's timezone
        AttributeError,
        LookupError,
        OSError,  # a "timezone" that is no file name
        RecursionError,
        TypeError,
        ValueError,
    ) as exc:
        detail = str(exc) if len(str(exc)) <= 200 else str(exc)[:197] + "..."
        raise VerificationFailed(
            f"{where}: replaying the log fails ({type(exc).__name__}: {detail}); it is not a log "
            "that ratify wrote"
        ) from None


# What _compare reads of a round's parties and texts: the columns snapshot() and the check ask
# for, as plain rows named as PartyRow's and DocumentRow's attributes.
_PARTY: Table = PartyRow.__table__  # type: ignore[attr-defined]
_DOCUMENT: Table = DocumentRow.__table__  # type: ignore[attr-defined]
_PARTY_COLUMNS = (
    "party_id",
    "workflow",
    "workflow_version",
    "state",
    "bodies",
    "step",
    "await_legal_force",
    "notice_days",
    "signatures_required",
    "signatures",
    "signatories",
    "legal_force_from",
)


class _RoundRows:
    """A select of one round's rows (``round_id`` its parameter), run as SQLAlchemy runs it but on
    SQLite, where it is run on the driver's cursor and each value processed by its column's result
    processor, as SQLAlchemy's row processes it, in the same order: the same rows (named tuples),
    without SQLAlchemy's work per statement, which is most of reading a round's parties."""

    def __init__(self, statement: Any) -> None:
        self.statement = statement
        names = [c.key for c in statement.selected_columns]
        self._row: Any = namedtuple("_Row", names)  # type: ignore[misc]
        self._plans: WeakKeyDictionary[Dialect, tuple[str, list[Any]] | None] = WeakKeyDictionary()

    def _plan(self, dialect: Dialect) -> tuple[str, list[Any]] | None:
        if dialect in self._plans:
            return self._plans[dialect]
        plan = None
        compiled = self.statement.compile(dialect=dialect)
        if (
            dialect.name == "sqlite"
            and compiled.positional
            and list(compiled.positiontup or ()) == ["round_id"]
        ):
            processors = [_processor(c.type, dialect) for c in self.statement.selected_columns]
            plan = (compiled.string, processors)
        self._plans[dialect] = plan
        return plan

    def all(self, connection: Connection, round_id: str) -> list[Any]:
        plan = self._plan(connection.dialect)
        if plan is None:
            return list(connection.execute(self.statement, {"round_id": round_id}))
        sql, processors = plan
        processed = [(i, p) for i, p in enumerate(processors) if p is not None]
        make, rows = self._row._make, []
        for row in _driver_rows(connection, sql, round_id):
            values = list(row)
            for i, processor in processed:  # in the columns' order, as SQLAlchemy's row
                values[i] = processor(values[i])
            rows.append(make(values))
        return rows


_PARTIES_OF = _RoundRows(
    core_select(*(_PARTY.c[name] for name in _PARTY_COLUMNS)).where(_PARTY.c.round_id == _ROUND_ID)
)
_DOCUMENTS_OF = _RoundRows(
    core_select(_DOCUMENT.c.version, _DOCUMENT.c.sha256, _DOCUMENT.c.text, _DOCUMENT.c.texts).where(
        _DOCUMENT.c.round_id == _ROUND_ID
    )
)


def _compare(session: Session, row: _Anchored, rebuilt: Replayed, texts: _Texts) -> None:
    if rebuilt.state != row.state or rebuilt.effective_date != row.effective_date:
        raise VerificationFailed(
            f"round {row.id}: stored as {row.state} (effective {row.effective_date}) but its log "
            f"makes it {rebuilt.state} (effective {rebuilt.effective_date})"
        )
    if rebuilt.document_sha256 != row.document_sha256:
        raise VerificationFailed(
            f"round {row.id}: its document hash is not the one its log ends with"
        )
    connection = session.connection()
    stored = {p.party_id: p for p in _PARTIES_OF.all(connection, row.id)}
    if set(stored) != set(rebuilt.parties):
        raise VerificationFailed(
            f"round {row.id}: parties {sorted(stored)} stored, {sorted(rebuilt.parties)} launched"
        )
    for party_id, party in rebuilt.parties.items():
        # The row has the columns snapshot() reads, by the names PartyRow gives them.
        mine = snapshot(cast(PartyRow, stored[party_id]))
        if mine != party:
            differ = [
                f.name for f in fields(party) if getattr(mine, f.name) != getattr(party, f.name)
            ]
            raise VerificationFailed(
                f"round {row.id} party {party_id}: its stored {', '.join(differ)} "
                f"differ(s) from what its log makes it (state {party.state}); the party's row "
                "was changed outside ratify"
            )
    logged = texts.versions()  # the texts' hashes as the log has them
    documents = _DOCUMENTS_OF.all(connection, row.id)
    if {d.version: d.sha256 for d in documents} != logged:
        raise VerificationFailed(
            f"round {row.id}: its stored texts are not the versions its log records "
            f"({len(documents)} stored, {len(logged)} in the log); a text was replaced"
        )
    for document in documents:
        _check_texts(row.id, document.version, document.sha256, document.text, document.texts)


def _check_texts(
    round_id: str, version: int, sha256: str, text: str, texts: list[dict[str, Any]] | None
) -> None:
    """A stored version's text matches its hash; with several languages, each text its own and
    their combined hash the version's (engine.core.chain.combined_sha256)."""
    if not texts:
        if sha256_text(text) != sha256:
            raise VerificationFailed(
                f"round {round_id}: the text of document version {version} does not "
                f"match its SHA-256 {sha256[:16]}…; it was changed"
            )
        return
    for given in texts:
        if sha256_text(str(given.get("text", ""))) != given.get("sha256"):
            raise VerificationFailed(
                f"round {round_id}: the {given.get('language')} text of document version "
                f"{version} does not match its SHA-256 {str(given.get('sha256'))[:16]}…; "
                "it was changed"
            )
    hashes = {str(t.get("language")): str(t.get("sha256")) for t in texts}
    if combined_sha256(hashes) != sha256 or texts[0].get("text") != text:
        raise VerificationFailed(
            f"round {round_id}: the texts of document version {version} are not the ones its "
            f"combined SHA-256 {sha256[:16]}… was taken of; they were changed"
        )


def verify_file(path: Path, *, expect_head: str | None = None) -> VerifyReport:
    """Verify an export on its own, with no database: its chain, its replay, and with
    ``expect_head`` that the chain holds that head.

    A file that cannot be read at all is :class:`InvalidInput` (exit 2); one that can but is no
    intact export (not UTF-8, not what ratify writes, a broken chain) :class:`VerificationFailed`.
    """
    wanted = parse_head(expect_head) if expect_head is not None else None
    checker: ChainChecker | None = None  # made with the first entry: its round's chain
    replayer, refused = Replayer(default_catalog().machine), None
    try:
        with path.open("rb") as file:
            reading = ExportStream(
                file, csv_format=path.suffix.lower() == ".csv", size=os.fstat(file.fileno()).st_size
            )
            # As _verify_round: entries checked as they are read, and nothing raised before the
            # file has been read to its end (see ExportStream).
            for entry in reading:
                if checker is None:
                    checker = ChainChecker(entry["round"], watch=wanted)
                if not checker.feed(entry) or refused is not None:
                    continue
                try:
                    replayer.feed(entry)
                except Exception as exc:  # raised below, after the chain's own problems
                    refused = exc
    except OSError as exc:
        raise InvalidInput(
            f"{{opt.file}} {path}: cannot read it ({exc.strerror or exc})", field="file"
        ) from None
    if reading.undecodable is not None:
        raise VerificationFailed(
            f"{path}: not a ratify export (not UTF-8 text: byte {reading.undecodable} is not)"
        )
    if reading.problem is not None:
        raise VerificationFailed(f"{path}: {reading.problem.template}")
    if checker is None:
        raise VerificationFailed(f"{path}: has no entries")
    round_id = checker.round
    report = checker.report()
    if report.problem:
        raise VerificationFailed(f"{path}: {report.problem}")
    _replayed(replayer, refused, f"{path}: round {round_id}")
    found = (
        None
        if checker.seen is None
        else HeadFound(round_id, checker.seen, report.entries - checker.seen)
    )
    if wanted is not None and found is None:
        raise VerificationFailed(f"{path}: {_head_gone(wanted, [report]).template}")
    return VerifyReport((report,), file=path, expected=found)
