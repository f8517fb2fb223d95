"""Chasing: reminders and escalations, derived from the parties' states at each tick.

Where the body a party's pending step waits on has a known calendar, the step's fixed-interval
reminders give way to an agenda reminder before each meeting's agenda closes and a follow-up
after each meeting that passed without the party moving on (``agenda``, ``followup``); deadline
reminders are their own kind (``deadline``) with their own count.

A chase's key (round, party, step, reminder number) makes queueing it again a no-op, so a tick that
runs twice, or two workers at once, queue it once; a worker that was down queues only the latest
reminder due for each step, not every one it missed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from engine.clock import DEFAULT_ZONE, Clock
from engine.core.chain import format_time
from engine.persistence import outbox
from engine.persistence.database import ensure_schema, transaction
from engine.persistence.tables import CalendarRow, OutboxRow, PartyRow, RoundRow
from engine.runtime.due import MEETING_KINDS, BodySchedules, meetings_of, next_due, set_due
from engine.runtime.forecasts import round_forecast
from engine.runtime.journal import machine_of, snapshot
from engine.runtime.lookup import now_in, resolve_round
from engine.runtime.messages import (
    contacts_of,
    policy_of,
    queue,
    recipient,
    step_of,
    to_coordinator,
)
from engine.runtime.results import ReminderPreview
from notifications.policy import (
    MeetingChase,
    deadline_reminder_due,
    due_deadline_reminder,
    due_meeting_chase,
    due_reminder,
    escalation_due,
    meeting_escalation_due,
    meetings_run_out,
    reminder_due,
)
from workflows import PENDING_ROLES

__all__ = ["Chase", "enqueue_due", "preview"]


@dataclass(frozen=True)
class Chase:
    """A reminder or escalation that is due for a party's pending step."""

    round_id: str
    party_id: str
    kind: str  # reminder, deadline, agenda, followup, escalation
    event: str  # the log's event once sent: remind, escalate
    state: str
    since: datetime
    number: int  # the reminder's number; for a deadline reminder, working days before it
    deadline_days: int | None
    key: outbox.Key  # its rows add the language, or "coordinator"
    due: datetime
    meeting: MeetingChase | None = None  # an agenda reminder's or follow-up's
    body: str | None = None  # the body whose meeting it is

    @property
    def step(self) -> str:
        """The prefix every reminder of the same step (or deadline) shares: the key but for its
        number."""
        return str(outbox.Key(self.key.kind, self.key.about[:-1])) + ":"

    def chase(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "event": self.event,
            "state": self.state,
            "since": format_time(self.since),
            "number": self.number,
            "deadline_days": self.deadline_days,
        }
        if self.meeting is not None:
            found["meeting"] = self.meeting.meeting.isoformat()
            found["agenda_closes"] = self.meeting.agenda_closes.isoformat()
            found["body"] = self.body
        return found


def _chase(
    party: PartyRow,
    kind: str,
    number: int,
    key: outbox.Key,
    at: datetime,
    days: int | None = None,
    meeting: MeetingChase | None = None,
    body: str | None = None,
) -> Chase:
    event = "escalate" if kind == "escalation" else "remind"
    return Chase(
        party.round_id,
        party.party_id,
        kind,
        event,
        party.state,
        party.since,
        number,
        days,
        key,
        at,
        meeting,
        body,
    )


Schedules = Mapping[str, BodySchedules]  # by party


def _schedules(session: Session, round_ids: Sequence[str]) -> dict[str, dict[str, BodySchedules]]:
    """The bodies' calendars of the rounds, by round and party: what the meeting chases read."""
    found: dict[str, dict[str, dict[str, tuple[tuple[date, ...], int]]]] = {}
    for start in range(0, len(round_ids), 500):
        rows = session.exec(
            select(CalendarRow).where(col(CalendarRow.round_id).in_(round_ids[start : start + 500]))
        ).all()
        for cal in rows:
            days = tuple(date.fromisoformat(d) for d in cal.meetings)
            found.setdefault(cal.round_id, {}).setdefault(cal.party_id, {})[cal.body] = (
                days,
                cal.agenda_days,
            )
    return found  # type: ignore[return-value]


