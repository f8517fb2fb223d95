"""Sending: claim what is due in the outbox, deliver it outside any transaction, and record what
became of each message as soon as the server has answered, before the next one goes out (with a
log entry for every reminder and escalation sent). Delivery is at least once: a worker killed
mid-batch leaves unrecorded only the message in flight, which goes again with its Message-ID.

What the messages of a batch share (their rounds, parties, texts and contacts' links) is read in
a few queries for the whole batch, and each message is written out as bytes by
:mod:`notifications.mime`; what is left once a message is its own short transaction, committed
without waiting for the disk but for the batch's last (:class:`_Settler`).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, time, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, bindparam
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from engine.clock import Clock
from engine.core.chain import format_time
from engine.errors import ConcurrentUpdate, NotFound
from engine.persistence import outbox
from engine.persistence.database import Transactions, ensure_schema, transaction
from engine.persistence.tables import DocumentRow, OutboxRow, PartyRow, RoundRow
from engine.runtime.journal import ATTEMPTS, Journal, machine_of
from engine.runtime.languages import text_in
from engine.runtime.lookup import now_in
from engine.runtime.messages import policy_of, rendered, to_coordinator
from engine.runtime.results import DeliveryResult
from notifications.message import Attachment, OutgoingMessage
from notifications.mime import check_headers, to_wire
from notifications.render import personalize

if TYPE_CHECKING:
    from engine.runtime.access import Contact, Keys
    from notifications.mailer import Delivery, Mailer, Sendable

__all__ = ["send_due"]

BATCH = 50


def send_due(
    engine: Engine, clock: Clock, mailer: Mailer, mail_from: str, keys: Keys | None = None
) -> list[DeliveryResult]:
    """Claim what is due in the outbox, deliver it, and record what became of each message.
    ``keys`` make the contacts' personal links; without them a message links to no party page."""
    ensure_schema(engine)
    with transaction(engine) as session:
        zones = outbox.waiting_zones(session)
        certificates = [
            (round_id, row.log_head, language)
            for round_id, language in outbox.waiting_of_kind(session, "active")
            if (row := session.get(RoundRow, round_id)) is not None
        ]
    for round_id, head, language in certificates:  # made before a batch holds the write lock
        _certificate_html(engine, round_id, head, language)
    # A claim outlives the slowest batch: every message timing out, plus a margin.
    lease = timedelta(seconds=BATCH * mailer.timeout * 2 + 60)
    results: list[DeliveryResult] = []
    for zone in zones:  # the clock's "now" in each round's own zone
        while True:
            now = now_in(clock, zone)
            batch = _claim(engine, now, zone, lease, mail_from, results, keys)
            if batch is None:
                break
            try:
                with Transactions(engine) as settling:
                    settle = _Settler(engine, settling, clock, zone, len(batch), results)
                    mailer.deliver_sync(batch, on_delivery=settle)
            except _ClaimLost:
                # Another worker holds this batch now (this one's lease ran out): the rest of it
                # is its to send, so this one stops rather than send copies.
                continue
    return results


class _ClaimLost(Exception):
    """Stops a batch whose claim another worker took over."""


class _Settler:
    """Settles each message of a batch the moment its outcome is known, before the mailer sends
    the next: a worker killed mid-batch then resends at most the message that was in flight.

    Each message is settled on its own, in its own transaction, committed at once for every
    other connection to see, but without waiting for the disk but for the batch's last one,
    which makes them all durable (see :func:`~engine.persistence.database.transaction`): a crash
    of the whole machine mid-batch can then lose the outcomes of that batch, whose messages go
    again with their Message-IDs, as the message in flight does. What writes more than the
    message's own row (a chase's log entry, a bounce's escalation) is durable at once.

    One that cannot be written stops the batch (the exception propagates; its row and those not
    yet tried stay claimed, and go again after the lease), and leaves the outcomes already
    written intact."""

    def __init__(
        self,
        engine: Engine,
        settling: Transactions,
        clock: Clock,
        zone: str,
        size: int,
        results: list[DeliveryResult],
    ) -> None:
        self.engine, self.settling, self.clock, self.zone = engine, settling, clock, zone
        self.left = size
        self.results = results

    def __call__(self, delivery: Delivery) -> None:
        self.left -= 1
        item = cast(OutboxRow, delivery.ref)
        settled = _settle(
            self.engine,
            self.settling,
            self.clock,
            self.zone,
            item,
            delivery.outcome,
            delivery.error,
            delivery.refused,
            durable=self.left <= 0,
        )
        outcome = delivery.outcome if settled else "claim lost"
        result = _result(item, outcome, delivery.error, delivery.refused)
        self.results.append(result)
        if outcome == "claim lost":
            raise _ClaimLost(result.key)


