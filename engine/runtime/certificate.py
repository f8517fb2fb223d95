"""The certificate of a round: what its log proves, as one typed value.

Built from the round's log (every step of every party, each with the text it was recorded on)
and its stored texts, read in one transaction, then held to the chain: the round is verified
with the head read, so the certificate states exactly the log that verified. An open, failed or
cancelled round, or one whose log does not verify, still gets one, which says it is no
certificate of completion (:attr:`Certificate.complete`).

How a step was recorded comes from its evidence: ``via`` is ``link`` (a party's contact from
their personal link; the actor is the contact), ``web`` (a coordinator's page) or ``api``;
without it, the command line, except what the engine does by itself: a timed event applied by a
tick (legal force), a reminder or escalation, the activation and the failure (``automatic``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from engine.core.chain import Entry
from engine.core.evidence import parse_decision_ref
from engine.errors import RatifyError, VerificationFailed
from engine.persistence.database import ensure_schema, transaction
from engine.persistence.tables import DocumentRow, LogRow
from engine.runtime.audit import verify
from engine.runtime.journal import entry_dict, machine_of
from engine.runtime.lookup import aware, resolve_round
from engine.runtime.results import LanguageVersion, Signatory
from workflows import ProcessMachine, Role

__all__ = [
    "Activation",
    "Certificate",
    "ChainState",
    "Ending",
    "Minutes",
    "Note",
    "PartyRecord",
    "ReadFrom",
    "Recorded",
    "Sources",
    "Step",
    "StepKind",
    "StoredText",
    "TextVersion",
    "Via",
    "certificate",
    "certify",
    "read_sources",
]

Via = Literal["cli", "link", "web", "api", "automatic"]
StepKind = Literal[
    "submission",
    "approval",
    "return",
    "rejection",
    "appeal",
    "appeal_resolved",
    "legal_force",
    "signature",
    "reopened",  # the text was amended after the party approved it: back to preparation
    "signatories",  # who may sign was changed
    "other",
]
SETBACKS: frozenset[StepKind] = frozenset({"return", "rejection", "appeal", "appeal_resolved"})
# Entries about reaching people, not deciding: in the log export, not among a party's steps.
_NOT_STEPS = frozenset({"remind", "escalate", "contacts", "link", "annotate"})
_BY_ENGINE = frozenset({"remind", "escalate", "activate", "fail"})
_VIAS = frozenset({"link", "web", "api"})
# For a party whose workflow is no longer in the catalog: the shipped workflows' event names.
_BY_NAME: Mapping[str, StepKind] = {
    "submit": "submission",
    "approve": "approval",
    "return": "return",
    "reject": "rejection",
    "appeal": "appeal",
    "appeal-resolved": "appeal_resolved",
    "legal-force": "legal_force",
}


@dataclass(frozen=True)
class Note:
    """An ``annotate`` entry: a note on entry #``refers_to``, which itself stays as written."""

    seq: int
    refers_to: int
    note: str
    actor: str
    via: Via
    at: datetime  # in the round's zone


@dataclass(frozen=True)
class Recorded:
    """Who recorded an entry, how and when; and the notes appended on it since."""

    seq: int
    at: datetime  # in the round's zone
    actor: str
    via: Via
    clock: str  # system, or at: a time given by hand (a decision backfilled)
    notes: tuple[Note, ...] = ()


@dataclass(frozen=True)
class Minutes:
    """The minutes extract uploaded with a decision, named by its SHA-256."""

    sha256: str
    filename: str


@dataclass(frozen=True)
class ReadFrom:
    """Where a decision confirmed from a proposal was read: the minutes item's address, when
    it was fetched and the SHA-256 of what was fetched (of what was pasted, for a manual one)."""

    url: str  # the minutes item's address (or the source's, when it gave none)
    fetched_at: str  # when it was fetched, as the log holds it (ISO 8601, UTC)
    sha256: str  # of the bytes fetched, hex


