"""tick-*: one worker tick over many pending parties, a hundred of them due, beside one query.

The database: copies of the Kanta-Häme round (13 parties, in ``draft`` since their launch on
Tuesday 1.12.2026 at 09:00) up to N parties, with their invitations sent. The first copies were
launched on Thursday 19.11 instead, and exactly ``due`` of their parties are still in ``draft``
since then: at Thursday 3.12 10:00 their first reminder (10 working days on) is due; nobody
else's is. ratify: ``engine.runtime.tick_once`` at that time, to a local SMTP sink in another
process: legal force, reminders due into the outbox, the outbox sent (the reminders, with their
log entries). A tick an hour before (nothing due; the invitations go) warms it up. The limit:
one query through ``sqlite3`` on an index of ``parties.since`` selecting the parties due.
"""

from __future__ import annotations

import math
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bench.build import Copy, launch_example, move_parties, replicate
from bench.common import LAUNCH, MAIL_FROM, Result, Stopwatch, best_of, say
from bench.send import KEYS
from bench.sink import Sink
from engine.clock import FakeClock
from engine.runtime import connect, init_schema, tick_once
from notifications.mailer import Mailer

__all__ = ["measure"]

ZONE = ZoneInfo("Europe/Helsinki")
PARTIES_PER_ROUND = 13
EARLIER = timedelta(days=12)  # the due rounds' launch: Thursday 19.11.2026, 09:00
WARM = datetime(2026, 12, 2, 12, 0)  # noqa: DTZ001  (wall time in the rounds' zone)
AT = datetime(2026, 12, 3, 10, 0)  # noqa: DTZ001
PENDING = ("draft", "board_review", "council_review", "awaiting_signature")
DUE_QUERY = (
    "SELECT p.round_id, p.party_id FROM parties p JOIN rounds r ON r.id = p.round_id "
    "WHERE p.since <= ? AND r.state = 'open' AND p.state IN (?, ?, ?, ?)"
)


def label(parties: int) -> str:
    return (
        f"tick-{parties // 1000}k" if parties >= 1000 and parties % 1000 == 0 else f"tick-{parties}"
    )


def measure(folder: Path, sizes: tuple[int, int], due: int) -> list[Result]:
    with Sink(folder / "tick-sink.bin") as sink:
        small, big = (_tick(folder, n, due, sink.port) for n in sizes)
    growth = big.value / small.value
    return [
        small,
        big,
        Result(
            name="tick-growth",
            value=growth,
            limit=2.0,
            unit="x",
            better="lower",
            sizes={"from": sizes[0], "to": sizes[1]},
            target="<= 2 (10k to 100k)",
            met=growth <= 2.0 if sizes == (10_000, 100_000) else None,
        ),
    ]


def _tick(folder: Path, parties: int, due: int, port: int) -> Result:
    url = f"sqlite:///{folder / f'tick-{parties}.db'}"
    engine = connect(url)
    init_schema(engine)
    try:
        template = launch_example(engine, FakeClock(LAUNCH))
        rounds = math.ceil(parties / PARTIES_PER_ROUND)
        due_rounds = math.ceil(due / PARTIES_PER_ROUND)
        targets = [
            Copy(f"tick-{i:05d}", EARLIER if i < due_rounds else timedelta(0))
            for i in range(rounds - 1)
        ]
        replicate(engine, template, targets)
        # The last due round: only its first parties are still where they were at its launch.
        left = due - PARTIES_PER_ROUND * (due_rounds - 1)
        since = LAUNCH.replace(tzinfo=ZONE)
        move_parties(
            engine, targets[due_rounds - 1].round_id, range(left, PARTIES_PER_ROUND), since
        )
        mailer = Mailer("127.0.0.1", port)
        warm = tick_once(engine, FakeClock(WARM), mailer, MAIL_FROM, KEYS)
        assert not warm.queued, f"{len(warm.queued)} chases due at the warm-up tick"
        say(f"{label(parties)}: {rounds} rounds; warm tick sent {len(warm.sent)}; ticking")
        watch = Stopwatch()
        with watch:
            report = tick_once(engine, FakeClock(AT), mailer, MAIL_FROM, KEYS)
    finally:
        engine.dispose()
    sent = sum(s.outcome == "sent" for s in report.sent)
    query = _limit(folder / f"tick-{parties}.db", due)
    return Result(
        name=label(parties),
        value=watch.seconds,
        limit=query,
        unit="s",
        better="lower",
        sizes={
            "parties": rounds * PARTIES_PER_ROUND,
            "rounds": rounds,
            "due": due,
            "queued": len(report.queued),
            "sent": sent,
        },
        target="<= 1 s" if parties >= 100_000 else "",
        met=watch.seconds <= 1.0 if parties >= 100_000 else None,
    )


def _limit(path: Path, due: int) -> float:
    """One indexed query selecting the parties due: its best time of five."""
    cutoff = (LAUNCH - EARLIER).replace(tzinfo=ZONE).astimezone(UTC)
    db = sqlite3.connect(path)
    db.execute("CREATE INDEX bench_parties_since ON parties (since)")
    args = (cutoff.strftime("%Y-%m-%d %H:%M:%S.%f"), *PENDING)
    found = db.execute(DUE_QUERY, args).fetchall()
    assert len(found) == due, f"the query finds {len(found)} parties due, not {due}"
    seconds = best_of(5, lambda: db.execute(DUE_QUERY, args).fetchall())
    db.execute("DROP INDEX bench_parties_since")
    db.close()
    return seconds
