"""The coordinator's forms on a round: record on a party's behalf, amend, cancel, annotate, and
correct contacts, links and signatories."""

from __future__ import annotations

import hashlib
import logging
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import Response

from engine.errors import NotFound, RatifyError, Refused
from engine.interfaces.web.common import (
    WebConfig,
    config,
    field_errors,
    require_user,
    see_other,
)
from engine.interfaces.web.coord_common import (
    DOCUMENT_MAX,
    EVIDENCE,
    WRITER,
    page_words,
    plain_name,
    read_upload,
    round_id_of,
    size_text,
)
from engine.interfaces.web.pages_round import (
    page_url,
    show_round,
)
from engine.runtime import (
    Evidence,
)
from engine.runtime.access import Principal

__all__ = ["router"]

router = APIRouter()
log = logging.getLogger(__name__)

# ---- the forms ---------------------------------------------------------------------------------


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


def _write(
    request: Request,
    agreement: str,
    number: str,
    form: _Form,
    values: Mapping[str, str],
    once: str,
    action: Callable[[WebConfig, str, Principal, str | None], object],
) -> Response:
    """Ask the service layer, with the form's once-only key (a form posted twice writes once and
    goes where the first went); a refusal shows the round's page again, the message beside the
    field it concerns."""
    who = require_user(request, WRITER)
    cfg = config(request)
    round_id = round_id_of(agreement, number)
    back = page_url(round_id, form.party)
    done_url = f"{back}?done={form.done}#{form.anchor}"
    key = _once_key(once, form.name, round_id, values) if once else None
    try:
        action(cfg, round_id, who, key)
    except RatifyError as exc:
        if isinstance(exc, NotFound) and exc.field == "round":
            raise  # the round itself: the 404 page
        return show_round(
            request,
            round_id,
            form.party,
            failed_form=form.name,
            errors=_placed(exc, form.fields, form.default, form.renames),
            values=values,
            status=409 if isinstance(exc, Refused) else 400,
        )
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
    round_id = round_id_of(agreement, number)
    return show_round(
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
    )
    data = read_upload(minutes, MINUTES_MAX)
    upload = None
    if minutes is not None and data is not None:
        upload = Upload(minutes.filename or "", minutes.content_type or "", data)
    content = {"party": party, "event": event, **values}
    if upload is not None:
        content["minutes"] = hashlib.sha256(upload.data).hexdigest()

    def act(cfg: WebConfig, round_id: str, who: Principal, key: str | None) -> object:
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

    return _write(request, agreement, number, form, content, once, act)