def _claim(
    engine: Engine,
    now: datetime,
    zone: str,
    lease: timedelta,
    mail_from: str,
    results: list[DeliveryResult],
    keys: Keys | None = None,
) -> list[tuple[object, Sendable]] | None:
    """A batch to deliver: claimed rows still worth sending now, written out. None: nothing is
    due. What the batch's messages share (their rounds, parties, documents and links) is read
    once for the batch, not once a message."""
    from notifications.mailer import Later  # as the mailer itself: aiosmtplib when sending only

    while True:
        with transaction(engine) as session:
            claimed = outbox.claim(session, now, BATCH, timezone=zone, lease=lease)
            held = _load(session, claimed)  # noqa: F841  (kept: the session holds them weakly)
            going: list[OutboxRow] = []
            for item in claimed:
                if (later := _outside_hours(session, item, now)) is not None:
                    outbox.mark_deferred(session, item, later)
                    continue
                reason = _still_due(session, item, now)
                if reason:
                    outbox.mark_skipped(session, item, reason)
                    results.append(_result(item, "skipped", reason))
                    continue
                going.append(item)
            shared = _Shared.read(session, going, now, keys)
            batch: list[tuple[object, Sendable]] = []
            for item in going:
                try:
                    made, reply_to = _finished(session, item, keys, shared)
                    check_headers(made, mail_from, now, reply_to)
                except ValueError as exc:  # a header that cannot be sent: never will be
                    outbox.mark_failed(session, item, str(exc))
                    results.append(_result(item, "permanent", str(exc)))
                    continue
                # Written out as bytes by the mailer when its turn comes, while the server reads
                # the message before it: not here, inside the claim's transaction.
                batch.append((item, Later(partial(to_wire, made, mail_from, now, reply_to))))
        if not claimed:
            return None
        if batch:
            return batch


def _load(session: Session, claimed: list[OutboxRow]) -> list[RoundRow | PartyRow]:
    """The rounds and parties of a batch's messages, read in one query each: then in the
    session, where ``session.get`` finds them without a query of its own for as long as the
    caller holds on to what this returns (the session keeps its rows by weak reference)."""
    rows: list[RoundRow | PartyRow] = []
    rounds = {item.round_id for item in claimed}
    if rounds:
        rows += session.exec(select(RoundRow).where(col(RoundRow.id).in_(rounds))).all()
    pairs = {(i.round_id, i.party_id) for i in claimed if i.party_id is not None}
    if pairs:
        # Their rounds' and their ids' every pair, the batch's kept: (round_id, party_id) IN
        # (…) would have SQLite (3.40) scan every party of every round for a list of row values,
        # and pair by pair ORs make a statement to compile anew for each batch's size.
        found = session.exec(
            select(PartyRow).where(
                col(PartyRow.round_id).in_({r for r, _ in pairs}),
                col(PartyRow.party_id).in_({p for _, p in pairs}),
            )
        )
        rows += [party for party in found if (party.round_id, party.party_id) in pairs]
    return rows


class _Shared:
    """What the messages of a batch that go out need besides their rows, read in one query or
    flush each: the texts they attach and their contacts' links."""

    def __init__(
        self, documents: dict[tuple[str, str], DocumentRow], links: dict[Contact, str | None]
    ) -> None:
        self.documents = documents
        self.links = links

    @classmethod
    def read(
        cls, session: Session, going: list[OutboxRow], now: datetime, keys: Keys | None
    ) -> _Shared:
        from engine.runtime.access import links_for

        texts = {(i.round_id, sha) for i in going if (sha := (i.personal or {}).get("document"))}
        documents: dict[tuple[str, str], DocumentRow] = {}
        if texts:
            # By round (its key's prefix), the text picked here: (round_id, sha256) IN (…) is a
            # scan of every text on SQLite (see _load), and a round has few versions.
            rounds = {round_id for round_id, _ in texts}
            found = (
                select(DocumentRow)
                .where(col(DocumentRow.round_id).in_(rounds))
                .order_by(col(DocumentRow.version))
            )
            for document in session.exec(found):
                if (document.round_id, document.sha256) in texts:
                    documents.setdefault((document.round_id, document.sha256), document)
        contacts: list[Contact] = []
        if keys is not None:
            for item in going:
                if "link" in (item.personal or {}):
                    party_id, email = (item.personal or {})["link"]
                    contacts.append((item.round_id, party_id, email))
        return cls(documents, links_for(session, keys, contacts, now) if keys else {})