def _chases(
    row: RoundRow,
    parties: Sequence[PartyRow],
    now: datetime,
    sent: dict[str, datetime],
    calendars: Schedules | None = None,
) -> list[Chase]:
    """What is due for each party at ``now``; ``sent``: the chases already sent, and when;
    ``calendars``: the round's bodies' calendars, by party (none: fixed intervals for all)."""
    policy = policy_of(row)
    calendar = policy.calendar()
    tz = ZoneInfo(row.timezone)
    local = now.astimezone(tz)
    if not calendar.is_working_day(local.date()) or local.time() < policy.send_time:
        # Reminders go out on working days from send_at: a worker that comes back on a
        # Saturday night, or in July, waits for the next working morning.
        return []
    due: list[Chase] = []
    days = due_deadline_reminder(policy, calendar, row.deadline, now, tz) if row.deadline else None
    for party in parties:
        step = (row.id, party.party_id, party.state, format_time(party.since))
        role = machine_of(party).role(party.state)
        plan = (
            meetings_of(row, party, calendars.get(party.party_id))
            if calendars and role in PENDING_ROLES
            else None
        )
        if plan is not None:
            body, chases = plan
            for kind in MEETING_KINDS:
                found = due_meeting_chase(chases, kind, now, tz)
                if found is not None:
                    key = outbox.Key(kind, (*step, found.meeting.isoformat()))
                    ordinal = 1 + [c.meeting for c in chases if c.kind == kind].index(found.meeting)
                    due.append(_chase(party, kind, ordinal, key, found.due, None, found, body))
            at = meeting_escalation_due(policy, calendar, chases, tz)
            if at is not None and now >= at:
                key = outbox.Key("escalation", step)
                due.append(_chase(party, "escalation", 0, key, at))
            # Its known meetings all passed: the fixed reminders again, from the last follow-up.
            resume = meetings_run_out(chases)
            number = due_reminder(policy, calendar, resume, now, tz)
            if number is not None:
                at = reminder_due(policy, calendar, resume, number, tz)
                key = outbox.Key("reminder", (*step, str(number)))
                due.append(_chase(party, "reminder", number, key, at))
        elif role in PENDING_ROLES:
            number = due_reminder(policy, calendar, party.since, now, tz)
            if number is not None:
                at = reminder_due(policy, calendar, party.since, number, tz)
                key = outbox.Key("reminder", (*step, str(number)))
                due.append(_chase(party, "reminder", number, key, at))
            # The escalation follows the last reminder once that one has gone out, so that it
            # can say how many did, even after a worker was down for weeks.
            at = escalation_due(policy, calendar, party.since, tz)
            last = sent.get(str(outbox.Key("reminder", (*step, str(policy.max_reminders)))))
            if last is not None:  # one interval after the last reminder actually went out
                day = calendar.add_working_days(last.astimezone(tz).date(), policy.every_days)
                at = max(at, datetime.combine(day, policy.send_time, tz))
            if now >= at and (policy.max_reminders == 0 or last is not None):
                key = outbox.Key("escalation", step)
                due.append(_chase(party, "escalation", policy.max_reminders, key, at))
        if days is not None and role not in ("done", "failed"):
            key = outbox.Key("deadline", (row.id, party.party_id, str(days)))
            assert row.deadline is not None
            at = deadline_reminder_due(policy, calendar, row.deadline, days, tz)
            due.append(_chase(party, "deadline", days, key, at, days))
    return due


def _due_rounds(
    session: Session, instant: datetime, wanted: str | None = None
) -> list[tuple[RoundRow, list[PartyRow], outbox.History, dict[str, BodySchedules]]]:
    """The parties due by ``instant`` (``parties.due_at``, indexed), by round, with each round's
    chases so far: what a tick looks at, however many parties wait for their bodies' meetings."""
    # Ordered here, not by the query: with an ORDER BY (round_id, position), SQLite walks the
    # parties' key in that order, every party of every round, instead of the due_at range.
    query = select(PartyRow).where(col(PartyRow.due_at) <= instant)
    if wanted is not None:
        query = query.where(col(PartyRow.round_id) == wanted)
    by_round: dict[str, list[PartyRow]] = {}
    for party in sorted(session.exec(query).all(), key=lambda p: (p.round_id, p.position)):
        by_round.setdefault(party.round_id, []).append(party)
    if not by_round:
        return []
    ids = list(by_round)
    rounds = {r.id: r for r in session.exec(select(RoundRow).where(col(RoundRow.id).in_(ids)))}
    open_ids = [r for r in ids if rounds[r].state == "open"]
    histories = outbox.chase_histories(session, open_ids)
    calendars = _schedules(session, open_ids)
    return [
        (rounds[r], by_round[r], histories.get(r, (set(), {})), calendars.get(r, {})) for r in ids
    ]