@dataclass(frozen=True)
class Step:
    """One entry about a party: what happened, on which text, and its evidence as recorded."""

    kind: StepKind
    event: str  # the workflow's own name for it
    from_state: str | None
    to_state: str | None
    recorded: Recorded
    text_version: int | None  # the round's text when it was recorded
    text_sha256: str
    current_text: bool  # whether that is the round's last text
    decision: str | None = None  # the decision reference, as the log holds it
    body: str | None = None
    decided: date | None = None
    section: int | None = None
    diary: str | None = None
    reason: str | None = None
    minutes: Minutes | None = None
    read_from: ReadFrom | None = None  # a decision confirmed from its published minutes
    signatory: str | None = None
    title: str | None = None
    signature: int | None = None  # which signature of the party's (1 for the first)
    signatures_required: int | None = None
    legal_force_from: date | None = None
    signatories: tuple[Signatory, ...] = ()  # a "signatories" step: the new list


@dataclass(frozen=True)
class PartyRecord:
    id: str
    name: str
    workflow: str  # name@version
    bodies: tuple[str, ...]
    signatures_required: int
    may_sign: tuple[Signatory, ...]  # authorised at launch (empty: anyone the party names)
    state: str  # as its last step left it
    role: Role | None  # None: its workflow is not in the catalog
    done_at: datetime | None  # when it reached its final role
    steps: tuple[Step, ...]

    @property
    def approvals(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.kind == "approval")

    @property
    def signatures(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.kind == "signature")

    @property
    def setbacks(self) -> tuple[Step, ...]:
        """Returns, rejections and appeals, and appeals resolved."""
        return tuple(s for s in self.steps if s.kind in SETBACKS)


@dataclass(frozen=True)
class LanguageHash:
    """One language's text of a version in several languages: its file and its own SHA-256."""

    language: str
    source: str
    sha256: str


@dataclass(frozen=True)
class TextVersion:
    version: int
    source: str  # the file name it was read from
    sha256: str  # with several languages, their texts' combined hash
    recorded_at: datetime  # in the round's zone
    reason: str | None  # an amendment's
    recorded: Recorded | None  # the launch or amend entry that put it to the parties
    texts: tuple[LanguageHash, ...] = ()  # several languages: each one's text


@dataclass(frozen=True)
class Activation:
    at: datetime  # in the round's zone
    effective_date: date
    last_party: str | None
    recorded: Recorded


@dataclass(frozen=True)
class Ending:
    """How a round ended without entering into force."""

    state: str  # failed, cancelled
    at: datetime
    reason: str | None
    party: str | None  # failed: the party that rejected
    decision: str | None  # failed: its decision
    recorded: Recorded


@dataclass(frozen=True)
class ChainState:
    """The log the certificate states: its length and head, and whether it verified."""

    entries: int
    head: str
    verified: bool
    problem: str | None  # what verification found, when it did not pass
    later_entries: int  # entries added after these, while the certificate was made


@dataclass(frozen=True)
class Certificate:
    agreement: str
    title: str
    round: str
    state: str  # open, active, failed, cancelled: as the log ends
    language: str  # the round's
    timezone: str
    launched_at: datetime  # in the round's zone
    deadline: date | None
    coordinator: str
    document_sha256: str  # the round's last text
    document_version: int
    documents: tuple[TextVersion, ...]
    parties: tuple[PartyRecord, ...]
    activation: Activation | None
    ending: Ending | None
    notes: tuple[Note, ...]  # notes on entries that no step above shows (a reminder, a note)
    chain: ChainState
    titles: Mapping[str, str] = field(default_factory=dict)  # several languages: each one's

    @property
    def complete(self) -> bool:
        """Whether this certifies completion: the round is active and its log verified."""
        return self.state == "active" and self.activation is not None and self.chain.verified

    @property
    def effective_date(self) -> date | None:
        return self.activation.effective_date if self.activation else None


@dataclass(frozen=True)
class StoredText:
    """A stored version of the round's text, with the text itself (for the evidence pack)."""

    version: int
    source: str
    sha256: str
    text: str
    recorded_at: datetime
    texts: tuple[LanguageVersion, ...] = ()  # several languages: each one's (the first is text)


