"""How close ratify's sending comes to the SMTP server's own pace.

    .venv/bin/python bench/send_probe.py [--messages 2000] [--db postgresql://…] [--profile]

Queues MESSAGES invitations (rounds of the Kanta-Häme agreement under other ids: 16 a round,
each with the agreement and a calendar attached, each contact with a personal link), starts
aiosmtpd in another process (``python -m aiosmtpd -n``, its output thrown away), then times

  ratify: ``send_due`` sending every message: claims, links, MIME, SMTP, marks;
  raw:    a plain aiosmtplib loop sending the same bytes to the same recipients, over as many
          connections with as many messages each as ratify used.

and prints both and their ratio (raw / ratify: 1.0 is the server's pace). The queued database is
made once per size and copied for each run (SQLite), or made again from a template database
(PostgreSQL). ``--profile`` runs ratify's part under pyinstrument (when installed) instead.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
from aiosmtplib.email import extract_recipients, extract_sender, flatten_message

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "kanta-hame"
START = datetime(2026, 12, 1, 9, 0)  # noqa: DTZ001  (a Tuesday morning, local to the round)
FROM = "ratify <ratify@example.invalid>"
PER_ROUND = 16  # the example's contacts: one invitation each
CPU: dict[str, float] = {}  # this process's CPU seconds in the last run of each


def _agreements(folder: Path, rounds: int) -> list[Path]:
    shutil.copy(EXAMPLE / "agreement.md", folder / "agreement.md")
    text = (EXAMPLE / "agreement.toml").read_text("utf-8")
    paths = []
    for n in range(rounds):
        path = folder / f"a{n}.toml"
        path.write_text(text.replace('id = "kanta-hame-strategic-2026"', f'id = "probe-{n}"'))
        paths.append(path)
    return paths


def _queue(url: str, rounds: int) -> None:
    from engine.agreement import load_agreement
    from engine.clock import FixedClock
    from engine.persistence.database import connect, init_schema
    from engine.runtime.rounds import launch

    engine = connect(url)
    init_schema(engine)
    with tempfile.TemporaryDirectory() as folder:
        for path in _agreements(Path(folder), rounds):
            launch(engine, load_agreement(path), FixedClock(START), "probe")
    engine.dispose()


def _database(args: argparse.Namespace, rounds: int, work: Path) -> str:
    """A database with the messages queued, fresh for this run."""
    if args.db is None:
        made = Path(tempfile.gettempdir()) / f"ratify-send-probe-{rounds}.db"
        if not made.exists():
            print(f"queueing {rounds * PER_ROUND} messages into {made} (once) …", flush=True)
            _queue(f"sqlite:///{made}.part", rounds)
            os.replace(f"{made}.part", made)
        shutil.copy(made, work / "probe.db")
        return f"sqlite:///{work}/probe.db"
    from sqlalchemy import create_engine, text

    base, _, _ = args.db.rpartition("/")
    admin = create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
    template, run = f"ratify_send_probe_{rounds}", "ratify_send_probe_run"
    with admin.connect() as c:
        have = c.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": template})
        if have.first() is None:
            print(f"queueing {rounds * PER_ROUND} messages into {template} (once) …", flush=True)
            c.execute(text(f'CREATE DATABASE "{template}"'))
            _queue(f"{base}/{template}", rounds)
        c.execute(text(f'DROP DATABASE IF EXISTS "{run}"'))
        c.execute(text(f'CREATE DATABASE "{run}" TEMPLATE "{template}"'))
    admin.dispose()
    return f"{base}/{run}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _server(port: int) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server
        except OSError:
            time.sleep(0.05)
    server.kill()
    raise SystemExit("aiosmtpd did not start")


def _ratify(url: str, port: int, profile: bool) -> tuple[float, list[list[Any]], int]:
    """Time send_due over everything queued; the batches it sent, as the mailer was given them."""
    from engine.clock import FixedClock
    from engine.persistence.database import connect, ensure_schema
    from engine.runtime.access import Keys
    from engine.runtime.sending import send_due
    from notifications.mailer import Mailer

    batches: list[list[Any]] = []

    class Recording(Mailer):
        async def deliver(self, batch: Any, on_delivery: Any = None) -> Any:
            batches.append([message for _, message in batch])
            return await super().deliver(batch, on_delivery)

    engine = connect(url)
    ensure_schema(engine)  # once per process, as in a worker: not part of a tick's work
    keys = Keys(b"p" * 32, "https://ratify.example.invalid")
    mailer = Recording("127.0.0.1", port, timeout=30.0)
    profiler: Any = None
    if profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005)
        profiler.start()
    start, cpu = time.perf_counter(), time.process_time()
    results = send_due(engine, FixedClock(START), mailer, FROM, keys)
    took = time.perf_counter() - start
    CPU["ratify"] = time.process_time() - cpu
    if profiler is not None:
        profiler.stop()
        print(profiler.output_text(unicode=True, color=False, show_all=False))
    engine.dispose()
    return took, batches, sum(r.outcome == "sent" for r in results)


def _envelope(message: Any) -> tuple[str, list[str], bytes, list[str]]:
    """What aiosmtplib sends for a message the mailer was handed: its envelope and bytes."""
    if isinstance(message, EmailMessage):  # as send_message does (aiosmtpd offers 8BITMIME)
        data = flatten_message(message, utf8=False, cte_type="8bit")
        return extract_sender(message) or "", extract_recipients(message), data, ["BODY=8BITMIME"]
    return message.sender, list(message.recipients), message.data, []  # a Wire: as it is


def _raw(port: int, batches: list[list[Any]]) -> float:
    """The same bytes, the same recipients, one connection per batch, nothing else."""
    prepared = [[_envelope(m) for m in batch] for batch in batches]

    async def send() -> None:
        for batch in prepared:
            smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=30)
            await smtp.connect()
            for sender, recipients, data, options in batch:
                await smtp.sendmail(sender, recipients, data, mail_options=options)
            await smtp.quit()

    start, cpu = time.perf_counter(), time.process_time()
    asyncio.run(send())
    CPU["raw"] = time.process_time() - cpu
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of both; the best counts")
    parser.add_argument("--db", help="a PostgreSQL URL (its server's databases are made here)")
    parser.add_argument("--profile", action="store_true", help="profile ratify's part")
    args = parser.parse_args()
    rounds = -(-args.messages // PER_ROUND)
    port = _free_port()
    runs: list[tuple[float, float]] = []
    server = _server(port)
    try:
        for n in range(args.repeat):
            with tempfile.TemporaryDirectory() as folder:
                url = _database(args, rounds, Path(folder))
                ratify_s, batches, sent = _ratify(url, port, args.profile)
            raw_s = _raw(port, batches)
            runs.append((ratify_s, raw_s))
            count = sum(len(b) for b in batches)
            print(
                f"run {n + 1}: {sent} sent of {count} in {len(batches)} connections; "
                f"ratify {ratify_s:6.2f} s, raw {raw_s:6.2f} s, ratio {raw_s / ratify_s:.2f}; "
                f"CPU here: ratify {CPU['ratify']:.2f} s, raw {CPU['raw']:.2f} s",
                flush=True,
            )
    finally:
        server.terminate()
        server.wait(10)
    best, raw = min(r for r, _ in runs), min(r for _, r in runs)
    print(
        f"{'sqlite' if args.db is None else 'postgresql'}, best of {len(runs)}:\n"
        f"ratify {best:6.2f} s  {best / count * 1000:5.2f} ms/message\n"
        f"raw    {raw:6.2f} s  {raw / count * 1000:5.2f} ms/message\n"
        f"ratio  {raw / best:.2f}  (raw / ratify; 1.0 is the server's pace)"
    )


if __name__ == "__main__":
    main()
