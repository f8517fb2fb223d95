"""A party's pages, reached from the personal link in every email its contacts receive.

``GET /p/{token}`` only shows where the link leads (mail scanners open every link, some submit
forms too, but no scanner presses a button on a page it fetched): the button posts to
``/p/{token}``, which starts a session for that contact in that party of that round. From then
on ``/party`` is the party's page, and its session opens nothing else.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import Response

from engine.errors import AccessDenied, RatifyError, Refused
from engine.interfaces.web.common import (
    config,
    field_errors,
    page,
    require_party,
    see_other,
    set_session,
)
from engine.runtime.access import Principal

__all__ = ["FIELDS", "event_fields", "router"]

router = APIRouter()

# The evidence a form may ask for, in the order the fields appear.
FIELDS = ("ref", "diary", "reason", "signatory", "title")
ATTACHMENT_TYPES = ("application/pdf",)


@router.get("/p/{token}")
def link_landing(request: Request, token: str) -> Response:
    from engine.runtime.access import open_link

    cfg = config(request)
    try:
        view = open_link(cfg.engine, cfg.keys, token, cfg.clock)
    except AccessDenied as exc:
        return page(request, "party_link_invalid.html.j2", {"reason": exc.reason}, status=403)
    return page(
        request,
        "party_link.html.j2",
        {"view": view, "token": token, "link_language": view.language},
        title=view.party_name,
    )


@router.post("/p/{token}")
def link_start(request: Request, token: str) -> Response:
    from engine.runtime.access import start_party_session

    cfg = config(request)
    try:
        session_token, who = start_party_session(cfg.engine, cfg.keys, token, cfg.clock)
    except AccessDenied as exc:
        return page(request, "party_link_invalid.html.j2", {"reason": exc.reason}, status=403)
    response = see_other("/party")
    set_session(response, request, session_token, who.expires_at)
    return response


def event_fields(definition: Any, event: str) -> dict[str, bool]:
    """The evidence fields of an event's form: name → required."""
    spec = definition.event(event)
    if spec is None:
        return {}
    fields = {k: True for k in FIELDS if k in spec.requires}
    fields |= {k: False for k in FIELDS if k in spec.optional and k not in fields}
    return {k: fields[k] for k in FIELDS if k in fields}


def _party_view(request: Request, who: Principal) -> dict[str, Any]:
    from engine.runtime import documents, log_entries, preview, status, workflow

    cfg = config(request)
    assert who.round is not None
    assert who.party is not None
    round_status = status(cfg.engine, who.round)[0]
    party = next(p for p in round_status.parties if p.id == who.party)
    name, _, version = party.workflow.partition("@")
    definition, _ = workflow(name, int(version))
    texts = documents(cfg.engine, who.round)
    zone = ZoneInfo(str(round_status.launched_at.tzinfo))
    history = [
        {**e, "when": datetime.fromisoformat(e["recorded_at"]).astimezone(zone)}
        for e in log_entries(cfg.engine, who.round)
        if e["party"] == who.party
    ]
    # Its next reminder: not the receipts and notices waiting in the outbox to go.
    upcoming = [
        p
        for p in preview(cfg.engine, cfg.clock, who.round)
        if p.party == who.party and p.kind in ("reminder", "deadline", "agenda", "followup")
    ]
    forms = [
        {
            "event": event,
            "fields": event_fields(definition, event),
            "minutes": bool((spec := definition.event(event)) and spec.takes("ref")),
        }
        for event in party.allowed
    ]
    try:
        from engine.interfaces.web.diagram import workflow_svg

        picture = workflow_svg(definition, party.state, title=party.name)
    except ImportError:  # the picture is an extra; the page works without it
        picture = ""
    from engine.runtime import proposals

    found = [
        {
            **vars(p),
            "confirm_url": f"/party/proposals/{p.id}/confirm",
            "dismiss_url": f"/party/proposals/{p.id}/dismiss",
        }
        for p in proposals(cfg.engine, who.round, who.party, pending=True)
    ]
    return {
        "proposals": found,
        "may_confirm": round_status.state == "open",
        # A decision its body has made may be pasted (a manual source) while it awaits one.
        "may_paste": round_status.state == "open" and party.role == "review",
        "round": round_status,
        "party": party,
        "document": texts[-1].in_language(who.language),  # the contact's language's text
        "agreement_title": round_status.title_in(who.language),
        "history": history,
        "upcoming": upcoming[:1],
        "forms": forms,
        "once": secrets.token_urlsafe(16),
        "picture": picture,
        "zone": str(round_status.launched_at.tzinfo),
    }


@router.get("/party")
def party_page(request: Request) -> Response:
    who = require_party(request)
    view = _party_view(request, who)
    return page(request, "party.html.j2", view, zone=view["zone"], title=view["party"].name)


