"""Launching a round by uploading its agreement file and its text."""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import Response

from engine.errors import AgreementFileError, RatifyError, Refused
from engine.interfaces.web.common import (
    config,
    field_errors,
    page,
    require_user,
    round_path,
    see_other,
)
from engine.interfaces.web.coord_common import (
    AGREEMENT_MAX,
    DOCUMENT_MAX,
    WRITER,
    page_words,
    place_upload,
    read_upload,
    size_text,
)

__all__ = ["router"]

router = APIRouter()
log = logging.getLogger(__name__)

# ---- launching a round by upload ---------------------------------------------------------------

# A key of the agreement file as the loader names it (agreement.id, or parties[1] (id 'loppi')
# .contacts[0].email with the party's id); anything else (the TOML, the file as a whole) is shown
# under the file.
_KEY = re.compile(r"[A-Za-z0-9_-]+(\[\d+\])*(\.[A-Za-z0-9_-]+(\[\d+\])*)*")
_KEY_ID = re.compile(r" \(id '[^']*'\)")


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
    t = page_words(request)
    return page(
        request,
        "launch.html.j2",
        {
            "errors": dict(errors or {}),
            "problems": problems,
            "agreement_max": size_text(AGREEMENT_MAX),
            "document_max": size_text(DOCUMENT_MAX),
            "once": secrets.token_urlsafe(16),
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
    document: Annotated[list[UploadFile] | None, File()] = None,
    once: Annotated[str, Form()] = "",
) -> Response:
    from engine.runtime import launch, load_agreement

    who = require_user(request, WRITER)
    cfg = config(request)
    t = page_words(request)
    source = read_upload(agreement, AGREEMENT_MAX)
    texts: list[tuple[str, bytes]] = []
    errors: dict[str, str] = {}
    for upload in document or ():
        data = read_upload(upload, DOCUMENT_MAX)
        if data is not None and len(data) > DOCUMENT_MAX:
            errors["document"] = t("coord.launch.too_large", limit=size_text(DOCUMENT_MAX))
        elif data:
            texts.append((upload.filename or "", data))
    if not source:
        errors["agreement"] = t("coord.launch.agreement_missing")
    elif len(source) > AGREEMENT_MAX:
        errors["agreement"] = t("coord.launch.too_large", limit=size_text(AGREEMENT_MAX))
    if errors or source is None:
        return _launch_page(request, errors, status=400)
    with tempfile.TemporaryDirectory(prefix="ratify-launch-") as tmp:
        folder = Path(tmp)
        placed = place_upload(folder, source, texts)
        path = placed.agreement
        replaced: dict[str, str] = {}
        for name in placed.not_plain:
            replaced["agreement.document"] = t("coord.launch.document_not_plain", name=name)
        if placed.missing:
            names = ", ".join(placed.missing)
            errors["document"] = t("coord.launch.document_missing", name=names)
        try:
            loaded = load_agreement(path, launch_at=cfg.clock)
            if replaced or errors:  # "x/../agreement.toml" would load: it names the file itself
                raise AgreementFileError(str(path), [])
            # The page's nonce and what was uploaded: the same upload posted twice launches once.
            key = None
            if once:
                digest = hashlib.sha256(source)
                for _, data in texts:
                    digest.update(b"\0" + data)
                key = f"web:{once[:64]}:{digest.hexdigest()[:32]}"
            result = launch(cfg.engine, loaded, cfg.clock, who.name, via="web", once=key)
        except AgreementFileError as exc:
            return _launch_page(request, errors, _grouped(exc, folder, replaced), status=400)
        except RatifyError as exc:
            status = 409 if isinstance(exc, Refused) else 400
            return _launch_page(request, errors | field_errors(exc), status=status)
    return see_other(round_path(result.round) + "?done=launched")
