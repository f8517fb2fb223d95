"""verify, verify-rss: every round's log verified, beside a plain loop over the same rows.

The database: the Kanta-Häme round run to ``active`` through the service layer (launch, submit,
approvals, legal force by the tick, signatures, activation: 57 entries), then copied until the
log has N entries (each copy's chain hashed anew). ratify: ``engine.runtime.verify`` of the whole
database (each chain, its anchors, the replay through the workflows, the stored texts). The
limit: a plain ``sqlite3`` loop over the same rows recomputing every entry's hash and checking
the chain and its anchors. ratify runs in a fresh process that reports its time and its peak
RSS; ``verify-rss`` compares that peak at N entries with the peak of a run at N/5.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.build import copies, launch_example, play_to_active, replicate
from bench.common import LAUNCH, ROOT, Result, child_env, peak_rss_kb, say
from engine.clock import FakeClock
from engine.runtime import connect, init_schema, log_entries

__all__ = ["measure", "plain_loop"]

COLUMNS = (
    "round_id, seq, party_id, event, from_state, to_state, actor, recorded_at, clock, evidence, "
    "document_sha256, prev_hash, hash"
)


def plain_loop(path: str) -> int:
    """The limit: every round's chain recomputed from its rows, and its anchors checked."""
    db = sqlite3.connect(path)
    anchors = {r: (n, h) for r, n, h in db.execute("SELECT id, log_length, log_head FROM rounds")}
    checked, current, prev, seq = 0, None, "0" * 64, 0

    def close(round_id: str | None) -> None:
        if round_id is not None and anchors.pop(round_id) != (seq, prev):
            raise AssertionError(f"round {round_id}: its anchors do not match its log")

    rows = db.execute(f"SELECT {COLUMNS} FROM log_entries ORDER BY round_id, seq")
    for row in rows:
        if row[0] != current:
            close(current)
            current, prev, seq = row[0], "0" * 64, 0
        seq += 1
        body = {
            "seq": row[1],
            "round": row[0],
            "party": row[2],
            "event": row[3],
            "from_state": row[4],
            "to_state": row[5],
            "actor": row[6],
            "recorded_at": row[7].replace(" ", "T") + "Z",
            "clock": row[8],
            "evidence": json.loads(row[9]),
            "document_sha256": row[10],
            "prev_hash": row[11],
        }
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        if row[1] != seq or row[11] != prev or hashlib.sha256(text.encode()).hexdigest() != row[12]:
            raise AssertionError(f"round {row[0]} entry #{row[1]} breaks its chain")
        prev = row[12]
        checked += 1
    close(current)
    if anchors:
        raise AssertionError(f"rounds without a log: {sorted(anchors)[:3]}")
    db.close()
    return checked


def _child(mode: str, url: str) -> dict[str, Any]:
    """Run in a fresh process: one verification, its time and the process's peak RSS."""
    if mode == "ratify":
        from engine.runtime import verify

        engine = connect(url)
        base = peak_rss_kb()
        start = time.perf_counter()
        report = verify(engine)
        seconds = time.perf_counter() - start
        entries = sum(c.entries for c in report.chains)
    else:
        base = peak_rss_kb()
        start = time.perf_counter()
        entries = plain_loop(url.removeprefix("sqlite:///"))
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "entries": entries, "base_kb": base, "peak_kb": peak_rss_kb()}


def _run(mode: str, url: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.verify", mode, url],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env=child_env(),
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def measure(folder: Path, entries: int) -> list[Result]:
    url = f"sqlite:///{folder / 'verify.db'}"
    engine = connect(url)
    init_schema(engine)
    try:
        clock = FakeClock(LAUNCH)
        template = launch_example(engine, clock)
        play_to_active(engine, template, clock)
        per_round = len(log_entries(engine, template))
        rounds = math.ceil(entries / per_round)
        small = max(1, rounds // 5)
        replicate(engine, template, copies(small - 1, "verify"))
        say(f"verify: {small} rounds of {per_round} entries; the smaller run")
        smaller = _run("ratify", url)
        replicate(engine, template, copies(rounds - small, "verify", start=small - 1))
        say(f"verify: {rounds} rounds, {rounds * per_round} entries")
    finally:
        engine.dispose()
    ours = _run("ratify", url)
    theirs = _child("raw", url)  # here: the plain loop's own memory is not measured
    assert ours["entries"] == theirs["entries"] == rounds * per_round, (ours, theirs)
    peak, peak_small = ours["peak_kb"] / 1024, smaller["peak_kb"] / 1024
    return [
        Result(
            name="verify",
            value=ours["entries"] / ours["seconds"],
            limit=theirs["entries"] / theirs["seconds"],
            unit="entries/s",
            better="higher",
            sizes={"entries": ours["entries"], "rounds": rounds},
            target="ratio >= 0.5",
            met=theirs["seconds"] / ours["seconds"] >= 0.5,
        ),
        Result(
            name="verify-rss",
            value=peak,
            limit=peak_small,
            unit="MB peak",
            better="lower",
            sizes={
                "entries": ours["entries"],
                "smaller_entries": smaller["entries"],
                "baseline_mb": round(ours["base_kb"] / 1024, 1),
            },
            target="flat: ratio >= 0.9",
            met=peak_small / peak >= 0.9,
        ),
    ]


if __name__ == "__main__":
    print(json.dumps(_child(sys.argv[1], sys.argv[2])))
