"""Building big databases fast: one round made through the service layer, then copied in bulk.

Launching 100,000 parties one round at a time would take longer than any measurement; instead
:func:`replicate` copies a round made by ratify itself (its row, its text, its parties and its
log) under new ids, many rows per statement. Each copy's log is chained anew (every entry's hash
covers its round's id, so each is recomputed with :mod:`engine.core.chain`), and its anchors
(length, head) are the copy's own: ``audit verify`` passes on every copy. The outbox is copied
only when asked (``outbox=True``: the messages waiting to go).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import count
from typing import Any

from sqlalchemy import Engine, Table, insert, select, update

from bench.common import EXAMPLE, LAUNCH
from engine.clock import FakeClock
from engine.core.chain import Entry, entry_hash, format_time
from engine.persistence.tables import DocumentRow, LogRow, OutboxRow, PartyRow, RoundRow
from engine.runtime import Evidence, launch, load_agreement, record, status, tick

__all__ = ["Copy", "copies", "launch_example", "move_parties", "play_to_active", "replicate"]

ROUNDS: Table = RoundRow.__table__  # type: ignore[attr-defined]
DOCUMENTS: Table = DocumentRow.__table__  # type: ignore[attr-defined]
PARTIES: Table = PartyRow.__table__  # type: ignore[attr-defined]
LOG: Table = LogRow.__table__  # type: ignore[attr-defined]
OUTBOX: Table = OutboxRow.__table__  # type: ignore[attr-defined]
CHUNK = 2000  # rows per INSERT


@dataclass(frozen=True)
class Copy:
    """One copy of a round: its agreement id (the round is its first) and how far back in time
    it is moved (``earlier``: its launch, its entries and its parties' steps all began then)."""

    agreement: str
    earlier: timedelta = timedelta(0)

    @property
    def round_id(self) -> str:
        return f"{self.agreement}/1"


def copies(n: int, prefix: str = "bench", start: int = 0) -> list[Copy]:
    return [Copy(f"{prefix}-{i:05d}") for i in range(start, start + n)]


def launch_example(engine: Engine, clock: FakeClock | None = None) -> str:
    """The Kanta-Häme round (13 parties, 16 contacts), launched through the service layer."""
    clock = clock or FakeClock(LAUNCH)
    return launch(engine, load_agreement(EXAMPLE), clock, "bench").round


def play_to_active(engine: Engine, ref: str, clock: FakeClock) -> None:
    """Run a round to ``active`` through the service layer, as its parties would: each submits,
    its bodies approve, the decisions become final (the tick), its signatories sign."""
    numbers = count(100)
    invented = ((f"Allekirjoittaja {i}", "puheenjohtaja") for i in count(1))
    while True:
        (round_,) = status(engine, ref)
        if round_.state != "open":
            return
        clock.advance(hours=1)
        today = clock.moment.date()
        waiting: list[date] = []
        for party in round_.parties:
            if party.role == "preparing":
                record(engine, ref, party.id, "submit", Evidence(), clock, "bench")
            elif party.role == "review":
                decision = f"{party.body} {today:%d.%m.%Y} § {next(numbers)}"
                record(engine, ref, party.id, "approve", Evidence(ref=decision), clock, "bench")
            elif party.role == "signing":
                signed = set(party.signatories)
                listed = [s for s in party.may_sign if s.name not in signed]
                name, title = (listed[0].name, listed[0].title) if listed else next(invented)
                evidence = Evidence(signatory=name, title=title)
                record(engine, ref, party.id, "sign", evidence, clock, "bench")
            elif party.role == "legal_force" and party.legal_force_from is not None:
                waiting.append(party.legal_force_from)
        if waiting and all(p.role in ("legal_force", "done") for p in round_.parties):
            clock.set(datetime.combine(max(waiting), LAUNCH.time()))
            tick(engine, clock, "bench")


def _rows(engine: Engine, table: Table, round_id: str) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        query = select(table).where(table.c.round_id == round_id)
        if table is LOG:
            query = query.order_by(table.c.seq)
        elif table is OUTBOX:
            query = query.where(table.c.state == "pending").order_by(table.c.id)
        return [dict(r) for r in connection.execute(query).mappings()]


def _entry(row: Mapping[str, Any]) -> Entry:
    """A log row as it is hashed (what ``engine.runtime.log_entries`` returns)."""
    return {
        "seq": row["seq"],
        "round": row["round_id"],
        "party": row["party_id"],
        "event": row["event"],
        "from_state": row["from_state"],
        "to_state": row["to_state"],
        "actor": row["actor"],
        "recorded_at": format_time(row["recorded_at"]),
        "clock": row["clock"],
        "evidence": row["evidence"],
        "document_sha256": row["document_sha256"],
        "prev_hash": row["prev_hash"],
        "hash": row["hash"],
    }


def _chunks(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def replicate(
    engine: Engine,
    template: str,
    targets: Sequence[Copy],
    *,
    outbox: bool = False,
    outbox_limit: int | None = None,
) -> int:
    """Copy round ``template`` once per target, in bulk; the number of log entries written.

    ``outbox``: copy its pending messages too, at most ``outbox_limit`` in all."""
    (round_row,) = _rows_of_round(engine, template)
    documents = _rows(engine, DOCUMENTS, template)
    parties = _rows(engine, PARTIES, template)
    entries = _rows(engine, LOG, template)
    messages = _rows(engine, OUTBOX, template) if outbox else []
    if any(t.earlier for t in targets):
        # Moving a round back in time is for rounds whose parties have not moved yet.
        assert all(e["event"] == "launch" for e in entries), "only a just-launched round moves"
    written = 0
    left = outbox_limit if outbox_limit is not None else len(messages) * len(targets)
    heads: dict[str, str] = {}
    with engine.begin() as connection:
        # The log first (no foreign key): its heads are what the rounds' rows anchor.
        for chunk in _chunks(_copy_log(entries, targets, heads)):
            connection.execute(insert(LOG), chunk)
            written += len(chunk)
        for chunk in _chunks(_copy_rounds(round_row, targets, heads)):
            connection.execute(insert(ROUNDS), chunk)
        for chunk in _chunks(_copy_plain(documents, targets, ("recorded_at",))):
            connection.execute(insert(DOCUMENTS), chunk)
        for chunk in _chunks(_copy_plain(parties, targets, ("since",))):
            connection.execute(insert(PARTIES), chunk)
        if messages and left > 0:
            rows = _copy_outbox(messages, template, targets)
            for chunk in _chunks(r for r, _ in zip(rows, range(left), strict=False)):
                connection.execute(insert(OUTBOX), chunk)
    return written


def _rows_of_round(engine: Engine, round_id: str) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        query = select(ROUNDS).where(ROUNDS.c.id == round_id)
        return [dict(r) for r in connection.execute(query).mappings()]


def _chain(entries: Sequence[Mapping[str, Any]], target: Copy) -> Iterator[dict[str, Any]]:
    """The template's log rows as the target's: its round, its times, each entry hashed anew."""
    prev = entries[0]["prev_hash"]
    for row in entries:
        moment: datetime = row["recorded_at"] - target.earlier
        evidence = row["evidence"]
        if row["event"] == "launch":
            evidence = {**evidence, "agreement": target.agreement}
        entry = _entry({**row, "round_id": target.round_id, "recorded_at": moment})
        entry["evidence"] = evidence
        entry["prev_hash"] = prev
        entry["hash"] = prev = entry_hash(entry)
        yield {
            **row,
            "round_id": target.round_id,
            "recorded_at": moment,
            "evidence": evidence,
            "prev_hash": entry["prev_hash"],
            "hash": entry["hash"],
        }


def _copy_log(
    entries: Sequence[Mapping[str, Any]], targets: Sequence[Copy], heads: dict[str, str]
) -> Iterator[dict[str, Any]]:
    """Every target's log; ``heads`` gets each target's last hash."""
    for target in targets:
        for row in _chain(entries, target):
            heads[target.round_id] = row["hash"]
            yield row


def _copy_rounds(
    round_row: Mapping[str, Any], targets: Sequence[Copy], heads: Mapping[str, str]
) -> Iterator[dict[str, Any]]:
    for target in targets:
        closed = round_row["closed_at"]
        yield {
            **round_row,
            "id": target.round_id,
            "agreement_id": target.agreement,
            "number": 1,
            "launched_at": round_row["launched_at"] - target.earlier,
            "last_entry_at": round_row["last_entry_at"] - target.earlier,
            "closed_at": closed - target.earlier if closed is not None else None,
            "log_head": heads[target.round_id],
        }


def _copy_plain(
    rows: Sequence[Mapping[str, Any]], targets: Sequence[Copy], times: Sequence[str]
) -> Iterator[dict[str, Any]]:
    for target in targets:
        for row in rows:
            moved = {t: row[t] - target.earlier for t in times}
            yield {**row, "round_id": target.round_id, **moved}


def _copy_outbox(
    messages: Sequence[Mapping[str, Any]], template: str, targets: Sequence[Copy]
) -> Iterator[dict[str, Any]]:
    for target in targets:
        for row in messages:
            copied = {k: v for k, v in row.items() if k != "id"}
            for name in ("key", "message_id", "subject", "text_body", "html_body"):
                copied[name] = row[name].replace(template, target.round_id)
            copied["round_id"] = target.round_id
            for name in ("created_at", "next_attempt_at"):
                copied[name] = row[name] - target.earlier
            yield copied


def move_parties(engine: Engine, round_id: str, positions: range, since: datetime) -> None:
    """Give some of a round's parties another ``since`` (the moment their step began)."""
    with engine.begin() as connection:
        connection.execute(
            update(PARTIES)
            .where(
                PARTIES.c.round_id == round_id,
                PARTIES.c.position >= positions.start,
                PARTIES.c.position < positions.stop,
            )
            .values(since=since)
        )