def _queue_chase(
    session: Session,
    row: RoundRow,
    party: PartyRow,
    chase: Chase,
    now: datetime,
    sent: dict[str, datetime],
) -> bool:
    """Queue one chase; False when another writer had queued it already."""
    policy = policy_of(row)
    if chase.kind == "escalation":
        context = {
            "reason": "stalled",
            "step": step_of(machine_of(party), snapshot(party)),
            "since": chase.since,
            "timezone": row.timezone,
            "reminders_sent": sum(_sent_reminders(sent, chase, k) for k in _CHASING),
            "forecast": _holding_back(session, row, now),
        }
        return to_coordinator(
            session, row, "escalation", chase.key, context, now, party, chase.chase()
        )
    outbox.supersede(
        session, chase.round_id, chase.party_id, chase.step, str(chase.key), chase.kind
    )
    if chase.meeting is not None:
        return _queue_meeting_chase(session, row, party, chase, now)
    deadline_days = policy.before_deadline_days
    if chase.deadline_days is None:
        # The party is told how many reminders it has had, not the schedule's slot: after an
        # outage the first one it gets may be slot 3, and "3 of 3" would be untrue.
        number = _sent_reminders(sent, chase) + 1
        of = number + policy.max_reminders - chase.number
    else:
        number, of = deadline_days.index(chase.deadline_days) + 1, len(deadline_days)
    context = {
        "step": step_of(machine_of(party), snapshot(party)),
        "since": chase.since,
        "timezone": row.timezone,
        "reminder_number": number,
        "max_reminders": of,
        "deadline": row.deadline,
    }
    told = {"told": [number, of]}  # as the email words it: 1 of 3
    return _to_contacts(session, row, party, chase, context, now, deadline=True, more=told)


def _to_contacts(
    session: Session,
    row: RoundRow,
    party: PartyRow,
    chase: Chase,
    context: dict[str, Any],
    now: datetime,
    *,
    deadline: bool = False,
    more: dict[str, Any] | None = None,
) -> bool:
    """Queue ``chase`` to each of the party's contacts, in their languages; whether any was new.
    ``deadline``: the round's deadline as a calendar entry; ``more``: added to its record."""
    added = False
    for email, language in contacts_of(party):
        added |= queue(
            session,
            row,
            party,
            chase.kind,
            chase.key.row(recipient(email)),
            [email],
            language,
            context,
            now,
            deadline=deadline,
            chase=chase.chase() | (more or {}),
        )
    return added


def _holding_back(session: Session, row: RoundRow, now: datetime) -> dict[str, Any] | None:
    """What the escalation says of the forecast: the round's earliest entry into force, the
    party that holds it back and by how long. None: no date to forecast."""
    found = round_forecast(session, row, now.date())
    if found.in_force is None or found.critical is None:
        return None
    party = session.get(PartyRow, (row.id, found.critical))
    return {
        "in_force": found.in_force,
        "party_id": found.critical,
        "party": party.name if party is not None else found.critical,
        "behind_days": found.behind_days,
        "late_days": found.late_days,
    }


def _queue_meeting_chase(
    session: Session, row: RoundRow, party: PartyRow, chase: Chase, now: datetime
) -> bool:
    """Queue an agenda reminder or a follow-up to the party's contacts."""
    assert chase.meeting is not None
    assert chase.body is not None
    context = {
        "step": step_of(machine_of(party), snapshot(party)),
        "since": chase.since,
        "timezone": row.timezone,
        "body": chase.body,
        "meeting": chase.meeting.meeting,
        "agenda_closes": chase.meeting.agenda_closes,
        "deadline": row.deadline,
    }
    return _to_contacts(session, row, party, chase, context, now)


