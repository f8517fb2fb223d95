"""The dashboard: every round, its progress, what needs attention and what is sent next."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from engine.interfaces.web.common import (
    WebConfig,
    config,
    page,
    require_user,
)
from engine.interfaces.web.coord_common import (
    BULK,
    FAILED_SHOWN,
    PAGE,
    PREVIEW_SHOWN,
    READERS,
    WRITER,
    page_words,
)
from engine.runtime import (
    OutboxMessage,
    ReminderPreview,
)
from engine.runtime import RoundSummary as Summary

__all__ = ["router"]

router = APIRouter()
log = logging.getLogger(__name__)

# ---- the dashboard -----------------------------------------------------------------------------


@dataclass
class _Board:
    """What the dashboard keeps between requests (one per application). Every change of a round's
    parties appends to its log, so a round whose head has not moved needs no new status. The
    scheduler's preview costs a pass over every open round: once that has become slow, it is kept
    while no head moves, for a minute of the clock, and then refreshed in the background while
    the last one shows (sent mail moves no head: the minute bounds how stale it gets)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    rounds: dict[str, tuple[tuple[int, str], Summary]] = field(default_factory=dict)
    preview_lock: threading.Lock = field(default_factory=threading.Lock)
    preview: dict[str, tuple[tuple[ReminderPreview, ...], int]] = field(default_factory=dict)
    preview_key: object = None
    preview_at: datetime | None = None
    preview_cost: float = 0.0
    refreshing: bool = False


PREVIEW_TTL = timedelta(seconds=60)
PREVIEW_SYNC = 0.05  # seconds: a preview cheaper than this is always computed on the request


def _board(cfg: WebConfig) -> _Board:
    found = cfg.extra.get("coordinator.board")
    if not isinstance(found, _Board):
        found = cfg.extra.setdefault("coordinator.board", _Board())
    return found


def _summaries(cfg: WebConfig) -> tuple[list[Summary], tuple[tuple[str, int, str], ...]]:
    """Every round's summary, and the heads they are of (the preview's key): those whose head
    has not moved since the last request are kept; the others read again, in one call."""
    from engine.runtime import heads, round_summaries

    board = _board(cfg)
    with board.lock:
        current = {h.round: (h.entries, h.head) for h in heads(cfg.engine)}
        changed = [r for r, key in current.items() if board.rounds.get(r, ((0, ""),))[0] != key]
        if changed:
            fresh = round_summaries(cfg.engine, None if len(changed) > BULK else changed)
            for found in fresh:
                board.rounds[found.round] = ((found.entries, found.head), found)
        for gone in set(board.rounds) - set(current):
            del board.rounds[gone]
        rows = [board.rounds[r][1] for r in current if r in board.rounds]
    return rows, tuple((r, *key) for r, key in current.items())


def _compute_preview(cfg: WebConfig, board: _Board, key: object, now: datetime) -> None:
    from engine.runtime import preview

    started = time.perf_counter()
    # One line per message to a party, not per contact it goes to: a party's three contacts'
    # copies of one reminder are one reminder.
    merged: dict[tuple[object, ...], ReminderPreview] = {}
    for item in preview(cfg.engine, cfg.clock):
        group = (item.round, item.party, item.kind, item.number, item.queued)
        if (seen := merged.get(group)) is None:
            merged[group] = item
        else:
            merged[group] = replace(
                seen, recipients=seen.recipients + item.recipients, due=min(seen.due, item.due)
            )
    due: dict[str, list[ReminderPreview]] = {}
    for item in merged.values():
        due.setdefault(item.round or "", []).append(item)
    # Kept grouped by round, the first few of each only: a thousand rounds' queued invitations
    # are sixteen thousand items.
    board.preview = {
        r: (tuple(sorted(items, key=lambda p: p.due)[:PREVIEW_SHOWN]), len(items))
        for r, items in due.items()
    }
    board.preview_key, board.preview_at = key, now
    board.preview_cost = time.perf_counter() - started


def _refresh_preview(cfg: WebConfig, board: _Board, key: object, now: datetime) -> None:
    try:
        _compute_preview(cfg, board, key, now)
    except Exception:  # a thread of its own: the page keeps the last preview, the log says why
        log.exception("the dashboard's preview could not be refreshed")
    finally:
        board.refreshing = False


Upcoming = Mapping[str, tuple[tuple[ReminderPreview, ...], int]]


