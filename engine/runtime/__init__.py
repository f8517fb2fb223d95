"""The service layer: every use case of ratify, returning typed values (``results``).

Interfaces (the CLI today; the web pages and the JSON API next) call only what this package
exports; none touches a table. Each use case takes the database engine, and where time matters a
:class:`~engine.clock.Clock`.
"""

from sqlalchemy import Engine

from engine.agreement import MAX_DOCUMENT_BYTES, MAX_FILE_BYTES, load_agreement
from engine.core.calendar import next_working_day
from engine.core.chain import ChainReport, Entry
from engine.core.evidence import Evidence
from engine.core.text import ACTOR_MAX, check_line
from engine.persistence.database import connect, init_schema
from engine.runtime.audit import (
    HeadFound,
    HeadReport,
    VerifyReport,
    export,
    heads,
    log_entries,
    verify,
    verify_database,
    verify_file,
)
from engine.runtime.catalog import workflow, workflows
from engine.runtime.certificate import Certificate, certificate
from engine.runtime.chasing import enqueue_due, preview
from engine.runtime.events import record, tick
from engine.runtime.pack import certificate_pdf, evidence_pack, render_certificate_html
from engine.runtime.queue import outbox_messages, retry_message
from engine.runtime.results import (
    AmendResult,
    ContactInfo,
    DeliveryResult,
    DocumentVersion,
    LaunchResult,
    OutboxMessage,
    PartyStatus,
    RecordResult,
    ReminderPreview,
    RoundStatus,
    Signatory,
    jsonable,
)
from engine.runtime.rounds import amend, cancel, documents, launch, status
from engine.runtime.sending import send_due
from engine.runtime.views import RoundSummary, RoundView, round_summaries, round_view
from engine.runtime.worker import TickReport, run_worker, tick_once
from notifications.render import write_date, write_moment

__all__ = [
    "ACTOR_MAX",
    "MAX_DOCUMENT_BYTES",
    "MAX_FILE_BYTES",
    "AmendResult",
    "Certificate",
    "ChainReport",
    "ContactInfo",
    "DeliveryResult",
    "DocumentVersion",
    "Engine",
    "Entry",
    "Evidence",
    "HeadFound",
    "HeadReport",
    "LaunchResult",
    "OutboxMessage",
    "PartyStatus",
    "RecordResult",
    "ReminderPreview",
    "RoundStatus",
    "RoundSummary",
    "RoundView",
    "Signatory",
    "TickReport",
    "VerifyReport",
    "amend",
    "cancel",
    "certificate",
    "certificate_pdf",
    "check_line",
    "connect",
    "documents",
    "enqueue_due",
    "evidence_pack",
    "export",
    "heads",
    "init_schema",
    "jsonable",
    "launch",
    "load_agreement",
    "log_entries",
    "next_working_day",
    "outbox_messages",
    "preview",
    "record",
    "render_certificate_html",
    "retry_message",
    "round_summaries",
    "round_view",
    "run_worker",
    "send_due",
    "status",
    "tick",
    "tick_once",
    "verify",
    "verify_database",
    "verify_file",
    "workflow",
    "workflows",
    "write_date",
    "write_moment",
]