# The chases of a step that the party receives (its escalation counts them).
_CHASING = ("reminder", *MEETING_KINDS)


def _sent_reminders(sent: dict[str, datetime], chase: Chase, kind: str = "reminder") -> int:
    """How many chases of ``kind`` of ``chase``'s step went out, from the round's sent chases."""
    step = (chase.round_id, chase.party_id, chase.state, format_time(chase.since))
    prefix = str(outbox.Key(kind, step)) + ":"
    return sum(key.startswith(prefix) for key in sent)


def enqueue_due(engine: Engine, clock: Clock) -> list[str]:
    """Queue every reminder and escalation due now that is not queued yet; their keys."""
    ensure_schema(engine)
    queued: list[str] = []
    with transaction(engine) as session:
        for row, parties, (already, sent), calendars in _due_rounds(session, clock.now(UTC)):
            if row.state != "open":  # ended since: nothing is ever due for its parties again
                for party in parties:
                    set_due(session, party, None)
                continue
            now = now_in(clock, row.timezone)
            by_id = {p.party_id: p for p in parties}
            for chase in _chases(row, parties, now, sent, calendars):
                # Only what this tick added: another worker's rows are its own to report.
                if str(chase.key) not in already and _queue_chase(
                    session, row, by_id[chase.party_id], chase, now, sent
                ):
                    queued.append(str(chase.key))
                already.add(str(chase.key))  # by this tick or by another worker
            for party in parties:  # when to look at it again
                found = calendars.get(party.party_id)
                set_due(session, party, next_due(row, party, already, sent, now, found))
    return queued


def preview(engine: Engine, clock: Clock, ref: str | None = None) -> list[ReminderPreview]:
    """What a tick at the clock's time would send, without writing anything."""
    ensure_schema(engine)
    result: list[ReminderPreview] = []
    with transaction(engine) as session:
        wanted = resolve_round(session, ref).id if ref else None
        for row, parties, (already, sent), calendars in _due_rounds(
            session, clock.now(UTC), wanted
        ):
            if row.state != "open":
                continue
            now = now_in(clock, row.timezone)
            by_id = {p.party_id: p for p in parties}
            for chase in _chases(row, parties, now, sent, calendars):
                if str(chase.key) in already:
                    continue
                party = by_id[chase.party_id]
                recipients = (
                    [row.coordinator["email"]]
                    if chase.kind == "escalation"
                    else [c["email"] for c in party.contacts]
                )
                number = chase.number
                if chase.kind == "reminder" and chase.deadline_days is None:
                    number = _sent_reminders(sent, chase) + 1  # as the email says
                result.append(
                    ReminderPreview(
                        round=row.id,
                        party=chase.party_id,
                        kind=chase.kind,
                        number=number,
                        state=chase.state,
                        recipients=tuple(recipients),
                        due=chase.due,
                        queued=False,
                        body=chase.body,
                        meeting=chase.meeting.meeting if chase.meeting else None,
                        agenda_closes=chase.meeting.agenda_closes if chase.meeting else None,
                    )
                )
        zones = dict(session.exec(select(RoundRow.id, RoundRow.timezone)).all())
        # What waits in the outbox and may go now: the columns shown, not whole messages.
        table = OutboxRow.__table__  # type: ignore[attr-defined]
        waiting = (
            sa_select(
                table.c.round_id,
                table.c.party_id,
                table.c.kind,
                table.c.recipients,
                table.c.next_attempt_at,
            )
            .where(table.c.state == "pending", table.c.next_attempt_at <= clock.now(UTC))
            .order_by(table.c.id)
        )
        if wanted:
            waiting = waiting.where(table.c.round_id == wanted)
        for round_id, party_id, kind, recipients, next_attempt_at in session.execute(waiting):
            zone = ZoneInfo(zones[round_id]) if round_id in zones else DEFAULT_ZONE
            result.append(
                ReminderPreview(
                    round=round_id,
                    party=party_id,
                    kind=kind,
                    number=None,
                    state=None,
                    recipients=tuple(recipients),
                    due=next_attempt_at.astimezone(zone),
                    queued=True,
                )
            )
    return result
