"""The coordinator's pages: the dashboard of every round, launching a round by upload, and a
round's page, from which a coordinator records on a party's behalf, amends, cancels and corrects
the round (contacts, links, signatories, notes on entries).

Auditors read the dashboard and the round pages; every POST here needs a coordinator. Each write
is a plain form: done, it redirects (303) to the round page with ``?done=…`` and an anchor;
refused, the page comes again with the message beside the field concerned (400, or 409 when the
rules refused it) and the values kept.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import tempfile
import threading
import time
import tomllib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import Response

from engine.errors import AgreementFileError, NotFound, RatifyError, Refused
from engine.interfaces.web.common import (
    WebConfig,
    config,
    field_errors,
    language,
    page,
    require_user,
    round_path,
    see_other,
)
from engine.interfaces.web.strings import words
from engine.runtime import (
    Entry,
    Evidence,
    OutboxMessage,
    PartyStatus,
    ReminderPreview,
    RoundStatus,
)
from engine.runtime.access import Principal

__all__ = ["router"]

router = APIRouter()
log = logging.getLogger(__name__)

READERS = ("coordinator", "auditor")
WRITER = "coordinator"
EVIDENCE = ("ref", "diary", "reason", "signatory", "title")
# The limits of engine.agreement (MAX_FILE_BYTES, MAX_DOCUMENT_BYTES), which an interface may not
# import; the loader checks them again, so a drift here only changes which message is shown.
AGREEMENT_MAX = 1024 * 1024
DOCUMENT_MAX = 2 * 1024 * 1024
PREVIEW_SHOWN = 3  # per round on the dashboard
PAGE = 50  # rounds per page of the dashboard
FAILED_SHOWN = 20
CHASES = ("remind", "escalate")
QUIET = {"message", "step_since", "previous_sha256", "via"}  # said elsewhere, or bookkeeping
# Log entries whose evidence the dashboard must read are only those of open rounds; past this
# many changed rounds one status() of all is cheaper than a status() each.
BULK = 40


# ---- the dashboard -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """One round as the dashboard shows it; recomputed only when its log's head moves."""

    round: str
    title: str
    state: str
    zone: str
    deadline: date | None
    effective_date: date | None
    signed: int
    total: int
    unfinished: tuple[str, ...]  # names of the parties neither done nor failed
    escalated: tuple[str, ...]  # names of the parties escalated since their step began


