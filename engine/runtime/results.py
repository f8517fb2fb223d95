"""What the use cases return: typed, frozen values that the CLI renders today and the web and
JSON API will return tomorrow. :func:`jsonable` gives the JSON form the CLI prints with --json
(dates as ISO dates, moments as ISO date-times to the minute in the round's zone)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from workflows import Role

__all__ = [
    "AmendResult",
    "ContactInfo",
    "DeliveryResult",
    "DocumentVersion",
    "LanguageVersion",
    "LaunchResult",
    "OutboxMessage",
    "PartyStatus",
    "RecordResult",
    "ReminderPreview",
    "RoundStatus",
    "Signatory",
    "jsonable",
]


@dataclass(frozen=True)
class LaunchResult:
    round: str
    parties: int
    document_sha256: str


@dataclass(frozen=True)
class RecordResult:
    """An event recorded for a party (by hand, or by a tick), and what became of the round."""

    round: str
    party: str
    event: str
    from_state: str
    to_state: str
    role: Role  # the role of to_state
    seq: int
    hash: str
    round_state: str
    effective_date: date | None
    legal_force_from: date | None
    signatures: int
    signatures_required: int

    def to_json(self) -> dict[str, Any]:
        return jsonable(self)  # type: ignore[no-any-return]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RecordResult:
        values = dict(data)
        for name in ("effective_date", "legal_force_from"):
            if values.get(name) is not None:
                values[name] = date.fromisoformat(values[name])
        return cls(**values)


@dataclass(frozen=True)
class LanguageVersion:
    """A version's text in one language, when the round has several."""

    language: str
    source: str
    sha256: str  # this text's own
    text: str


@dataclass(frozen=True)
class DocumentVersion:
    """One version of a round's agreement text (with several languages: the round's language's,
    and ``texts`` holds each one's; ``sha256`` is then their combined hash)."""

    round: str
    version: int
    sha256: str
    source: str  # the file name it was read from
    text: str
    recorded_at: datetime  # in the round's zone
    texts: tuple[LanguageVersion, ...] = ()

    def in_language(self, language: str | None) -> DocumentVersion:
        """This version as a reader of ``language`` gets it: that language's text, else the
        round's (the combined ``sha256`` stays: it is what an approval binds to)."""
        found = next((t for t in self.texts if t.language == language), None)
        if found is None:
            return self
        return replace(self, source=found.source, text=found.text)


@dataclass(frozen=True)
class AmendResult:
    round: str
    document_sha256: str
    version: int
    reopened: tuple[str, ...]


@dataclass(frozen=True)
class Signatory:
    name: str
    title: str


@dataclass(frozen=True)
class ContactInfo:
    name: str
    email: str
    language: str


@dataclass(frozen=True)
class PartyStatus:
    id: str
    name: str
    state: str
    role: Role
    since: datetime  # in the round's zone
    workflow: str  # name@version
    bodies: tuple[str, ...]
    body: str | None  # the body the step waits on (preparing, review), else None
    legal_force_from: date | None
    signatures: int
    signatures_required: int
    signatories: tuple[str, ...]  # who has signed
    may_sign: tuple[Signatory, ...]  # who is authorised to (empty: anyone the party names)
    allowed: tuple[str, ...]  # the events a person may record now
    contacts: tuple[ContactInfo, ...] = ()  # whom its messages go to


@dataclass(frozen=True)
class RoundStatus:
    round: str
    agreement: str
    title: str
    state: str
    effective_date: date | None
    document_sha256: str
    document_version: int
    deadline: date | None
    launched_at: datetime  # in the round's zone
    log_entries: int
    outbox: Mapping[str, int]  # messages by delivery state
    signed: int  # parties done
    parties: tuple[PartyStatus, ...]
    titles: Mapping[str, str] = field(default_factory=dict)  # several languages: each one's

    def title_in(self, language: str | None) -> str:
        """The title in ``language``, else in the round's language."""
        return self.titles.get(language or "", "") or self.title


@dataclass(frozen=True)
class ReminderPreview:
    """A reminder or escalation a tick at that time would queue, or a message already queued."""

    round: str | None
    party: str | None
    kind: str
    number: int | None
    state: str | None
    recipients: tuple[str, ...]
    due: datetime
    queued: bool
    body: str | None = None  # an agenda reminder's or follow-up's: the body whose meeting it is
    meeting: date | None = None  # the meeting (an agenda reminder's coming, a follow-up's past)
    agenda_closes: date | None = None  # the last day to put the agreement on its agenda


@dataclass(frozen=True)
class OutboxMessage:
    id: int
    round: str
    party: str | None
    kind: str
    recipients: tuple[str, ...]
    subject: str
    state: str
    attempts: int
    next_attempt_at: datetime
    sent_at: datetime | None
    last_error: str | None
    refused: Mapping[str, str]
    message_id: str


@dataclass(frozen=True)
class DeliveryResult:
    """What became of one message a tick tried to send."""

    id: int
    key: str
    kind: str
    round: str
    party: str | None
    recipients: tuple[str, ...]
    chase: Mapping[str, Any] | None
    outcome: str  # sent, temporary, permanent, skipped, claim lost
    error: str | None
    refused: Mapping[str, str]


def jsonable(value: Any) -> Any:
    """``value`` as JSON data: dataclasses as objects, tuples as lists, dates as ISO text."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat(timespec="minutes")
    if isinstance(value, date):
        return value.isoformat()
    return value
