"""The SQLModel tables. Rows are plain data: no state machine is ever attached to them."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Dialect,
    Index,
    LargeBinary,
    UniqueConstraint,
    text,
)
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

__all__ = [
    "ApiTokenRow",
    "CalendarRow",
    "DocumentRow",
    "FileRow",
    "LinkRow",
    "LogRow",
    "OutboxRow",
    "PartyRow",
    "ProposalRow",
    "RequestRow",
    "RoundRow",
    "SessionRow",
    "SourceRow",
    "UTCDateTime",
    "UserRow",
    "WebhookDeliveryRow",
    "WebhookRow",
]


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on SQLite (which keeps no zone) too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; pass an aware one")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _utc() -> Any:
    return Field(sa_column=Column(UTCDateTime(), nullable=False))


def _utc_or_none() -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))


def _json() -> Any:
    return Field(sa_column=Column(JSON, nullable=False))


class RoundRow(SQLModel, table=True):
    """One ratification of one agreement. ``log_length`` and ``log_head`` anchor its log's chain."""

    __tablename__ = "rounds"
    __table_args__ = (
        UniqueConstraint("agreement_id", "number"),
        # At most one open round per agreement, enforced by the database itself.
        Index(
            "ix_rounds_one_open",
            "agreement_id",
            unique=True,
            sqlite_where=text("state = 'open'"),
            postgresql_where=text("state = 'open'"),
        ),
    )

    id: str = Field(primary_key=True)
    agreement_id: str = Field(index=True)
    number: int
    title: str
    state: str  # open, active, failed, cancelled
    language: str
    timezone: str
    deadline: date | None = None
    coordinator: dict[str, Any] = _json()
    document_sha256: str
    document_version: int
    launched_at: datetime = _utc()
    closed_at: datetime | None = _utc_or_none()
    effective_date: date | None = None
    last_entry_at: datetime = _utc()
    log_length: int
    log_head: str
    # The [reminders] table as launched (None: the defaults).
    reminders: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    version: int = 1
    # Each language's title, when the agreement has several ({"fi": …, "sv": …}); None: one.
    titles: dict[str, str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class DocumentRow(SQLModel, table=True):
    """Every version of the agreement's text a round has run with."""

    __tablename__ = "documents"

    round_id: str = Field(primary_key=True, foreign_key="rounds.id")
    version: int = Field(primary_key=True)
    sha256: str  # with several languages, their texts' combined hash (core.chain)
    source: str
    text: str  # in the round's language
    recorded_at: datetime = _utc()
    # With several languages, each one's {"language", "source", "sha256", "text"}, the round's
    # language first; None: the text above is the only one.
    texts: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class PartyRow(SQLModel, table=True):
    """One party's process in one round: its workflow version, bodies, state and signatures."""

    __tablename__ = "parties"
    __table_args__ = (Index("ix_parties_due", "due_at"),)

    round_id: str = Field(primary_key=True, foreign_key="rounds.id")
    party_id: str = Field(primary_key=True)
    position: int
    name: str
    workflow: str
    workflow_version: int
    bodies: list[dict[str, Any]] = _json()
    await_legal_force: bool
    notice_days: int
    signatures_required: int
    contacts: list[dict[str, Any]] = _json()
    state: str
    step: int = 0
    signatures: list[dict[str, Any]] = _json()
    # Who may sign (name, title), from the agreement file; empty: anyone the party names.
    signatories: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]")
    )
    legal_force_from: date | None = None
    since: datetime = _utc()
    version: int = 1
    # The earliest moment something timed may be due for the party (a reminder, an escalation,
    # a deadline reminder, legal force), or now when it changed: a tick reads only the parties
    # due by its time (engine.runtime.due). None: nothing timed can come (it has ended).
    due_at: datetime | None = _utc_or_none()


class LogRow(SQLModel, table=True):
    """An entry of a round's append-only, hash-chained log. Never updated, never deleted."""

    __tablename__ = "log_entries"

    round_id: str = Field(primary_key=True)
    seq: int = Field(primary_key=True)
    party_id: str | None = None
    event: str
    from_state: str | None = None
    to_state: str | None = None
    actor: str
    recorded_at: datetime = _utc()
    clock: str
    evidence: dict[str, Any] = _json()
    document_sha256: str
    prev_hash: str
    hash: str = Field(index=True)


