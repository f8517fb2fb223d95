"""A round's page and each party's page of corrections, for coordinators and auditors."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import Response

from engine.errors import NotFound
from engine.interfaces.web.common import (
    config,
    page,
    require_user,
    round_path,
)
from engine.interfaces.web.coord_common import (
    CHASES,
    QUIET,
    READERS,
    WRITER,
    page_words,
    round_id_of,
)
from engine.runtime import (
    Entry,
    OutboxMessage,
    PartyStatus,
    RoundStatus,
)

__all__ = ["router"]

router = APIRouter()
log = logging.getLogger(__name__)

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
    from engine.runtime import round_view

    who = require_user(request, *READERS)
    cfg = config(request)
    view = round_view(cfg.engine, round_id)
    found, entries, failed = view.status, view.entries, view.failed
    from engine.runtime import proposals

    pending = [
        {
            **vars(p),
            "confirm_url": round_path(found.round, "proposals", str(p.id), "confirm"),
            "dismiss_url": round_path(found.round, "proposals", str(p.id), "dismiss"),
        }
        for p in (proposals(cfg.engine, found.round, pending=True) if party_id is None else [])
    ]
    values: dict[str, Any] = {
        "proposals": pending,
        "may_confirm": who.role == WRITER and found.state == "open",
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
    return "round.html.j2", values | _forecast(request, found) | {
        "parties": _party_views(found, entries, failed),
        "round_steps": [_step(e, notes) for e in entries if e["party"] is None],
        "round_failed": [m for m in failed if m.party is None],
        "may_annotate": who.role == WRITER,
    }


def _forecast(request: Request, found: RoundStatus) -> dict[str, Any]:
    """The forecast of an open round, drawn, and what the page says of it in words."""
    if found.state != "open":
        return {"forecast": None, "timeline": ""}
    from babel.dates import format_date

    from engine.interfaces.web.timeline import TimelineWords, timeline_svg
    from engine.runtime import forecast, write_date

    cfg = config(request)
    made = forecast(cfg.engine, found.round, cfg.clock)
    t = page_words(request)
    lang = t.page_words.language
    today = cfg.clock.now(ZoneInfo(str(found.launched_at.tzinfo))).date()
    names = {p.id: p.name for p in found.parties}
    critical = names.get(made.critical or "", "")
    title = (
        t(
            "coord.forecast.summary",
            date=write_date(made.in_force, lang, "medium"),
            party=critical,
        )
        if made.in_force
        else t("coord.forecast.no_date")
    )
    words = TimelineWords(
        title=title,
        today=t("coord.forecast.today"),
        deadline=t("coord.col.deadline"),
        in_force=t("coord.forecast.in_force"),
        steps={k: t(f"coord.forecast.step.{k}") for k in ("decision", "legal_force", "signed")},
        month=lambda d: format_date(d, "LLL yyyy", locale=lang),
    )
    return {
        "forecast": made,
        "forecast_today": today,
        "forecast_names": names,
        "timeline": timeline_svg(made, names, today, found.deadline, words),
    }


def show_round(
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
    t = page_words(request)
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


def page_url(round_id: str, party_id: str | None) -> str:
    return round_path(round_id, "parties", party_id) if party_id else round_path(round_id)


@router.get("/rounds/{agreement}/{number}")
def round_page(request: Request, agreement: str, number: str) -> Response:
    require_user(request, *READERS)
    return show_round(request, round_id_of(agreement, number))


@router.get("/rounds/{agreement}/{number}/parties/{party}")
def party_page(request: Request, agreement: str, number: str, party: str) -> Response:
    require_user(request, *READERS)
    return show_round(request, round_id_of(agreement, number), party)
