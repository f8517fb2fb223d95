"""Optimistic locking under real concurrency, on SQLite and PostgreSQL.

Two writers, each with its own engine (its own connections), start at the same moment; the rules
must hold as if they had taken turns, and the loser of a race gets ratify's own error."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine

from engine.agreement import Agreement, load_agreement
from engine.clock import FixedClock
from engine.core.evidence import Evidence
from engine.errors import RatifyError
from engine.persistence.database import connect
from engine.runtime import RecordResult, events, jsonable, rounds
from engine.runtime.audit import log_entries, verify_database

MakeAgreement = Callable[..., Path]
T = TypeVar("T")

ROUNDS = 10
BARRIER_TIMEOUT = 30  # seconds; only reached if a writer hangs, which is a failure
NO_WAIT: dict[str, Any] = {"await_legal_force": False}


def at(text: str) -> FixedClock:
    return FixedClock(datetime.fromisoformat(text))


@contextmanager
def two_engines(url: str) -> Iterator[tuple[Engine, Engine]]:
    """Two engines on the same database, as two processes would have; disposed afterwards."""
    first = connect(url)
    try:
        second = connect(url)
        try:
            yield first, second
        finally:
            second.dispose()
    finally:
        first.dispose()


def race(first: Callable[[], T], second: Callable[[], T]) -> list[T | BaseException]:
    """Run both at once (released together by a barrier); return each one's result or error."""
    barrier = threading.Barrier(2, timeout=BARRIER_TIMEOUT)

    def start(work: Callable[[], T]) -> T | BaseException:
        barrier.wait()
        try:
            return work()
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(start, first), pool.submit(start, second)]
        return [f.result(timeout=BARRIER_TIMEOUT * 2) for f in futures]


def assert_contiguous(entries: Sequence[Mapping[str, Any]]) -> None:
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    for before, after in itertools.pairwise(entries):
        assert after["prev_hash"] == before["hash"]


def test_last_two_signatures_at_once_activate_the_round_exactly_once(
    database_url: str, db: Engine, agreement_file: MakeAgreement
) -> None:
    agreement = load_agreement(
        agreement_file(
            [
                {"id": "early", "name": "Early", **NO_WAIT},
                {"id": "left", "name": "Left", **NO_WAIT},
                {"id": "right", "name": "Right", **NO_WAIT},
            ]
        )
    )
    ids = ("early", "left", "right")
    with two_engines(database_url) as (one, two):
        for n in range(1, ROUNDS + 1):
            round_id = rounds.launch(db, agreement, at("2026-12-01T09:00"), "setup").round
            assert round_id == f"test-agreement/{n}"
            for pid in ids:
                events.record(db, round_id, pid, "submit", Evidence(), at("2026-12-02T09:00"), "s")
            approval = Evidence(ref="Kunnanhallitus 07.12.2026 § 1")
            for pid in ids:
                events.record(db, round_id, pid, "approve", approval, at("2026-12-07T18:00"), "s")
            signature = Evidence(signatory="Eeva Early", title="Mayor")
            events.record(db, round_id, "early", "sign", signature, at("2026-12-08T09:00"), "s")

            def sign(engine: Engine, pid: str, rid: str = round_id) -> dict[str, Any]:
                evidence = Evidence(signatory=f"Signer of {pid}", title="Mayor")
                clock = at("2026-12-08T10:00")
                done: dict[str, Any] = jsonable(
                    events.record(engine, rid, pid, "sign", evidence, clock, pid)
                )
                return done

            outcomes = race(lambda: sign(one, "left"), lambda: sign(two, "right"))
            for outcome in outcomes:
                assert not isinstance(outcome, BaseException), f"round {n}: {outcome!r}"
            results = [o for o in outcomes if isinstance(o, dict)]
            assert sorted(r["round_state"] for r in results) == ["active", "open"], results

            status = jsonable(rounds.status(db, round_id))[0]
            assert status["state"] == "active"
            assert status["effective_date"] == "2026-12-08"
            assert {p["id"]: p["state"] for p in status["parties"]} == dict.fromkeys(ids, "signed")
            entries = log_entries(db, round_id)
            assert_contiguous(entries)
            assert [e["event"] for e in entries].count("activate") == 1
            assert entries[-1]["event"] == "activate"
            assert entries[-2]["event"] == "sign"
            assert sorted(str(e["party"]) for e in entries if e["event"] == "sign") == sorted(ids)
            assert status["log_entries"] == len(entries)
    reports = verify_database(db)
    assert len(reports) == ROUNDS


