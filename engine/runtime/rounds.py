"""Use cases on whole rounds: launch, amend, cancel, and what a round looks like now."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from engine.agreement import Agreement, read_document, sha256_text
from engine.clock import Clock
from engine.core.chain import GENESIS
from engine.core.party import had_approval, reopened
from engine.errors import (
    AgreementFileError,
    InvalidInput,
    NotFound,
    RatifyError,
    Refused,
    RoundClosed,
)
from engine.persistence.database import ensure_schema, transaction
from engine.persistence.tables import DocumentRow, OutboxRow, PartyRow, RoundRow
from engine.runtime import notify
from engine.runtime.journal import Journal, lock_round, retrying, save_party, snapshot

__all__ = [
    "amend",
    "cancel",
    "launch",
    "local_now",
    "moves_forward",
    "require_open",
    "resolve_round",
    "status",
]


def resolve_round(session: Session, ref: str, *, lock: bool = False) -> RoundRow:
    """A round by its id (``agreement/n``), or an agreement id's latest round. ``lock``: hold its
    row until the transaction ends (PostgreSQL's FOR UPDATE; SQLite's write lock is already
    held), so that writers to one round take turns instead of failing on its version."""
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
        raise NotFound(f"no round {ref!r}{hint}")
    if lock:
        return lock_round(session, row.id)
    return row


def require_open(row: RoundRow) -> None:
    if row.state != "open":
        when = f" since {row.effective_date:%d.%m.%Y}" if row.effective_date else ""
        raise RoundClosed(
            f"round {row.id} is {row.state}{when}; nothing more can be recorded on it"
        )


def local_now(row: RoundRow, clock: Clock) -> datetime:
    """The clock's time in the round's zone, refused if it goes back before the latest entry."""
    now = clock.now(ZoneInfo(row.timezone))
    moves_forward(row, now)
    return now


def moves_forward(row: RoundRow, now: datetime) -> None:
    """Refuse ``now`` if it is before the round's latest entry: the log only moves forward."""
    latest = _aware(row.last_entry_at)
    if now < latest:
        raise InvalidInput(
            f"{now:%Y-%m-%d %H:%M} is before round {row.id}'s latest entry "
            f"({latest.astimezone(now.tzinfo):%Y-%m-%d %H:%M}); the log only moves forward: "
            "give --at a later time"
        )


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def launch(engine: Engine, agreement: Agreement, clock: Clock, actor: str) -> str:
    """Create a round of ``agreement`` with every party in draft; return its id."""
    ensure_schema(engine)
    now = clock.now(ZoneInfo(agreement.timezone))
    if agreement.deadline is not None and agreement.deadline < now.date():
        raise AgreementFileError(
            str(agreement.path),
            [
                f"agreement.deadline: {agreement.deadline:%d.%m.%Y} has passed at launch "
                f"({now:%d.%m.%Y}); give a later date, or leave the deadline out"
            ],
        )
    for attempt in range(3):
        try:
            with transaction(engine) as session:
                return _launch(session, agreement, now, clock.source, actor)
        except IntegrityError as exc:
            # Another launch of the same agreement won the race: look again (and be refused).
            if attempt == 2:
                raise RatifyError(f"the database refused the launch: {exc.orig}") from None
    raise AssertionError("unreachable")