class OutboxRow(SQLModel, table=True):
    """An email, rendered, stored before it is sent. ``key`` makes it unique: a tick that runs
    twice, a restart or a second worker finds the row already there and adds nothing."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "state", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True)
    round_id: str = Field(index=True)
    party_id: str | None = None
    kind: str
    recipients: list[str] = _json()
    language: str
    subject: str
    text_body: str
    html_body: str
    attachments: list[dict[str, Any]] = _json()  # {filename, content_type, data (base64)}
    message_id: str
    # pending → sending (claimed, with a lease) → sent | failed; pending again after a 4xx;
    # skipped when, at sending time, the step it chases is over.
    state: str = "pending"
    attempts: int = 0
    next_attempt_at: datetime = _utc()
    claimed_by: str | None = None
    claimed_until: datetime | None = _utc_or_none()
    last_error: str | None = None
    refused: dict[str, Any] = _json()
    # For reminders and escalations: what to check before sending, and what to log once sent.
    chase: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    created_at: datetime = _utc()
    sent_at: datetime | None = _utc_or_none()
    # Filled in when sent, never stored rendered: {"link": [party, email]} puts the contact's
    # personal link where the body says so, {"document": sha256} attaches that text.
    personal: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class FileRow(SQLModel, table=True):
    """A file kept with a round (a minutes extract), by SHA-256: the log entry names the hash."""

    __tablename__ = "files"

    round_id: str = Field(primary_key=True, foreign_key="rounds.id")
    sha256: str = Field(primary_key=True)
    filename: str
    content_type: str
    size: int
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    recorded_at: datetime = _utc()


class RequestRow(SQLModel, table=True):
    """A write that carried a once-only key (a form's, an API client's Idempotency-Key): the same
    key again gets this answer instead of a second write. Inserted in the write's transaction."""

    __tablename__ = "requests"

    key: str = Field(primary_key=True)
    result: dict[str, Any] = _json()
    created_at: datetime = _utc()
    # The SHA-256 of what was asked, for keys an API client chose: the same key with another
    # request is refused rather than answered with the first one's result.
    fingerprint: str | None = None


class LinkRow(SQLModel, table=True):
    """A contact's personal link into one party of one round. Its token is never stored: it is
    ``id`` and an HMAC of the id and ``nonce`` under the server's secret (which the database does
    not hold), made when an email is sent and checked when the link is opened."""

    __tablename__ = "party_links"
    __table_args__ = (Index("ix_party_links_contact", "round_id", "party_id", "email"),)

    id: int | None = Field(default=None, primary_key=True)
    round_id: str = Field(foreign_key="rounds.id")
    party_id: str
    email: str
    nonce: str
    created_at: datetime = _utc()
    expires_at: datetime = _utc()
    revoked_at: datetime | None = _utc_or_none()


class UserRow(SQLModel, table=True):
    """A coordinator's or an auditor's account (argon2 hash); failures slow the next sign-in."""

    __tablename__ = "users"

    name: str = Field(primary_key=True)
    role: str  # coordinator, auditor
    password_hash: str
    failures: int = 0
    locked_until: datetime | None = _utc_or_none()
    created_at: datetime = _utc()


class SessionRow(SQLModel, table=True):
    """A signed-in browser: a user's, or a party contact's (started from a link). Only the hash
    of the cookie's value is stored."""

    __tablename__ = "web_sessions"

    token_hash: str = Field(primary_key=True)
    kind: str  # user, party
    user_name: str | None = None
    link_id: int | None = None
    created_at: datetime = _utc()
    expires_at: datetime = _utc()


class ApiTokenRow(SQLModel, table=True):
    """A client of the JSON API: a name, a role and, when scoped, the one round it reaches. Only
    the SHA-256 of the bearer token is stored (the token is 256 random bits, printed once)."""

    __tablename__ = "api_tokens"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)  # one name, one token ever: the log names the token by it
    role: str  # coordinator, auditor
    round_id: str | None = None
    token_hash: str = Field(unique=True)
    created_by: str
    created_at: datetime = _utc()
    revoked_at: datetime | None = _utc_or_none()


