"""Use cases on whole rounds: launch, amend, cancel, and what a round looks like now."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, Table, bindparam, func
from sqlalchemy import select as core_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from engine.clock import Clock
from engine.core.chain import GENESIS, combined_sha256, sha256_text
from engine.core.evidence import Evidence
from engine.core.party import had_approval, reopened
from engine.core.text import check_evidence_text
from engine.errors import AgreementFileError, InvalidInput, RatifyError, Refused
from engine.persistence import outbox
from engine.persistence.database import ensure_schema, transaction
from engine.persistence.tables import CalendarRow, DocumentRow, PartyRow, RoundRow, SourceRow
from engine.runtime.journal import Journal, machine_of, retrying, save_party, snapshot
from engine.runtime.lookup import aware, local_now, now_in, require_open, resolve_round
from engine.runtime.results import (
    AmendResult,
    DocumentVersion,
    LanguageVersion,
    LaunchResult,
    RoundStatus,
)
from engine.runtime.status_view import PartyFields, round_status
from engine.runtime.writes import OnceKey, Via, check_once, earlier, keep, with_via

if TYPE_CHECKING:
    from engine.agreement import Agreement

# The agreement files' reading and validation (pydantic, email-validator, holidays) and the
# messages' rendering (Jinja2, babel, icalendar) are imported by the use cases that write: a
# round's status needs neither.

__all__ = ["amend", "cancel", "documents", "launch", "status"]


def launch(
    engine: Engine,
    agreement: Agreement | Path,
    clock: Clock,
    actor: str,
    *,
    via: Via | None = None,
    once: OnceKey | None = None,
) -> LaunchResult:
    """Create a round of ``agreement`` (or of the agreement file at that path), every party at its
    workflow's start. ``via`` and ``once``: as for :func:`~engine.runtime.record`."""
    check_once(once)
    if isinstance(agreement, Path):  # a deadline passed is one more problem of the file's
        from engine.agreement import load_agreement

        agreement = load_agreement(agreement, launch_at=clock)
    ensure_schema(engine)
    now = now_in(clock, agreement.timezone)
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
                if (done := earlier(session, "launch", once)) is not None:
                    return LaunchResult(**done)  # the same upload again: the round it launched
                round_id = _launch(session, agreement, now, clock.source, actor, via)
                result = LaunchResult(round_id, len(agreement.parties), agreement.document_sha256)
                keep(session, "launch", once, asdict(result), now)
                return result
        except IntegrityError as exc:
            # Another launch of the same agreement won the race: look again (and be refused).
            if attempt == 2:
                raise RatifyError(f"the database refused the launch: {exc.orig}") from None
    raise AssertionError("unreachable")


