"""Rounds: list them, launch one from an uploaded agreement file and text, its status, amend
its text, cancel it."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from engine.errors import AgreementFileError, InvalidInput, NotFound
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
from engine.interfaces.api.common import ERRORS, read_file
from engine.interfaces.api.models import CancelBody, RoundRef
from engine.interfaces.web.coord_common import (
    AGREEMENT_MAX,
    DOCUMENT_MAX,
    place_upload,
    plain_name,
)
from engine.runtime.results import AmendResult, LaunchResult, RoundStatus
from engine.runtime.views import RoundSummary

__all__ = ["router"]

router = APIRouter(tags=["rounds"], responses=ERRORS)
_OTHER = "For a round in several languages: the new {} text (UTF-8), when it is not the round's."
ROUND = "/rounds/{agreement}/{number}"


@router.get("/rounds", summary="List rounds")
def list_rounds(request: Request, client: Client) -> list[RoundSummary]:
    """Every round the token reaches, oldest agreement first: its progress and who holds it up."""
    from engine.runtime import round_summaries

    only = [client.round] if client.round is not None else None
    return round_summaries(config(request).engine, only)


def _hidden(exc: AgreementFileError, folder: Path) -> AgreementFileError:
    """The error without the temporary folder's path: no concern of whoever uploaded the file."""
    prefixes = sorted({str(folder.resolve()), str(folder)}, key=len, reverse=True)

    def clean(text: str) -> str:
        for prefix in prefixes:
            text = text.replace(prefix + "/", "").replace(prefix, "")
        return text

    return AgreementFileError("agreement.toml", [clean(p) for p in exc.problems], list(exc.keys))


@router.post(
    "/rounds",
    summary="Launch a round",
    status_code=201,
    response_model=LaunchResult,
    responses={201: {"description": "The round launched; its status is at the Location."}},
)
def launch_round(
    request: Request,
    client: Writer,
    agreement: Annotated[UploadFile, File(description="The agreement file (TOML).")],
    document: Annotated[
        list[UploadFile] | None,
        File(
            description="The agreement's text, the file its `document` key names; for an "
            "agreement in several languages, each language's text, sent under its file name."
        ),
    ] = None,
    idempotency_key: Idempotency = None,
) -> JSONResponse:
    """Launch a round of the uploaded agreement: every party at its workflow's start, its
    invitations queued. The same upload with the same Idempotency-Key launches once."""
    from engine.runtime import launch, load_agreement

    if client.round is not None:
        reach(client, "")  # a token for one round launches none
    cfg = config(request)
    source = read_file(agreement, AGREEMENT_MAX, "agreement")
    texts = [
        (upload.filename or "", read_file(upload, DOCUMENT_MAX, "document"))
        for upload in document or ()
    ]
    once = once_of(request, client, idempotency_key, source, *(t for _, t in texts))
    with tempfile.TemporaryDirectory(prefix="ratify-api-") as tmp:
        folder = Path(tmp)
        placed = place_upload(folder, source, texts)
        if placed.not_plain:
            raise AgreementFileError(
                "agreement.toml",
                [
                    f"agreement.document: {name!r} must be a file name alone, with no folder"
                    for name in placed.not_plain
                ],
            )
        if placed.missing:
            names = ", ".join(repr(n) for n in placed.missing)
            raise InvalidInput(
                f"the agreement's text {names} is missing: send it as a `document` file"
                + (" under that file name" if len(texts) else ""),
                field="document",
            )
        try:
            loaded = load_agreement(placed.agreement, launch_at=cfg.clock)
            done = launch(cfg.engine, loaded, cfg.clock, client.name, via="api", once=once)
        except AgreementFileError as exc:
            raise _hidden(exc, folder) from None
    agreement_id, number = done.round.split("/")
    return JSONResponse(
        jsonable_encoder(done),
        status_code=201,
        headers={"Location": f"/api/v1/rounds/{agreement_id}/{number}"},
    )


@router.get(ROUND, summary="A round's status")
def round_status(request: Request, client: Client, agreement: str, number: Number) -> RoundStatus:
    """The round and every party: state, role, the body it waits on, signatures, contacts."""
    from engine.runtime import status

    ref = reach(client, round_id(agreement, number))
    found = status(config(request).engine, ref)
    if not found:
        raise NotFound(f"no round {ref}", field="round")
    return found[0]


@router.post(ROUND + "/amend", summary="Amend the agreement's text")
def amend_round(
    request: Request,
    client: Writer,
    agreement: str,
    number: Number,
    document: Annotated[
        UploadFile, File(description="The new text (UTF-8), in the round's language.")
    ],
    reason: Annotated[str | None, Form(description="Why (kept in the log).")] = None,
    text_fi: Annotated[UploadFile | None, File(description=_OTHER.format("Finnish"))] = None,
    text_sv: Annotated[UploadFile | None, File(description=_OTHER.format("Swedish"))] = None,
    text_en: Annotated[UploadFile | None, File(description=_OTHER.format("English"))] = None,
    idempotency_key: Idempotency = None,
) -> AmendResult:
    """Go on with a new text: every party that approved or signed the old one goes back to
    draft, and is told. A round in several languages takes every language's new text."""
    from engine.runtime import amend

    ref = reach(client, round_id(agreement, number))
    cfg = config(request)
    text = read_file(document, DOCUMENT_MAX, "document")
    others = {
        lang: (upload.filename or "", read_file(upload, DOCUMENT_MAX, f"text_{lang}"))
        for lang, upload in (("fi", text_fi), ("sv", text_sv), ("en", text_en))
        if upload is not None
    }
    parts = [text, (reason or "").encode()]
    parts += [lang.encode() + b"\0" + data for lang, (_, data) in sorted(others.items())]
    once = once_of(request, client, idempotency_key, *parts)
    with tempfile.TemporaryDirectory(prefix="ratify-api-") as tmp:
        folder = Path(tmp)

        def saved(given: str, data: bytes, fallback: str) -> Path:
            name = given if plain_name(given) and not given.startswith(".") else fallback
            path = folder / name
            if path.exists():  # two uploads of one name: each its own file
                path = folder / f"{len(list(folder.iterdir()))}-{name}"
            path.write_bytes(data)
            return path

        path = saved(document.filename or "", text, "text.md")
        texts = {lang: saved(g, d, f"text-{lang}.md") for lang, (g, d) in others.items()}
        return amend(
            cfg.engine,
            ref,
            path,
            reason,
            cfg.clock,
            client.name,
            via="api",
            once=once,
            texts=texts or None,
        )


@router.post(ROUND + "/cancel", summary="Cancel a round")
def cancel_round(
    request: Request,
    client: Writer,
    agreement: str,
    number: Number,
    body: CancelBody,
    idempotency_key: Idempotency = None,
) -> RoundRef:
    """End an open round; the parties are told."""
    from engine.runtime import cancel

    ref = reach(client, round_id(agreement, number))
    cfg = config(request)
    once = once_of(request, client, idempotency_key, body.model_dump_json().encode())
    done = cancel(cfg.engine, ref, body.reason, cfg.clock, client.name, via="api", once=once)
    return RoundRef(round=done, state="cancelled")
