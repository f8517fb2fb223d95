"""The benchmark harness (bench/): its rows' shape on tiny sizes, and that the databases it builds
in bulk are ones ratify itself verifies. No timing is asserted: this machine's figures are the
README's business, not the suite's."""

from __future__ import annotations

import json
import math
from pathlib import Path

from bench import run
from bench.build import Copy, copies, launch_example, play_to_active, replicate
from bench.common import LAUNCH, Result, table
from bench.verify import plain_loop
from engine.clock import FakeClock
from engine.runtime import connect, init_schema, log_entries, verify

KEYS = {"name", "value", "limit", "ratio", "unit", "sizes"}


def test_the_harness_writes_a_row_per_measurement(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    assert (
        run.main(["--sizes", "tiny", "--only", "record-sqlite,tick,send", "--out", str(out)]) == 0
    )
    rows = json.loads(out.read_text("utf-8"))
    assert [r["name"] for r in rows] == [
        "record-sqlite",
        "tick-26",
        "tick-52",
        "tick-growth",
        "send",
    ]
    for row in rows:
        assert set(row) >= KEYS, row
        assert isinstance(row["name"], str)
        assert isinstance(row["unit"], str)
        assert isinstance(row["sizes"], dict)
        assert row["sizes"]
        for key in ("value", "limit", "ratio"):
            assert isinstance(row[key], float), row
            assert row[key] > 0, row
        expected = (
            row["value"] / row["limit"]
            if row["better"] == "higher"
            else row["limit"] / row["value"]
        )
        assert math.isclose(row["ratio"], expected, rel_tol=1e-3), row
    by_name = {r["name"]: r for r in rows}
    assert by_name["record-sqlite"]["sizes"]["events"] == 20
    assert by_name["tick-52"]["sizes"]["queued"] == by_name["tick-52"]["sizes"]["due"] == 5
    assert by_name["send"]["sizes"]["messages"] == 20


def test_a_ratio_is_higher_the_better_for_rates_and_for_times() -> None:
    rate = Result("r", value=50.0, limit=100.0, unit="events/s", better="higher")
    took = Result("t", value=2.0, limit=1.0, unit="s", better="lower")
    assert rate.ratio == took.ratio == 0.5
    assert rate.to_json()["ratio"] == 0.5
    assert "events/s" in table([rate, took])


def test_copies_of_a_round_verify_like_the_round(tmp_path: Path) -> None:
    engine = connect(f"sqlite:///{tmp_path / 'copies.db'}")
    init_schema(engine)
    clock = FakeClock(LAUNCH)
    template = launch_example(engine, clock)
    play_to_active(engine, template, clock)
    per_round = len(log_entries(engine, template))
    written = replicate(engine, template, copies(3))
    fresh = launch_example(engine, FakeClock(LAUNCH))  # a second agreement's round: open
    replicate(engine, fresh, [Copy("earlier", LAUNCH - LAUNCH.replace(day=1, month=11))])
    report = verify(engine)
    assert written == 3 * per_round
    assert sorted(c.round for c in report.chains)[:4] == [
        "bench-00000/1",
        "bench-00001/1",
        "bench-00002/1",
        "earlier/1",
    ]
    assert sum(c.entries for c in report.chains) == 4 * per_round + 2
    assert plain_loop(str(tmp_path / "copies.db")) == 4 * per_round + 2
    engine.dispose()
