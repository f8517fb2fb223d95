"""cli: ``ratify status --json`` on the 13-party round, beside a bare ``python -c pass``.

Both run as the user runs them, a new process each time, taking turns; the best run of each
counts. The value is how much longer ratify takes than the bare interpreter; the limit is the
issue's 0.3 s.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench.build import launch_example
from bench.common import Result, child_env
from engine.runtime import connect, init_schema

__all__ = ["measure"]

LIMIT_S = 0.3


def _time(command: Sequence[str], folder: Path) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run(
        command, capture_output=True, text=True, check=True, cwd=folder, env=child_env()
    )
    return time.perf_counter() - start, out.stdout


def measure(folder: Path, runs: int) -> Result:
    url = f"sqlite:///{folder / 'cli.db'}"
    engine = connect(url)
    init_schema(engine)
    launch_example(engine)
    engine.dispose()
    ratify = str(Path(sys.executable).with_name("ratify"))
    status = [ratify, "--db", url, "status", "--json"]
    bare = [sys.executable, "-c", "pass"]
    ours, theirs = float("inf"), float("inf")
    for _ in range(runs):
        took, shown = _time(status, folder)
        ours = min(ours, took)
        theirs = min(theirs, _time(bare, folder)[0])
    (round_,) = json.loads(shown)
    assert len(round_["parties"]) == 13, shown[:200]
    above = ours - theirs
    return Result(
        name="cli",
        value=above,
        limit=LIMIT_S,
        unit="s above python",
        better="lower",
        sizes={
            "parties": 13,
            "runs": runs,
            "ratify_s": round(ours, 3),
            "python_s": round(theirs, 3),
        },
        target="<= 0.3 s above python -c pass",
        met=above <= LIMIT_S,
    )