@dataclass(frozen=True)
class Sources:
    """What one transaction read: the log's entries, the stored texts and the round's own facts
    that the log does not hold."""

    round: str
    language: str
    timezone: str
    coordinator: str
    deadline: date | None
    entries: tuple[Entry, ...]
    texts: tuple[StoredText, ...]


def read_sources(engine: Engine, ref: str) -> Sources:
    ensure_schema(engine)
    with transaction(engine) as session:
        row = resolve_round(session, ref)
        return Sources(
            round=row.id,
            language=row.language,
            timezone=row.timezone,
            coordinator=str(row.coordinator.get("name", "")),
            deadline=row.deadline,
            entries=tuple(_entries(session, row.id)),
            texts=tuple(_texts(session, row.id)),
        )


def _entries(session: Session, round_id: str) -> list[Entry]:
    rows = session.exec(
        select(LogRow).where(LogRow.round_id == round_id).order_by(col(LogRow.seq))
    ).all()
    return [entry_dict(r) for r in rows]


def _texts(session: Session, round_id: str) -> list[StoredText]:
    rows = session.exec(
        select(DocumentRow)
        .where(DocumentRow.round_id == round_id)
        .order_by(col(DocumentRow.version))
    ).all()
    return [
        StoredText(
            d.version,
            d.source,
            d.sha256,
            d.text,
            aware(d.recorded_at),
            tuple(
                LanguageVersion(t["language"], t["source"], t["sha256"], t["text"])
                for t in d.texts or []
            ),
        )
        for d in rows
    ]


def certificate(engine: Engine, ref: str) -> Certificate:
    """The certificate of a round (an agreement id means its latest round)."""
    return certify(engine, read_sources(engine, ref))


def certify(engine: Engine, sources: Sources) -> Certificate:
    """The certificate of what ``sources`` read, its chain verified against the database."""
    entries = sources.entries
    if not entries or entries[0]["event"] != "launch":
        raise VerificationFailed(f"round {sources.round}: its log does not begin with its launch")
    head = entries[-1]["hash"]
    try:
        # The head read with the entries: verify passes only if the chain still holds it.
        report = verify(engine, sources.round, expect_head=head)
        found = report.expected
        chain = ChainState(len(entries), head, True, None, found.after if found else 0)
    except VerificationFailed as exc:
        chain = ChainState(len(entries), head, False, str(exc), 0)
    try:
        return _Builder(sources).build(chain)
    except (AttributeError, KeyError, TypeError, ValueError):
        if chain.verified:
            raise
        # A log changed so that it cannot even be read: what verification found is the answer.
        raise VerificationFailed(chain.problem or "") from None


def _moment(entry: Mapping[str, Any], zone: ZoneInfo) -> datetime:
    return datetime.fromisoformat(str(entry["recorded_at"])).astimezone(zone)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _date(value: Any) -> date | None:
    try:
        return date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


