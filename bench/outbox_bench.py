"""How fast the outbox goes out: render, claim, deliver over one SMTP connection, mark.

    make bench

Launches a round of PARTIES parties (one contact each) and times the tick that sends their
invitations to a local SMTP sink (aiosmtpd). A ratio below 1.0 is within the limit.
"""

from __future__ import annotations

import tempfile
import time
from datetime import datetime
from pathlib import Path

from engine.agreement import load_agreement
from engine.clock import FakeClock
from engine.persistence.database import connect, init_schema
from engine.runtime.rounds import launch
from engine.runtime.worker import tick_once
from notifications.mailer import Mailer
from notifications.sink import MailSink

PARTIES = 300
LIMIT_PER_MESSAGE_S = 0.050  # a tick must send at least 20 messages a second


def _agreement(folder: Path) -> Path:
    (folder / "a.md").write_text("Bench agreement.\n", "utf-8")
    parties = "".join(
        f'[[parties]]\nid = "p{i}"\nname = "Party {i}"\nworkflow = "municipality"\n'
        f'contacts = [{{ name = "C", email = "c{i}@example.invalid" }}]\n\n'
        for i in range(PARTIES)
    )
    path = folder / "bench.toml"
    path.write_text(
        '[agreement]\nid = "bench"\ntitle = "Bench"\ndocument = "a.md"\ndeadline = 2027-03-31\n\n'
        '[coordinator]\nname = "C"\nemail = "c@example.invalid"\n\n' + parties,
        "utf-8",
    )
    return path


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        engine = connect(f"sqlite:///{folder}/bench.db")
        init_schema(engine)
        sink = MailSink(Path(folder) / "mail")
        _, port = sink.start(port=0)
        try:
            clock = FakeClock(datetime(2026, 12, 1, 9, 0))  # noqa: DTZ001  (local to the round)
            start = time.perf_counter()
            launch(engine, load_agreement(_agreement(Path(folder))), clock, "bench")
            launched = time.perf_counter() - start
            start = time.perf_counter()
            report = tick_once(engine, clock, Mailer("127.0.0.1", port), "bench@example.invalid")
            sent_s = time.perf_counter() - start
            received = len(sink.received)
        finally:
            sink.stop()
            engine.dispose()
    sent = sum(s.outcome == "sent" for s in report.sent)
    per_message = sent_s / max(sent, 1)
    print(f"launch with {PARTIES} invitations queued: {launched:.2f} s")
    print(
        f"send    {sent} messages ({received} received, {sink.connections} connection(s)) in "
        f"{sent_s:.2f} s = {per_message * 1000:.1f} ms/message  limit "
        f"{LIMIT_PER_MESSAGE_S * 1000:.0f} ms  ratio {per_message / LIMIT_PER_MESSAGE_S:.2f}"
    )


if __name__ == "__main__":
    main()
