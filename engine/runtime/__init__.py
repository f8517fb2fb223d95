"""The service layer: every use case of ratify, returning typed values (``results``).

Interfaces (the CLI today; the web pages and the JSON API next) call only what this package
exports; none touches a table. Each use case takes the database engine, and where time matters a
:class:`~engine.clock.Clock`.
"""

# The use cases are imported when first asked for (PEP 562), not with the package: a command
# loads the modules it runs, not every library behind every other one (the templates, mail,
# PDFs, migrations). For type checkers they are plain imports.
from __future__ import annotations

import importlib
import sys
import types
import typing

if typing.TYPE_CHECKING:
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
    from engine.runtime.calendar_fetch import CalendarFetch, fetch_calendars
    from engine.runtime.calendars import BodyMeetings, Meeting, calendar
    from engine.runtime.catalog import workflow, workflows
    from engine.runtime.certificate import Certificate, certificate
    from engine.runtime.chasing import enqueue_due, preview
    from engine.runtime.events import record, tick
    from engine.runtime.forecasts import PartyForecast, RoundForecast, forecast
    from engine.runtime.pack import certificate_pdf, evidence_pack, render_certificate_html
    from engine.runtime.proposals import (
        Proposal,
        ProposalConfirmed,
        SourceInfo,
        SourcePoll,
        confirm_proposal,
        dismiss_proposal,
        paste_proposal,
        poll_sources,
        proposals,
        sources,
    )
    from engine.runtime.queue import outbox_messages, retry_message
    from engine.runtime.quick import QuickHead, quick_heads, quick_status
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

# Where each public name lives.
_HOME = {
    "MAX_DOCUMENT_BYTES": "engine.agreement",
    "MAX_FILE_BYTES": "engine.agreement",
    "load_agreement": "engine.agreement",
    "next_working_day": "engine.core.calendar",
    "ChainReport": "engine.core.chain",
    "Entry": "engine.core.chain",
    "Evidence": "engine.core.evidence",
    "ACTOR_MAX": "engine.core.text",
    "check_line": "engine.core.text",
    "connect": "engine.persistence.database",
    "init_schema": "engine.persistence.database",
    "HeadFound": "engine.runtime.audit",
    "HeadReport": "engine.runtime.audit",
    "VerifyReport": "engine.runtime.audit",
    "export": "engine.runtime.audit",
    "heads": "engine.runtime.audit",
    "log_entries": "engine.runtime.audit",
    "verify": "engine.runtime.audit",
    "verify_database": "engine.runtime.audit",
    "verify_file": "engine.runtime.audit",
    "BodyMeetings": "engine.runtime.calendars",
    "Meeting": "engine.runtime.calendars",
    "calendar": "engine.runtime.calendars",
    "CalendarFetch": "engine.runtime.calendar_fetch",
    "fetch_calendars": "engine.runtime.calendar_fetch",
    "workflow": "engine.runtime.catalog",
    "workflows": "engine.runtime.catalog",
    "Certificate": "engine.runtime.certificate",
    "certificate": "engine.runtime.certificate",
    "enqueue_due": "engine.runtime.chasing",
    "preview": "engine.runtime.chasing",
    "record": "engine.runtime.events",
    "tick": "engine.runtime.events",
    "PartyForecast": "engine.runtime.forecasts",
    "RoundForecast": "engine.runtime.forecasts",
    "forecast": "engine.runtime.forecasts",
    "certificate_pdf": "engine.runtime.pack",
    "evidence_pack": "engine.runtime.pack",
    "render_certificate_html": "engine.runtime.pack",
    "Proposal": "engine.runtime.proposals",
    "ProposalConfirmed": "engine.runtime.proposals",
    "SourceInfo": "engine.runtime.proposals",
    "SourcePoll": "engine.runtime.proposals",
    "confirm_proposal": "engine.runtime.proposals",
    "dismiss_proposal": "engine.runtime.proposals",
    "paste_proposal": "engine.runtime.proposals",
    "poll_sources": "engine.runtime.proposals",
    "proposals": "engine.runtime.proposals",
    "sources": "engine.runtime.proposals",
    "outbox_messages": "engine.runtime.queue",
    "retry_message": "engine.runtime.queue",
    "QuickHead": "engine.runtime.quick",
    "quick_heads": "engine.runtime.quick",
    "quick_status": "engine.runtime.quick",
    "AmendResult": "engine.runtime.results",
    "ContactInfo": "engine.runtime.results",
    "DeliveryResult": "engine.runtime.results",
    "DocumentVersion": "engine.runtime.results",
    "LaunchResult": "engine.runtime.results",
    "OutboxMessage": "engine.runtime.results",
    "PartyStatus": "engine.runtime.results",
    "RecordResult": "engine.runtime.results",
    "ReminderPreview": "engine.runtime.results",
    "RoundStatus": "engine.runtime.results",
    "Signatory": "engine.runtime.results",
    "jsonable": "engine.runtime.results",
    "amend": "engine.runtime.rounds",
    "cancel": "engine.runtime.rounds",
    "documents": "engine.runtime.rounds",
    "launch": "engine.runtime.rounds",
    "status": "engine.runtime.rounds",
    "send_due": "engine.runtime.sending",
    "RoundSummary": "engine.runtime.views",
    "RoundView": "engine.runtime.views",
    "round_summaries": "engine.runtime.views",
    "round_view": "engine.runtime.views",
    "TickReport": "engine.runtime.worker",
    "run_worker": "engine.runtime.worker",
    "tick_once": "engine.runtime.worker",
    "write_date": "notifications.render",
    "write_moment": "notifications.render",
    "Engine": "sqlalchemy",
}

__all__ = [
    "ACTOR_MAX",
    "MAX_DOCUMENT_BYTES",
    "MAX_FILE_BYTES",
    "AmendResult",
    "BodyMeetings",
    "CalendarFetch",
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
    "Meeting",
    "OutboxMessage",
    "PartyForecast",
    "PartyStatus",
    "Proposal",
    "ProposalConfirmed",
    "QuickHead",
    "RecordResult",
    "ReminderPreview",
    "RoundForecast",
    "RoundStatus",
    "RoundSummary",
    "RoundView",
    "Signatory",
    "SourceInfo",
    "SourcePoll",
    "TickReport",
    "VerifyReport",
    "amend",
    "calendar",
    "cancel",
    "certificate",
    "certificate_pdf",
    "check_line",
    "confirm_proposal",
    "connect",
    "dismiss_proposal",
    "documents",
    "enqueue_due",
    "evidence_pack",
    "export",
    "fetch_calendars",
    "forecast",
    "heads",
    "init_schema",
    "jsonable",
    "launch",
    "load_agreement",
    "log_entries",
    "next_working_day",
    "outbox_messages",
    "paste_proposal",
    "poll_sources",
    "preview",
    "proposals",
    "quick_heads",
    "quick_status",
    "record",
    "render_certificate_html",
    "retry_message",
    "round_summaries",
    "round_view",
    "run_worker",
    "send_due",
    "sources",
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


def __getattr__(name: str) -> typing.Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # once: the next lookup finds it here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


class _Package(types.ModuleType):
    """This package, with one rule: a submodule named as the use case it holds (``certificate``)
    does not take the use case's place on the package when it is first imported, as a submodule
    otherwise would; ``from engine.runtime import certificate`` is the function, whichever was
    imported first."""

    def __setattr__(self, name: str, value: object) -> None:
        if isinstance(value, types.ModuleType) and _HOME.get(name) == value.__name__:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
