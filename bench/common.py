"""What every measurement shares: the result row, the sizes, timing, peak RSS, the table, the JSON
file, the example round and throwaway databases."""

from __future__ import annotations

import os
import secrets
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "kanta-hame" / "agreement.toml"
EXAMPLE_ID = "kanta-hame-strategic-2026"
MAIL_FROM = "ratify <ratify@example.invalid>"
# Every round is launched on Tuesday 1 December 2026 at 09:00, wall time of its zone (Helsinki).
LAUNCH = datetime(2026, 12, 1, 9, 0)  # noqa: DTZ001  (a FakeClock's local wall time)
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"

Better = Literal["higher", "lower"]
Size = int | float | str


@dataclass(frozen=True)
class Result:
    """One row of the table and of results.json.

    ``better``: "higher" for rates (ratio = value / limit), "lower" for times and sizes (ratio =
    limit / value); either way a ratio of 1.0 is at the limit and higher is better. ``target``
    says what the issue asks of the row, ``met`` whether this run meets it (None: no target).
    """

    name: str
    value: float
    limit: float
    unit: str
    better: Better
    sizes: Mapping[str, Size] = field(default_factory=dict)
    target: str = ""
    met: bool | None = None

    @property
    def ratio(self) -> float:
        if self.better == "higher":
            return self.value / self.limit
        return self.limit / self.value

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "value": _round(self.value),
            "limit": _round(self.limit),
            "ratio": _round(self.ratio),
            "unit": self.unit,
            "sizes": dict(self.sizes),
            "better": self.better,
            "target": self.target,
            "met": self.met,
        }


def _round(number: float) -> float:
    """Four significant digits: what this machine's noise leaves meaningful."""
    return float(f"{number:.4g}")


@dataclass(frozen=True)
class Sizes:
    """How much work each measurement does."""

    name: str
    record: int  # events recorded, one transaction each
    ticks: tuple[int, int]  # pending parties of the smaller and the larger tick
    due: int  # parties due at the tick
    verify: int  # log entries verified
    send: int  # messages sent
    cli_runs: int  # runs of each command; the best counts
    web_rounds: int  # rounds behind the dashboard
    api_rounds: int = 10_000  # rounds in the database beside the API's round of 1,000 parties


FULL = Sizes("full", 3000, (10_000, 100_000), 100, 100_000, 2000, 10, 1000)
QUICK = Sizes("quick", 300, (1_000, 10_000), 100, 20_000, 300, 3, 100, 1000)
TINY = Sizes("tiny", 20, (26, 52), 5, 300, 20, 1, 2, 3)  # the test's: seconds, not figures
SIZES = {s.name: s for s in (FULL, QUICK, TINY)}


class Stopwatch:
    """Adds up the time spent inside ``with watch:`` blocks."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._start = 0.0

    def __enter__(self) -> Stopwatch:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.seconds += time.perf_counter() - self._start


def best_of(runs: int, work: Callable[[], object]) -> float:
    """The fastest of ``runs`` runs of ``work``, in seconds."""
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def peak_rss_kb() -> int:
    """This process's peak resident set so far (VmHWM), in KiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB on Linux


def child_env() -> dict[str, str]:
    """The environment for a child process of the harness: ``bench`` importable, no RATIFY_
    setting of the caller's (a witness address would add mail to every tick)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RATIFY_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(ROOT), env.get("PYTHONPATH"))))
    return env


def say(text: str) -> None:
    """Progress, on stderr: the table on stdout stays clean."""
    print(f"  {text}", file=sys.stderr, flush=True)


def sqlite_url(folder: Path, name: str) -> str:
    return f"sqlite:///{folder / name}"


@contextmanager
def postgres_database() -> Iterator[str | None]:
    """A throwaway PostgreSQL database on RATIFY_BENCH_POSTGRES (default: the local server as
    postgres), dropped afterwards; its URL, or None when the server does not answer."""
    admin = os.environ.get("RATIFY_BENCH_POSTGRES", DEFAULT_POSTGRES)
    if not admin:
        yield None
        return
    import psycopg

    admin = admin.replace("postgresql+psycopg://", "postgresql://", 1)
    try:
        connection = psycopg.connect(admin, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        say(f"PostgreSQL at {urlsplit(admin).hostname} does not answer ({exc}); skipped")
        yield None
        return
    name = f"ratify_bench_{os.getpid()}_{secrets.token_hex(4)}"
    with connection:
        connection.execute(f'CREATE DATABASE "{name}"')
        try:
            parts = urlsplit(admin)
            yield urlunsplit(parts._replace(path=f"/{name}"))
        finally:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def table(results: Sequence[Result]) -> str:
    """The results as a plain-text table."""
    head = ("name", "value", "limit", "unit", "ratio", "target", "met")
    rows = [
        (
            r.name,
            f"{r.value:.4g}",
            f"{r.limit:.4g}",
            r.unit,
            f"{r.ratio:.3f}",
            r.target,
            {True: "yes", False: "NO", None: ""}[r.met],
        )
        for r in results
    ]
    widths = [max(len(str(c)) for c in col) for col in zip(head, *rows, strict=True)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in (head, *rows)
    ]
    return "\n".join(line.rstrip() for line in lines)
