"""Decisions proposed from published minutes: the worker reads each party's decision source,
an item that is the decision its step waits on becomes a proposal, and the party or the
coordinator confirms it (recorded through :func:`engine.runtime.events.record`, with where it
was read) or dismisses it. A proposal is never a recorded event by itself."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from engine.clock import Clock
from engine.core.calendar import WorkCalendar
from engine.core.evidence import Evidence
from engine.core.party import body_in_charge
from engine.core.text import ACTOR_MAX, check_line
from engine.errors import InvalidInput, NotFound, Refused
from engine.persistence.database import ensure_schema, transaction
from engine.persistence.tables import PartyRow, ProposalRow, RoundRow, SourceRow
from engine.runtime.events import record
from engine.runtime.journal import machine_of, snapshot
from engine.runtime.lookup import now_in, require_open, resolve_round
from engine.runtime.results import RecordResult
from engine.runtime.writes import OnceKey, Via, check_once, earlier
from engine.sources import MAX_BYTES, Item, SourceError, Wanted, item_key, matches, parse

__all__ = [
    "TIMEOUT",
    "Fetch",
    "Proposal",
    "ProposalConfirmed",
    "SourceInfo",
    "SourcePoll",
    "confirm_proposal",
    "dismiss_proposal",
    "paste_proposal",
    "poll_sources",
    "proposals",
    "sources",
]

TIMEOUT = 10.0  # seconds to connect and between reads of a source
DECISIONS = ("approve", "reject", "return")  # what a proposal may be confirmed as

# How a source is read: its address → the bytes it answers; SourceError, in words, when not.
Fetch = Callable[[str], bytes]


@dataclass(frozen=True)
class SourcePoll:
    """One reading of one party's source by the worker."""

    round: str
    party: str
    kind: str  # the source's kind: dynasty, cloudnc or 6aika
    url: str  # the address read
    sha256: str | None  # of what was fetched (None: nothing was)
    items: int  # items read
    proposed: int  # new proposals made
    warning: str | None  # why it gave nothing, or which items were left out (None: all well)


@dataclass(frozen=True)
class SourceInfo:
    """A party's decision source as its agreement file names it, and how its last reading went."""

    round: str
    party: str
    party_name: str  # the party's name, as the agreement file gives it
    kind: str  # dynasty, cloudnc, 6aika or manual
    url: str | None  # the address read (None: a manual source without one)
    diary: str | None  # the case's diary number the file gives, matched with the items'
    polled_at: datetime | None  # the last reading (None: never read yet)
    next_poll_at: datetime | None  # when it is next read (None: at once, while its party waits)
    sha256: str | None  # of what the last reading fetched
    warning: str | None  # why the last reading gave nothing, or what it left out


@dataclass(frozen=True)
class Proposal:
    """A decision found in a party's published minutes, to confirm or dismiss."""

    id: int  # the proposal's number: `ratify proposal confirm ID`
    round: str
    party: str
    party_name: str  # the party's name, as the agreement file gives it
    question: str  # "Kunnanhallitus 14.12.2026 § 5 approved?"
    decision: str  # the reference recorded on confirming: "Kunnanhallitus 14.12.2026 § 5"
    title: str  # the item's title as published
    diary: str | None  # the case's diary number as published, where given
    item_url: str  # the item's own address in the minutes
    source_url: str  # the address that was read (a manual source: the minutes' pasted)
    kind: str  # the source's kind: dynasty, cloudnc, 6aika or manual
    fetched_at: datetime  # when what it was found in was fetched (UTC)
    sha256: str  # of what was fetched (a manual source: of what was pasted)
    for_state: str  # the party's state it was proposed for
    state: str  # pending, confirmed or dismissed
    settled_by: str | None  # who confirmed or dismissed it
    settled_at: datetime | None  # when it was confirmed or dismissed
    seq: int | None  # the log entry its confirmation recorded


@dataclass(frozen=True)
class ProposalConfirmed:
    """A proposal confirmed, and the event recorded for it."""

    proposal: Proposal  # the proposal, now confirmed
    recorded: RecordResult  # the event recorded through the normal record path


