"""record-sqlite, record-postgresql: events recorded one transaction each, beside the raw driver.

ratify: ``engine.runtime.record`` for each event (submit, then each body's approval) of the 13
parties of copies of the Kanta-Häme round. The limit: the same row writes in one transaction per
event through ``sqlite3`` or ``psycopg`` with the same durability (SQLite: WAL, synchronous=FULL,
BEGIN IMMEDIATE; PostgreSQL: its defaults, the round's row locked FOR UPDATE): read the round's
anchors and the party's version, update the party guarded by its version (its state, signatures,
dates, and when it is next due: ``due_at``, which the tick reads), move the round's
anchors guarded by its version, insert the log entry with its hash and insert the receipt rows
(one per contact, the very subject and bodies ratify rendered for the same event). The two take
turns, a round each, on copies of one round in the same database.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select

from bench.build import OUTBOX, PARTIES, Copy, launch_example, replicate
from bench.common import LAUNCH, Result, Stopwatch, say
from engine.clock import FakeClock
from engine.core.chain import Entry, entry_hash, format_time
from engine.runtime import (
    Evidence,
    connect,
    init_schema,
    log_entries,
    outbox_messages,
    record,
    status,
    verify,
)

__all__ = ["measure"]

ZONE = ZoneInfo("Europe/Helsinki")
# The events are recorded on the day after the launch, at 10:00.
AT = LAUNCH.replace(day=2, hour=10)
# Events recorded each way before the timing starts: a submit, a board's and a council's approval.
WARM_UP = 5


@dataclass(frozen=True)
class Event:
    party: str
    event: str
    ref: str | None  # the decision, for an approval


@dataclass(frozen=True)
class Outcome:
    """What ratify wrote for one event, for the raw loop to write the same."""

    event: Event
    entry: Entry
    state: str
    step: int
    signatures: list[dict[str, Any]]
    legal_force_from: date | None
    receipts: list[dict[str, Any]]


def _plan(engine: Engine, round_id: str) -> list[Event]:
    """A round's events: each party submits, then each of its bodies approves."""
    (round_,) = status(engine, round_id)
    events = []
    for n, party in enumerate(round_.parties):
        events.append(Event(party.id, "submit", None))
        for body in party.bodies:
            events.append(Event(party.id, "approve", f"{body} {AT:%d.%m.%Y} § {n + 1}"))
    return events


def measure(url: str, events: int, name: str) -> Result:
    engine = connect(url)
    init_schema(engine)
    try:
        return _measure(engine, url, events, name)
    finally:
        engine.dispose()


def _measure(engine: Engine, url: str, events: int, name: str) -> Result:
    template = launch_example(engine, FakeClock(LAUNCH))
    plan = _plan(engine, template)
    pairs = math.ceil(events / len(plan)) + 1  # the first pair warms both up, untimed
    ours = [Copy(f"rec-ratify-{i:05d}") for i in range(pairs)]
    theirs = [Copy(f"rec-raw-{i:05d}") for i in range(pairs)]
    replicate(engine, template, ours + theirs)
    say(f"{name}: {2 * pairs} rounds copied; recording {events} events each way")
    clock = FakeClock(AT)
    ratify_watch, raw_watch = Stopwatch(), Stopwatch()
    raw = RawWriter(url)
    left = events
    try:
        for i, (mine, other) in enumerate(zip(ours, theirs, strict=True)):
            todo = plan[:WARM_UP] if i == 0 else plan[: min(left, len(plan))]
            watch = Stopwatch() if i == 0 else ratify_watch
            outcomes = []
            for event in todo:
                evidence = Evidence(ref=event.ref) if event.ref else Evidence()
                with watch:
                    record(
                        engine, mine.round_id, event.party, event.event, evidence, clock, "bench"
                    )
                outcomes.append(_outcome(engine, mine.round_id, event))
            _receipts(engine, mine.round_id, outcomes)
            watch = Stopwatch() if i == 0 else raw_watch
            for outcome in outcomes:
                with watch:
                    raw.write(other.round_id, mine.round_id, outcome, clock.now(ZONE))
            if i > 0:
                left -= len(todo)
            if left <= 0:
                break
    finally:
        raw.close()
    # The raw loop wrote what ratify would have: its rounds verify, their messages are as many.
    verify(engine, theirs[1].round_id)
    assert _receipt_count(engine, ours[1].round_id) == _receipt_count(engine, theirs[1].round_id)
    backend = "sqlite" if url.startswith("sqlite") else "postgresql"
    return Result(
        name=name,
        value=events / ratify_watch.seconds,
        limit=events / raw_watch.seconds,
        unit="events/s",
        better="higher",
        sizes={"events": events, "rounds": 2 * (pairs - 1), "backend": backend},
        target="ratio >= 0.5",
        met=raw_watch.seconds / ratify_watch.seconds >= 0.5,
    )


def _receipt_count(engine: Engine, round_id: str) -> int:
    return sum(m.kind == "receipt" for m in outbox_messages(engine, round_id=round_id))


def _outcome(engine: Engine, round_id: str, event: Event) -> Outcome:
    with engine.connect() as connection:
        party = (
            connection.execute(
                select(PARTIES).where(
                    PARTIES.c.round_id == round_id, PARTIES.c.party_id == event.party
                )
            )
            .mappings()
            .one()
        )
    entry = log_entries(engine, round_id)[-1]
    return Outcome(
        event,
        entry,
        party["state"],
        party["step"],
        party["signatures"],
        party["legal_force_from"],
        [],
    )