def test_the_same_approval_twice_at_once_succeeds_once(
    database_url: str, db: Engine, agreement_file: MakeAgreement
) -> None:
    agreement = load_agreement(agreement_file([{"id": "alpha", "name": "Alpha", **NO_WAIT}]))
    with two_engines(database_url) as (one, two):
        for n in range(1, ROUNDS // 2 + 1):
            round_id = rounds.launch(db, agreement, at("2026-12-01T09:00"), "setup").round
            events.record(db, round_id, "alpha", "submit", Evidence(), at("2026-12-02T09:00"), "s")

            def approve(engine: Engine, rid: str = round_id) -> dict[str, Any]:
                evidence = Evidence(ref="Kunnanhallitus 07.12.2026 § 1")
                done: dict[str, Any] = jsonable(
                    events.record(
                        engine, rid, "alpha", "approve", evidence, at("2026-12-07T18:00"), "clerk"
                    )
                )
                return done

            outcomes = race(lambda: approve(one), lambda: approve(two))
            won = [o for o in outcomes if isinstance(o, dict)]
            lost = [o for o in outcomes if isinstance(o, BaseException)]
            assert len(won) == 1, outcomes
            assert len(lost) == 1, outcomes
            assert isinstance(lost[0], RatifyError), repr(lost[0])
            assert lost[0].exit_code == 1, repr(lost[0])
            assert "awaiting_signature" in str(lost[0])
            assert won[0]["to_state"] == "awaiting_signature"

            entries = log_entries(db, round_id)
            assert_contiguous(entries)
            assert [e["event"] for e in entries] == ["launch", "submit", "approve"]
            status = jsonable(rounds.status(db, round_id))[0]
            assert status["parties"][0]["state"] == "awaiting_signature"
            assert status["log_entries"] == 3
            # Finish the round so that the next launch of the agreement is allowed.
            events.record(
                db,
                round_id,
                "alpha",
                "sign",
                Evidence(signatory="Aino", title="Mayor"),
                at("2026-12-08T10:00"),
                "s",
            )
            assert jsonable(rounds.status(db, round_id))[0]["state"] == "active", n
    verify_database(db)


def test_two_launches_at_once_make_one_round(
    database_url: str, db: Engine, agreement_file: MakeAgreement
) -> None:
    tries = ROUNDS // 2
    clock = at("2026-12-01T09:00")
    with two_engines(database_url) as (one, two):
        for n in range(tries):
            agreement = load_agreement(
                agreement_file(agreement={"id": f"launch-race-{n}"}, name=f"race-{n}.toml")
            )

            def launch(engine: Engine, actor: str, agreement: Agreement = agreement) -> str:
                return rounds.launch(engine, agreement, clock, actor).round

            outcomes = race(lambda: launch(one, "first"), lambda: launch(two, "second"))
            won = [o for o in outcomes if isinstance(o, str)]
            lost = [o for o in outcomes if isinstance(o, BaseException)]
            assert won == [f"launch-race-{n}/1"], outcomes
            assert len(lost) == 1, outcomes
            assert isinstance(lost[0], RatifyError), repr(lost[0])
            assert lost[0].exit_code == 1, repr(lost[0])
            assert "still open" in str(lost[0])
    all_rounds = jsonable(rounds.status(db, None))
    assert sorted(r["round"] for r in all_rounds) == [f"launch-race-{n}/1" for n in range(tries)]
    for r in all_rounds:
        assert r["log_entries"] == 1
        entries = log_entries(db, r["round"])
        assert [e["event"] for e in entries] == ["launch"]
    assert len(verify_database(db)) == tries


def test_a_refused_racer_writes_nothing(
    database_url: str, db: Engine, agreement_file: MakeAgreement
) -> None:
    """Two clerks submit the same party at once: one entry, and the loser's error is a refusal."""
    agreement = load_agreement(agreement_file([{"id": "alpha", "name": "Alpha"}]))
    round_id = rounds.launch(db, agreement, at("2026-12-01T09:00"), "setup").round
    event = "submit"
    with two_engines(database_url) as (one, two):
        clock = at("2026-12-02T09:00")
        outcomes = race(
            lambda: events.record(one, round_id, "alpha", event, Evidence(), clock, "one"),
            lambda: events.record(two, round_id, "alpha", event, Evidence(), clock, "two"),
        )
    assert sum(isinstance(o, RecordResult) for o in outcomes) == 1, outcomes
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(errors) == 1
    assert isinstance(errors[0], RatifyError)
    assert errors[0].exit_code == 1
    entries = log_entries(db, round_id)
    assert [e["event"] for e in entries] == ["launch", event]
    assert jsonable(rounds.status(db, round_id))[0]["parties"][0]["state"] == "board_review"
    verify_database(db)
