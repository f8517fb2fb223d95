"""The worker: APScheduler as a clock, and the tick it runs.

Each tick derives everything from the database — timed transitions, reminders and escalations
that are due, messages waiting in the outbox — so a worker that was down catches up on start,
and two workers on one PostgreSQL database never send the same message twice.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from engine.clock import Clock
from engine.runtime.calendar_fetch import CalendarFetch, fetch_calendars
from engine.runtime.chasing import enqueue_due
from engine.runtime.due import legal_force_due
from engine.runtime.events import tick as apply_timed
from engine.runtime.proposals import SourcePoll, poll_sources
from engine.runtime.results import DeliveryResult, RecordResult
from engine.runtime.sending import send_due
from engine.runtime.webhook_sending import WebhookResult, send_webhooks
from engine.runtime.witness import queue_daily
from engine.runtime.worker_lock import WorkerLock, single_worker
from engine.wording import counted
from notifications.mailer import Mailer

if TYPE_CHECKING:
    from engine.runtime.access import Keys

__all__ = ["TickReport", "run_worker", "start_worker", "tick_once"]


@dataclass
class TickReport:
    moved: list[RecordResult] = field(default_factory=list)
    queued: list[str] = field(default_factory=list)
    sent: list[DeliveryResult] = field(default_factory=list)
    posted: list[WebhookResult] = field(default_factory=list)  # webhook deliveries tried
    calendars: list[CalendarFetch] = field(default_factory=list)  # URL calendars fetched
    polled: list[SourcePoll] = field(default_factory=list)  # decision sources read
    warnings: list[str] = field(default_factory=list)  # what could not be done (the tick went on)

    def summary(self) -> str:
        outcomes: dict[str, int] = {}
        for s in self.sent:
            outcomes[s.outcome] = outcomes.get(s.outcome, 0) + 1
        delivered = (
            ", ".join(f"{n} {_OUTCOMES.get(k, k)}" for k, n in sorted(outcomes.items())) or "0 sent"
        )
        moved = counted(len(self.moved), "party", "parties")
        line = f"{moved} moved, {counted(len(self.queued), 'message')} queued, {delivered}"
        if self.posted:
            done = sum(p.outcome == "delivered" for p in self.posted)
            line += f"; webhooks: {done} of {len(self.posted)} delivered"
        if self.calendars:
            failed = sum(c.outcome == "failed" for c in self.calendars)
            line += f"; calendars: {len(self.calendars) - failed} fetched, {failed} failed"
        if self.polled:
            proposed = sum(p.proposed for p in self.polled)
            line += f"; sources: {len(self.polled)} read, {counted(proposed, 'decision')} proposed"
        for warning in self.warnings + [
            f"{p.round} {p.party}: {p.warning}" for p in self.polled if p.warning
        ]:
            line += f"\n  warning: {warning}"
        return line


# How a delivery's outcome reads in the summary.
_OUTCOMES = {
    "temporary": "to retry (temporary failure)",
    "permanent": "failed",
    "claim lost": "taken over by another worker",
}


def tick_once(
    engine: Engine, clock: Clock, mailer: Mailer, mail_from: str, keys: Keys | None = None
) -> TickReport:
    """One tick: the URL calendars due, timed transitions, then what is due into the outbox,
    then the outbox out, then the webhooks' deliveries, then the decision sources due to be read
    (a calendar or source that fails is a warning kept with it and in the report, never the end
    of the tick)."""
    report = TickReport()
    report.calendars = fetch_calendars(engine, clock)  # first: the reminders read the meetings
    if legal_force_due(engine, clock.now(UTC)):
        report.moved = apply_timed(engine, clock)
    report.queued = enqueue_due(engine, clock)
    report.queued += queue_daily(engine, clock)  # the rounds' heads to RATIFY_WITNESS_EMAIL
    report.sent = send_due(engine, clock, mailer, mail_from, keys)
    if keys is not None:  # a webhook's secret derives from the server's
        report.posted = send_webhooks(engine, clock, keys.secret)
    try:
        report.polled = poll_sources(engine, clock)
    except Exception as exc:  # a source's trouble never stops the tick
        report.warnings.append(f"decision sources were not read ({type(exc).__name__}: {exc})")
    return report


def run_worker(
    engine: Engine,
    clock: Clock,
    mailer: Mailer,
    mail_from: str,
    interval: float,
    report: Callable[[TickReport], None],
    keys: Keys | None = None,
) -> None:
    """Tick every ``interval`` seconds until SIGTERM or SIGINT; the tick under way finishes."""
    from apscheduler.schedulers.blocking import BlockingScheduler

    scheduler = BlockingScheduler(timezone=UTC)
    _schedule(scheduler, engine, clock, mailer, mail_from, interval, report, keys)

    def stop(signum: int, _frame: object) -> None:
        scheduler.shutdown(wait=True)

    with single_worker(engine):  # on SQLite, refused while another worker runs
        previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            scheduler.start()
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)


def start_worker(
    engine: Engine,
    clock: Clock,
    mailer: Mailer,
    mail_from: str,
    interval: float,
    report: Callable[[TickReport], None],
    keys: Keys | None = None,
) -> Callable[[], None]:
    """The same ticks in a thread beside a web server; returns what stops them (after the tick
    under way)."""
    from apscheduler.schedulers.background import BackgroundScheduler

    lock = WorkerLock(engine)
    lock.acquire()  # on SQLite, refused while another worker runs
    scheduler = BackgroundScheduler(timezone=UTC)
    _schedule(scheduler, engine, clock, mailer, mail_from, interval, report, keys)
    scheduler.start()

    def stop() -> None:
        scheduler.shutdown(wait=True)
        lock.release()

    return stop


def _schedule(
    scheduler: Any,
    engine: Engine,
    clock: Clock,
    mailer: Mailer,
    mail_from: str,
    interval: float,
    report: Callable[[TickReport], None],
    keys: Keys | None,
) -> None:
    def job() -> None:
        report(tick_once(engine, clock, mailer, mail_from, keys))

    scheduler.add_job(
        job,
        "interval",
        seconds=interval,
        next_run_time=clock.now(UTC),  # the first tick at once: catch up on start
        max_instances=1,  # a slow tick is never overlapped by the next
        coalesce=True,  # ticks missed while one ran are one tick, not a burst
        id="tick",
    )