def _http_get(url: str) -> bytes:
    """GET ``url`` with a timeout, reading at most MAX_BYTES; SourceError when it fails."""
    import httpx2

    try:
        with (
            httpx2.Client(timeout=TIMEOUT, follow_redirects=True, max_redirects=3) as client,
            client.stream("GET", url, headers={"accept": "*/*"}) as answer,
        ):
            if answer.status_code != 200:
                raise SourceError(f"{url} answered HTTP {answer.status_code}")
            chunks: list[bytes] = []
            size = 0
            for chunk in answer.iter_bytes():
                size += len(chunk)
                if size > MAX_BYTES:
                    raise SourceError(
                        f"{url} answered more than {MAX_BYTES:,} bytes; name a feed of one "
                        "body's recent minutes"
                    )
                chunks.append(chunk)
            return b"".join(chunks)
    except httpx2.HTTPError as exc:
        raise SourceError(f"{url} could not be read ({type(exc).__name__}: {exc})") from None


def _due(source: SourceRow, row: RoundRow, now: datetime) -> bool:
    """Whether a source is to be read now: at once when it never was, else once on each of the
    round's working days."""
    if source.polled_at is None:
        return True
    zone = ZoneInfo(row.timezone)
    today = now.astimezone(zone).date()
    work = WorkCalendar(str((row.reminders or {}).get("holidays", "FI")))
    return work.is_working_day(today) and source.polled_at.astimezone(zone).date() < today


def _next_poll(row: RoundRow, now: datetime) -> datetime:
    """When a source read at ``now`` is next due: the start of the round's next working day."""
    zone = ZoneInfo(row.timezone)
    work = WorkCalendar(str((row.reminders or {}).get("holidays", "FI")))
    day = work.next_working_day(now.astimezone(zone).date() + timedelta(days=1))
    return datetime.combine(day, time(0, 0), zone).astimezone(UTC)


# A time given by hand without an offset is local to each round's zone, so the moment a tick
# stands for, in UTC, is up to this much later than its clock reads in UTC: the sources due by
# then are looked at, each then asked in its own round's zone.
_ZONE_SPREAD = timedelta(hours=14)


def _wanted(row: RoundRow, party: PartyRow, source: SourceRow) -> Wanted | None:
    """What the party's step waits on, or None when it awaits no body's decision now."""
    machine = machine_of(party)
    if machine.role(party.state) != "review":
        return None
    body = body_in_charge(machine, snapshot(party))
    if body is None:
        return None
    since = party.since.astimezone(ZoneInfo(row.timezone)).date()
    return Wanted(title=row.title, diary=source.diary, body=body.name, since=since)


def poll_sources(engine: Engine, clock: Clock, fetch: Fetch | None = None) -> list[SourcePoll]:
    """Read every source that is due (of the open rounds' parties awaiting a body's decision),
    and propose what matches. A source that cannot be read is a warning kept with it; the
    others are read all the same."""
    ensure_schema(engine)
    get = fetch or _http_get
    with transaction(engine) as session:
        found = session.exec(
            select(SourceRow, RoundRow, PartyRow)
            .join(RoundRow, col(RoundRow.id) == col(SourceRow.round_id))
            .join(
                PartyRow,
                (col(PartyRow.round_id) == col(SourceRow.round_id))
                & (col(PartyRow.party_id) == col(SourceRow.party_id)),
            )
            .where(RoundRow.state == "open", col(SourceRow.url).is_not(None))
            .where(SourceRow.kind != "manual")
            .where(
                col(SourceRow.next_poll_at).is_(None)
                | (col(SourceRow.next_poll_at) <= clock.now(UTC) + _ZONE_SPREAD)
            )
            .order_by(col(SourceRow.round_id), col(PartyRow.position))
        ).all()
        due = [
            (s.round_id, s.party_id, s.kind, str(s.url))
            for s, r, p in found
            if _wanted(r, p, s) is not None and _due(s, r, now_in(clock, r.timezone))
        ]
    polls = []
    for round_id, party_id, kind, url in due:
        sha256: str | None = None
        items: list[Item] = []
        try:
            data = get(url)
            sha256 = hashlib.sha256(data).hexdigest()
            items = parse(kind, data, url)
            warning = None
        except SourceError as exc:
            warning = str(exc)
        except RecursionError:
            warning = f"{url}: its answer nests too deep to be read"
        except Exception as exc:  # an adapter's surprise is one source's warning, not the tick's
            items = []
            warning = f"{url}: its answer could not be read ({type(exc).__name__}: {exc})"[:500]
        left_out = [p for item in items if (p := item.problem()) is not None]
        if left_out and warning is None:
            warning = "; ".join(left_out[:3])
        try:
            proposed = _propose(
                engine, clock, round_id, party_id, kind, url, items, sha256, warning
            )
        except IntegrityError:  # another worker proposed the same item meanwhile: it is there
            proposed = 0
        polls.append(
            SourcePoll(round_id, party_id, kind, url, sha256, len(items), proposed, warning)
        )
    return polls