@router.get("/party/document")
def party_document(request: Request) -> Response:
    from engine.runtime import documents

    who = require_party(request)
    assert who.round is not None
    text = documents(config(request).engine, who.round)[-1].in_language(who.language)
    name = text.source if "." in text.source else f"{text.source}.txt"
    safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name)
    return Response(
        text.text.encode(),
        media_type="text/plain; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{safe}"'},
    )


def _evidence(values: Mapping[str, str]) -> Any:
    from engine.runtime import Evidence

    given = {k: (values.get(k) or "").strip() or None for k in FIELDS}
    return Evidence(**given)


async def _upload(file: UploadFile | None) -> Any:
    from engine.runtime.files import MINUTES_MAX, Upload

    if file is None or not file.filename:
        return None
    data = await file.read(MINUTES_MAX + 1)  # one byte more tells that it is too large
    return Upload(file.filename, file.content_type or "", data)


@router.post("/party/record")
async def party_record(
    request: Request,
    event: Annotated[str, Form()],
    once: Annotated[str, Form()] = "",
    ref: Annotated[str, Form()] = "",
    diary: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
    signatory: Annotated[str, Form()] = "",
    title: Annotated[str, Form()] = "",
    minutes: Annotated[UploadFile | None, File()] = None,
) -> Response:
    from engine.runtime import record

    who = require_party(request)
    cfg = config(request)
    assert who.round is not None
    assert who.party is not None
    values = {"ref": ref, "diary": diary, "reason": reason, "signatory": signatory, "title": title}
    try:
        upload = await _upload(minutes)
        record(
            cfg.engine,
            who.round,
            who.party,
            event,
            _evidence(values),
            cfg.clock,
            who.name,
            via="link",
            minutes=upload,
            once=f"{who.round}:{who.party}:{once}" if once else None,
        )
    except RatifyError as exc:
        view = _party_view(request, who)
        # The form again, the message beside the field it concerns and the values kept.
        status = 409 if isinstance(exc, Refused | AccessDenied) else 400
        view |= {
            "errors": field_errors(exc, default_field="form"),
            "values": values,
            "failed_event": event,
        }
        return page(
            request,
            "party.html.j2",
            view,
            status=status,
            zone=view["zone"],
            title=view["party"].name,
        )
    return see_other("/party?done=recorded#history")


def _settle_proposal(request: Request, pid: int, confirm: bool) -> Response:
    """Confirm (record the decision, from the party's link) or dismiss one of the party's
    proposals; a refusal shows the page again with the message beside the proposal."""
    from engine.runtime import confirm_proposal, dismiss_proposal

    who = require_party(request)
    cfg = config(request)
    assert who.round is not None
    assert who.party is not None
    try:
        if confirm:
            confirm_proposal(
                cfg.engine,
                pid,
                cfg.clock,
                who.name,
                via="link",
                round_ref=who.round,
                party=who.party,
            )
        else:
            dismiss_proposal(
                cfg.engine, pid, cfg.clock, who.name, round_ref=who.round, party=who.party
            )
    except RatifyError as exc:
        view = _party_view(request, who)
        status = 409 if isinstance(exc, Refused | AccessDenied) else 400
        view["proposal_error"] = field_errors(exc, default_field="form")
        return page(
            request,
            "party.html.j2",
            view,
            status=status,
            zone=view["zone"],
            title=view["party"].name,
        )
    return see_other("/party?done=recorded#history" if confirm else "/party#record")


@router.post("/party/proposals/{pid}/confirm")
def party_confirm_proposal(request: Request, pid: int) -> Response:
    return _settle_proposal(request, pid, confirm=True)


@router.post("/party/proposals/{pid}/dismiss")
def party_dismiss_proposal(request: Request, pid: int) -> Response:
    return _settle_proposal(request, pid, confirm=False)


@router.post("/party/proposals/paste")
def party_paste_proposal(
    request: Request,
    url: Annotated[str, Form()] = "",
    ref: Annotated[str, Form()] = "",
    diary: Annotated[str, Form()] = "",
) -> Response:
    """A manual source: the minutes' address and the decision's section, shown for confirming."""
    from engine.runtime import paste_proposal

    who = require_party(request)
    cfg = config(request)
    assert who.round is not None
    assert who.party is not None
    lines = [url.strip(), ref.strip(), *([f"Dno {diary.strip()}"] if diary.strip() else [])]
    try:
        paste_proposal(cfg.engine, who.round, who.party, "\n".join(lines), cfg.clock, who.name)
    except RatifyError as exc:
        view = _party_view(request, who)
        status = 409 if isinstance(exc, Refused | AccessDenied) else 400
        view |= {
            "paste_errors": {"form": " ".join(field_errors(exc).values())},
            "paste_values": {"url": url, "ref": ref, "diary": diary},
        }
        return page(
            request,
            "party.html.j2",
            view,
            status=status,
            zone=view["zone"],
            title=view["party"].name,
        )
    return see_other("/party#proposals")
