"""The agreement file: TOML read with tomllib, checked whole, every problem named with its fix."""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from engine.core.evidence import Signature, same_person
from engine.errors import AgreementFileError, NotFound
from notifications.policy import ReminderPolicy
from workflows import Body, WorkflowDefinition, load_definition
from workflows.definition import BodyKind

__all__ = ["Agreement", "Contact", "PartyPlan", "load_agreement", "read_document"]

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$", max_length=80)]
# No control characters: a line break in a title or name would end up in an email header.
Text = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=500, pattern=r"^[^\x00-\x1f\x7f]*$"
    ),
]
Language = Literal["fi", "sv", "en"]
# Reserved for documentation and tests (RFC 2606, RFC 6761): examples use them so that nothing they
# send reaches a real mailbox. email-validator refuses them, so they are checked under another TLD.
_RESERVED_TLDS = ("invalid", "test")


def _email(value: str) -> str:
    local, _, domain = value.rpartition("@")
    stem, _, tld = domain.rpartition(".")
    probe = f"{local}@{stem}.example" if stem and tld.lower() in _RESERVED_TLDS else value
    try:
        validate_email(probe, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"email {value!r} is not valid ({exc})") from None
    return value


Email = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_email)]
MAX_BODIES = 2  # a board, then maybe a council


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_M = TypeVar("_M", bound=BaseModel)
MAX_SIGNATORY = 200  # as long as a signatory's name or title may be when it signs (core.py)


class _AgreementTable(_Strict):
    id: Slug
    title: Text
    document: Text
    language: Language = "fi"
    timezone: str = "Europe/Helsinki"
    deadline: date | None = None


class _Person(_Strict):
    name: Text
    email: Email


class _Contact(_Person):
    language: Language | None = None


class _BodyEntry(_Strict):
    name: Text
    appeal_days: int | None = Field(default=None, ge=1, le=365)  # a known body's by default
    kind: Literal["board", "council"] | None = None


class _Signatory(_Strict):
    name: Text
    title: Text


class _Party(_Strict):
    id: Slug
    name: Text
    workflow: Text
    bodies: list[Text | _BodyEntry] | None = None
    signatures_required: int = Field(default=1, ge=1, le=20)
    signatories: list[_Signatory] = Field(default_factory=list, max_length=50)
    await_legal_force: bool | None = None
    contacts: list[_Contact] = Field(min_length=1)


class _File(_Strict):
    agreement: _AgreementTable
    coordinator: _Person
    parties: list[_Party] = Field(min_length=1)
    reminders: ReminderPolicy = ReminderPolicy()


@dataclass(frozen=True)
class Contact:
    name: str
    email: str
    language: str


@dataclass(frozen=True)
class PartyPlan:
    """One party as the round will run it: its workflow version and its bodies resolved."""

    id: str
    name: str
    workflow: str
    workflow_version: int
    bodies: tuple[Body, ...]
    signatures_required: int
    await_legal_force: bool
    notice_days: int
    contacts: tuple[Contact, ...]
    signatories: tuple[Signature, ...] = ()  # empty: anyone the party names may sign


@dataclass(frozen=True)
class Agreement:
    id: str
    title: str
    path: Path
    document_path: Path
    document: str
    document_sha256: str
    language: str
    timezone: str
    deadline: date | None
    coordinator: Contact
    parties: tuple[PartyPlan, ...]
    reminders: ReminderPolicy


_FIXES = {
    "missing": "add it",
    "extra_forbidden": "remove it or check its spelling",
    "string_pattern_mismatch": "use lowercase letters, digits and single hyphens, like 'hattula'",
    "literal_error": "use one of the values listed",
    "too_short": "give at least one",
    "string_too_short": "it must not be empty",
}


