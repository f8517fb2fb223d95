"""Finding a round, and the checks every write to one makes first."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from engine.clock import Clock, NonexistentTime
from engine.core.text import length_problem, line_problem
from engine.errors import InvalidInput, NotFound, RoundClosed
from engine.persistence.tables import RoundRow
from engine.runtime.journal import lock_round

ID_MAX = 200  # longer than any round id (agreement id of 80, "/", its number)

__all__ = [
    "aware",
    "check_id",
    "id_problem",
    "local_now",
    "moves_forward",
    "now_in",
    "require_open",
    "resolve_round",
]


def resolve_round(session: Session, ref: str, *, lock: bool = False) -> RoundRow:
    """A round by its id (``agreement/n``), or an agreement id's latest round. ``lock``: hold its
    row until the transaction ends (PostgreSQL's FOR UPDATE; SQLite's write lock is already
    held), so that writers to one round take turns instead of failing on its version."""
    check_id(ref, "round")
    if lock and "/" in ref:  # a round's id: one locked read (the common case of every write)
        found = session.get(RoundRow, ref, with_for_update=True, populate_existing=True)
        if found is not None:
            return found
    row = session.get(RoundRow, ref)
    if row is None and "/" not in ref:
        row = session.exec(
            select(RoundRow)
            .where(RoundRow.agreement_id == ref)
            .order_by(col(RoundRow.number).desc())
            .limit(1)
        ).first()
    if row is None:
        known = session.exec(select(RoundRow.id).order_by(RoundRow.id)).all()
        hint = f"; rounds: {', '.join(known)}" if known else "; no round has been launched yet"
        raise NotFound(f"no round {ref!r}{hint}", field="round")
    if lock:
        return lock_round(session, row.id)
    return row


def id_problem(value: str) -> str | None:
    """What is wrong with an id typed by someone, or None."""
    return line_problem(value) or length_problem(value, ID_MAX)


def check_id(value: str, what: str) -> None:
    """An id typed by someone (a round's, a party's): one line of text, or InvalidInput before any
    query (a database driver would choke on what is not UTF-8)."""
    problem = id_problem(value)
    if problem is not None:
        raise InvalidInput(f"the {what} {value[:40]!r} {problem}", field=what)


def require_open(row: RoundRow) -> None:
    if row.state != "open":
        when = f" since {row.effective_date:%d.%m.%Y}" if row.effective_date else ""
        raise RoundClosed(
            f"round {row.id} is {row.state}{when}; nothing more can be recorded on it"
        )


def now_in(clock: Clock, zone: str) -> datetime:
    """The clock's time in ``zone`` (a round's); a time given by hand that the zone skips is
    invalid input."""
    try:
        return clock.now(ZoneInfo(zone))
    except NonexistentTime as exc:
        raise InvalidInput(str(exc), field="at") from None


def local_now(row: RoundRow, clock: Clock) -> datetime:
    """The clock's time in the round's zone, refused if it goes back before the latest entry."""
    now = now_in(clock, row.timezone)
    moves_forward(row, now)
    return now


def moves_forward(row: RoundRow, now: datetime) -> None:
    """Refuse ``now`` if it is before the round's latest entry: the log only moves forward."""
    latest = aware(row.last_entry_at)
    if now < latest:
        raise InvalidInput(
            f"{now:%Y-%m-%d %H:%M} is before round {row.id}'s latest entry "
            f"({latest.astimezone(now.tzinfo):%Y-%m-%d %H:%M}); the log only moves forward: "
            "give {opt.at} a later time"
        )


def aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