@dataclass
class _Board:
    """What the dashboard keeps between requests (one per application). Every change of a round's
    parties appends to its log, so a round whose head has not moved needs no new status. The
    scheduler's preview costs a pass over every open round: once that has become slow, it is kept
    while no head moves, for a minute of the clock, and then refreshed in the background while
    the last one shows (sent mail moves no head: the minute bounds how stale it gets)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    rounds: dict[str, tuple[tuple[int, str], Summary]] = field(default_factory=dict)
    preview_lock: threading.Lock = field(default_factory=threading.Lock)
    preview: dict[str, tuple[tuple[ReminderPreview, ...], int]] = field(default_factory=dict)
    preview_key: object = None
    preview_at: datetime | None = None
    preview_cost: float = 0.0
    refreshing: bool = False


PREVIEW_TTL = timedelta(seconds=60)
PREVIEW_SYNC = 0.05  # seconds: a preview cheaper than this is always computed on the request


def _board(cfg: WebConfig) -> _Board:
    found = cfg.extra.get("coordinator.board")
    if not isinstance(found, _Board):
        found = cfg.extra.setdefault("coordinator.board", _Board())
    return found


def _escalated(entries: Sequence[Entry]) -> set[str]:
    """The parties with an escalation after their last change of state."""
    moved: dict[str, int] = {}
    escalated: dict[str, int] = {}
    for entry in entries:
        party = entry["party"]
        if party is None:
            continue
        if entry["event"] == "escalate":
            escalated[party] = entry["seq"]
        elif entry["from_state"] != entry["to_state"]:
            moved[party] = entry["seq"]
    return {p for p, seq in escalated.items() if seq > moved.get(p, 0)}


def _summary(found: RoundStatus, entries: Sequence[Entry]) -> Summary:
    escalated = _escalated(entries)
    unfinished = [p for p in found.parties if p.role not in ("done", "failed")]
    return Summary(
        round=found.round,
        title=found.title,
        state=found.state,
        zone=str(found.launched_at.tzinfo),
        deadline=found.deadline,
        effective_date=found.effective_date,
        signed=found.signed,
        total=len(found.parties),
        unfinished=tuple(p.name for p in unfinished),
        escalated=tuple(p.name for p in unfinished if p.id in escalated),
    )


def _summaries(cfg: WebConfig) -> tuple[list[Summary], tuple[tuple[str, int, str], ...]]:
    """Every round's summary, and the heads they are of (the preview's key)."""
    from engine.runtime import heads, log_entries, status

    board = _board(cfg)
    with board.lock:
        current = {h.round: (h.entries, h.head) for h in heads(cfg.engine)}
        changed = [r for r, key in current.items() if board.rounds.get(r, ((0, ""),))[0] != key]
        if len(changed) > BULK:
            everything = {s.round: s for s in status(cfg.engine, None)}
            fresh = [everything[r] for r in changed if r in everything]
        else:
            fresh = [status(cfg.engine, r)[0] for r in changed]
        for found in fresh:
            entries = log_entries(cfg.engine, found.round) if found.state == "open" else []
            board.rounds[found.round] = (current[found.round], _summary(found, entries))
        for gone in set(board.rounds) - set(current):
            del board.rounds[gone]
        rows = [board.rounds[r][1] for r in current if r in board.rounds]
    return rows, tuple((r, *key) for r, key in current.items())


def _compute_preview(cfg: WebConfig, board: _Board, key: object, now: datetime) -> None:
    from engine.runtime import preview

    started = time.perf_counter()
    due: dict[str, list[ReminderPreview]] = {}
    for item in preview(cfg.engine, cfg.clock):
        due.setdefault(item.round or "", []).append(item)
    # Kept grouped by round, the first few of each only: a thousand rounds' queued invitations
    # are sixteen thousand items.
    board.preview = {
        r: (tuple(sorted(items, key=lambda p: p.due)[:PREVIEW_SHOWN]), len(items))
        for r, items in due.items()
    }
    board.preview_key, board.preview_at = key, now
    board.preview_cost = time.perf_counter() - started


def _refresh_preview(cfg: WebConfig, board: _Board, key: object, now: datetime) -> None:
    try:
        _compute_preview(cfg, board, key, now)
    except Exception:  # a thread of its own: the page keeps the last preview, the log says why
        log.exception("the dashboard's preview could not be refreshed")
    finally:
        board.refreshing = False


Upcoming = Mapping[str, tuple[tuple[ReminderPreview, ...], int]]


def _upcoming(cfg: WebConfig, key: object) -> tuple[Upcoming, datetime | None]:
    """What the scheduler's next tick sends, by round, and as of when (None: now)."""
    board = _board(cfg)
    now = cfg.clock.now(UTC)
    with board.preview_lock:
        at = board.preview_at
        if at is None or board.preview_cost < PREVIEW_SYNC:  # cheap: always as of now
            _compute_preview(cfg, board, key, now)
            return board.preview, None
        if key == board.preview_key and at <= now < at + PREVIEW_TTL:
            return board.preview, None
        if not board.refreshing:
            board.refreshing = True
            threading.Thread(
                target=_refresh_preview, args=(cfg, board, key, now), daemon=True
            ).start()
        return board.preview, at


def warm_dashboard(cfg: WebConfig) -> None:
    """Compute what the dashboard keeps, so that its first visitor does not wait for a thousand
    rounds' status (``ratify serve`` may call this in a thread once the application is made)."""
    _, key = _summaries(cfg)
    _upcoming(cfg, key)


@dataclass(frozen=True)
class Row:
    """A round's line on the dashboard, with what depends on today."""

    summary: Summary
    overdue: tuple[str, ...]
    next: tuple[ReminderPreview, ...]
    more: int  # further chases or messages due after those shown
    failed: int

    @property
    def attention(self) -> bool:
        return bool(self.overdue or self.summary.escalated or self.failed)


def _rows(
    summaries: Iterable[Summary],
    upcoming: Upcoming,
    failed: Sequence[OutboxMessage],
    today: Callable[[str], date],
) -> list[Row]:
    """Every round's row: the open ones that need attention first, then by deadline."""
    failures: dict[str, int] = {}
    for message in failed:
        failures[message.round] = failures.get(message.round, 0) + 1
    days: dict[str, date] = {}  # today in each zone, asked of the clock once
    rows = []
    for s in summaries:
        if s.zone not in days:
            days[s.zone] = today(s.zone)
        late = s.state == "open" and s.deadline is not None and s.deadline < days[s.zone]
        shown, total = upcoming.get(s.round, ((), 0))
        rows.append(
            Row(
                summary=s,
                overdue=s.unfinished if late else (),
                next=shown,
                more=total - len(shown),
                failed=failures.get(s.round, 0),
            )
        )
    rows.sort(
        key=lambda r: (
            r.summary.state != "open",
            not r.attention,
            r.summary.deadline or date.max,
            r.summary.round,
        )
    )
    return rows


