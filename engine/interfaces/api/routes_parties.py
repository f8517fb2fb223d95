"""Parties: a party's status, recording an event (with its evidence and an optional minutes
extract), and its contact persons."""

from __future__ import annotations

import base64
import binascii

from fastapi import APIRouter, Request

from engine.errors import InvalidInput, NotFound
from engine.interfaces.api.auth import (
    Client,
    Idempotency,
    Number,
    Writer,
    config,
    once_of,
    reach,
    round_id,
)
from engine.interfaces.api.common import ERRORS
from engine.interfaces.api.models import ContactBody, EventBody, MinutesBody
from engine.runtime.files import Upload
from engine.runtime.results import ContactInfo, PartyStatus, RecordResult

__all__ = ["router"]

router = APIRouter(tags=["parties"], responses=ERRORS)
PARTY = "/rounds/{agreement}/{number}/parties/{party}"
MINUTES_MAX = 10 * 1024 * 1024


def _party(request: Request, ref: str, party: str) -> PartyStatus:
    from engine.runtime import status

    found = status(config(request).engine, ref)
    if not found:
        raise NotFound(f"no round {ref}", field="round")
    for one in found[0].parties:
        if one.id == party:
            return one
    ids = ", ".join(p.id for p in found[0].parties)
    raise NotFound(f"round {ref} has no party {party!r}; its parties: {ids}", field="party")


@router.get(PARTY, summary="A party's status")
def party_status(
    request: Request, client: Client, agreement: str, number: Number, party: str
) -> PartyStatus:
    """Its state and role, the body it waits on, the events allowed now, its signatures."""
    return _party(request, reach(client, round_id(agreement, number)), party)


def _minutes(body: MinutesBody | None) -> Upload | None:
    if body is None:
        return None
    try:
        data = base64.b64decode(body.content_base64, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("minutes.content_base64 is not base64", field="minutes") from None
    if len(data) > MINUTES_MAX:
        raise InvalidInput("the minutes extract is larger than 10 MiB", field="minutes")
    return Upload(body.filename, body.content_type, data)


@router.post(PARTY + "/events", summary="Record an event")
def record_event(
    request: Request,
    client: Writer,
    agreement: str,
    number: Number,
    party: str,
    body: EventBody,
    idempotency_key: Idempotency = None,
) -> RecordResult:
    """Decide the event against the party's workflow and write its new state and log entry in
    one transaction. Refused (409) with the party's state and the events allowed now."""
    from engine.runtime import Evidence, record

    ref = reach(client, round_id(agreement, number))
    cfg = config(request)
    once = once_of(request, client, idempotency_key, body.model_dump_json().encode())
    minutes = _minutes(body.minutes)
    evidence = Evidence(
        ref=body.ref,
        reason=body.reason,
        signatory=body.signatory,
        title=body.title,
        diary=body.diary,
    )
    return record(
        cfg.engine,
        ref,
        party,
        body.event,
        evidence,
        cfg.clock,
        client.name,
        via="api",
        minutes=minutes,
        once=once,
    )


@router.get(PARTY + "/contacts", summary="A party's contact persons")
def contacts(
    request: Request, client: Client, agreement: str, number: Number, party: str
) -> list[ContactInfo]:
    return list(_party(request, reach(client, round_id(agreement, number)), party).contacts)


@router.post(PARTY + "/contacts", summary="Add a contact person", status_code=201)
def add_contact(
    request: Request,
    client: Writer,
    agreement: str,
    number: Number,
    party: str,
    body: ContactBody,
    idempotency_key: Idempotency = None,
) -> list[ContactInfo]:
    """Add a contact (kept in the log); they get the party's messages from now on. The
    party's contacts after the change."""
    from engine.runtime.corrections import add_contact as add

    ref = reach(client, round_id(agreement, number))
    cfg = config(request)
    once = once_of(request, client, idempotency_key, body.model_dump_json().encode())
    add(
        cfg.engine,
        ref,
        party,
        body.name,
        body.email,
        body.language,
        cfg.clock,
        client.name,
        body.reason,
        via="api",
        once=once,
    )
    return list(_party(request, ref, party).contacts)


@router.put(PARTY + "/contacts/{email}", summary="Change a contact person")
def change_contact(
    request: Request,
    client: Writer,
    agreement: str,
    number: Number,
    party: str,
    email: str,
    body: ContactBody,
    idempotency_key: Idempotency = None,
) -> list[ContactInfo]:
    """Change a contact's name, address or language (kept in the log); a new address ends the
    old one's link."""
    from engine.runtime.corrections import change_contact as change

    ref = reach(client, round_id(agreement, number))
    cfg = config(request)
    once = once_of(request, client, idempotency_key, body.model_dump_json().encode())
    change(
        cfg.engine,
        ref,
        party,
        email,
        name=body.name,
        new_email=body.email,
        language=body.language,
        clock=cfg.clock,
        actor=client.name,
        reason=body.reason,
        via="api",
        once=once,
    )
    return list(_party(request, ref, party).contacts)


@router.delete(PARTY + "/contacts/{email}", summary="Remove a contact person")
def remove_contact(
    request: Request,
    client: Writer,
    agreement: str,
    number: Number,
    party: str,
    email: str,
    reason: str | None = None,
    idempotency_key: Idempotency = None,
) -> list[ContactInfo]:
    """Remove a contact (kept in the log; a party keeps at least one) and end their link."""
    from engine.runtime.corrections import remove_contact as remove

    ref = reach(client, round_id(agreement, number))
    cfg = config(request)
    once = once_of(request, client, idempotency_key, (reason or "").encode())
    remove(cfg.engine, ref, party, email, cfg.clock, client.name, reason, via="api", once=once)
    return list(_party(request, ref, party).contacts)
