"""What a round looks like now, built from its row, its parties' rows and its mail's counts: pure,
so that the same code answers whether the rows came through SQLModel (``rounds.status``) or
through the driver alone (``quick.quick_status``, the command line's fast read)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from engine.core.evidence import Signature
from engine.core.party import PartySnapshot, allowed, body_in_charge
from engine.runtime.results import ContactInfo, PartyStatus, RoundStatus, Signatory
from workflows import Body, ProcessMachine, default_catalog

__all__ = ["PartyFields", "RoundFields", "party_snapshot", "party_status", "round_status"]


class RoundFields(Protocol):
    """The columns of a round that its status shows (a ``RoundRow`` has them)."""

    @property
    def id(self) -> str: ...
    @property
    def agreement_id(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def timezone(self) -> str: ...
    @property
    def effective_date(self) -> date | None: ...
    @property
    def document_sha256(self) -> str: ...
    @property
    def document_version(self) -> int: ...
    @property
    def deadline(self) -> date | None: ...
    @property
    def launched_at(self) -> datetime: ...
    @property
    def log_length(self) -> int: ...


class PartyFields(Protocol):
    """The columns of a party that its status shows (a ``PartyRow`` has them)."""

    @property
    def party_id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def workflow(self) -> str: ...
    @property
    def workflow_version(self) -> int: ...
    @property
    def bodies(self) -> list[dict[str, Any]]: ...
    @property
    def await_legal_force(self) -> bool: ...
    @property
    def notice_days(self) -> int: ...
    @property
    def signatures_required(self) -> int: ...
    @property
    def contacts(self) -> list[dict[str, Any]]: ...
    @property
    def state(self) -> str: ...
    @property
    def step(self) -> int: ...
    @property
    def signatures(self) -> list[dict[str, Any]]: ...
    @property
    def signatories(self) -> list[dict[str, Any]]: ...
    @property
    def legal_force_from(self) -> date | None: ...
    @property
    def since(self) -> datetime: ...


def party_snapshot(row: PartyFields) -> PartySnapshot:
    """The party's facts as the core decides on them (``journal.snapshot``, over any row)."""
    return PartySnapshot(
        id=row.party_id,
        workflow=row.workflow,
        workflow_version=row.workflow_version,
        state=row.state,
        bodies=tuple(Body(b["name"], b["kind"], b["appeal_days"]) for b in row.bodies),
        step=row.step,
        await_legal_force=row.await_legal_force,
        notice_days=row.notice_days,
        signatures_required=row.signatures_required,
        signatures=tuple(Signature(s["name"], s["title"]) for s in row.signatures),
        signatories=tuple(Signature(s["name"], s["title"]) for s in row.signatories),
        legal_force_from=row.legal_force_from,
    )


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def party_status(
    round_state: str, party: PartyFields, tz: ZoneInfo, machine: ProcessMachine | None = None
) -> PartyStatus:
    snap = party_snapshot(party)
    if machine is None:
        machine = default_catalog().machine(party.workflow, party.workflow_version)
    body = body_in_charge(machine, snap)
    return PartyStatus(
        id=party.party_id,
        name=party.name,
        state=party.state,
        role=machine.role(party.state),
        since=_aware(party.since).astimezone(tz),
        workflow=f"{party.workflow}@{party.workflow_version}",
        bodies=tuple(b["name"] for b in party.bodies),
        body=body.name if body else None,
        legal_force_from=party.legal_force_from,
        signatures=len(party.signatures),
        signatures_required=party.signatures_required,
        signatories=tuple(s["name"] for s in party.signatures),
        may_sign=tuple(Signatory(s["name"], s["title"]) for s in party.signatories),
        allowed=tuple(allowed(machine, snap)) if round_state == "open" else (),
        contacts=tuple(ContactInfo(c["name"], c["email"], c["language"]) for c in party.contacts),
    )


def round_status(
    row: RoundFields, parties: Iterable[PartyFields], outbox: Mapping[str, int]
) -> RoundStatus:
    """The round's status: ``parties`` in their order, ``outbox`` its messages by state."""
    tz = ZoneInfo(row.timezone)
    catalog = default_catalog()
    machines: dict[tuple[str, int], ProcessMachine] = {}  # a round has a workflow or two

    def machine_of(p: PartyFields) -> ProcessMachine:
        key = (p.workflow, p.workflow_version)
        if key not in machines:
            machines[key] = catalog.machine(*key)
        return machines[key]

    shown: Sequence[PartyStatus] = tuple(
        party_status(row.state, p, tz, machine_of(p)) for p in parties
    )
    return RoundStatus(
        round=row.id,
        agreement=row.agreement_id,
        title=row.title,
        state=row.state,
        effective_date=row.effective_date,
        document_sha256=row.document_sha256,
        document_version=row.document_version,
        deadline=row.deadline,
        launched_at=_aware(row.launched_at).astimezone(tz),
        log_entries=row.log_length,
        outbox=outbox,
        signed=sum(p.role == "done" for p in shown),
        parties=tuple(shown),
        titles=getattr(row, "titles", None) or {},
    )