@router.get("/")
def dashboard(request: Request, page_number: Annotated[int, Query(alias="page")] = 1) -> Response:
    from engine.runtime import outbox_messages

    who = require_user(request, *READERS)
    cfg = config(request)
    t = _words(request)
    summaries, key = _summaries(cfg)
    upcoming, as_of = _upcoming(cfg, key)
    failed = outbox_messages(cfg.engine, "failed")
    rows = _rows(summaries, upcoming, failed, lambda zone: cfg.clock.now(ZoneInfo(zone)).date())
    # A page of rows: Jinja renders a thousand rows in the better part of a second.
    pages = max(1, -(-len(rows) // PAGE))
    number = min(max(page_number, 1), pages)
    shown = rows[(number - 1) * PAGE : number * PAGE]
    open_rows = [r for r in rows if r.summary.state == "open"]
    return page(
        request,
        "dashboard.html.j2",
        {
            "t": t,
            "rows": shown,
            "page_number": number,
            "first": (number - 1) * PAGE + 1,
            "last": (number - 1) * PAGE + len(shown),
            "pages": pages,
            "total": len(rows),
            "open_total": len(open_rows),
            "attention": sum(r.attention for r in open_rows),
            "overdue": sum(len(r.overdue) for r in open_rows),
            "escalated": sum(len(r.summary.escalated) for r in open_rows),
            "failed": failed[-FAILED_SHOWN:][::-1],  # the latest first
            "failed_total": len(failed),
            "as_of": as_of,
            "may_write": who.role == WRITER,
        },
        title=t("coord.dashboard.title"),
    )


class _Words:
    """The page's words with their keys read once: a template asks whether a term has words
    (``key in t.keys()``) for every state and event it shows, and Words.keys() builds a new set
    each time."""

    def __init__(self, language_code: str) -> None:
        self._words = words(language_code)
        self._keys = self._words.keys()

    def __call__(self, key: str, **fields: object) -> str:
        return self._words(key, **fields)

    def keys(self) -> frozenset[str]:
        return self._keys


def _words(request: Request) -> _Words:
    return _Words(language(request))


# ---- launching a round by upload ---------------------------------------------------------------

# A key of the agreement file as the loader names it (agreement.id, or parties[1] (id 'loppi')
# .contacts[0].email with the party's id); anything else (the TOML, the file as a whole) is shown
# under the file.
_KEY = re.compile(r"[A-Za-z0-9_-]+(\[\d+\])*(\.[A-Za-z0-9_-]+(\[\d+\])*)*")
_KEY_ID = re.compile(r" \(id '[^']*'\)")


def _size(limit: int) -> str:
    return f"{limit / (1024 * 1024):g} MiB"


def _read(upload: UploadFile | None, limit: int) -> bytes | None:
    """The bytes of a chosen file, at most ``limit`` + 1 (one more tells it is too large); None
    when no file was chosen (a browser sends an empty part without a name)."""
    if upload is None or not upload.filename:
        return None
    return upload.file.read(limit + 1)


def _document_name(source: bytes) -> str | None:
    """What the agreement's ``document`` key names, when the file can be read that far."""
    try:
        raw = tomllib.loads(source.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError):
        return None  # the loader words what is wrong with the file
    table = raw.get("agreement")
    value = table.get("document") if isinstance(table, dict) else None
    return value.strip() if isinstance(value, str) else None


def _plain_name(name: str) -> bool:
    """A file name alone: the text is saved under it beside the agreement, never elsewhere."""
    return (
        name not in ("", ".", "..")
        and "/" not in name
        and "\\" not in name
        and name.isprintable()
        and len(name.encode()) <= 255
    )


def _grouped(
    exc: AgreementFileError, folder: Path, replaced: Mapping[str, str]
) -> list[tuple[str, list[str]]]:
    """The problems by the key each concerns, in the file's order; the temporary folder is no
    concern of whoever uploaded the file, so its path is taken out of the messages. ``replaced``:
    keys whose problems this page words itself."""
    groups: dict[str, list[str]] = {key: [text] for key, text in replaced.items()}
    hidden = sorted({str(folder.resolve()), str(folder)}, key=len, reverse=True)
    for problem, key in zip(exc.problems, exc.keys, strict=False):
        if key in replaced:
            continue
        text = problem
        for prefix in hidden:
            text = text.replace(prefix + "/", "").replace(prefix, "")
        shown = key if _KEY.fullmatch(_KEY_ID.sub("", key)) else ""
        if shown and text.startswith(shown + ":"):
            text = text[len(shown) + 1 :].strip()
        groups.setdefault(shown, []).append(text)
    return list(groups.items())


def _launch_page(
    request: Request,
    errors: Mapping[str, str] | None = None,
    problems: Sequence[tuple[str, Sequence[str]]] = (),
    status: int = 200,
) -> Response:
    t = _words(request)
    return page(
        request,
        "launch.html.j2",
        {
            "errors": dict(errors or {}),
            "problems": problems,
            "agreement_max": _size(AGREEMENT_MAX),
            "document_max": _size(DOCUMENT_MAX),
        },
        status=status,
        title=t("coord.launch.title"),
    )


@router.get("/rounds/new")
def launch_form(request: Request) -> Response:
    require_user(request, WRITER)
    return _launch_page(request)


@router.post("/rounds")
def launch_upload(
    request: Request,
    agreement: Annotated[UploadFile | None, File()] = None,
    document: Annotated[UploadFile | None, File()] = None,
) -> Response:
    from engine.runtime import launch, load_agreement

    who = require_user(request, WRITER)
    cfg = config(request)
    t = _words(request)
    source = _read(agreement, AGREEMENT_MAX)
    text = _read(document, DOCUMENT_MAX)
    errors: dict[str, str] = {}
    if not source:
        errors["agreement"] = t("coord.launch.agreement_missing")
    elif len(source) > AGREEMENT_MAX:
        errors["agreement"] = t("coord.launch.too_large", limit=_size(AGREEMENT_MAX))
    if text is not None and len(text) > DOCUMENT_MAX:
        errors["document"] = t("coord.launch.too_large", limit=_size(DOCUMENT_MAX))
    if errors or source is None:
        return _launch_page(request, errors, status=400)
    name = _document_name(source)
    with tempfile.TemporaryDirectory(prefix="ratify-launch-") as tmp:
        folder = Path(tmp)
        path = folder / ("agreement-file.toml" if name == "agreement.toml" else "agreement.toml")
        path.write_bytes(source)
        replaced: dict[str, str] = {}
        if name is not None and not _plain_name(name):
            replaced["agreement.document"] = t("coord.launch.document_not_plain", name=name)
        elif name is not None and text:
            (folder / name).write_bytes(text)
        elif name is not None:
            errors["document"] = t("coord.launch.document_missing", name=name)
        try:
            loaded = load_agreement(path, launch_at=cfg.clock)
            if replaced or errors:  # "x/../agreement.toml" would load: it names the file itself
                raise AgreementFileError(str(path), [])
            result = launch(cfg.engine, loaded, cfg.clock, who.name)
        except AgreementFileError as exc:
            return _launch_page(request, errors, _grouped(exc, folder, replaced), status=400)
        except RatifyError as exc:
            status = 409 if isinstance(exc, Refused) else 400
            return _launch_page(request, errors | field_errors(exc), status=status)
    return see_other(round_path(result.round) + "?done=launched")


# ---- a round's page, and each party's corrections -----------------------------------------------


@dataclass(frozen=True)
class Step:
    """A log entry as a history shows it, with the notes made on it since."""

    seq: int
    at: datetime
    event: str
    from_state: str | None
    to_state: str | None
    actor: str
    via: str | None
    evidence: tuple[tuple[str, str], ...]
    notes: tuple[str, ...]


@dataclass(frozen=True)
class Contact:
    name: str
    email: str
    language: str


@dataclass(frozen=True)
class Need:
    """What an event a party may record now takes."""

    event: str
    requires: tuple[str, ...]
    optional: tuple[str, ...]


@dataclass(frozen=True)
class PartyView:
    status: PartyStatus
    steps: tuple[Step, ...]
    chases: tuple[Step, ...]  # reminders and escalations sent
    contacts: tuple[Contact, ...] | None  # None: the service layer does not list them
    failed: tuple[OutboxMessage, ...]
    needs: tuple[Need, ...]
    minutes: bool  # one of those events takes a minutes extract
    picture: str


def _round_id(agreement: str, number: str) -> str:
    if not re.fullmatch(r"[0-9]{1,9}", number):
        raise NotFound(f"no round {agreement}/{number}", field="round")
    return f"{agreement}/{number}"


def _shown(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(_shown(v) for v in value)
    if isinstance(value, Mapping):
        if "name" in value and "title" in value:
            return f"{value['name']} ({value['title']})"
        return ", ".join(f"{k}: {_shown(v)}" for k, v in value.items())
    return "" if value is None else str(value)


def _step(entry: Entry, notes: Mapping[int, list[str]]) -> Step:
    evidence = entry["evidence"]
    return Step(
        seq=entry["seq"],
        at=datetime.fromisoformat(entry["recorded_at"]),
        event=entry["event"],
        from_state=entry["from_state"],
        to_state=entry["to_state"],
        actor=entry["actor"],
        via=str(evidence["via"]) if evidence.get("via") else None,
        evidence=tuple(
            (k, _shown(v)) for k, v in evidence.items() if k not in QUIET and v not in (None, "")
        ),
        notes=tuple(notes.get(entry["seq"], ())),
    )


def _notes(entries: Sequence[Entry]) -> dict[int, list[str]]:
    """The notes made on each entry (an annotation is an entry that refers to another)."""
    notes: dict[int, list[str]] = {}
    for entry in entries:
        if entry["event"] == "annotate":
            refers = entry["evidence"].get("refers_to")
            if isinstance(refers, int):
                notes.setdefault(refers, []).append(str(entry["evidence"].get("note", "")))
    return notes


def _contacts(party: PartyStatus) -> tuple[Contact, ...] | None:
    # PartyStatus does not carry the contacts yet; when it does (as objects or mappings with a
    # name, email and language), they show and their forms name each one.
    found = getattr(party, "contacts", None)
    if found is None:
        return None

    def get(item: Any, key: str) -> str:
        return str(item.get(key, "") if isinstance(item, Mapping) else getattr(item, key, ""))

    return tuple(Contact(get(c, "name"), get(c, "email"), get(c, "language")) for c in found)


_PICTURES: dict[tuple[str, str, str], str] = {}


def _picture(workflow: str, state: str, title: str) -> str:
    """The party's workflow drawn with its state highlighted (the same few pictures for every
    round, so they are kept once drawn)."""
    key = (workflow, state, title)
    if key in _PICTURES:
        return _PICTURES[key]
    try:
        from engine.interfaces.web.diagram import workflow_svg
    except ImportError:  # the picture is an extra; the page works without it
        return ""
    from engine.runtime import workflow as load

    name, _, version = workflow.partition("@")
    definition, _ = load(name, int(version))
    svg = workflow_svg(definition, state, title=title)
    if len(_PICTURES) > 1024:  # a bound, not a policy: states times workflows is small
        _PICTURES.clear()
    _PICTURES[key] = svg
    return svg


def _needs(party: PartyStatus) -> tuple[tuple[Need, ...], bool]:
    from engine.runtime import workflow

    name, _, version = party.workflow.partition("@")
    definition, _ = workflow(name, int(version))
    needs, minutes = [], False
    for event in party.allowed:
        spec = definition.event(event)
        if spec is None:
            continue
        needs.append(Need(event, tuple(spec.requires), tuple(spec.optional)))
        minutes = minutes or spec.takes("ref")
    return tuple(needs), minutes


def _party_views(
    found: RoundStatus,
    entries: Sequence[Entry],
    failed: Sequence[OutboxMessage],
    only: str | None = None,
) -> list[PartyView]:
    notes = _notes(entries)
    by_party: dict[str, list[Entry]] = {}
    for entry in entries:
        if entry["party"] is not None:
            by_party.setdefault(entry["party"], []).append(entry)
    views = []
    for party in found.parties:
        if only is not None and party.id != only:
            continue
        mine = by_party.get(party.id, [])
        needs, minutes = _needs(party)
        views.append(
            PartyView(
                status=party,
                steps=tuple(_step(e, notes) for e in mine if e["event"] not in CHASES),
                chases=tuple(_step(e, notes) for e in mine if e["event"] in CHASES),
                contacts=_contacts(party),
                failed=tuple(m for m in failed if m.party == party.id),
                needs=needs,
                minutes=minutes,
                picture=_picture(party.workflow, party.state, party.name),
            )
        )
    return views


def _view(request: Request, round_id: str, party_id: str | None) -> tuple[str, dict[str, Any]]:
    """The round page's template and values, or (with ``party_id``) the party's page's."""
    from engine.runtime import log_entries, outbox_messages, status

    who = require_user(request, *READERS)
    cfg = config(request)
    (found,) = status(cfg.engine, round_id)
    entries = log_entries(cfg.engine, found.round)
    failed = [m for m in outbox_messages(cfg.engine, "failed") if m.round == found.round]
    values: dict[str, Any] = {
        "round": found,
        "round_id": found.round,
        "zone": str(found.launched_at.tzinfo),
        "may_write": who.role == WRITER and found.state == "open",
        "once": secrets.token_urlsafe(16),
    }
    if party_id is not None:
        views = _party_views(found, entries, failed, only=party_id)
        if not views:
            ids = ", ".join(p.id for p in found.parties)
            raise NotFound(f"round {found.round} has no party {party_id!r}; its parties: {ids}")
        return "coord_party.html.j2", values | {"party": views[0]}
    notes = _notes(entries)
    return "round.html.j2", values | {
        "parties": _party_views(found, entries, failed),
        "round_steps": [_step(e, notes) for e in entries if e["party"] is None],
        "round_failed": [m for m in failed if m.party is None],
        "may_annotate": who.role == WRITER,
    }


def _show(
    request: Request,
    round_id: str,
    party_id: str | None = None,
    *,
    failed_form: str = "",
    errors: Mapping[str, str] | None = None,
    values: Mapping[str, str] | None = None,
    status: int = 200,
) -> Response:
    template, view = _view(request, round_id, party_id)
    t = _words(request)
    notice = request.query_params.get("done", "")
    known = f"coord.done.{notice}"
    view |= {
        "t": t,
        "failed_form": failed_form,
        "errors": dict(errors or {}),
        "values": dict(values or {}),
        # Only the notices these pages know (the base shows the common done.* ones).
        "notice_text": t(known) if notice and known in t.keys() else None,  # noqa: SIM118
    }
    title = view["party"].status.name if party_id else view["round"].title
    return page(request, template, view, status=status, zone=view["zone"], title=title)


def _page_url(round_id: str, party_id: str | None) -> str:
    return round_path(round_id, "parties", party_id) if party_id else round_path(round_id)


@router.get("/rounds/{agreement}/{number}")
def round_page(request: Request, agreement: str, number: str) -> Response:
    require_user(request, *READERS)
    return _show(request, _round_id(agreement, number))


@router.get("/rounds/{agreement}/{number}/parties/{party}")
def party_page(request: Request, agreement: str, number: str, party: str) -> Response:
    require_user(request, *READERS)
    return _show(request, _round_id(agreement, number), party)


# ---- the forms ---------------------------------------------------------------------------------


class _Claims:
    """Forms other than an event's posted twice (a double click, a reload) write once: the service
    layer's once-only keys cover only ``record``, so the corrections' keys are kept here, in this
    process, for the last few thousand forms."""

    LIMIT = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: OrderedDict[str, str] = OrderedDict()  # key → where it redirected ("": busy)

    def take(self, key: str) -> str | None:
        """None: the first time (now claimed); else where the first one went."""
        with self._lock:
            if key in self._seen:
                return self._seen[key]
            self._seen[key] = ""
            while len(self._seen) > self.LIMIT:
                self._seen.popitem(last=False)
            return None

    def settle(self, key: str, url: str) -> None:
        with self._lock:
            self._seen[key] = url

    def release(self, key: str) -> None:
        with self._lock:
            self._seen.pop(key, None)


_CLAIMS = _Claims()


def _once_key(once: str, form: str, round_id: str, values: Mapping[str, str]) -> str:
    # The nonce names the page a form came from; the content makes two different writes from
    # one page (two signatures, say) two keys, and the same one posted twice one key.
    content = repr((form, round_id, sorted(values.items())))
    return f"web:{once[:64]}:{hashlib.sha256(content.encode()).hexdigest()[:32]}"


def _placed(
    exc: RatifyError, fields: Sequence[str], default: str, renames: Mapping[str, str]
) -> dict[str, str]:
    """The message beside the field it concerns, when the form has that field; else atop it."""
    placed = {}
    for key, message in field_errors(exc, default).items():
        if not isinstance(exc, NotFound):  # "no such contact" concerns the form, not a field
            key = renames.get(key, key)
        placed[key if key in fields else "form"] = message
    return placed


@dataclass(frozen=True)
class _Form:
    """One form: its id on its page, the page (the round's, or a party's), the anchor to come
    back to, the notice when done, its visible fields, and where an error without a field goes."""

    name: str
    anchor: str
    done: str
    party: str | None = None  # on this party's page; None: on the round's
    fields: tuple[str, ...] = ()
    default: str = "form"
    renames: Mapping[str, str] = field(default_factory=dict)
    claimed: bool = True  # deduplicated here (record() has its own once-only keys)


def _write(
    request: Request,
    agreement: str,
    number: str,
    form: _Form,
    values: Mapping[str, str],
    once: str,
    action: Callable[[WebConfig, str, Principal], object],
) -> Response:
    who = require_user(request, WRITER)
    cfg = config(request)
    round_id = _round_id(agreement, number)
    back = _page_url(round_id, form.party)
    done_url = f"{back}?done={form.done}#{form.anchor}"
    key = _once_key(once, form.name, round_id, values) if once and form.claimed else ""
    if key and (earlier := _CLAIMS.take(key)) is not None:
        return see_other(earlier or f"{back}#{form.anchor}")
    try:
        action(cfg, round_id, who)
    except RatifyError as exc:
        if key:
            _CLAIMS.release(key)
        if isinstance(exc, NotFound) and exc.field == "round":
            raise  # the round itself: the 404 page
        return _show(
            request,
            round_id,
            form.party,
            failed_form=form.name,
            errors=_placed(exc, form.fields, form.default, form.renames),
            values=values,
            status=409 if isinstance(exc, Refused) else 400,
        )
    except BaseException:
        if key:
            _CLAIMS.release(key)
        raise
    if key:
        _CLAIMS.settle(key, done_url)
    return see_other(done_url)


def _refuse(
    request: Request,
    agreement: str,
    number: str,
    form: _Form,
    errors: Mapping[str, str],
    values: Mapping[str, str],
) -> Response:
    """A form this module refuses before the service layer is asked (a box left unticked)."""
    require_user(request, WRITER)
    round_id = _round_id(agreement, number)
    return _show(
        request,
        round_id,
        form.party,
        failed_form=form.name,
        errors=errors,
        values=values,
        status=400,
    )


def _form_id(given: str, fallback: str) -> str:
    # Which of a party's contact forms was posted, so that its error shows beside it; only the
    # shape of an id these pages make is taken.
    return given if re.fullmatch(r"[a-z]+(-[a-z0-9]+)*-[0-9]{1,3}", given) else fallback


Text = Annotated[str, Form()]


@router.post("/rounds/{agreement}/{number}/record")
def record_event(
    request: Request,
    agreement: str,
    number: str,
    party: Text,
    event: Text,
    once: Text = "",
    ref: Text = "",
    diary: Text = "",
    reason: Text = "",
    signatory: Text = "",
    title: Text = "",
    minutes: Annotated[UploadFile | None, File()] = None,
) -> Response:
    from engine.runtime import record
    from engine.runtime.files import MINUTES_MAX, Upload

    require_user(request, WRITER)  # before reading an upload
    values = {"ref": ref, "diary": diary, "reason": reason, "signatory": signatory, "title": title}
    form = _Form(
        f"record-{party}",
        f"party-{party}",
        "recorded",
        fields=("event", *EVIDENCE, "minutes"),
        default="event",
        claimed=False,
    )
    data = _read(minutes, MINUTES_MAX)
    upload = None
    if minutes is not None and data is not None:
        upload = Upload(minutes.filename or "", minutes.content_type or "", data)
    content = {"party": party, "event": event, **values}
    if upload is not None:
        content["minutes"] = hashlib.sha256(upload.data).hexdigest()
    key = _once_key(once, form.name, _round_id(agreement, number), content) if once else None

    def act(cfg: WebConfig, round_id: str, who: Principal) -> object:
        evidence = Evidence(**{k: v.strip() or None for k, v in values.items()})
        return record(
            cfg.engine,
            round_id,
            party,
            event,
            evidence,
            cfg.clock,
            who.name,
            via="web",
            minutes=upload,
            once=key,
        )

    return _write(request, agreement, number, form, {"event": event, **values}, once, act)


@router.post("/rounds/{agreement}/{number}/amend")
def amend_text(
    request: Request,
    agreement: str,
    number: str,
    once: Text = "",
    reason: Text = "",
    document: Annotated[UploadFile | None, File()] = None,
) -> Response:
    from engine.runtime import amend

    require_user(request, WRITER)
    t = _words(request)
    form = _Form("amend", "amend", "amended", fields=("document", "reason"), default="document")
    values = {"reason": reason}
    data = _read(document, DOCUMENT_MAX)
    if not data:
        errors = {"document": t("coord.amend.document_missing")}
        return _refuse(request, agreement, number, form, errors, values)
    if len(data) > DOCUMENT_MAX:
        errors = {"document": t("coord.launch.too_large", limit=_size(DOCUMENT_MAX))}
        return _refuse(request, agreement, number, form, errors, values)
    # The name is kept with the version (its source); a path a browser sent is not.
    name = ((document.filename if document else "") or "").replace("\\", "/").rsplit("/", 1)[-1]
    if not _plain_name(name) or name.startswith("."):
        name = "agreement.md"
    content = {"sha256": hashlib.sha256(data).hexdigest(), **values}

    def act(cfg: WebConfig, round_id: str, who: Principal) -> object:
        with tempfile.TemporaryDirectory(prefix="ratify-amend-") as tmp:
            path = Path(tmp) / name
            path.write_bytes(data)
            return amend(cfg.engine, round_id, path, reason.strip() or None, cfg.clock, who.name)

    return _write(request, agreement, number, form, content, once, act)


@router.post("/rounds/{agreement}/{number}/cancel")
def cancel_round(
    request: Request,
    agreement: str,
    number: str,
    once: Text = "",
    reason: Text = "",
    confirm: Text = "",
) -> Response:
    from engine.runtime import cancel

    require_user(request, WRITER)
    form = _Form("cancel", "round", "cancelled", fields=("reason", "confirm"), default="reason")
    values = {"reason": reason}
    if confirm != "yes":
        errors = {"confirm": _words(request)("coord.cancel.confirm_needed")}
        return _refuse(request, agreement, number, form, errors, values)

    def act(cfg: WebConfig, round_id: str, who: Principal) -> object:
        return cancel(cfg.engine, round_id, reason, cfg.clock, who.name)

    return _write(request, agreement, number, form, values, once, act)


@router.post("/rounds/{agreement}/{number}/annotate")
def annotate_entry(
    request: Request,
    agreement: str,
    number: str,
    once: Text = "",
    seq: Text = "",
    note: Text = "",
) -> Response:
    from engine.runtime.corrections import annotate

    require_user(request, WRITER)
    form = _Form("annotate", "round-history", "annotated", fields=("seq", "note"), default="note")
    values = {"seq": seq, "note": note}
    if not re.fullmatch(r"[0-9]{1,9}", seq.strip()):
        errors = {"seq": _words(request)("coord.annotate.seq_invalid")}
        return _refuse(request, agreement, number, form, errors, values)

    def act(cfg: WebConfig, round_id: str, who: Principal) -> object:
        return annotate(cfg.engine, round_id, int(seq), note, cfg.clock, who.name)

    return _write(request, agreement, number, form, values, once, act)


@router.post("/rounds/{agreement}/{number}/contacts/add")
def add_contact(
    request: Request,
    agreement: str,
    number: str,
    party: Text,
    once: Text = "",
    name: Text = "",
    email: Text = "",
    language: Text = "fi",
    reason: Text = "",
) -> Response:
    from engine.runtime.corrections import add_contact as add

    form = _Form(
        "contact-add",
        "contacts",
        "contact_added",
        party=party,
        fields=("name", "email", "language", "reason"),
    )
    values = {"name": name, "email": email, "language": language, "reason": reason}

    def act(cfg: WebConfig, round_id: str, who: Principal) -> object:
        return add(cfg.engine, round_id, party, name, email, language, cfg.clock, who.name, reason)

    return _write(request, agreement, number, form, {"party": party, **values}, once, act)


@router.post("/rounds/{agreement}/{number}/contacts/change")
def change_contact(
    request: Request,
    agreement: str,
    number: str,
    party: Text,
    email: Text,
    once: Text = "",
    form_id: Text = "",
    name: Text = "",
    new_email: Text = "",
    language: Text = "fi",
    reason: Text = "",
) -> Response:
    from engine.runtime.corrections import change_contact as change

    form = _Form(
        _form_id(form_id, "contact-change-0"),
        "contacts",
        "contact_changed",
        party=party,
        fields=("email", "name", "new_email", "language", "reason"),
        renames={"email": "new_email"},
    )
    values = {
        "email": email,
        "name": name,
        "new_email": new_email,
        "language": language,
        "reason": reason,
    }

    def act(cfg: WebConfig, round_id: str, who: Principal) -> object:
        return change(
            cfg.engine,
            round_id,
            party,
            email,
            name=name,
            new_email=new_email,
            language=language,
            clock=cfg.clock,
            actor=who.name,
            reason=reason,
        )

    return _write(request, agreement, number, form, {"party": party, **values}, once, act)


@router.post("/rounds/{agreement}/{number}/contacts/remove")
def remove_contact(
    request: Request,
    agreement: str,
    number: str,
    party: Text,
    email: Text,
    once: Text = "",
    form_id: Text = "",
    reason: Text = "",
) -> Response:
    from engine.runtime.corrections import remove_contact as remove

    form = _Form(
        _form_id(form_id, "contact-actions-0"),
        "contacts",
        "contact_removed",
        party=party,
        fields=("email", "reason"),
    )
    values = {"email": email, "reason": reason}

    def act(cfg: WebConfig, round_id: str, who: Principal) -> object:
        return remove(cfg.engine, round_id, party, email, cfg.clock, who.name, reason)

    return _write(request, agreement, number, form, {"party": party, **values}, once, act)


@router.post("/rounds/{agreement}/{number}/link")
def contact_link(
    request: Request,
    agreement: str,
    number: str,
    party: Text,
    email: Text,
    once: Text = "",
    form_id: Text = "",
    action: Text = "withdraw",
    reason: Text = "",
) -> Response:
    from engine.runtime.corrections import revoke_link

    reissue = action == "reissue"
    form = _Form(
        _form_id(form_id, "contact-actions-0"),
        "contacts",
        "link_reissued" if reissue else "link_withdrawn",
        party=party,
        fields=("email", "reason"),
    )
    values = {"email": email, "action": action, "reason": reason}

    def act(cfg: WebConfig, round_id: str, who: Principal) -> object:
        return revoke_link(
            cfg.engine, round_id, party, email, cfg.clock, who.name, reissue=reissue, reason=reason
        )

    return _write(request, agreement, number, form, {"party": party, **values}, once, act)


@router.post("/rounds/{agreement}/{number}/signatories")
def replace_signatories(
    request: Request,
    agreement: str,
    number: str,
    party: Text,
    once: Text = "",
    signatory_name: Annotated[list[str] | None, Form()] = None,
    signatory_title: Annotated[list[str] | None, Form()] = None,
    reason: Text = "",
) -> Response:
    from engine.runtime.corrections import set_signatories

    form = _Form("signatories", "signatories", "signatories", party=party, fields=("reason",))
    names, titles = signatory_name or [], signatory_title or []
    titles += [""] * (len(names) - len(titles))
    rows = list(zip(names, titles, strict=False))  # a title without its name is dropped
    pairs = [(n.strip(), t.strip()) for n, t in rows if n.strip() or t.strip()]
    # The rows as posted, so that a refused list comes back as it was typed.
    values = {"reason": reason, "rows": str(len(names))}
    for i, (n, t) in enumerate(rows):
        values |= {f"name-{i}": n, f"title-{i}": t}

    def act(cfg: WebConfig, round_id: str, who: Principal) -> object:
        return set_signatories(cfg.engine, round_id, party, pairs, cfg.clock, who.name, reason)

    return _write(request, agreement, number, form, {"party": party, **values}, once, act)