def load_agreement(path: str | Path) -> Agreement:
    """Read and check an agreement file; raise :class:`AgreementFileError` listing every problem."""
    path = Path(path)
    where = str(path)
    try:
        raw = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise AgreementFileError(where, ["the file does not exist; check the path"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AgreementFileError(
            where, [f"cannot be read ({exc}); give a UTF-8 TOML file"]
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise AgreementFileError(where, [f"is not valid TOML: {exc}"]) from None
    # The whole file's shape first; then the cross-checks run on every section whose own shape
    # is right, so one bad email does not hide an unknown workflow in another party.
    problems: list[str] = []
    data: _File | None = None
    try:
        data = _File.model_validate(raw)
    except ValidationError as exc:
        problems.extend(_describe(e, raw) for e in exc.errors())
    head = data.agreement if data else _valid(_AgreementTable, raw.get("agreement"))
    found = raw.get("agreement")
    table: dict[str, Any] = found if isinstance(found, dict) else {}
    tz = table.get("timezone", "Europe/Helsinki")
    if isinstance(tz, str):
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(
                f"agreement.timezone: unknown time zone {tz!r}; use one like 'Europe/Helsinki'"
            )
    document = ""
    document_path = path.parent / str(table.get("document", ""))
    if isinstance(table.get("document"), str) and table["document"].strip():
        try:
            document = read_document(document_path)
        except (OSError, UnicodeDecodeError):
            problems.append(
                f"agreement.document: {document_path} cannot be read; give the path of the "
                "agreement's text (UTF-8), relative to this file"
            )
    language = head.language if head else "fi"
    raw_parties = raw.get("parties")
    listed: list[tuple[int, _Party | None]] = (
        list(enumerate(data.parties))
        if data
        else [(i, _valid(_Party, p)) for i, p in enumerate(raw_parties)]
        if isinstance(raw_parties, list)
        else []
    )
    seen: set[str] = set()
    parties: list[PartyPlan] = []
    for index, party in listed:
        if party is None:
            continue  # its shape is wrong: reported above
        key = f"parties[{index}] (id {party.id!r})"
        if party.id in seen:
            problems.append(
                f"{key}.id: {party.id!r} is used by an earlier party; give each a unique id"
            )
        seen.add(party.id)
        plan = _plan(party, key, language, problems)
        if plan is not None:
            parties.append(plan)
    if problems or data is None:
        raise AgreementFileError(where, problems)
    return Agreement(
        id=data.agreement.id,
        title=data.agreement.title,
        path=path,
        document_path=document_path,
        document=document,
        document_sha256=sha256_text(document),
        language=language,
        timezone=tz,
        deadline=data.agreement.deadline,
        coordinator=Contact(data.coordinator.name, str(data.coordinator.email), language),
        parties=tuple(parties),
        reminders=data.reminders,
    )


def _valid(model: type[_M], value: Any) -> _M | None:
    """``value`` as ``model``, or None when its shape is wrong (the whole file's check says how)."""
    try:
        return model.model_validate(value)
    except ValidationError:
        return None


def read_document(path: Path) -> str:
    """The agreement's text. Line endings are normalised so the hash does not depend on the OS."""
    return path.read_text("utf-8").replace("\r\n", "\n")


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _plan(party: _Party, key: str, language: str, problems: list[str]) -> PartyPlan | None:
    try:
        definition = load_definition(party.workflow)
    except NotFound as exc:
        problems.append(f"{key}.workflow: {exc}")
        return None
    bodies = _bodies(party, definition, key, problems)
    signatories = _signatories(party, key, problems)
    seen: set[str] = set()
    for index, contact in enumerate(party.contacts):
        address = str(contact.email).casefold()
        if address in seen:
            problems.append(
                f"{key}.contacts[{index}].email: {contact.email} is listed twice; "
                "list each address once"
            )
        seen.add(address)
    if bodies is None or signatories is None:
        return None
    return PartyPlan(
        id=party.id,
        name=party.name,
        workflow=definition.name,
        workflow_version=definition.version,
        bodies=bodies,
        signatures_required=party.signatures_required,
        await_legal_force=(
            definition.await_legal_force
            if party.await_legal_force is None
            else party.await_legal_force
        ),
        notice_days=definition.notice_days,
        contacts=tuple(
            Contact(c.name, str(c.email), c.language or language) for c in party.contacts
        ),
        signatories=signatories,
    )


def _signatories(party: _Party, key: str, problems: list[str]) -> tuple[Signature, ...] | None:
    """The party's authorised signatories: each once, and enough of them to sign."""
    found = len(problems)
    listed: list[Signature] = []
    for index, entry in enumerate(party.signatories):
        name = " ".join(entry.name.split())
        for field, value in (("name", name), ("title", entry.title)):
            if len(value) > MAX_SIGNATORY:
                problems.append(
                    f"{key}.signatories[{index}].{field}: longer than {MAX_SIGNATORY} characters; "
                    "shorten it"
                )
        if any(same_person(s.name, name) for s in listed):
            problems.append(
                f"{key}.signatories[{index}]: {name!r} is listed twice; list each person once"
            )
        listed.append(Signature(name, " ".join(entry.title.split())))
    if listed and len(listed) < party.signatures_required:
        problems.append(
            f"{key}.signatories: {len(listed)} listed, but signatures_required is "
            f"{party.signatures_required}; list at least {party.signatures_required} or lower "
            "signatures_required"
        )
    return None if len(problems) > found else tuple(listed)


def _bodies(
    party: _Party, definition: WorkflowDefinition, key: str, problems: list[str]
) -> tuple[Body, ...] | None:
    entries = party.bodies if party.bodies is not None else list(definition.default_bodies)
    if not 1 <= len(entries) <= MAX_BODIES:
        problems.append(
            f"{key}.bodies: give one body, or two (a board, then a council); got {len(entries)}"
        )
        return None
    bodies: list[Body] = []
    for position, entry in enumerate(entries):
        # With two bodies the first prepares (board) and the second decides (council).
        by_position: BodyKind | None = ("board", "council")[position] if len(entries) == 2 else None
        if isinstance(entry, str):
            known = definition.known_body(entry)
            if known is None:
                names = ", ".join(b.name for b in definition.bodies)
                problems.append(
                    f"{key}.bodies[{position}]: workflow {definition.name!r} does not know body "
                    f"{entry!r}; use one of {names}, or describe it as "
                    f'{{ name = "{entry}", appeal_days = 14 }}'
                )
                return None
            # A body the workflow knows keeps its own kind, so a council listed first is caught.
            bodies.append(Body(known.name, known.kind, known.appeal_days))
            continue
        known = definition.known_body(entry.name)
        if known is not None:
            kind: BodyKind = entry.kind or known.kind
            bodies.append(Body(known.name, kind, entry.appeal_days or known.appeal_days))
            continue
        if entry.appeal_days is None:
            problems.append(
                f"{key}.bodies[{position}]: workflow {definition.name!r} does not know body "
                f"{entry.name!r}, so give its appeal period: "
                f'{{ name = "{entry.name}", appeal_days = 14 }}'
            )
            return None
        bodies.append(Body(entry.name, entry.kind or by_position or "board", entry.appeal_days))
    if len(bodies) == 2 and (bodies[0].kind, bodies[1].kind) != ("board", "council"):
        listed = " then ".join(f"{b.name} ({b.kind})" for b in bodies)
        problems.append(
            f"{key}.bodies: with two bodies the first prepares (a board) and the second decides "
            f"(a council), but the file lists {listed}; list the board first"
        )
        return None
    if len(bodies) == 2 and bodies[0].name.casefold() == bodies[1].name.casefold():
        problems.append(f"{key}.bodies: the same body is named twice; name a board, then a council")
        return None
    return tuple(bodies)


def _describe(error: Any, raw: dict[str, Any]) -> str:
    loc = list(error["loc"])
    # pydantic reports union members as extra path parts ('str', '_BodyEntry'); drop them
    loc = [
        p
        for p in loc
        if not (
            isinstance(p, str)
            and (p[:1].isupper() or p[:1] == "_" or p == "str" or p.startswith("constrained-"))
        )
    ]
    parts: list[str] = []
    node: Any = raw
    for part in loc:
        if isinstance(part, int):
            ident = (
                node[part].get("id")
                if isinstance(node, list) and isinstance(node[part], dict)
                else None
            )
            parts[-1] += f"[{part}]" + (
                f" (id {ident!r})" if ident and parts[-1] == "parties" else ""
            )
        else:
            parts.append(str(part))
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            node = None
    where = ".".join(parts) or "(top level)"
    kind = error["type"]
    message = error["msg"]
    fix = _FIXES.get(kind)
    if kind == "missing":
        message = "is required"
    elif kind == "extra_forbidden":
        message = "is not a known key"
        if len(loc) == 1:
            fix = (
                "remove it; the tables are [agreement], [coordinator], [[parties]] and [reminders]"
            )
    elif kind == "string_pattern_mismatch" and "x1f" in str(error.get("ctx", {})):
        message = f"{error['input']!r} contains a line break or another control character"
        fix = "write it on one line"
    elif kind == "string_pattern_mismatch":
        message = f"{error['input']!r} is not a valid id"
    elif kind == "value_error":
        message = message.removeprefix("Value error, ")
        if loc and loc[-1] == "email":
            fix = "write an address like name@example.fi"
    else:
        message = message[0].lower() + message[1:]
    return f"{where}: {message}" + (f"; {fix}" if fix else "")
