"""How fast the web pages answer, in process (no network), against the issue's targets.

    .venv/bin/python bench/web_bench.py [--rounds N]     # 1,000 rounds unless told

``bench/run.py`` (``make bench``) calls :func:`measure` and keeps its figures in results.json
(``web-round-page``, ``web-dashboard``, ``web-dashboard-cold``).

The round page of the 13-party Kanta-Häme round (target p95 ≤ 25 ms) and the dashboard over N
rounds of 13 parties each (target p95 ≤ 100 ms at 1,000 rounds), each beside its limit: the same
rows read by one plain SQL query through the raw driver (sqlite3) in the same run.

"In process": each request is one call of the ASGI application, the whole middleware stack
included (session, CSRF, headers), with no HTTP client or socket in the way: what a request costs
the server. The dashboard is measured twice: cold (a new application, nothing kept between
requests: what the first visitor after a restart waits) and warm. The rounds are in the steady
state of a running service: the worker has ticked once and the invitations have been sent.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.clock import FakeClock
from engine.interfaces.web.app import create_app
from engine.interfaces.web.common import WebConfig, round_path
from engine.runtime import Engine, connect, enqueue_due, init_schema, launch, load_agreement
from engine.runtime.access import Keys, add_user, sign_in

EXAMPLE = Path(__file__).parent.parent / "examples" / "kanta-hame"
TARGET_ROUND_P95 = 0.025
TARGET_DASHBOARD_P95 = 0.100


def _get(app: Any, path: str, cookie: str) -> int:
    """One GET through the application, the way a server calls it; the status."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"cookie", cookie.encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return int(sent[0]["status"])


def _p95(run: Callable[[], object], times: int) -> float:
    run()  # warm: templates compiled, caches filled
    took = []
    for _ in range(times):
        start = time.perf_counter()
        run()
        took.append(time.perf_counter() - start)
    return statistics.quantiles(took, n=20)[18]


def _agreements(folder: Path, count: int) -> list[Path]:
    template = (EXAMPLE / "agreement.toml").read_text("utf-8")
    (folder / "agreement.md").write_text((EXAMPLE / "agreement.md").read_text("utf-8"), "utf-8")
    paths = []
    for i in range(count):
        path = folder / f"a{i}.toml"
        path.write_text(
            template.replace('id = "kanta-hame-strategic-2026"', f'id = "bench-{i:04d}"'), "utf-8"
        )
        paths.append(path)
    return paths


@dataclass(frozen=True)
class Figures:
    """What one run measured, in seconds: each page's p95 beside its one SQL query's."""

    rounds: int
    built_s: float
    round_page: float
    dashboard: float
    dashboard_cold: float
    one_round_sql: float
    every_round_sql: float


# How the rounds are made: (engine, folder, clock, how many) -> their ids, the first one paged.
Build = Callable[[Engine, Path, FakeClock, int], list[str]]


def launched(engine: Engine, folder: Path, clock: FakeClock, rounds: int) -> list[str]:
    """Each round launched through the service layer, one agreement file each."""
    return [
        launch(engine, load_agreement(p), clock, "bench").round for p in _agreements(folder, rounds)
    ]


def measure(rounds: int, build: Build = launched) -> Figures:
    """Make ``rounds`` rounds of 13 parties in a new SQLite file (``build``) and time the pages."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        engine = connect(f"sqlite:///{folder}/web.db")
        init_schema(engine)
        clock = FakeClock(datetime(2026, 12, 1, 9, 0))  # noqa: DTZ001  (local to each round)
        started = time.perf_counter()
        ids = build(engine, folder, clock, rounds)
        built = time.perf_counter() - started
        # The steady state of a running service: the worker has ticked (each party's next
        # reminder worked out) and the invitations have gone out.
        enqueue_due(engine, clock)
        with sqlite3.connect(f"{folder}/web.db") as done:
            done.execute("UPDATE outbox SET state = 'sent', sent_at = next_attempt_at")
        add_user(engine, "bench", "coordinator", "a bench password", clock)
        token, _ = sign_in(engine, "bench", "a bench password", clock)
        keys = Keys(b"b" * 32, "http://testserver")
        app = create_app(WebConfig(engine, clock, keys))
        cookie = f"ratify_session={token}"
        page = round_path(ids[0])
        assert _get(app, page, cookie) == 200
        assert _get(app, "/", cookie) == 200
        round_p95 = _p95(lambda: _get(app, page, cookie), 60)
        dashboard_p95 = _p95(lambda: _get(app, "/", cookie), 20)
        cold = []
        for _ in range(3):
            fresh = create_app(WebConfig(engine, clock, keys))
            start = time.perf_counter()
            assert _get(fresh, "/", cookie) == 200
            cold.append(time.perf_counter() - start)
        dashboard_cold = max(cold)

        raw = sqlite3.connect(f"{folder}/web.db")
        one_round = _p95(
            lambda: raw.execute(
                "SELECT * FROM parties WHERE round_id = ? ORDER BY position", (ids[0],)
            ).fetchall(),
            60,
        )
        every_round = _p95(
            lambda: raw.execute(
                "SELECT r.id, r.state, r.deadline, count(p.party_id), "
                "sum(p.state = 'signed') FROM rounds r JOIN parties p ON p.round_id = r.id "
                "GROUP BY r.id ORDER BY r.id"
            ).fetchall(),
            20,
        )
        raw.close()
        engine.dispose()
    return Figures(rounds, built, round_p95, dashboard_p95, dashboard_cold, one_round, every_round)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=1000)
    args = parser.parse_args()
    f = measure(args.rounds)
    print(f"web bench: {args.rounds} rounds of 13 parties built in {f.built_s:.1f} s (SQLite)")
    print(f"{'page':<28}{'p95':>10}{'target':>10}{'ok':>5}{'raw SQL p95':>14}{'ratio':>8}")
    for name, took, target, limit in (
        ("round page (13 parties)", f.round_page, TARGET_ROUND_P95, f.one_round_sql),
        (f"dashboard ({args.rounds} rounds)", f.dashboard, TARGET_DASHBOARD_P95, f.every_round_sql),
        ("dashboard, cold", f.dashboard_cold, TARGET_DASHBOARD_P95, f.every_round_sql),
    ):
        ok = "yes" if took <= target else "NO"
        print(
            f"{name:<28}{took * 1000:>8.1f}ms{target * 1000:>8.0f}ms{ok:>5}"
            f"{limit * 1000:>12.2f}ms{limit / took:>8.3f}"
        )


if __name__ == "__main__":
    main()