class _Builder:
    """One pass over the entries, oldest first; notes find the entry they refer to."""

    def __init__(self, sources: Sources) -> None:
        self.sources = sources
        launch = sources.entries[0]["evidence"]
        self.zone = ZoneInfo(sources.timezone)
        self.launch = launch
        self.plans = [p for p in launch.get("parties", []) if isinstance(p, dict) and "id" in p]
        self.machines = {plan["id"]: _machine(plan) for plan in self.plans}
        self.notes: dict[int, list[Note]] = {}
        self.shown: set[int] = set()
        self.versions: dict[str, int] = {t.sha256: t.version for t in sources.texts}
        self.amends: dict[int, Entry] = {}
        self.state = "open"
        self.activation: Activation | None = None
        self.ending: Ending | None = None
        for entry in sources.entries:
            if entry["event"] == "annotate":
                refers = entry["evidence"].get("refers_to")
                note = Note(
                    entry["seq"],
                    refers if isinstance(refers, int) else 0,
                    str(entry["evidence"].get("note", "")),
                    entry["actor"],
                    self._via(entry),
                    _moment(entry, self.zone),
                )
                self.notes.setdefault(note.refers_to, []).append(note)
            elif entry["event"] == "amend" and entry["party"] is None:
                version = entry["evidence"].get("version")
                if isinstance(version, int):
                    self.versions.setdefault(entry["document_sha256"], version)
        self.versions.setdefault(sources.entries[0]["document_sha256"], 1)

    def _via(self, entry: Mapping[str, Any]) -> Via:
        via = entry["evidence"].get("via")
        if via in _VIAS:
            return via  # type: ignore[no-any-return]  # one of the literals, checked
        if entry["event"] in _BY_ENGINE:
            return "automatic"
        machine = self.machines.get(entry["party"] or "")
        spec = machine.definition.event(entry["event"]) if machine else None
        if entry["actor"] == "ratify" and spec is not None and spec.by == "time":
            return "automatic"
        return "cli"

    def _recorded(self, entry: Mapping[str, Any]) -> Recorded:
        self.shown.add(entry["seq"])
        return Recorded(
            entry["seq"],
            _moment(entry, self.zone),
            entry["actor"],
            self._via(entry),
            entry["clock"],
            tuple(self.notes.get(entry["seq"], ())),
        )

    def build(self, chain: ChainState) -> Certificate:
        entries = self.sources.entries
        final_sha = entries[-1]["document_sha256"]
        steps: dict[str, list[Step]] = {plan["id"]: [] for plan in self.plans}
        for entry in entries:
            if entry["party"] is None:
                self._round_entry(entry)
            elif entry["event"] not in _NOT_STEPS and entry["party"] in steps:
                steps[entry["party"]].append(self._step(entry, final_sha))
        launch = self._recorded(entries[0])
        unshown = tuple(
            note
            for seq, notes in sorted(self.notes.items())
            if seq not in self.shown
            for note in notes
        )
        return Certificate(
            agreement=str(self.launch.get("agreement", "")),
            title=str(self.launch.get("title", "")),
            round=self.sources.round,
            state=self.state,
            language=self.sources.language,
            timezone=self.zone.key,
            launched_at=launch.at,
            deadline=self.sources.deadline,
            coordinator=self.sources.coordinator,
            document_sha256=final_sha,
            document_version=self.versions.get(final_sha, len(self.sources.texts)),
            documents=tuple(self._version(text, launch) for text in self.sources.texts),
            parties=tuple(self._party(plan, steps[plan["id"]]) for plan in self.plans),
            activation=self.activation,
            ending=self.ending,
            notes=unshown,
            chain=chain,
            titles={
                str(k): str(v)
                for k, v in (self.launch.get("titles") or {}).items()
                if isinstance(self.launch.get("titles"), dict)
            },
        )

    def _round_entry(self, entry: Entry) -> None:
        event, evidence = entry["event"], entry["evidence"]
        if event in ("launch", "activate", "fail", "cancel") and entry["to_state"]:
            self.state = entry["to_state"]
        if event == "amend" and isinstance(version := evidence.get("version"), int):
            self.amends[version] = entry
        elif event == "activate":
            recorded = self._recorded(entry)
            if (effective := _date(evidence.get("effective_date"))) is not None:
                last = _text(evidence.get("last_party"))
                self.activation = Activation(recorded.at, effective, last, recorded)
        elif event in ("fail", "cancel"):
            recorded = self._recorded(entry)
            self.ending = Ending(
                entry["to_state"] or event,
                recorded.at,
                _text(evidence.get("reason")),
                _text(evidence.get("party")),
                _text(evidence.get("decision")),
                recorded,
            )

    def _version(self, text: StoredText, launch: Recorded) -> TextVersion:
        amended = self.amends.get(text.version)
        put = self._recorded(amended) if amended is not None else None
        if text.version == 1:
            put = launch
        reason = _text(amended["evidence"].get("reason")) if amended is not None else None
        at = text.recorded_at.astimezone(self.zone)
        languages = tuple(LanguageHash(t.language, t.source, t.sha256) for t in text.texts)
        return TextVersion(text.version, text.source, text.sha256, at, reason, put, languages)

    def _kind(self, entry: Mapping[str, Any]) -> StepKind:
        event, evidence = entry["event"], entry["evidence"]
        if event == "amend":
            return "reopened"
        if event == "signatories":
            return "signatories"
        if "signatory" in evidence:
            return "signature"
        machine = self.machines.get(entry["party"] or "")
        if machine is None:
            return _BY_NAME.get(event, "other")
        try:
            before = machine.role(entry["from_state"] or "")
            after = machine.role(entry["to_state"] or "")
        except KeyError:  # a state the workflow no longer has: replay would fail too
            return _BY_NAME.get(event, "other")
        spec = machine.definition.event(event)
        if spec is not None and spec.by == "time":
            return "legal_force"
        if after == "failed":
            return "rejection"
        if after == "preparing":
            return "return" if before in ("review", "on_hold") else "other"
        if before == "preparing" and after == "review":
            return "submission"
        if before == "review" and "decision" in evidence:
            return "approval"
        if after == "on_hold":
            return "appeal"
        if before == "on_hold":
            return "appeal_resolved"
        return "other"

    def _step(self, entry: Entry, final_sha: str) -> Step:
        kind, evidence = self._kind(entry), entry["evidence"]
        decision = _text(evidence.get("decision"))
        body = decided = section = None
        if decision is not None:
            try:
                ref = parse_decision_ref(decision)
                body, decided, section = ref.body, ref.decided, ref.section
            except RatifyError:
                pass  # shown as the log holds it
        minutes = None
        if sha := _text(evidence.get("minutes_sha256")):
            minutes = Minutes(sha, _text(evidence.get("minutes_file")) or "minutes.pdf")
        read_from = None
        if fetched := _text(evidence.get("fetched_sha256")):
            url = _text(evidence.get("item_url")) or _text(evidence.get("source_url")) or ""
            read_from = ReadFrom(url, _text(evidence.get("fetched_at")) or "", fetched)
        listed = evidence.get("signatories") if kind == "signatories" else None
        sha256 = entry["document_sha256"]
        return Step(
            kind=kind,
            event=entry["event"],
            from_state=entry["from_state"],
            to_state=entry["to_state"],
            recorded=self._recorded(entry),
            text_version=self.versions.get(sha256),
            text_sha256=sha256,
            current_text=sha256 == final_sha,
            decision=decision,
            body=body,
            decided=decided,
            section=section,
            diary=_text(evidence.get("diary")),
            reason=_text(evidence.get("reason")),
            minutes=minutes,
            read_from=read_from,
            signatory=_text(evidence.get("signatory")),
            title=_text(evidence.get("title")),
            signature=_int(evidence.get("signature")),
            signatures_required=_int(evidence.get("of")),
            legal_force_from=_date(evidence.get("legal_force_from")),
            signatories=_signatories(listed),
        )

    def _party(self, plan: Mapping[str, Any], steps: Sequence[Step]) -> PartyRecord:
        machine = self.machines.get(plan["id"])
        state = next((s.to_state for s in reversed(steps) if s.to_state), None)
        if state is None:
            state = machine.definition.initial if machine else ""
        role: Role | None = None
        done_at = None
        if machine is not None:
            try:
                role = machine.role(state)
                ends = [s for s in steps if s.to_state and machine.role(s.to_state) == role]
                if role in ("done", "failed") and ends:
                    done_at = ends[0].recorded.at
            except KeyError:
                role = None
        return PartyRecord(
            id=plan["id"],
            name=str(plan.get("name", plan["id"])),
            workflow=f"{plan.get('workflow')}@{plan.get('workflow_version')}",
            bodies=tuple(str(b.get("name")) for b in plan.get("bodies", []) if isinstance(b, dict)),
            signatures_required=int(plan.get("signatures_required", 1)),
            may_sign=_signatories(plan.get("signatories")),
            state=state,
            role=role,
            done_at=done_at,
            steps=tuple(steps),
        )


def _machine(plan: Mapping[str, Any]) -> ProcessMachine | None:
    try:
        return machine_of(str(plan["workflow"]), int(plan["workflow_version"]))
    except (RatifyError, KeyError, TypeError, ValueError):
        return None  # not in the catalog now: steps are named by the shipped event names


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _signatories(value: Any) -> tuple[Signatory, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(
        Signatory(str(s.get("name", "")), str(s.get("title", "")))
        for s in value
        if isinstance(s, dict)
    )
