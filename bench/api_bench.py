"""api-round: the JSON API's answer for a round of 1,000 parties while the database grows.

    .venv/bin/python -m bench.api_bench [--rounds N]     # 10,000 rounds unless told

``bench/run.py`` (``make bench``) calls :func:`measure` and keeps ``api-round`` (p95 with the
database at its largest) and ``api-round-growth`` (that p95 over the p95 with the small database)
in results.json.

A round of 1,000 parties (municipalities, each with a contact) is launched through the service
layer into a new SQLite file; ``GET /api/v1/rounds/{id}`` (its status: every party's state, role,
body, signatures and contacts, as JSON) is timed as one call of the ASGI application with a
coordinator's bearer token, the whole stack included (token lookup, validation of the response
model, serialisation), no socket. Then copies of the 13-party Kanta-Häme round are added until
the database holds ``rounds`` rounds, and the same request is timed again. The limit: the same
rows (the round and its parties) read by one plain SQL query through ``sqlite3``, in the run.
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

from bench.build import copies, launch_example, replicate
from engine.clock import FakeClock
from engine.interfaces.web.app import create_app
from engine.interfaces.web.common import WebConfig
from engine.runtime import connect, init_schema, launch, load_agreement
from engine.runtime.access import Keys
from engine.runtime.tokens import create_token

PARTIES = 1000
SQL = (
    "SELECT r.*, p.* FROM rounds r JOIN parties p ON p.round_id = r.id "
    "WHERE r.id = ? ORDER BY p.position"
)


def _get(app: Any, path: str, token: str) -> tuple[int, int]:
    """One GET through the application; its status and the body's length."""
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
        "headers": [(b"host", b"testserver"), (b"authorization", f"Bearer {token}".encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    body = sum(len(m.get("body", b"")) for m in sent if m["type"] == "http.response.body")
    return int(sent[0]["status"]), body


def _p95(run: Callable[[], object], times: int) -> float:
    run()
    took = []
    for _ in range(times):
        start = time.perf_counter()
        run()
        took.append(time.perf_counter() - start)
    return statistics.quantiles(took, n=20)[18]


def _big_agreement(folder: Path) -> Path:
    lines = [
        "[agreement]",
        'id = "bench-api-1000"',
        'title = "A round of a thousand parties"',
        'document = "agreement.md"',
        "",
        "[coordinator]",
        'name = "Cora Coordinator"',
        'email = "cora@example.invalid"',
    ]
    for i in range(PARTIES):
        lines += [
            "",
            "[[parties]]",
            f'id = "p{i:04d}"',
            f'name = "Kunta {i}"',
            'workflow = "municipality"',
            f'contacts = [{{ name = "Kim {i}", email = "kirjaamo.{i}@example.invalid" }}]',
        ]
    (folder / "agreement.md").write_text("The agreement's text.\n", "utf-8")
    path = folder / "agreement.toml"
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


@dataclass(frozen=True)
class Figures:
    parties: int
    rounds_small: int
    rounds_big: int
    small: float  # p95 of the API, seconds, with the small database
    big: float  # … and with the big one
    sql: float  # p95 of the one SQL query, with the big database
    body_bytes: int


def measure(rounds: int, times: int = 40) -> Figures:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = folder / "api.db"
        engine = connect(f"sqlite:///{path}")
        init_schema(engine)
        clock = FakeClock(datetime(2026, 12, 1, 9, 0))  # noqa: DTZ001  (local to each round)
        big = launch(engine, load_agreement(_big_agreement(folder)), clock, "bench").round
        template = launch_example(engine, clock)
        token = create_token(engine, "bench", "coordinator", clock, "bench").token
        app = create_app(WebConfig(engine, clock, Keys(b"b" * 32, "http://testserver")))
        url = f"/api/v1/rounds/{big}"
        status, body = _get(app, url, token)
        assert status == 200, status
        small = _p95(lambda: _get(app, url, token), times)
        replicate(engine, template, copies(rounds - 2, "api"))
        assert _get(app, url, token)[0] == 200
        grown = _p95(lambda: _get(app, url, token), times)
        raw = sqlite3.connect(path)
        assert len(raw.execute(SQL, (big,)).fetchall()) == PARTIES
        sql = _p95(lambda: raw.execute(SQL, (big,)).fetchall(), times)
        raw.close()
        engine.dispose()
    return Figures(PARTIES, 2, rounds, small, grown, sql, body)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=10_000)
    args = parser.parse_args()
    f = measure(args.rounds)
    print(f"GET /api/v1/rounds/… ({f.parties} parties, {f.body_bytes} bytes of JSON), p95:")
    print(f"  with {f.rounds_small} rounds in the database: {f.small * 1000:.1f} ms")
    sql = f"one SQL query: {f.sql * 1000:.2f} ms"
    print(f"  with {f.rounds_big} rounds: {f.big * 1000:.1f} ms ({sql})")


if __name__ == "__main__":
    main()