def _launch(
    session: Session,
    agreement: Agreement,
    now: datetime,
    source: str,
    actor: str,
    via: Via | None,
) -> str:
    open_round = session.exec(
        select(RoundRow).where(RoundRow.agreement_id == agreement.id, RoundRow.state == "open")
    ).first()
    if open_round is not None:
        raise Refused(
            f"round {open_round.id} of {agreement.id} is still open; finish it, or end it with "
            f"{{cmd.cancel}} ({open_round.id}), before launching another"
        )
    number = (
        session.scalar(
            select(func.max(RoundRow.number)).where(RoundRow.agreement_id == agreement.id)
        )
        or 0
    ) + 1
    several = len(agreement.texts) > 1
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
        titles={t.language: t.title for t in agreement.texts} if several else None,
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
            texts=[_text_row(t.language, t.path.name, t.sha256, t.text) for t in agreement.texts]
            if several
            else None,
        )
    )
    plans = []
    rows = []
    calendars: list[CalendarRow] = []
    sources: list[SourceRow] = []
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
                state=machine_of(plan.workflow, plan.workflow_version).definition.initial,
                signatures=[],
                signatories=[asdict(s) for s in plan.signatories],
                since=now,
                due_at=now,  # the first tick works out its reminders (runtime.due)
            )
        )
        calendars += [
            CalendarRow(
                round_id=row.id,
                party_id=plan.id,
                body=c.body,
                source=c.source,
                meetings=[d.isoformat() for d in c.meetings],
                agenda_days=c.agenda_days,
                url=c.url,
            )
            for c in plan.calendars
        ]
        if plan.source is not None:
            s = plan.source
            sources.append(
                SourceRow(round_id=row.id, party_id=plan.id, kind=s.kind, url=s.url, diary=s.diary)
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
    from engine.runtime import messages

    session.add_all(rows)
    session.add_all(calendars)  # when the bodies meet: scheduling, not decisions, so not logged
    session.add_all(sources)  # where their decisions are published: the same
    session.flush()
    messages.on_launch(session, row, rows, now)
    journal = Journal(session, row, actor=actor, now=now, clock=source)
    journal.append(
        "launch",
        to_state="open",
        evidence=with_via(
            {
                "agreement": agreement.id,
                "title": agreement.title,
                "document": agreement.document_path.name,
                # Several languages: each one's title, and each text's own hash (the entry's
                # document_sha256 is their combined hash, engine.core.chain.combined_sha256).
                **(
                    {
                        "titles": {t.language: t.title for t in agreement.texts},
                        "texts": [
                            {"language": t.language, "document": t.path.name, "sha256": t.sha256}
                            for t in agreement.texts
                        ],
                    }
                    if several
                    else {}
                ),
                "timezone": agreement.timezone,
                "deadline": agreement.deadline.isoformat() if agreement.deadline else None,
                "parties": plans,
            },
            via,
        ),
    )
    journal.seal()
    return row.id


def amend(
    engine: Engine,
    ref: str,
    document: Path,
    reason: str | None,
    clock: Clock,
    actor: str,
    *,
    via: Via | None = None,
    once: OnceKey | None = None,
    texts: Mapping[str, Path] | None = None,
) -> AmendResult:
    """Go on with a new text: every party that approved or signed the old one goes to draft.
    ``document`` is the text in the round's language; a round in several languages needs the
    others' in ``texts`` (by language), all of them: the version is all its texts together."""
    from engine.agreement import read_document

    check_once(once)
    ensure_schema(engine)
    if reason is not None:
        reason = check_evidence_text(Evidence(reason=reason)).reason
    given = {lang: (path, read_document(path)) for lang, path in (texts or {}).items()}
    main = (document, read_document(document))  # each a regular UTF-8 file under the limit

    def work(session: Session) -> AmendResult:
        row = resolve_round(session, ref, lock=True)
        if (done := earlier(session, "amend", once)) is not None:
            return AmendResult(**{**done, "reopened": tuple(done["reopened"])})
        version = _version_of(row, main, given)
        result = _amend(session, row, document, version, reason, clock, actor, via)
        keep(session, "amend", once, asdict(result), local_now(row, clock))
        return result

    return retrying(engine, work)


def _text_row(language: str, source: str, sha256: str, text: str) -> dict[str, str]:
    return {"language": language, "source": source, "sha256": sha256, "text": text}


def _version_of(
    row: RoundRow, main: tuple[Path, str], given: Mapping[str, tuple[Path, str]]
) -> tuple[str, list[dict[str, str]]]:
    """A new version's combined hash and, with several languages, each one's text (the round's
    language first); InvalidInput when the texts given are not the round's languages."""
    languages = sorted(row.titles or {row.language: row.title})
    others = [lang for lang in languages if lang != row.language]
    if set(given) != set(others):
        missing = [lang for lang in others if lang not in given]
        extra = sorted(set(given) - set(others))
        wanted = " ".join(f"{{opt.text}} {lang}=FILE" for lang in others)
        if missing:
            problem = f"its text in {', '.join(missing)} is missing"
        else:
            problem = f"it has no text in {', '.join(extra)}"
        raise InvalidInput(
            f"round {row.id} runs in {', '.join(languages)} ({row.language} first): {problem}; "
            + (
                f"give the {row.language} text as DOCUMENT and {wanted}"
                if others
                else "give its text as DOCUMENT alone"
            ),
            field="texts",
        )
    texts = [(row.language, main)] + [(lang, given[lang]) for lang in others]
    rows = [_text_row(lang, path.name, sha256_text(text), text) for lang, (path, text) in texts]
    return combined_sha256({r["language"]: r["sha256"] for r in rows}), rows


def _amend(
    session: Session,
    row: RoundRow,
    document: Path,
    texts: tuple[str, list[dict[str, str]]],
    reason: str | None,
    clock: Clock,
    actor: str,
    via: Via | None,
) -> AmendResult:
    require_open(row)
    now = local_now(row, clock)
    new_sha, rows = texts
    several = len(rows) > 1
    if new_sha == row.document_sha256:
        same = "texts are" if several else "text is"
        raise InvalidInput(f"{document}: the {same} the round's current one (same SHA-256)")
    old_sha, version = row.document_sha256, row.document_version + 1
    session.add(
        DocumentRow(
            round_id=row.id,
            version=version,
            sha256=new_sha,
            source=rows[0]["source"],
            text=rows[0]["text"],
            recorded_at=now,
            texts=rows if several else None,
        )
    )
    journal = Journal(session, row, actor=actor, now=now, clock=clock.source)
    journal.document_sha256 = new_sha
    why = reason.strip() if reason and reason.strip() else None
    logged: dict[str, Any] = {"version": version, "previous_sha256": old_sha, "reason": why}
    if several:
        logged["texts"] = [
            {"language": r["language"], "document": r["source"], "sha256": r["sha256"]}
            for r in rows
        ]
    journal.append(
        "amend",
        from_state="open",
        to_state="open",
        evidence=with_via(logged, via),
    )
    reopened_ids = []
    for party in _parties(session, row.id):
        before = snapshot(party)
        machine = machine_of(party)
        if not had_approval(machine, before):
            continue
        after = reopened(machine, before)
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
    from engine.runtime import messages

    messages.on_round(session, row, "amended", now, context, version=version)
    journal.seal(document_sha256=new_sha, document_version=version)
    return AmendResult(row.id, new_sha, version, tuple(reopened_ids))


def cancel(
    engine: Engine,
    ref: str,
    reason: str,
    clock: Clock,
    actor: str,
    *,
    via: Via | None = None,
    once: OnceKey | None = None,
) -> str:
    """End an open round; its id."""
    check_once(once)
    ensure_schema(engine)
    if not reason.strip():
        raise InvalidInput("cancel needs {opt.reason} 'why the round ends'", field="reason")
    reason = check_evidence_text(Evidence(reason=reason)).reason or reason

    def work(session: Session) -> str:
        row = resolve_round(session, ref, lock=True)
        if (done := earlier(session, "cancel", once)) is not None:
            return str(done["round"])
        _cancel(session, row, reason, clock, actor, via)
        keep(session, "cancel", once, {"round": row.id}, local_now(row, clock))
        return row.id

    return retrying(engine, work)


def _cancel(
    session: Session, row: RoundRow, reason: str, clock: Clock, actor: str, via: Via | None
) -> str:
    from engine.runtime import messages

    require_open(row)
    now = local_now(row, clock)
    journal = Journal(session, row, actor=actor, now=now, clock=clock.source)
    journal.append(
        "cancel",
        from_state="open",
        to_state="cancelled",
        evidence=with_via({"reason": reason.strip()}, via),
    )
    messages.on_round(session, row, "cancelled", now, {"reason": reason.strip()})
    journal.seal(state="cancelled", closed_at=now)
    return row.id


def _parties(session: Session, round_id: str) -> list[PartyRow]:
    return list(
        session.exec(
            select(PartyRow).where(PartyRow.round_id == round_id).order_by(col(PartyRow.position))
        ).all()
    )


def status(engine: Engine, ref: str | None) -> list[RoundStatus]:
    """Every round (or one), with its parties."""
    ensure_schema(engine)
    with transaction(engine) as session:
        if ref is not None:
            rows = [resolve_round(session, ref)]
        else:
            rows = list(session.exec(select(RoundRow).order_by(RoundRow.id)).all())
        return [_round_status(session, row) for row in rows]


_PARTY_TABLE: Table = PartyRow.__table__  # type: ignore[attr-defined]  # set by SQLModel
# A status reads its parties as plain rows (the columns by name, through their types), not as ORM
# objects: a round of a thousand parties costs half as much.
_PARTY_ROWS = (
    core_select(*_PARTY_TABLE.c)
    .where(_PARTY_TABLE.c.round_id == bindparam("round_id"))
    .order_by(_PARTY_TABLE.c.position)
)


def _round_status(session: Session, row: RoundRow) -> RoundStatus:
    parties = session.execute(_PARTY_ROWS, {"round_id": row.id}).all()
    return round_status(row, cast("list[PartyFields]", parties), outbox.counts(session, row.id))


def documents(engine: Engine, ref: str) -> list[DocumentVersion]:
    """Every version of the round's text, the first first (the last is the current one)."""
    ensure_schema(engine)
    with transaction(engine) as session:
        row = resolve_round(session, ref)
        tz = ZoneInfo(row.timezone)
        found = session.exec(
            select(DocumentRow)
            .where(DocumentRow.round_id == row.id)
            .order_by(col(DocumentRow.version))
        ).all()
        return [
            DocumentVersion(
                row.id,
                d.version,
                d.sha256,
                d.source,
                d.text,
                aware(d.recorded_at).astimezone(tz),
                tuple(
                    LanguageVersion(t["language"], t["source"], t["sha256"], t["text"])
                    for t in d.texts or []
                ),
            )
            for d in found
        ]