def _launch(session: Session, agreement: Agreement, now: datetime, source: str, actor: str) -> str:
    open_round = session.exec(
        select(RoundRow).where(RoundRow.agreement_id == agreement.id, RoundRow.state == "open")
    ).first()
    if open_round is not None:
        raise Refused(
            f"round {open_round.id} of {agreement.id} is still open; finish it, or end it with "
            f"`ratify cancel {open_round.id} --reason ...`, before launching another"
        )
    number = (
        session.scalar(
            select(func.max(RoundRow.number)).where(RoundRow.agreement_id == agreement.id)
        )
        or 0
    ) + 1
    row = RoundRow(
        id=f"{agreement.id}/{number}",
        agreement_id=agreement.id,
        number=number,
        title=agreement.title,
        state="open",
        language=agreement.language,
        timezone=agreement.timezone,
        deadline=agreement.deadline,
        coordinator={"name": agreement.coordinator.name, "email": agreement.coordinator.email},
        document_sha256=agreement.document_sha256,
        document_version=1,
        launched_at=now,
        last_entry_at=now,
        log_length=0,
        log_head=GENESIS,
        reminders=agreement.reminders.model_dump(mode="json"),
    )
    session.add(row)
    session.flush()  # the round first: the rows below refer to it
    session.add(
        DocumentRow(
            round_id=row.id,
            version=1,
            sha256=agreement.document_sha256,
            source=agreement.document_path.name,
            text=agreement.document,
            recorded_at=now,
        )
    )
    plans = []
    rows = []
    for position, plan in enumerate(agreement.parties):
        bodies = [asdict(b) for b in plan.bodies]
        rows.append(
            PartyRow(
                round_id=row.id,
                party_id=plan.id,
                position=position,
                name=plan.name,
                workflow=plan.workflow,
                workflow_version=plan.workflow_version,
                bodies=bodies,
                await_legal_force=plan.await_legal_force,
                notice_days=plan.notice_days,
                signatures_required=plan.signatures_required,
                contacts=[asdict(c) for c in plan.contacts],
                state="draft",
                signatures=[],
                signatories=[asdict(s) for s in plan.signatories],
                since=now,
            )
        )
        # Contacts stay out of the log: it holds what was decided, not whom to email.
        plans.append(
            {
                "id": plan.id,
                "name": plan.name,
                "workflow": plan.workflow,
                "workflow_version": plan.workflow_version,
                "bodies": bodies,
                "await_legal_force": plan.await_legal_force,
                "notice_days": plan.notice_days,
                "signatures_required": plan.signatures_required,
                # Only when listed: logs of rounds without a list keep their shape.
                **(
                    {"signatories": [asdict(s) for s in plan.signatories]}
                    if plan.signatories
                    else {}
                ),
            }
        )
    session.add_all(rows)
    session.flush()
    notify.on_launch(session, row, rows, now)
    journal = Journal(session, row, actor=actor, now=now, clock=source)
    journal.append(
        "launch",
        to_state="open",
        evidence={
            "agreement": agreement.id,
            "title": agreement.title,
            "document": agreement.document_path.name,
            "timezone": agreement.timezone,
            "deadline": agreement.deadline.isoformat() if agreement.deadline else None,
            "parties": plans,
        },
    )
    journal.seal()
    return row.id


def amend(
    engine: Engine, ref: str, document: Path, reason: str | None, clock: Clock, actor: str
) -> dict[str, Any]:
    """Go on with a new text: every party that approved or signed the old one goes to draft."""
    ensure_schema(engine)
    try:
        text = read_document(document)
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            f"{document}: cannot read the new text ({exc}); give a UTF-8 file"
        ) from None
    new_sha = sha256_text(text)
    return retrying(
        engine, lambda session: _amend(session, ref, document, text, new_sha, reason, clock, actor)
    )


def _amend(
    session: Session,
    ref: str,
    document: Path,
    text: str,
    new_sha: str,
    reason: str | None,
    clock: Clock,
    actor: str,
) -> dict[str, Any]:
    row = resolve_round(session, ref, lock=True)
    require_open(row)
    now = local_now(row, clock)
    if new_sha == row.document_sha256:
        raise InvalidInput(f"{document}: the text is the round's current one (same SHA-256)")
    old_sha, version = row.document_sha256, row.document_version + 1
    session.add(
        DocumentRow(
            round_id=row.id,
            version=version,
            sha256=new_sha,
            source=document.name,
            text=text,
            recorded_at=now,
        )
    )
    journal = Journal(session, row, actor=actor, now=now, clock=clock.source)
    journal.document_sha256 = new_sha
    why = reason.strip() if reason and reason.strip() else None
    journal.append(
        "amend",
        from_state="open",
        to_state="open",
        evidence={"version": version, "previous_sha256": old_sha, "reason": why},
    )
    reopened_ids = []
    for party in _parties(session, row.id):
        before = snapshot(party)
        if not had_approval(before):
            continue
        after = reopened(before)
        save_party(session, party, after, now)
        journal.append(
            "amend",
            party=party.party_id,
            from_state=before.state,
            to_state=after.state,
            evidence={
                "reason": f"the text was amended to version {version}; "
                "its approval must be renewed",
                "previous_sha256": old_sha,
            },
        )
        reopened_ids.append(party.party_id)
    context = {
        "sha256": new_sha,
        "version": version,
        "previous_sha256": old_sha,
        "reason": why or "",
    }
    notify.on_round(session, row, "amended", now, context, key=f"amended:{row.id}:{version}")
    journal.seal(document_sha256=new_sha, document_version=version)
    return {
        "round": row.id,
        "document_sha256": new_sha,
        "version": version,
        "reopened": reopened_ids,
    }


