"""The benchmark harness: every measurement, a table, and bench/results.json.

    python bench/run.py [--quick | --sizes full|quick|tiny] [--only NAME,...] [--out FILE]

``make bench`` runs the full sizes (about two minutes on a 2-core machine), ``make bench-quick``
the quick ones (under one). NAME is one of record-sqlite, record-postgresql, tick, verify, send,
cli, web, api. PostgreSQL is RATIFY_BENCH_POSTGRES (default the local server, user postgres): a
throwaway database is created there and dropped; without an answer that row is left out.

results.json is a list of rows ``{"name", "value", "limit", "ratio", "unit", "sizes"}`` (and
``better``, ``target``, ``met``): ``ratio`` is ratify's rate over the limit's, 1.0 at the limit
and higher is better (value / limit for rates, limit / value for times and sizes).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as a script: the repository's root is what imports bench
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import api_bench, cli, record, send, tick, verify, web_bench
from bench.build import copies, launch_example, replicate
from bench.common import (
    QUICK,
    ROOT,
    SIZES,
    Result,
    Size,
    Sizes,
    postgres_database,
    say,
    sqlite_url,
    table,
)
from engine.clock import FakeClock
from engine.runtime import Engine

__all__ = ["MEASUREMENTS", "main"]

Measurement = Callable[[Path, Sizes], list[Result]]


def _record_sqlite(folder: Path, sizes: Sizes) -> list[Result]:
    return [record.measure(sqlite_url(folder, "record.db"), sizes.record, "record-sqlite")]


def _record_postgresql(folder: Path, sizes: Sizes) -> list[Result]:
    with postgres_database() as url:
        if url is None:
            return []
        return [record.measure(url, sizes.record, "record-postgresql")]


def _copied(engine: Engine, folder: Path, clock: FakeClock, rounds: int) -> list[str]:
    """The web bench's rounds made in bulk: the Kanta-Häme round launched, then copied with its
    invitations waiting (as each launch would leave them)."""
    first = launch_example(engine, clock)
    targets = copies(rounds - 1, "web")
    replicate(engine, first, targets, outbox=True)
    return [first, *(t.round_id for t in targets)]


def _web(folder: Path, sizes: Sizes) -> list[Result]:
    f = web_bench.measure(sizes.web_rounds, _copied)
    counted: dict[str, Size] = {"rounds": f.rounds, "parties": 13 * f.rounds, "made": "copies"}
    rows = (
        ("web-round-page", f.round_page, f.one_round_sql, web_bench.TARGET_ROUND_P95),
        ("web-dashboard", f.dashboard, f.every_round_sql, web_bench.TARGET_DASHBOARD_P95),
        ("web-dashboard-cold", f.dashboard_cold, f.every_round_sql, web_bench.TARGET_DASHBOARD_P95),
    )
    return [
        Result(
            name=name,
            value=took * 1000,
            limit=sql * 1000,
            unit="ms p95" if name != "web-dashboard-cold" else "ms",
            better="lower",
            sizes=counted,
            target=f"<= {target * 1000:.0f} ms",
            met=took <= target,
        )
        for name, took, sql, target in rows
    ]


def _api(folder: Path, sizes: Sizes) -> list[Result]:
    f = api_bench.measure(sizes.api_rounds)
    counted: dict[str, Size] = {"parties": f.parties, "rounds": f.rounds_big, "bytes": f.body_bytes}
    growth = f.big / f.small
    return [
        Result(
            name="api-round",
            value=f.big * 1000,
            limit=f.sql * 1000,
            unit="ms p95",
            better="lower",
            sizes=counted,
            target="",
            met=None,
        ),
        Result(
            name="api-round-growth",
            value=growth,
            limit=1.0,
            unit="x",
            better="lower",
            sizes={"from": f.rounds_small, "to": f.rounds_big},
            target="flat: <= 1.5",
            met=growth <= 1.5,
        ),
    ]


MEASUREMENTS: dict[str, Measurement] = {
    "record-sqlite": _record_sqlite,
    "record-postgresql": _record_postgresql,
    "tick": lambda folder, s: tick.measure(folder, s.ticks, s.due),
    "verify": lambda folder, s: verify.measure(folder, s.verify),
    "send": lambda folder, s: [send.measure(folder, s.send)],
    "cli": lambda folder, s: [cli.measure(folder, s.cli_runs)],
    "web": _web,
    "api": _api,
}


def machine() -> str:
    """Where the figures were made: they mean little without it."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}, {platform.system()} {platform.release()}; "
        f"load average {load}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the quick sizes (make bench-quick)")
    parser.add_argument("--sizes", choices=sorted(SIZES), help="full (default), quick or tiny")
    parser.add_argument("--only", help="comma-separated: " + ", ".join(MEASUREMENTS))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results.json")
    args = parser.parse_args(argv)
    sizes = SIZES[args.sizes] if args.sizes else QUICK if args.quick else SIZES["full"]
    wanted = list(MEASUREMENTS) if not args.only else [n.strip() for n in args.only.split(",")]
    unknown = [n for n in wanted if n not in MEASUREMENTS]
    if unknown:
        parser.error(
            f"unknown measurement(s) {', '.join(unknown)}; known: {', '.join(MEASUREMENTS)}"
        )
    print(f"ratify bench, {sizes.name} sizes, on {machine()}", flush=True)
    results: list[Result] = []
    failed: list[str] = []
    started = time.perf_counter()
    for name in wanted:
        begun = time.perf_counter()
        say(f"{name} ...")
        try:
            with tempfile.TemporaryDirectory(prefix=f"ratify-bench-{name}-") as tmp:
                results += MEASUREMENTS[name](Path(tmp), sizes)
        except Exception:
            traceback.print_exc()
            failed.append(name)
        say(f"{name}: {time.perf_counter() - begun:.1f} s")
    print(table(results))
    print(f"{time.perf_counter() - started:.0f} s in all", flush=True)
    args.out.write_text(json.dumps([r.to_json() for r in results], indent=2) + "\n", "utf-8")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