def _receipts(engine: Engine, round_id: str, outcomes: Sequence[Outcome]) -> None:
    """The receipts ratify queued for each event (their keys end with the entry's seq)."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(OUTBOX).where(OUTBOX.c.round_id == round_id, OUTBOX.c.kind == "receipt")
        ).mappings()
        by_seq: dict[int, list[dict[str, Any]]] = {}
        for row in rows:
            seq = int(row["key"].split(":")[-3])
            by_seq.setdefault(seq, []).append(dict(row))
    for outcome in outcomes:
        outcome.receipts.extend(by_seq.get(outcome.entry["seq"], []))


class RawWriter:
    """The limit: one event's row writes in one transaction, through the raw driver."""

    def __init__(self, url: str) -> None:
        self.sqlite = url.startswith("sqlite")
        if self.sqlite:
            self.db: Any = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
            for pragma in (
                "busy_timeout=10000",
                "journal_mode=WAL",
                "synchronous=FULL",
                "foreign_keys=ON",
            ):
                self.db.execute(f"PRAGMA {pragma}")
        else:
            import psycopg

            self.db = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))

    def close(self) -> None:
        self.db.close()

    def _sql(self, text: str) -> str:
        return text if self.sqlite else text.replace("?", "%s")

    def _time(self, moment: datetime) -> object:
        utc = moment.astimezone(UTC)
        return utc.strftime("%Y-%m-%d %H:%M:%S.%f") if self.sqlite else utc

    def write(self, round_id: str, template: str, outcome: Outcome, now: datetime) -> None:
        db, sql = self.db, self._sql
        cursor = db.cursor()
        if self.sqlite:
            cursor.execute("BEGIN IMMEDIATE")
            lock = ""
        else:
            lock = " FOR UPDATE"
        cursor.execute(
            sql(
                "SELECT log_length, log_head, version, document_sha256 FROM rounds "
                f"WHERE id = ?{lock}"
            ),
            (round_id,),
        )
        length, head, version, document = cursor.fetchone()
        cursor.execute(
            sql("SELECT version FROM parties WHERE round_id = ? AND party_id = ?"),
            (round_id, outcome.event.party),
        )
        (party_version,) = cursor.fetchone()
        cursor.execute(
            sql(
                "UPDATE parties SET state = ?, step = ?, signatures = ?, legal_force_from = ?, "
                "since = ?, version = ?, due_at = ? "
                "WHERE round_id = ? AND party_id = ? AND version = ?"
            ),
            (
                outcome.state,
                outcome.step,
                json.dumps(outcome.signatures),
                outcome.legal_force_from,
                self._time(now),
                party_version + 1,
                self._time(now),  # what is due for the party may have changed: the tick looks
                round_id,
                outcome.event.party,
                party_version,
            ),
        )
        assert cursor.rowcount == 1, "the party was changed by another writer"
        entry: Entry = {
            **outcome.entry,
            "seq": length + 1,
            "round": round_id,
            "recorded_at": format_time(now),
            "document_sha256": document,
            "prev_hash": head,
            "hash": "",
        }
        entry["hash"] = entry_hash(entry)
        cursor.execute(
            sql(
                "UPDATE rounds SET log_length = ?, log_head = ?, last_entry_at = ?, version = ? "
                "WHERE id = ? AND version = ?"
            ),
            (entry["seq"], entry["hash"], self._time(now), version + 1, round_id, version),
        )
        assert cursor.rowcount == 1, "the round was changed by another writer"
        cursor.execute(
            sql(
                "INSERT INTO log_entries (round_id, seq, party_id, event, from_state, to_state, "
                "actor, recorded_at, clock, evidence, document_sha256, prev_hash, hash) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ),
            (
                round_id,
                entry["seq"],
                entry["party"],
                entry["event"],
                entry["from_state"],
                entry["to_state"],
                entry["actor"],
                self._time(now),
                entry["clock"],
                json.dumps(entry["evidence"]),
                entry["document_sha256"],
                entry["prev_hash"],
                entry["hash"],
            ),
        )
        for receipt in outcome.receipts:
            cursor.execute(sql(INSERT_RECEIPT), _receipt(receipt, template, round_id, self, now))
        if self.sqlite:
            cursor.execute("COMMIT")
        else:
            db.commit()
        cursor.close()


INSERT_RECEIPT = (
    "INSERT INTO outbox (key, round_id, party_id, kind, recipients, language, subject, "
    "text_body, html_body, attachments, message_id, state, attempts, next_attempt_at, refused, "
    "chase, created_at, personal) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (key) DO NOTHING"
)


def _receipt(
    row: Mapping[str, Any], template: str, round_id: str, writer: RawWriter, now: datetime
) -> tuple[object, ...]:
    def dumped(value: object) -> str | None:
        return None if value is None else json.dumps(value)

    return (
        row["key"].replace(template, round_id),
        round_id,
        row["party_id"],
        row["kind"],
        json.dumps(row["recipients"]),
        row["language"],
        row["subject"],
        row["text_body"],
        row["html_body"],
        json.dumps(row["attachments"]),
        row["message_id"].replace(template, round_id),
        "pending",
        0,
        writer._time(now),
        "{}",
        dumped(row["chase"]),
        writer._time(now),
        dumped(row["personal"]),
    )