def cancel(engine: Engine, ref: str, reason: str, clock: Clock, actor: str) -> str:
    ensure_schema(engine)
    if not reason.strip():
        raise InvalidInput("cancel needs --reason 'why the round ends'")
    return retrying(engine, lambda session: _cancel(session, ref, reason, clock, actor))


def _cancel(session: Session, ref: str, reason: str, clock: Clock, actor: str) -> str:
    row = resolve_round(session, ref, lock=True)
    require_open(row)
    now = local_now(row, clock)
    journal = Journal(session, row, actor=actor, now=now, clock=clock.source)
    journal.append(
        "cancel", from_state="open", to_state="cancelled", evidence={"reason": reason.strip()}
    )
    notify.on_round(session, row, "cancelled", now, {"reason": reason.strip()})
    journal.seal(state="cancelled", closed_at=now)
    return row.id


def _parties(session: Session, round_id: str) -> list[PartyRow]:
    return list(
        session.exec(
            select(PartyRow).where(PartyRow.round_id == round_id).order_by(col(PartyRow.position))
        ).all()
    )


def status(engine: Engine, ref: str | None) -> list[dict[str, Any]]:
    """Every round (or one), with its parties, as plain data for tables and ``--json``."""
    ensure_schema(engine)
    with transaction(engine) as session:
        if ref is not None:
            rows = [resolve_round(session, ref)]
        else:
            rows = list(session.exec(select(RoundRow).order_by(RoundRow.id)).all())
        return [_round_status(session, row) for row in rows]


def _outbox_counts(session: Session, round_id: str) -> dict[str, int]:
    """The round's messages by delivery state: a coordinator sees failures where they look."""
    rows = session.exec(
        select(OutboxRow.state, func.count())
        .where(OutboxRow.round_id == round_id)
        .group_by(col(OutboxRow.state))
    ).all()
    return {state: count for state, count in rows}


def _round_status(session: Session, row: RoundRow) -> dict[str, Any]:
    tz = ZoneInfo(row.timezone)
    parties = []
    for party in _parties(session, row.id):
        snap = snapshot(party)
        parties.append(
            {
                "id": party.party_id,
                "name": party.name,
                "state": party.state,
                "since": _aware(party.since).astimezone(tz).isoformat(timespec="minutes"),
                "workflow": f"{party.workflow}@{party.workflow_version}",
                "bodies": [b["name"] for b in party.bodies],
                "body": snap.body.name
                if party.state in ("draft", "board_review", "council_review")
                else None,
                "legal_force_from": party.legal_force_from.isoformat()
                if party.legal_force_from
                else None,
                "signatures": len(party.signatures),
                "signatures_required": party.signatures_required,
                "signatories": [s["name"] for s in party.signatures],
                "may_sign": [{"name": s["name"], "title": s["title"]} for s in party.signatories],
                "allowed": snap.allowed() if row.state == "open" else [],
            }
        )
    return {
        "round": row.id,
        "agreement": row.agreement_id,
        "title": row.title,
        "state": row.state,
        "effective_date": row.effective_date.isoformat() if row.effective_date else None,
        "document_sha256": row.document_sha256,
        "document_version": row.document_version,
        "deadline": row.deadline.isoformat() if row.deadline else None,
        "launched_at": _aware(row.launched_at).astimezone(tz).isoformat(timespec="minutes"),
        "log_entries": row.log_length,
        "outbox": _outbox_counts(session, row.id),
        "signed": sum(p["state"] == "signed" for p in parties),
        "parties": parties,
    }
