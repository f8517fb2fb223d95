"""send: the outbox sent to a local SMTP sink in another process, beside a raw aiosmtplib loop.

ratify: ``engine.runtime.send_due`` for N invitations queued (copies of the Kanta-Häme round's
16, with the contacts' personal links made as they go, as the worker does), which claims them 50
at a time, delivers each batch over one connection and settles each message in its own
transaction. The limit: the bytes the sink received from ratify, sent again by a plain
aiosmtplib loop over as many connections. Both first send the template round's 16 untimed.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import aiosmtplib
from sqlalchemy import Engine

from bench.build import Copy, launch_example, replicate
from bench.common import LAUNCH, MAIL_FROM, Result, Stopwatch, say
from bench.sink import Captured, Sink
from engine.clock import FakeClock
from engine.runtime import connect, init_schema, send_due
from engine.runtime.access import Keys
from notifications.mailer import Mailer

__all__ = ["measure", "raw_send"]

KEYS = Keys(b"b" * 32, "http://127.0.0.1:8000")


async def _raw(port: int, messages: Sequence[Captured], connections: int) -> None:
    per = math.ceil(len(messages) / connections)
    for start in range(0, len(messages), per):
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=30)
        await smtp.connect()
        for message in messages[start : start + per]:
            await smtp.sendmail(message.mail_from, list(message.rcpt_tos), message.content)
        await smtp.quit()


def raw_send(port: int, messages: Sequence[Captured], connections: int) -> None:
    """The limit: the same bytes, over ``connections`` connections, nothing else."""
    asyncio.run(_raw(port, messages, connections))


def measure(folder: Path, count: int) -> Result:
    engine = connect(f"sqlite:///{folder / 'send.db'}")
    init_schema(engine)
    try:
        with Sink(folder / "sink.bin") as sink:
            return _measure(engine, sink, count)
    finally:
        engine.dispose()


def _measure(engine: Engine, sink: Sink, count: int) -> Result:
    template = launch_example(engine, FakeClock(LAUNCH))
    # The copies are launched an hour later: their invitations are due after the template's.
    later = [Copy(f"send-{i:05d}", -timedelta(hours=1)) for i in range(math.ceil(count / 16))]
    replicate(engine, template, later, outbox=True, outbox_limit=count)
    mailer = Mailer("127.0.0.1", sink.port)
    warm = send_due(engine, FakeClock(LAUNCH + timedelta(minutes=30)), mailer, MAIL_FROM, KEYS)
    first, _ = sink.received()
    raw_send(sink.port, first, 1)
    say(f"send: {len(warm)} sent to warm up; sending {count}")
    _, before = sink.received()
    ratify = Stopwatch()
    with ratify:
        sent = send_due(engine, FakeClock(LAUNCH + timedelta(hours=2)), mailer, MAIL_FROM, KEYS)
    received, after = sink.received()
    mine = received[2 * len(first) :]
    connections = after - before
    assert sum(s.outcome == "sent" for s in sent) == count == len(mine), (len(sent), len(mine))
    raw = Stopwatch()
    with raw:
        raw_send(sink.port, mine, connections)
    again, _ = sink.received()
    assert len(again) == len(received) + count
    return Result(
        name="send",
        value=count / ratify.seconds,
        limit=count / raw.seconds,
        unit="messages/s",
        better="higher",
        sizes={"messages": count, "connections": connections},
        target="ratio >= 0.8",
        met=raw.seconds / ratify.seconds >= 0.8,
    )