def _upcoming(cfg: WebConfig, key: object) -> tuple[Upcoming, datetime | None]:
    """What the scheduler's next tick sends, by round, and as of when (None: now)."""
    board = _board(cfg)
    now = cfg.clock.now(UTC)
    with board.preview_lock:
        at = board.preview_at
        if at is None or board.preview_cost < PREVIEW_SYNC:  # cheap: always as of now
            _compute_preview(cfg, board, key, now)
            return board.preview, None
        if key == board.preview_key and at <= now < at + PREVIEW_TTL:
            return board.preview, None
        if not board.refreshing:
            board.refreshing = True
            threading.Thread(
                target=_refresh_preview, args=(cfg, board, key, now), daemon=True
            ).start()
        return board.preview, at


def warm_dashboard(cfg: WebConfig) -> None:
    """Compute what the dashboard keeps, so that its first visitor does not wait for a thousand
    rounds' status (``ratify serve`` may call this in a thread once the application is made)."""
    _, key = _summaries(cfg)
    _upcoming(cfg, key)


@dataclass(frozen=True)
class Row:
    """A round's line on the dashboard, with what depends on today."""

    summary: Summary
    overdue: tuple[str, ...]
    next: tuple[ReminderPreview, ...]
    more: int  # further chases or messages due after those shown
    failed: int

    @property
    def attention(self) -> bool:
        return bool(self.overdue or self.summary.escalated or self.failed)


def _rows(
    summaries: Iterable[Summary],
    upcoming: Upcoming,
    failed: Sequence[OutboxMessage],
    today: Callable[[str], date],
) -> list[Row]:
    """Every round's row: the open ones that need attention first, then by deadline."""
    failures: dict[str, int] = {}
    for message in failed:
        failures[message.round] = failures.get(message.round, 0) + 1
    days: dict[str, date] = {}  # today in each zone, asked of the clock once
    rows = []
    for s in summaries:
        if s.zone not in days:
            days[s.zone] = today(s.zone)
        late = s.state == "open" and s.deadline is not None and s.deadline < days[s.zone]
        shown, total = upcoming.get(s.round, ((), 0))
        rows.append(
            Row(
                summary=s,
                overdue=s.unfinished if late else (),
                next=shown,
                more=total - len(shown),
                failed=failures.get(s.round, 0),
            )
        )
    rows.sort(
        key=lambda r: (
            r.summary.state != "open",
            not r.attention,
            r.summary.deadline or date.max,
            r.summary.round,
        )
    )
    return rows


@router.get("/")
def dashboard(request: Request, page_number: Annotated[int, Query(alias="page")] = 1) -> Response:
    from engine.runtime import outbox_messages
    from engine.runtime.webhooks import deliveries, webhooks

    who = require_user(request, *READERS)
    cfg = config(request)
    t = page_words(request)
    summaries, key = _summaries(cfg)
    upcoming, as_of = _upcoming(cfg, key)
    failed = outbox_messages(cfg.engine, "failed")
    # Webhook deliveries given up: rare, so the webhooks are read only when there is one.
    hooks = deliveries(cfg.engine, state="failed", limit=FAILED_SHOWN)
    hook_list = webhooks(cfg.engine) if hooks else []
    rows = _rows(summaries, upcoming, failed, lambda zone: cfg.clock.now(ZoneInfo(zone)).date())
    # A page of rows: Jinja renders a thousand rows in the better part of a second.
    pages = max(1, -(-len(rows) // PAGE))
    number = min(max(page_number, 1), pages)
    shown = rows[(number - 1) * PAGE : number * PAGE]
    open_rows = [r for r in rows if r.summary.state == "open"]
    return page(
        request,
        "dashboard.html.j2",
        {
            "t": t,
            "rows": shown,
            "page_number": number,
            "first": (number - 1) * PAGE + 1,
            "last": (number - 1) * PAGE + len(shown),
            "pages": pages,
            "total": len(rows),
            "open_total": len(open_rows),
            "attention": sum(r.attention for r in open_rows),
            "overdue": sum(len(r.overdue) for r in open_rows),
            "escalated": sum(len(r.summary.escalated) for r in open_rows),
            "failed": failed[-FAILED_SHOWN:][::-1],  # the latest first
            "failed_total": len(failed),
            "hooks": hooks,
            "hooks_total": sum(w.failed for w in hook_list),
            "hook_urls": {w.id: w.url for w in hook_list},
            "as_of": as_of,
            "may_write": who.role == WRITER,
        },
        title=t("coord.dashboard.title"),
    )