def _propose(
    engine: Engine,
    clock: Clock,
    round_id: str,
    party_id: str,
    kind: str,
    url: str,
    items: list[Item],
    sha256: str | None,
    warning: str | None,
) -> int:
    with transaction(engine) as session:
        source = session.get(SourceRow, (round_id, party_id))
        row = session.get(RoundRow, round_id)
        party = session.get(PartyRow, (round_id, party_id))
        if source is None or row is None or party is None:
            return 0
        now = now_in(clock, row.timezone)
        source.polled_at = now
        source.next_poll_at = _next_poll(row, now)
        source.sha256 = sha256
        source.warning = warning
        session.add(source)
        wanted = _wanted(row, party, source) if row.state == "open" else None
        if wanted is None or sha256 is None:
            return 0
        made = 0
        for item in items:
            if matches(item, wanted) and _add(session, row, party, kind, url, item, sha256, now):
                made += 1
        return made


def _add(
    session: Session,
    row: RoundRow,
    party: PartyRow,
    kind: str,
    url: str,
    item: Item,
    sha256: str,
    now: datetime,
) -> bool:
    """Keep ``item`` as a proposal for the party, unless it already is one (fetched again)."""
    key = item_key(item)
    exists = session.exec(
        select(ProposalRow.id).where(
            ProposalRow.round_id == row.id,
            ProposalRow.party_id == party.party_id,
            ProposalRow.item_key == key,
        )
    ).first()
    if exists is not None:
        return False
    session.add(
        ProposalRow(
            round_id=row.id,
            party_id=party.party_id,
            item_key=key,
            kind=kind,
            source_url=url,
            item_url=item.url,
            body=item.body,
            meeting=item.meeting,
            section=item.section,
            title=item.title,
            diary=item.diary,
            fetched_at=now,
            sha256=sha256,
            for_state=party.state,
            proposed_at=now,
        )
    )
    session.flush()
    return True


def _view(p: ProposalRow, party_name: str) -> Proposal:
    decision = f"{p.body} {p.meeting:%d.%m.%Y} § {p.section}"
    assert p.id is not None  # a stored row's
    return Proposal(
        id=p.id,
        round=p.round_id,
        party=p.party_id,
        party_name=party_name,
        question=f"{decision} approved?",
        decision=decision,
        title=p.title,
        diary=p.diary,
        item_url=p.item_url,
        source_url=p.source_url,
        kind=p.kind,
        fetched_at=p.fetched_at,
        sha256=p.sha256,
        for_state=p.for_state,
        state=p.state,
        settled_by=p.settled_by,
        settled_at=p.settled_at,
        seq=p.seq,
    )


def _names(session: Session, round_id: str) -> dict[str, str]:
    return dict(
        session.exec(
            select(PartyRow.party_id, PartyRow.name).where(PartyRow.round_id == round_id)
        ).all()
    )


def proposals(
    engine: Engine, ref: str, party: str | None = None, *, pending: bool = False
) -> list[Proposal]:
    """A round's proposals (of one party), oldest first; ``pending``: only those not settled."""
    ensure_schema(engine)
    with transaction(engine) as session:
        row = resolve_round(session, ref)
        names = _names(session, row.id)
        if party is not None and party not in names:
            raise NotFound(
                f"round {row.id} has no party {party!r}; its parties: {', '.join(names)}",
                field="party",
            )
        query = select(ProposalRow).where(ProposalRow.round_id == row.id)
        if party is not None:
            query = query.where(ProposalRow.party_id == party)
        if pending:
            query = query.where(ProposalRow.state == "pending")
        rows = session.exec(query.order_by(col(ProposalRow.id))).all()
        return [_view(p, names.get(p.party_id, p.party_id)) for p in rows]