def _finished(
    session: Session, item: OutboxRow, keys: Keys | None, shared: _Shared
) -> tuple[OutgoingMessage, str | None]:
    """The stored message made whole for sending: its contact's link and the server's address
    put in, the text it is about attached, and replies sent to the round's coordinator."""
    made = rendered(session, item)
    row = session.get(RoundRow, item.round_id)
    personal = item.personal or {}
    site = keys.base_url if keys is not None else "http://127.0.0.1:8000"
    link: str | None = site  # no keys, no links: the server's address in its place
    if keys is not None and "link" in personal:
        party_id, email = personal["link"]
        token = shared.links[item.round_id, party_id, email]
        link = keys.link_url(token) if token else None  # None: withdrawn, and said so
    made = personalize(made, link, site)
    if (sha := personal.get("document")) is not None:
        document = shared.documents.get((item.round_id, sha))
        if document is not None:
            # The contact's language's text (the message's language), else the round's.
            source, text, _ = text_in(document, made.language)
            name = source if "." in source else f"{source}.txt"
            kind = "text/markdown" if name.endswith(".md") else "text/plain"
            made = replace(
                made,
                attachments=(*made.attachments, Attachment(name, kind, text.encode())),
            )
    head = row.log_head if row is not None else ""
    if item.kind == "active" and (page := _CERTIFICATES.get((item.round_id, head, made.language))):
        made = replace(
            made,
            attachments=(*made.attachments, Attachment("certificate.html", "text/html", page)),
        )
    reply_to = row.coordinator.get("email") if row is not None and "link" in personal else None
    return made, reply_to


# Certificates for the notices of entry into force waiting to go, by (round, head, language):
# the head names the whole log, so a certificate made for it is the one to send.
_CERTIFICATES: dict[tuple[str, str, str], bytes] = {}


def _certificate_html(engine: Engine, round_id: str, head: str, language: str) -> None:
    """The certificate of completion the notice of entry into force carries: who approved which
    text on which decision, who signed, and the chain's head. Made outside any write
    transaction, once per round and language however many contacts the notice goes to."""
    from engine.runtime.certificate import certificate
    from engine.runtime.pack import render_certificate_html

    if (round_id, head, language) in _CERTIFICATES:
        return
    if len(_CERTIFICATES) > 64:
        _CERTIFICATES.clear()
    html = render_certificate_html(certificate(engine, round_id), language)
    _CERTIFICATES[round_id, head, language] = html.encode("utf-8")


def _outside_hours(session: Session, item: OutboxRow, now: datetime) -> datetime | None:
    """For a reminder or escalation outside working days and hours, when it may go instead."""
    if not item.chase or item.chase.get("bounced"):
        return None
    row = session.get(RoundRow, item.round_id)
    if row is None:
        return None
    policy = policy_of(row)
    calendar = policy.calendar()
    local = now.astimezone(ZoneInfo(row.timezone))
    if calendar.is_working_day(local.date()) and local.time() >= policy.send_time:
        return None
    day = local.date() if local.time() < policy.send_time else local.date() + timedelta(days=1)
    day = calendar.next_working_day(day)
    return datetime.combine(day, time(policy.send_time.hour, policy.send_time.minute), local.tzinfo)


def _still_due(session: Session, item: OutboxRow, now: datetime | None = None) -> str | None:
    """Why a reminder or escalation should no longer go out, or None when it should."""
    if not item.chase or item.chase.get("bounced"):
        return None
    row = session.get(RoundRow, item.round_id)
    if row is None or row.state != "open":
        return "the round is no longer open"
    party = session.get(PartyRow, (item.round_id, item.party_id))
    if party is None:
        return "the party is gone"
    if item.chase.get("deadline_days") is not None:
        ended = machine_of(party).role(party.state) in ("done", "failed")
        return "the party has signed" if ended else None
    if party.state != item.chase["state"] or format_time(party.since) != item.chase["since"]:
        return f"the party has moved on to {party.state}"
    closes = item.chase.get("agenda_closes") if item.kind == "agenda" else None
    if (
        closes
        and now is not None
        and now.astimezone(ZoneInfo(row.timezone)).date().isoformat() > closes
    ):
        return f"the agenda closed on {closes}"  # held up (an outage): it would only mislead
    return None


