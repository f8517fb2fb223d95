"""When a party may next have something due, kept in ``parties.due_at`` so that a tick reads only
the parties due by its time (one indexed range), not every open party.

The rule is simple and errs one way only: a write that may change what is due for a party (its
state changed, a reminder of it was sent, it was launched) sets ``due_at`` to now, so the next
tick looks at it; the tick, having queued what was due, sets ``due_at`` to the earliest moment
anything else can become due (:func:`next_due`). That moment may be early (the party is looked at
and nothing is due: a wasted look) but never late, which would be a missed reminder: the tests
compare the ticks with a scan of every party.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, bindparam, select, update
from sqlmodel import Session

from engine.core.calendar import WorkCalendar
from engine.core.chain import format_time
from engine.core.party import body_in_charge
from engine.persistence import outbox
from engine.persistence.database import ensure_schema, transaction
from engine.persistence.tables import PartyRow, RoundRow
from engine.runtime.journal import machine_of, snapshot
from engine.runtime.messages import policy_of
from notifications.policy import (
    MeetingChase,
    deadline_reminder_due,
    due_meeting_chase,
    escalation_due,
    meeting_chases,
    meeting_escalation_due,
    meetings_run_out,
    reminder_due,
)
from workflows import PENDING_ROLES

__all__ = [
    "MEETING_KINDS",
    "BodySchedules",
    "legal_force_due",
    "meetings_of",
    "next_due",
    "set_due",
]

# A party's bodies' calendars as the chases read them: body → (meeting days, agenda_days).
BodySchedules = Mapping[str, tuple[tuple[date, ...], int]]
MEETING_KINDS = ("agenda", "followup")


def meetings_of(
    row: RoundRow, party: PartyRow, calendars: BodySchedules | None
) -> tuple[str, list[MeetingChase]] | None:
    """The body the party's pending step waits on and the step's agenda reminders and follow-ups,
    when that body has a calendar with a meeting whose agenda was open when the step began; None
    otherwise (the fixed-interval reminders apply)."""
    if not calendars:
        return None
    machine = machine_of(party)
    body = body_in_charge(machine, snapshot(party))
    if body is None or body.name not in calendars:
        return None
    days, agenda_days = calendars[body.name]
    policy = policy_of(row)
    work = WorkCalendar(policy.holidays)  # the body's own days: its agenda closes in July too
    tz = ZoneInfo(row.timezone)
    chases = meeting_chases(policy, policy.calendar(), work, days, agenda_days, party.since, tz)
    return (body.name, chases) if chases else None


def next_due(
    row: RoundRow,
    party: PartyRow,
    queued: Collection[str],
    sent: Mapping[str, datetime],
    now: datetime,
    calendars: BodySchedules | None = None,
) -> datetime | None:
    """The earliest moment after ``now`` at which a chase not yet queued, or the party's legal
    force, can be due (UTC); None when nothing timed can come. ``queued`` and ``sent``: the
    round's chases, as :func:`engine.persistence.outbox.chase_history` gives them; ``calendars``:
    the party's bodies' (an agenda reminder or follow-up is a chase like any other)."""
    if row.state != "open":
        return None
    policy = policy_of(row)
    calendar = policy.calendar()
    tz = ZoneInfo(row.timezone)
    role = machine_of(party).role(party.state)
    times: list[datetime] = []
    plan = meetings_of(row, party, calendars) if role in PENDING_ROLES else None
    if plan is not None:
        step = (row.id, party.party_id, party.state, format_time(party.since))
        chases = plan[1]
        for kind in MEETING_KINDS:
            # The latest due, if not queued yet (outside working hours), and every one to come.
            current = due_meeting_chase(chases, kind, now, tz)
            for chase in chases:
                key = str(outbox.Key(kind, (*step, chase.meeting.isoformat())))
                if (
                    chase.kind == kind
                    and key not in queued
                    and (chase is current or chase.due > now)
                ):
                    times.append(chase.due)
        at = meeting_escalation_due(policy, calendar, chases, tz)
        if at is not None and str(outbox.Key("escalation", step)) not in queued:
            times.append(at)
        # Once its known meetings have passed, the fixed reminders again, from the last follow-up.
        resume = meetings_run_out(chases)
        done = [
            n
            for n in range(1, policy.max_reminders + 1)
            if str(outbox.Key("reminder", (*step, str(n)))) in queued
        ]
        if max(done, default=0) < policy.max_reminders:
            times.append(reminder_due(policy, calendar, resume, max(done, default=0) + 1, tz))
    elif role in PENDING_ROLES:
        step = (row.id, party.party_id, party.state, format_time(party.since))
        # The reminders go out in order, the latest due only after an outage: the next one is
        # the one after the highest queued.
        done = [
            n
            for n in range(1, policy.max_reminders + 1)
            if str(outbox.Key("reminder", (*step, str(n)))) in queued
        ]
        highest = max(done, default=0)
        if highest < policy.max_reminders:
            times.append(reminder_due(policy, calendar, party.since, highest + 1, tz))
        if str(outbox.Key("escalation", step)) not in queued:
            last = sent.get(str(outbox.Key("reminder", (*step, str(policy.max_reminders)))))
            if policy.max_reminders == 0 or last is not None:
                at = escalation_due(policy, calendar, party.since, tz)
                if last is not None:
                    day = calendar.add_working_days(last.astimezone(tz).date(), policy.every_days)
                    at = max(at, datetime.combine(day, policy.send_time, tz))
                times.append(at)
            # else: it waits for the last reminder to be sent, which marks the party due.
    if row.deadline is not None and role not in ("done", "failed"):
        local_today = now.astimezone(tz).date()
        if local_today <= row.deadline:  # after the deadline no reminder of it is sent
            ordered = sorted(policy.before_deadline_days, reverse=True)  # the earliest first
            keys = [str(outbox.Key("deadline", (row.id, party.party_id, str(d)))) for d in ordered]
            last_queued = max((i for i, k in enumerate(keys) if k in queued), default=-1)
            if last_queued + 1 < len(ordered):
                days = ordered[last_queued + 1]
                times.append(deadline_reminder_due(policy, calendar, row.deadline, days, tz))
    if times and min(times) <= now:
        # Due already and not queued: the tick found it outside working hours. The next look is
        # at the next working morning, not at every tick of the weekend.
        times = [max(t, _next_sending(now, tz, policy.send_time, calendar)) for t in times]
    if party.legal_force_from is not None and role == "legal_force":
        # Applied by the tick on its day whatever the hour (a past one: at the next tick).
        times.append(datetime.combine(party.legal_force_from, time(0), tz))
    return min(times).astimezone(UTC) if times else None


def legal_force_due(engine: Engine, instant: datetime) -> bool:
    """Whether any party of an open round that waits for legal force is due by ``instant``: the
    parties :func:`engine.runtime.events.tick` reads, found through the due_at index alone (its
    own query, ordered, has SQLite walk every open round's parties), so that a tick with none
    due does not look at every party."""
    ensure_schema(engine)
    rounds = RoundRow.__table__.c  # type: ignore[attr-defined]
    found = (
        select(_PARTIES.party_id)
        .select_from(PartyRow.__table__.join(RoundRow.__table__, rounds.id == _PARTIES.round_id))  # type: ignore[attr-defined]
        .where(
            _PARTIES.due_at <= instant,
            _PARTIES.legal_force_from.is_not(None),
            rounds.state == "open",
        )
        .limit(1)
    )
    with transaction(engine) as session:
        return session.execute(found).first() is not None


def _next_sending(now: datetime, tz: ZoneInfo, send_time: time, calendar: WorkCalendar) -> datetime:
    """The first moment from ``now`` at which a tick sends chases: a working day, from send_at."""
    local = now.astimezone(tz)
    if calendar.is_working_day(local.date()) and local.time() >= send_time:
        return now
    day = local.date() if local.time() < send_time else calendar.add_working_days(local.date(), 1)
    return datetime.combine(calendar.next_working_day(day), send_time, tz)


def set_due(session: Session, party: PartyRow, at: datetime | None) -> None:
    """Set when to look at ``party`` again, unless it changed since it was read (its state, or a
    reminder of it sent meanwhile: then it stays due, for the next tick to look at)."""
    params = {"_round": party.round_id, "_party": party.party_id, "_v": party.version, "_at": at}
    if party.due_at is None:
        session.execute(_SET_DUE_FROM_NONE, params)
    else:
        session.execute(_SET_DUE, params | {"_seen": party.due_at})


# Made once (a tick sets every party it looks at): the party as it was read, by version and by
# its due time (None compares to nothing, hence two).
_PARTIES = PartyRow.__table__.c  # type: ignore[attr-defined]
_SAME = (
    _PARTIES.round_id == bindparam("_round"),
    _PARTIES.party_id == bindparam("_party"),
    _PARTIES.version == bindparam("_v"),
)
_SET_DUE = (
    update(PartyRow.__table__)  # type: ignore[attr-defined]
    .where(*_SAME, _PARTIES.due_at == bindparam("_seen"))
    .values(due_at=bindparam("_at"))
)
_SET_DUE_FROM_NONE = (
    update(PartyRow.__table__)  # type: ignore[attr-defined]
    .where(*_SAME, _PARTIES.due_at.is_(None))
    .values(due_at=bindparam("_at"))
)