def sources(engine: Engine, ref: str) -> list[SourceInfo]:
    """The round's parties' decision sources, in the parties' order, with their last reading's
    time, hash and warning."""
    ensure_schema(engine)
    with transaction(engine) as session:
        row = resolve_round(session, ref)
        found = session.exec(
            select(SourceRow, PartyRow.name)
            .join(
                PartyRow,
                (col(PartyRow.round_id) == col(SourceRow.round_id))
                & (col(PartyRow.party_id) == col(SourceRow.party_id)),
            )
            .where(SourceRow.round_id == row.id)
            .order_by(col(PartyRow.position))
        ).all()
        return [
            SourceInfo(
                round=row.id,
                party=s.party_id,
                party_name=name,
                kind=s.kind,
                url=s.url,
                diary=s.diary,
                polled_at=s.polled_at,
                next_poll_at=s.next_poll_at,
                sha256=s.sha256,
                warning=s.warning,
            )
            for s, name in found
        ]


def _pending(session: Session, pid: int, round_id: str | None, party: str | None) -> ProposalRow:
    """The proposal ``pid`` (of that round and party, when given), still to be settled."""
    found = session.get(ProposalRow, pid)
    if (
        found is None
        or (round_id is not None and found.round_id != round_id)
        or (party is not None and found.party_id != party)
    ):
        where = f" in round {round_id}" if round_id else ""
        raise NotFound(
            f"no proposal {pid}{where}; `ratify proposals ROUND` lists them", field="proposal"
        )
    if found.state != "pending":
        by = f" by {found.settled_by}" if found.settled_by else ""
        raise Refused(f"proposal {pid} is already {found.state}{by}; nothing was changed")
    return found


def _moved_on(party: PartyRow, proposal: ProposalRow) -> Refused | None:
    """A refusal when the party is no longer in the step the proposal was made for."""
    again = party.since > proposal.proposed_at  # left the step and came back to it since
    if party.state == proposal.for_state and not again:
        return None
    allowed = machine_of(party).by_hand(party.state)
    now = ", ".join(f'"{e}"' for e in allowed) or "nothing (a final state)"
    when = f"again since {party.since:%d.%m.%Y}" if party.state == proposal.for_state else "now"
    return Refused(
        f'Party "{party.party_id}" has moved on: it is {party.state} {when}, and the proposal '
        f'"{proposal.body} {proposal.meeting:%d.%m.%Y} § {proposal.section}" was for '
        f"{proposal.for_state} before. Allowed now: {now}. Dismiss the proposal, or record "
        "what happened as usual."
    )


def confirm_proposal(
    engine: Engine,
    pid: int,
    clock: Clock,
    actor: str,
    *,
    event: str = "approve",
    reason: str | None = None,
    via: Via | None = None,
    round_ref: str | None = None,
    party: str | None = None,
    once: OnceKey | None = None,
) -> ProposalConfirmed:
    """Record the proposed decision as ``event`` through the normal record path, with its
    reference, and in its entry the source's address, the fetch time and the SHA-256 of what
    was fetched; mark the proposal confirmed in the same transaction. Refused when the party
    has moved on. ``round_ref``/``party``: the proposal must be of that round (and party).
    ``once``: the same form or request again answers as the first did, writing nothing."""
    ensure_schema(engine)
    if event not in DECISIONS:
        raise InvalidInput(
            f"a proposal is confirmed as a decision: one of {', '.join(DECISIONS)}, not {event!r}",
            field="event",
        )
    check_line(actor, "actor", limit=ACTOR_MAX)
    check_once(once)
    with transaction(engine) as session:
        round_id = resolve_round(session, round_ref).id if round_ref is not None else None
        if (done := earlier(session, "record", once)) is not None:
            stored = session.get(ProposalRow, pid)
            if stored is not None:
                name = _names(session, stored.round_id).get(stored.party_id, stored.party_id)
                return ProposalConfirmed(_view(stored, name), RecordResult.from_json(done))
        found = _pending(session, pid, round_id, party)
        row = session.get(PartyRow, (found.round_id, found.party_id))
        assert row is not None  # a proposal is of a party of its round
        if (refused := _moved_on(row, found)) is not None:
            raise refused
        target = (found.round_id, found.party_id)
        decision = f"{found.body} {found.meeting:%d.%m.%Y} § {found.section}"
        provenance = {
            "proposal": str(pid),
            "source_kind": found.kind,
            "source_url": found.source_url,
            "item_url": found.item_url,
            "fetched_at": found.fetched_at.astimezone(UTC).isoformat(),
            "fetched_sha256": found.sha256,
        }
        diary = found.diary
        for_state = found.for_state

    def settle(session: Session, result: RecordResult) -> None:
        again = _pending(session, pid, None, None)  # confirmed meanwhile: refused, rolled back
        party_row = session.get(PartyRow, target)
        if again.for_state != for_state or party_row is None:
            raise Refused(f"proposal {pid} changed meanwhile; nothing was recorded")
        again.state = "confirmed"
        again.settled_by = actor
        again.settled_at = _recorded_at(session, result)
        again.seq = result.seq
        session.add(again)

    recorded = record(
        engine,
        target[0],
        target[1],
        event,
        Evidence(ref=decision, diary=diary, reason=reason),
        clock,
        actor,
        via=via,
        provenance=provenance,
        then=settle,
        once=once,
    )
    with transaction(engine) as session:
        stored = session.get(ProposalRow, pid)
        assert stored is not None
        return ProposalConfirmed(
            _view(stored, _names(session, stored.round_id)[stored.party_id]), recorded
        )