class WebhookRow(SQLModel, table=True):
    """Where log entries are posted: a URL, the events it wants (``["*"]``: all) and maybe one
    round. Its signing secret is never stored: it is an HMAC of the id and ``generation`` under
    the server's secret; a rotation moves to the next generation and, for a while, signs with
    both."""

    __tablename__ = "webhooks"

    id: int | None = Field(default=None, primary_key=True)
    url: str
    events: list[str] = _json()
    round_id: str | None = None
    generation: int = 1
    rotated_at: datetime | None = _utc_or_none()
    created_by: str
    created_at: datetime = _utc()
    removed_at: datetime | None = _utc_or_none()


class WebhookDeliveryRow(SQLModel, table=True):
    """One log entry for one webhook, inserted in the entry's own transaction and sent by the
    workers: pending → sending (claimed, with a lease) → delivered, or pending again later after
    a failure, until it is given up (failed)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("webhook_id", "round_id", "seq"),
        Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    webhook_id: int = Field(foreign_key="webhooks.id")
    round_id: str
    seq: int
    event: str
    body: str  # the entry as exported (one JSON line), fixed when the entry is written
    state: str = "pending"
    attempts: int = 0
    next_attempt_at: datetime = _utc()
    claimed_by: str | None = None
    claimed_until: datetime | None = _utc_or_none()
    last_error: str | None = None
    last_status: int | None = None
    created_at: datetime = _utc()
    delivered_at: datetime | None = _utc_or_none()


class CalendarRow(SQLModel, table=True):
    """When one body of a party meets, as the agreement file gave it at launch (the dates listed,
    or those of its iCalendar file from the launch on), and how many working days before a
    meeting its agenda closes."""

    __tablename__ = "body_calendars"

    round_id: str = Field(primary_key=True, foreign_key="rounds.id")
    party_id: str = Field(primary_key=True)
    body: str = Field(primary_key=True)
    source: str  # file (dates in the agreement file), the iCalendar file's name, or the URL
    meetings: list[str] = _json()  # ISO dates, in order
    agenda_days: int = 7
    # An iCalendar URL the worker fetches (engine/runtime/calendar_fetch.py): when it last tried,
    # when it last read a calendar, the SHA-256 of what that fetch read, and why the last try
    # failed (None once one succeeds). The last good meetings stay in use meanwhile.
    url: str | None = None
    checked_at: datetime | None = _utc_or_none()
    fetched_at: datetime | None = _utc_or_none()
    sha256: str | None = None
    error: str | None = None


class SourceRow(SQLModel, table=True):
    """Where one party's decisions are published (its agreement file's ``source``), and how its
    last reading went. Scheduling and warnings, not decisions: never logged."""

    __tablename__ = "decision_sources"
    __table_args__ = (Index("ix_decision_sources_due", "next_poll_at"),)

    round_id: str = Field(primary_key=True, foreign_key="rounds.id")
    party_id: str = Field(primary_key=True)
    kind: str  # dynasty, cloudnc, 6aika, manual
    url: str | None = None  # None: a manual source without a fixed address
    diary: str | None = None  # the case's diary number, where the file gives it
    polled_at: datetime | None = _utc_or_none()  # the last reading, whatever came of it
    # The first moment the next reading is due (the next working day's start in the round's
    # zone); None: at once. A tick reads only the sources due by its time.
    next_poll_at: datetime | None = _utc_or_none()
    sha256: str | None = None  # of what the last reading fetched
    warning: str | None = None  # why the last reading gave nothing (None: it was read)


class ProposalRow(SQLModel, table=True):
    """A published decision that looks like the one a party's step waits on: proposed to the
    party and the coordinator, recorded only when one of them confirms it."""

    __tablename__ = "decision_proposals"
    __table_args__ = (UniqueConstraint("round_id", "party_id", "item_key"),)

    id: int | None = Field(default=None, primary_key=True)
    round_id: str = Field(index=True, foreign_key="rounds.id")
    party_id: str
    item_key: str  # body, meeting and section: the same decision fetched again is this one
    kind: str
    source_url: str  # what was fetched (a manual source: the minutes' address pasted)
    item_url: str
    body: str
    meeting: date
    section: int
    title: str
    diary: str | None = None
    fetched_at: datetime = _utc()
    sha256: str  # of the bytes fetched (a manual source: of what was pasted)
    for_state: str  # the party's state when it was proposed: the step it would decide
    state: str = "pending"  # pending, confirmed, dismissed
    proposed_at: datetime = _utc()
    settled_at: datetime | None = _utc_or_none()
    settled_by: str | None = None
    seq: int | None = None  # the log entry its confirmation recorded
