"""A round's log a page at a time: what a client that follows a round reads (``since=SEQ``)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlmodel import col, select

from engine.core.chain import Entry
from engine.errors import InvalidInput
from engine.persistence.database import ensure_schema, transaction
from engine.persistence.tables import LogRow
from engine.runtime.journal import entry_dict
from engine.runtime.lookup import resolve_round

__all__ = ["PAGE_MAX", "LogPage", "log_page"]

PAGE_MAX = 1000


@dataclass(frozen=True)
class LogPage:
    """Entries after ``since``, oldest first. ``next_since``: what to ask for next (the last
    entry's seq, or ``since`` again when there was none); ``more``: whether the log goes on.
    ``entries_total`` and ``head``: the round's log as it stood when the page was read."""

    round: str
    since: int
    entries: list[Entry]
    next_since: int
    more: bool
    entries_total: int
    head: str


def log_page(engine: Engine, ref: str, since: int = 0, limit: int = 100) -> LogPage:
    if since < 0:
        raise InvalidInput(f"since {since}: give 0 or the seq of an entry", field="since")
    if not 1 <= limit <= PAGE_MAX:
        raise InvalidInput(f"limit {limit}: give 1 to {PAGE_MAX}", field="limit")
    ensure_schema(engine)
    with transaction(engine) as session:
        row = resolve_round(session, ref)
        rows = session.exec(
            select(LogRow)
            .where(LogRow.round_id == row.id, col(LogRow.seq) > since)
            .order_by(col(LogRow.seq))
            .limit(limit + 1)
        ).all()
        entries = [entry_dict(r) for r in rows[:limit]]
        last = entries[-1]["seq"] if entries else since
        return LogPage(
            row.id, since, entries, last, len(rows) > limit, row.log_length, row.log_head
        )
