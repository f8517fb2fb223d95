"""How fast the engine records events and verifies logs, as ratios against set limits.

    make bench                      # SQLite in a temporary file
    RATIFY_BENCH_DB=postgresql+psycopg://postgres@127.0.0.1/bench make bench

A ratio below 1.0 is within the limit. Limits are what a coordinator would notice: recording one
event (one transaction: decide, update the party and the round, append the entry) should take well
under a human's reaction time, and verifying a large round's log should be interactive.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

from engine.agreement import load_agreement
from engine.clock import FakeClock
from engine.core.evidence import Evidence
from engine.persistence.database import connect, init_schema
from engine.runtime.audit import verify_database
from engine.runtime.events import record
from engine.runtime.rounds import launch

LIMIT_RECORD_P95_S = 0.050  # one recorded event, 95th percentile
LIMIT_VERIFY_PER_1000_S = 0.5  # verifying (chain + replay) per 1000 entries
PARTIES = 200


def _agreement(folder: Path) -> Path:
    (folder / "a.md").write_text("Bench agreement.\n", "utf-8")
    parties = "".join(
        f'[[parties]]\nid = "p{i}"\nname = "Party {i}"\nworkflow = "municipality"\n'
        f"await_legal_force = false\nsignatures_required = 2\n"
        f'contacts = [{{ name = "C", email = "c{i}@example.invalid" }}]\n\n'
        for i in range(PARTIES)
    )
    path = folder / "bench.toml"
    path.write_text(
        '[agreement]\nid = "bench"\ntitle = "Bench"\ndocument = "a.md"\n\n'
        '[coordinator]\nname = "C"\nemail = "c@example.invalid"\n\n' + parties,
        "utf-8",
    )
    return path


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        url = os.environ.get("RATIFY_BENCH_DB", f"sqlite:///{folder}/bench.db")
        engine = connect(url)
        init_schema(engine)
        clock = FakeClock(datetime(2026, 12, 1, 9, 0))  # noqa: DTZ001  (local to the round)
        round_id = launch(engine, load_agreement(_agreement(Path(folder))), clock, "bench").round
        steps = [
            ("submit", Evidence()),
            ("approve", Evidence(ref="Kunnanhallitus 01.12.2026 § 1")),
            ("sign", Evidence(signatory="A", title="Mayor")),
            ("sign", Evidence(signatory="B", title="Chair")),
        ]
        timings = []
        for event, evidence in steps:
            clock.advance(hours=1)
            for i in range(PARTIES):
                start = time.perf_counter()
                record(engine, round_id, f"p{i}", event, evidence, clock, "bench")
                timings.append(time.perf_counter() - start)
        clock.advance(hours=1)
        p95 = statistics.quantiles(timings, n=20)[-1]
        start = time.perf_counter()
        (report,) = verify_database(engine, round_id)
        verify_s = time.perf_counter() - start
        engine.dispose()
    per_1000 = verify_s / report.entries * 1000
    backend = url.split(":", 1)[0]
    print(f"backend {backend}: {len(timings)} events, {report.entries} log entries")
    print(
        f"record  p50 {statistics.median(timings) * 1000:6.1f} ms  p95 {p95 * 1000:6.1f} ms"
        f"  limit {LIMIT_RECORD_P95_S * 1000:.0f} ms  ratio {p95 / LIMIT_RECORD_P95_S:.2f}"
    )
    print(
        f"verify  {verify_s:6.2f} s for {report.entries} entries = {per_1000:.3f} s/1000"
        f"  limit {LIMIT_VERIFY_PER_1000_S} s/1000  ratio {per_1000 / LIMIT_VERIFY_PER_1000_S:.2f}"
    )


if __name__ == "__main__":
    main()