@router.post("/rounds/{agreement}/{number}/amend")
def amend_text(
    request: Request,
    agreement: str,
    number: str,
    once: Text = "",
    reason: Text = "",
    document: Annotated[UploadFile | None, File()] = None,
    text_fi: Annotated[UploadFile | None, File()] = None,
    text_sv: Annotated[UploadFile | None, File()] = None,
    text_en: Annotated[UploadFile | None, File()] = None,
) -> Response:
    from engine.runtime import amend

    require_user(request, WRITER)
    t = page_words(request)
    fields = ("document", "text_fi", "text_sv", "text_en", "reason")
    form = _Form("amend", "amend", "amended", fields=fields, default="document")
    values = {"reason": reason}
    uploads = {"document": document, "text_fi": text_fi, "text_sv": text_sv, "text_en": text_en}
    texts: dict[str, tuple[str, bytes]] = {}  # field: (its file's name, its bytes)
    for field_name, upload in uploads.items():
        data = read_upload(upload, DOCUMENT_MAX)
        if data is not None and len(data) > DOCUMENT_MAX:
            errors = {field_name: t("coord.launch.too_large", limit=size_text(DOCUMENT_MAX))}
            return _refuse(request, agreement, number, form, errors, values)
        if data:
            # The name is kept with the version (its source); a path a browser sent is not.
            name = ((upload.filename if upload else "") or "").replace("\\", "/")
            name = name.rsplit("/", 1)[-1]
            if not plain_name(name) or name.startswith("."):
                name = "agreement.md" if field_name == "document" else f"{field_name}.md"
            texts[field_name] = (name, data)
    if "document" not in texts:
        errors = {"document": t("coord.amend.document_missing")}
        return _refuse(request, agreement, number, form, errors, values)
    digest = hashlib.sha256(texts["document"][1])  # one text: its own SHA-256
    for field_name in sorted(set(texts) - {"document"}):
        digest.update(b"\0" + field_name.encode() + b"\0" + texts[field_name][1])
    content = {"sha256": digest.hexdigest(), **values}

    def act(cfg: WebConfig, round_id: str, who: Principal, key: str | None) -> object:
        with tempfile.TemporaryDirectory(prefix="ratify-amend-") as tmp:
            paths: dict[str, Path] = {}
            for n, (field_name, (name, data)) in enumerate(sorted(texts.items())):
                folder = Path(tmp) / str(n)  # one folder each: two uploads may share a name
                folder.mkdir()
                paths[field_name] = folder / name
                paths[field_name].write_bytes(data)
            main = paths.pop("document")
            others = {f.removeprefix("text_"): path for f, path in paths.items()}
            why = reason.strip() or None
            return amend(
                cfg.engine,
                round_id,
                main,
                why,
                cfg.clock,
                who.name,
                via="web",
                once=key,
                texts=others or None,
            )

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
        errors = {"confirm": page_words(request)("coord.cancel.confirm_needed")}
        return _refuse(request, agreement, number, form, errors, values)

    def act(cfg: WebConfig, round_id: str, who: Principal, key: str | None) -> object:
        return cancel(cfg.engine, round_id, reason, cfg.clock, who.name, via="web", once=key)

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
        errors = {"seq": page_words(request)("coord.annotate.seq_invalid")}
        return _refuse(request, agreement, number, form, errors, values)

    def act(cfg: WebConfig, round_id: str, who: Principal, key: str | None) -> object:
        n = int(seq)
        return annotate(cfg.engine, round_id, n, note, cfg.clock, who.name, via="web", once=key)

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

    def act(cfg: WebConfig, round_id: str, who: Principal, key: str | None) -> object:
        return add(
            *(cfg.engine, round_id, party, name, email, language, cfg.clock, who.name, reason),
            via="web",
            once=key,
        )

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

    def act(cfg: WebConfig, round_id: str, who: Principal, key: str | None) -> object:
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
            via="web",
            once=key,
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

    def act(cfg: WebConfig, round_id: str, who: Principal, key: str | None) -> object:
        return remove(
            cfg.engine, round_id, party, email, cfg.clock, who.name, reason, via="web", once=key
        )

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

    def act(cfg: WebConfig, round_id: str, who: Principal, key: str | None) -> object:
        return revoke_link(
            *(cfg.engine, round_id, party, email, cfg.clock, who.name),
            reissue=reissue,
            reason=reason,
            via="web",
            once=key,
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

    def act(cfg: WebConfig, round_id: str, who: Principal, key: str | None) -> object:
        return set_signatories(
            *(cfg.engine, round_id, party, pairs, cfg.clock, who.name, reason),
            via="web",
            once=key,
        )

    return _write(request, agreement, number, form, {"party": party, **values}, once, act)


@router.post("/rounds/{agreement}/{number}/proposals/{pid}/confirm")
def confirm_found_decision(
    request: Request, agreement: str, number: str, pid: int, once: Text = ""
) -> Response:
    """One click: record the decision found in a party's published minutes, as the party's."""
    from engine.runtime import confirm_proposal

    form = _Form("proposals", "proposals", "proposal_confirmed")

    def act(cfg: WebConfig, round_id: str, who: Principal, key: str | None) -> object:
        return confirm_proposal(
            cfg.engine, pid, cfg.clock, who.name, via="web", round_ref=round_id, once=key
        )

    return _write(request, agreement, number, form, {"proposal": str(pid)}, once, act)


@router.post("/rounds/{agreement}/{number}/proposals/{pid}/dismiss")
def dismiss_found_decision(
    request: Request, agreement: str, number: str, pid: int, once: Text = ""
) -> Response:
    """The item was not the party's decision: set the proposal aside, record nothing."""
    from engine.runtime import dismiss_proposal

    form = _Form("proposals", "proposals", "proposal_dismissed")

    def act(cfg: WebConfig, round_id: str, who: Principal, key: str | None) -> object:
        return dismiss_proposal(cfg.engine, pid, cfg.clock, who.name, round_ref=round_id)

    return _write(request, agreement, number, form, {"proposal": str(pid)}, once, act)
