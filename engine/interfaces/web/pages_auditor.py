"""What auditors (and coordinators) read: a round's log, the result of verifying its chain with
the head to compare against a copy kept elsewhere, its exports, and, once the service layer has
them, its certificate of completion and evidence pack.

Every route here is a GET: an auditor writes nothing, so there is nothing to post. The pages call
the same use cases as ``ratify audit …``.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from engine.errors import InvalidInput, VerificationFailed
from engine.interfaces.web.common import (
    WEB_WORDS,
    config,
    language,
    page,
    require_user,
)

if TYPE_CHECKING:
    from engine.runtime import RoundStatus

__all__ = ["router"]

router = APIRouter()

READERS = ("auditor", "coordinator")
NOTE_EVENT = "annotate"
# Bookkeeping in an entry's evidence that the other columns already say, or that is long.
_QUIET = {"message", "step_since", "previous_sha256"}
_BINDING = {"approve", "return", "reject", "sign"}  # binds a party to one text: show which
_LONG = 120
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Line:
    """One entry as the table shows it."""

    seq: int
    at: datetime
    by_hand: bool  # its time was given (--at), not read from the system clock
    party: str | None
    event: str
    from_state: str | None
    to_state: str | None
    actor: str
    evidence: tuple[tuple[str, str], ...]
    hash: str
    refers_to: int | None  # an annotation: the entry it is about
    notes: tuple[tuple[int, str, str], ...]  # annotations of this entry: (seq, actor, note)


def _ref(agreement: str, number: str) -> str:
    return f"{agreement}/{number}"


def _zone(entries: Sequence[Mapping[str, Any]]) -> str:
    # The launch entry records the round's zone; the log is the auditor's source, not a table.
    if entries and entries[0]["event"] == "launch":
        zone = entries[0]["evidence"].get("timezone")
        if isinstance(zone, str) and zone:
            return zone
    return "UTC"


def _short(value: object) -> str:
    text = str(value)
    return text if len(text) <= _LONG else text[: _LONG - 1] + "…"


def _evidence(entry: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    evidence: Mapping[str, Any] = entry["evidence"] or {}
    if entry["event"] == "launch":
        shown = [
            ("agreement", _short(evidence.get("agreement", ""))),
            ("parties", str(len(evidence.get("parties", [])))),
            ("document", _short(evidence.get("document", ""))),
            ("timezone", _short(evidence.get("timezone", ""))),
        ]
        if evidence.get("deadline"):
            shown.append(("deadline", _short(evidence["deadline"])))
        shown.append(("sha256", entry["document_sha256"][:16] + "…"))
        return tuple(shown)
    quiet = _QUIET | ({"refers_to"} if entry["event"] == NOTE_EVENT else set())  # shown as a link
    pairs = [
        (key, _short(value))
        for key, value in evidence.items()
        if key not in quiet and value not in (None, "", [], {})
    ]
    if entry["event"] in _BINDING and entry.get("document_sha256"):
        pairs.append(("text", entry["document_sha256"][:16] + "…"))
    return tuple(pairs)


def _refers_to(entry: Mapping[str, Any]) -> int | None:
    if entry["event"] != NOTE_EVENT:
        return None
    target = (entry["evidence"] or {}).get("refers_to")
    return target if isinstance(target, int) and not isinstance(target, bool) else None


def _rows(entries: Sequence[Mapping[str, Any]]) -> list[Line]:
    notes: dict[int, list[tuple[int, str, str]]] = {}
    for entry in entries:
        target = _refers_to(entry)
        if target is not None:
            note = str((entry["evidence"] or {}).get("note", ""))
            notes.setdefault(target, []).append((entry["seq"], entry["actor"], note))
    return [
        Line(
            seq=e["seq"],
            at=datetime.fromisoformat(e["recorded_at"]),
            by_hand=e["clock"] != "system",
            party=e["party"],
            event=e["event"],
            from_state=e["from_state"],
            to_state=e["to_state"],
            actor=e["actor"],
            evidence=_evidence(e),
            hash=e["hash"],
            refers_to=_refers_to(e),
            notes=tuple(notes.get(e["seq"], ())),
        )
        for e in entries
    ]


# Where the certificate's and the evidence pack's use cases may live (the last: re-exported).
_SERVICES = ("engine.runtime.certificate", "engine.runtime.pack", "engine.runtime")


def _service(name: str) -> Any | None:
    """A use case another change brings (the certificate, its renderings, the evidence pack), or
    None while it has not landed: looked up by name, so that the types hold with or without it."""
    for qualified in _SERVICES:
        if importlib.util.find_spec(qualified) is None:
            continue
        found = getattr(importlib.import_module(qualified), name, None)
        if callable(found):
            return found
    return None


def _extras() -> dict[str, bool]:
    built = _service("certificate") is not None
    return {
        "has_certificate": built and _service("render_certificate_html") is not None,
        "has_certificate_pdf": built and _service("certificate_pdf") is not None,
        "has_pack": _service("evidence_pack") is not None,
    }


def _filename(round_id: str, suffix: str) -> str:
    # Only letters, digits, dot, dash and underscore: nothing a browser or shell reads specially.
    stem = _UNSAFE.sub("-", round_id).strip("-.") or "round"
    return f"{stem}-{suffix}"


def _download(body: str | bytes, media_type: str, filename: str) -> Response:
    return Response(
        body,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _round(request: Request, agreement: str, number: str) -> tuple[str, RoundStatus]:
    from engine.runtime import status

    (found,) = status(config(request).engine, _ref(agreement, number))
    return found.round, found


@router.get("/rounds/{agreement}/{number}/log")
def log_page(
    request: Request, agreement: str, number: str, party: str = "", event: str = ""
) -> Response:
    from engine.runtime import log_entries

    require_user(request, *READERS)
    round_id, info = _round(request, agreement, number)
    entries = log_entries(config(request).engine, round_id)
    rows = _rows(entries)
    shown = [r for r in rows if (not party or r.party == party) and (not event or r.event == event)]
    zone = _zone(entries)
    return page(
        request,
        "log.html.j2",
        {
            "round": info,
            "round_id": round_id,
            "rows": shown,
            "total": len(rows),
            "parties": sorted({r.party for r in rows if r.party}),
            "events": sorted({r.event for r in rows}),
            "values": {"party": party, "event": event},
            "zone": zone,
            **_extras(),
        },
        zone=zone,
        title=info.title,
    )


@router.get("/rounds/{agreement}/{number}/verify")
def verify_page(request: Request, agreement: str, number: str, expect: str = "") -> Response:
    from engine.runtime import heads, verify

    require_user(request, *READERS)
    engine = config(request).engine
    round_id, info = _round(request, agreement, number)
    failure: str | None = None
    chain = None
    try:
        chain = verify(engine, round_id).chains[0]
    except VerificationFailed as exc:
        failure = exc.worded(WEB_WORDS)
    recorded = heads(engine, round_id)[0]  # the database's anchors, shown even when broken
    comparison: dict[str, Any] | None = None
    errors: dict[str, str] = {}
    wanted = expect.strip()
    if wanted and chain is not None:
        if wanted.lower() == chain.head:
            comparison = {"match": True, "seq": chain.entries, "after": 0}
        else:
            # Not the head: it may still be an earlier one (the log grew since it was noted).
            try:
                found = verify(engine, round_id, expect_head=wanted).expected
            except InvalidInput as exc:
                errors["expect"] = exc.worded(WEB_WORDS)
            except VerificationFailed:
                comparison = {"match": False, "seq": None, "after": None}
            else:
                assert found is not None  # verify raises when the chain does not hold it
                comparison = {"match": False, "seq": found.seq, "after": found.after}
    return page(
        request,
        "verify.html.j2",
        {
            "round": info,
            "round_id": round_id,
            "chain": chain,
            "failure": failure,
            "recorded": recorded,
            "comparison": comparison,
            "errors": errors,
            "values": {"expect": expect},
            **_extras(),
        },
        title=info.title,
    )


@router.get("/rounds/{agreement}/{number}/export.jsonl")
def export_jsonl(request: Request, agreement: str, number: str) -> Response:
    from engine.runtime import export

    require_user(request, *READERS)
    round_id, _ = _round(request, agreement, number)
    text = export(config(request).engine, round_id, "jsonl")
    return _download(text, "application/x-ndjson; charset=utf-8", _filename(round_id, "log.jsonl"))


@router.get("/rounds/{agreement}/{number}/export.csv")
def export_csv(request: Request, agreement: str, number: str) -> Response:
    from engine.runtime import export

    require_user(request, *READERS)
    round_id, _ = _round(request, agreement, number)
    text = export(config(request).engine, round_id, "csv")
    return _download(text, "text/csv; charset=utf-8", _filename(round_id, "log.csv"))


def _certificate(request: Request, agreement: str, number: str, render: str) -> tuple[Any, str]:
    """The round's certificate rendered by ``render``; 404 while either use case is missing."""
    require_user(request, *READERS)
    build, rendering = _service("certificate"), _service(render)
    if build is None or rendering is None:
        raise HTTPException(status_code=404)
    round_id, _ = _round(request, agreement, number)
    return rendering(build(config(request).engine, round_id), language(request)), round_id


@router.get("/rounds/{agreement}/{number}/certificate")
def certificate_page(request: Request, agreement: str, number: str) -> Response:
    # The certificate's own document: the same template the PDF is printed from.
    html, _ = _certificate(request, agreement, number, "render_certificate_html")
    return HTMLResponse(str(html))


@router.get("/rounds/{agreement}/{number}/certificate.pdf")
def certificate_pdf(request: Request, agreement: str, number: str) -> Response:
    pdf, round_id = _certificate(request, agreement, number, "certificate_pdf")
    return _download(bytes(pdf), "application/pdf", _filename(round_id, "certificate.pdf"))


@router.get("/rounds/{agreement}/{number}/evidence.zip")
def evidence_zip(request: Request, agreement: str, number: str) -> Response:
    require_user(request, *READERS)
    pack = _service("evidence_pack")
    if pack is None:
        raise HTTPException(status_code=404)
    round_id, _ = _round(request, agreement, number)
    data = bytes(pack(config(request).engine, round_id, language(request)))
    return _download(data, "application/zip", _filename(round_id, "evidence.zip"))
