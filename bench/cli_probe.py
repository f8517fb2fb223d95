"""How long `ratify status --json` takes to start and answer, against `python -c pass`.

    .venv/bin/python bench/cli_probe.py [--runs 5] [--db URL]

Launches the Kanta-Häme example (13 parties) into a fresh SQLite file (or uses ``--db``), then
runs each command RUNS times in new processes and prints the best wall-clock time of each and
their difference, and the libraries the command imported that it does not run (none expected).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "kanta-hame" / "agreement.toml"
RATIFY = str(Path(sys.executable).parent / "ratify")
UNNEEDED = "alembic mako psycopg fastapi uvicorn weasyprint jinja2 babel icalendar holidays"
UNNEEDED += " email_validator aiosmtplib apscheduler"
WATCH = (
    "import runpy, sys, json, io, contextlib\n"
    "sys.argv = ['ratify', *sys.argv[1:]]\n"
    "with contextlib.redirect_stdout(io.StringIO()):\n"
    "    try:\n"
    "        runpy.run_module('engine.interfaces.cli', run_name='__main__')\n"
    "    except SystemExit:\n"
    "        pass\n"
    "loaded = {m.split('.')[0] for m in sys.modules}\n"
    f"print(json.dumps(sorted(loaded & set({UNNEEDED.split()!r}))))\n"
)


def best(command: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--db", help="a database with rounds in it (default: a fresh example)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.db or f"sqlite:///{folder}/probe.db"
        env = {**os.environ, "RATIFY_SECRET_KEY": "p" * 40}
        if args.db is None:
            launch = [RATIFY, "--db", url, "launch", str(EXAMPLE)]
            subprocess.run(launch, check=True, stdout=subprocess.DEVNULL, env=env)
        status = [RATIFY, "--db", url, "status", "--json"]
        subprocess.run(status, check=True, stdout=subprocess.DEVNULL)  # caches warm
        floor = best([sys.executable, "-c", "pass"], args.runs)
        took = best(status, args.runs)
        watched = subprocess.run(
            [sys.executable, "-c", WATCH, "--db", url, "status", "--json"],
            check=True,
            capture_output=True,
            text=True,
        )
    print(f"python -c pass          {floor:6.3f} s (best of {args.runs})")
    print(f"ratify status --json    {took:6.3f} s (best of {args.runs})")
    print(f"above python -c pass    {took - floor:6.3f} s")
    print(f"imported, not needed    {', '.join(json.loads(watched.stdout)) or 'none'}")


if __name__ == "__main__":
    main()