def _recorded_at(session: Session, result: RecordResult) -> datetime:
    """When the entry ``result`` wrote was recorded."""
    from engine.persistence.tables import LogRow

    entry = session.get(LogRow, (result.round, result.seq))
    assert entry is not None
    return entry.recorded_at


def dismiss_proposal(
    engine: Engine,
    pid: int,
    clock: Clock,
    actor: str,
    *,
    round_ref: str | None = None,
    party: str | None = None,
) -> Proposal:
    """Mark a proposal dismissed: the item was not the party's decision. Nothing is recorded."""
    ensure_schema(engine)
    check_line(actor, "actor", limit=ACTOR_MAX)
    with transaction(engine) as session:
        round_id = resolve_round(session, round_ref).id if round_ref is not None else None
        found = _pending(session, pid, round_id, party)
        found.state = "dismissed"
        found.settled_by = actor
        row = session.get(RoundRow, found.round_id)
        found.settled_at = now_in(clock, row.timezone if row else "UTC")
        session.add(found)
        session.flush()
        return _view(found, _names(session, found.round_id).get(found.party_id, found.party_id))


def paste_proposal(
    engine: Engine, ref: str, party: str, pasted: str, clock: Clock, actor: str
) -> Proposal:
    """A proposal from what a party pastes (a manual source): the minutes' address and the
    decision's reference. The same body, date rules as a fetched item; the title may be left
    out (the party says it is this agreement's)."""
    ensure_schema(engine)
    check_line(actor, "actor", limit=ACTOR_MAX)
    data = pasted.encode("utf-8")
    try:
        (item,) = parse("manual", data)
    except SourceError as exc:
        raise InvalidInput(str(exc), field="pasted") from None
    with transaction(engine) as session:
        row = resolve_round(session, ref, lock=True)
        require_open(row)
        now = now_in(clock, row.timezone)
        found = session.get(PartyRow, (row.id, party))
        if found is None:
            names = _names(session, row.id)
            raise NotFound(
                f"round {row.id} has no party {party!r}; its parties: {', '.join(names)}",
                field="party",
            )
        source = session.get(SourceRow, (row.id, party)) or SourceRow(
            round_id=row.id, party_id=party, kind="manual"
        )
        wanted = _wanted(row, found, source)
        if wanted is None:
            allowed = ", ".join(machine_of(found).by_hand(found.state))
            raise Refused(
                f'Party "{party}" is {found.state}: it awaits no body\'s decision now. '
                f"Allowed now: {allowed}."
            )
        if item.problem() is not None:
            raise InvalidInput(str(item.problem()), field="pasted")
        titled = (
            item
            if item.title
            else Item(item.body, item.meeting, item.section, row.title, item.diary, item.url)
        )
        if not matches(titled, wanted):
            raise InvalidInput(
                f"{item.ref} is not the decision party {party!r} awaits: that is "
                f"{wanted.body}'s, at a meeting from {wanted.since:%d.%m.%Y} on, on "
                f"{row.title!r}" + (f" (Dno {wanted.diary})" if wanted.diary else ""),
                field="pasted",
            )
        if item.meeting > now.date():
            raise InvalidInput(f"{item.ref} is dated after today", field="pasted")
        digest = hashlib.sha256(data).hexdigest()
        if not _add(session, row, found, "manual", item.url, titled, digest, now):
            raise Refused(f"{item.ref} is already proposed for party {party!r}")
        made = session.exec(
            select(ProposalRow).where(
                ProposalRow.round_id == row.id,
                ProposalRow.party_id == party,
                ProposalRow.item_key == item_key(titled),
            )
        ).one()
        return _view(made, found.name)