def _result(
    item: OutboxRow, outcome: str, error: str | None, refused: dict[str, str] | None = None
) -> DeliveryResult:
    assert item.id is not None  # a claimed row is stored
    return DeliveryResult(
        id=item.id,
        key=item.key,
        kind=item.kind,
        round=item.round_id,
        party=item.party_id,
        recipients=tuple(item.recipients),
        chase=item.chase,
        outcome=outcome,
        error=error,
        refused=refused or {},
    )


def _settle(
    engine: Engine,
    settling: Transactions,
    clock: Clock,
    zone: str,
    item: OutboxRow,
    outcome: str,
    error: str | None,
    refused: dict[str, str],
    *,
    durable: bool = True,
) -> bool:
    """Write what became of one message, and for a chase sent its log entry, under the round's
    lock; a message sent or retried that writes nothing but its own row needs no other lock,
    and waits for the disk only if ``durable``. False when this worker's claim on it was lost
    meanwhile: then nothing is written. Each in a transaction of its own on the batch's
    connection (``settling``): no session or connection of the pool's for each."""
    from notifications.mailer import backoff

    if outcome == "temporary" or (outcome == "sent" and not item.chase):
        now = now_in(clock, zone)
        with settling.begin(durable=durable) as connection:
            if outcome == "sent":
                return outbox.mark_sent(connection, item, now, refused)
            return outbox.mark_retry(connection, item, now, backoff(item.attempts + 1), error or "")

    def work(session: Session) -> bool:
        # The round read under its lock (as journal.lock_round, in a session that holds nothing
        # yet, by a statement made once: lock_round's get costs several times more).
        row = session.execute(_LOCKED_ROUND, {"id": item.round_id}).scalar_one_or_none()
        if row is None:
            raise NotFound(f"no round {item.round_id!r}")
        now = now_in(clock, row.timezone)
        if outcome == "sent":
            if not outbox.mark_sent(session, item, now, refused):
                return False
            _log_chase(session, row, item, now, clock.source)
            return True
        if not outbox.mark_failed(session, item, error or ""):
            return False
        if item.kind != "escalation":
            _bounced(session, row, item, error or "", now)
        return True

    for _ in range(ATTEMPTS):  # as journal.retrying, on the batch's connection
        try:
            with settling.begin() as connection, Session(bind=connection) as session:
                return work(session)
        except ConcurrentUpdate:
            continue
    raise ConcurrentUpdate("the round is busy with other writers; try again")


_LOCKED_ROUND = select(RoundRow).where(col(RoundRow.id) == bindparam("id")).with_for_update()
_PARTY_STATE = sa_select(PartyRow.__table__.c.state).where(  # type: ignore[attr-defined]
    PartyRow.__table__.c.round_id == bindparam("round"),  # type: ignore[attr-defined]
    PartyRow.__table__.c.party_id == bindparam("party"),  # type: ignore[attr-defined]
)


def _log_chase(
    session: Session, row: RoundRow, item: OutboxRow, now: datetime, source: str
) -> None:
    chase = item.chase or {}
    state = None
    if item.party_id:  # its state only: the rest of the party's row is not needed here
        params = {"round": row.id, "party": item.party_id}
        state = session.connection().execute(_PARTY_STATE, params).scalar()
    # The log only moves forward: a worker run --at an earlier time records at the latest entry.
    moment = max(now, row.last_entry_at)
    journal = Journal(session, row, actor="ratify", now=moment, clock=source)
    evidence: dict[str, Any] = {
        "message": item.message_id,
        "kind": item.kind,
        "recipients": len(item.recipients),
    }
    if chase.get("bounced"):
        evidence["reason"] = "bounced"
    else:
        evidence["step_since"] = chase.get("since")
    if item.kind in ("reminder", "deadline"):
        key = "days_before_deadline" if chase.get("deadline_days") is not None else "reminder"
        evidence[key] = chase.get("number")
    elif item.kind in ("agenda", "followup"):  # the meeting it is about
        evidence["body"] = chase.get("body")
        evidence["meeting"] = chase.get("meeting")
    journal.append(
        chase["event"], party=item.party_id, from_state=state, to_state=state, evidence=evidence
    )
    journal.seal()


def _bounced(session: Session, row: RoundRow, item: OutboxRow, error: str, now: datetime) -> None:
    """Tell the coordinator, once, that a message could not be delivered (logged when sent)."""
    party = session.get(PartyRow, (row.id, item.party_id)) if item.party_id else None
    context = {"reason": "bounced", "recipients": list(item.recipients), "error": error}
    chase = {"event": "escalate", "bounced": True, "message": item.message_id}
    key = outbox.Key("bounced", (item.key,))
    to_coordinator(session, row, "escalation", key, context, now, party, chase)
