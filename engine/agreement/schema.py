"""The agreement file's shape: what each key may hold, how the parties resolve against their
workflows, each problem named with its key and its fix (worded by :mod:`.problems`). No file I/O
here: ``load`` reads the file and its document and hands the parsed TOML to :func:`build`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
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

from engine.agreement.calendars import BodyCalendar, check_url, ical_meetings
from engine.agreement.problems import describe, key_name, one_branch, shown
from engine.core.chain import combined_sha256, sha256_text
from engine.core.evidence import Signature, same_person
from engine.core.text import (
    BODY_MAX,
    NAME_MAX,
    PATH_MAX,
    TITLE_MAX,
    length_problem,
    line_problem,
    signatory_problem,
)
from engine.errors import AgreementFileError, InvalidInput, NotFound
from engine.sources import KINDS, Source, web_address_problem
from notifications.policy import ReminderPolicy
from workflows import Body, WorkflowDefinition, load_definition
from workflows.definition import BodyKind

__all__ = [
    "MAX_SIGNATORY",
    "Agreement",
    "Contact",
    "LanguageText",
    "PartyPlan",
    "build",
    "check_contact",
    "check_signatory",
    "document_keys",
]


def _checked(limit: int, *more: Callable[[str], str | None]) -> AfterValidator:
    """A validator of one line of at most ``limit`` characters, and whatever ``more`` asks."""

    def check(value: str) -> str:
        problem = line_problem(value) or length_problem(value, limit)
        for extra in more:
            problem = problem or extra(value)
        if problem:
            raise ValueError(problem)
        return value

    return AfterValidator(check)


_STRIPPED = StringConstraints(strip_whitespace=True, min_length=1)
# One line of text each (engine/core/text.py's rules), stripped, not empty, bounded.
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$", max_length=80)]
Name = Annotated[str, _STRIPPED, _checked(NAME_MAX)]
Title = Annotated[str, _STRIPPED, _checked(TITLE_MAX)]
BodyName = Annotated[str, _STRIPPED, _checked(BODY_MAX)]
DocumentPath = Annotated[str, _STRIPPED, _checked(PATH_MAX)]
# A signatory's name in one script: a Latin name with a Cyrillic look-alike letter in it could pass
# for another person's.
SignatoryName = Annotated[str, _STRIPPED, _checked(NAME_MAX, signatory_problem)]
Language = Literal["fi", "sv", "en"]
# Reserved for documentation and tests (RFC 2606, RFC 6761): examples use them so that nothing they
# send reaches a real mailbox. email-validator refuses them, so they are checked under another TLD.
_RESERVED_TLDS = ("invalid", "test")


def _email(value: str) -> str:
    if problem := line_problem(value) or length_problem(value, 254):
        raise ValueError(f"email {problem}")
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
MAX_SIGNATORY = NAME_MAX  # as long as a signatory's name or title may be when it signs


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_M = TypeVar("_M", bound=BaseModel)


class _AgreementTable(_Strict):
    id: Slug
    # One language's, or one per language: { fi = "…", sv = "…" } (build checks they agree).
    title: Title | Annotated[dict[Language, Title], Field(min_length=1)]
    document: DocumentPath | Annotated[dict[Language, DocumentPath], Field(min_length=1)]
    language: Language = "fi"
    timezone: str = "Europe/Helsinki"
    deadline: date | None = None


class _Person(_Strict):
    name: Name
    email: Email


class _Contact(_Person):
    language: Language | None = None


class _BodyEntry(_Strict):
    name: BodyName
    appeal_days: int | None = Field(default=None, ge=1, le=365)  # a known body's by default
    kind: Literal["board", "council"] | None = None


class _Signatory(_Strict):
    name: SignatoryName
    title: Title


class _Calendar(_Strict):
    """When a body meets: dates listed here, an iCalendar file beside the agreement file, or an
    iCalendar URL the worker fetches."""

    meetings: list[date] = Field(default_factory=list, max_length=500)
    ical: DocumentPath | None = None
    url: str | None = None  # checked with the rest of the party (_calendars)
    agenda_days: int = Field(default=7, ge=0, le=60)  # working days before a meeting


class _Source(_Strict):
    """Where the party's decisions are published: ``{ kind = "dynasty", url = "https://…" }``."""

    kind: str = Field(max_length=20)
    url: str | None = Field(default=None, max_length=2000)
    diary: str | None = Field(default=None, max_length=100)  # the case's, as the party writes it


class _Party(_Strict):
    id: Slug
    name: Name
    workflow: BodyName
    bodies: list[BodyName | _BodyEntry] | None = Field(default=None, max_length=10)
    signatures_required: int = Field(default=1, ge=1, le=20)
    signatories: list[_Signatory] = Field(default_factory=list, max_length=50)
    await_legal_force: bool | None = None
    contacts: list[_Contact] = Field(min_length=1, max_length=50)
    calendars: dict[BodyName, _Calendar] = Field(default_factory=dict, max_length=MAX_BODIES)
    source: _Source | None = None


class _File(_Strict):
    agreement: _AgreementTable
    coordinator: _Person
    parties: list[_Party] = Field(min_length=1, max_length=1000)
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
    calendars: tuple[BodyCalendar, ...] = ()  # its bodies' meetings, where known
    source: Source | None = None  # where its decisions are published, where named


@dataclass(frozen=True)
class LanguageText:
    """The agreement in one language: its title, and its text as read from ``path``."""

    language: str
    title: str
    path: Path
    text: str
    sha256: str


@dataclass(frozen=True)
class Agreement:
    id: str
    title: str  # in the agreement's language, as are the three below
    path: Path
    document_path: Path
    document: str
    document_sha256: str  # with several languages, the texts' combined hash (core.chain)
    language: str
    timezone: str
    deadline: date | None
    coordinator: Contact
    parties: tuple[PartyPlan, ...]
    reminders: ReminderPolicy
    # Every language's title and text, the agreement's own first; one entry when it has one.
    texts: tuple[LanguageText, ...] = ()

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(t.language for t in self.texts) or (self.language,)

    def text_in(self, language: str) -> LanguageText | None:
        """The title and text in ``language``; None when the agreement has no such language."""
        return next((t for t in self.texts if t.language == language), None)


def document_keys(raw: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """The agreement's ``document`` as written, by language: (its key, the path), for each path
    worth reading (the file's shape is checked with the rest of it). A plain string is the text
    in the agreement's language."""
    table = raw.get("agreement")
    if not isinstance(table, dict):
        return {}
    value = table.get("document")
    main = table.get("language", "fi")
    given = (
        {main if isinstance(main, str) else "fi": ("agreement.document", value)}
        if isinstance(value, str)
        else {
            lang: (f"agreement.document.{key_name(str(lang))}", path)
            for lang, path in value.items()
        }
        if isinstance(value, dict)
        else {}
    )
    return {
        str(lang): (key, path.strip())
        for lang, (key, path) in given.items()
        if str(lang) in _LANGUAGES
        and isinstance(path, str)
        and path.strip()
        and not line_problem(path)
    }


_LANGUAGES = ("fi", "sv", "en")


def _languages_problems(head: _AgreementTable) -> list[str]:
    """Whether the title and the document are given in the same languages, the agreement's own
    among them."""
    titles: set[str] = set(head.title) if isinstance(head.title, dict) else {head.language}
    documents: set[str] = set(head.document) if isinstance(head.document, dict) else {head.language}

    def listed(languages: set[str]) -> str:
        return ", ".join(sorted(languages))

    if titles != documents:
        return [
            f"agreement.title: given in {listed(titles)}, but agreement.document in "
            f"{listed(documents)}; give a title and a document in each language, as "
            f'title = {{ fi = "…", sv = "…" }} and document = {{ fi = "sopimus.md", '
            f'sv = "avtal.md" }}'
        ]
    if head.language not in titles:
        return [
            f"agreement.language: {head.language!r} is the agreement's language, but its title "
            f"and document are given in {listed(titles)} only; set language to one of them, or "
            f"add {head.language} = … to both title and document"
        ]
    return []


def build(
    raw: dict[str, Any],
    *,
    where: str,
    path: Path,
    documents: Mapping[str, tuple[Path, str]],
    problems: list[str],
    calendar_texts: Mapping[str, str] | None = None,
    calendars_from: date | None = None,
) -> Agreement:
    """The checked agreement of the parsed file ``raw``; raise :class:`AgreementFileError` with
    ``problems`` (what reading found) and every problem of the file's own. ``documents``: the
    texts read, by language (the path each was read from, its text)."""
    # The whole file's shape first; then the cross-checks run on every section whose own shape
    # is right, so one bad email does not hide an unknown workflow in another party.
    problems = list(problems)
    data: _File | None = None
    try:
        data = _File.model_validate(raw)
    except ValidationError as exc:
        problems.extend(describe(e, raw) for e in one_branch(exc.errors(), raw))
    head = data.agreement if data else _valid(_AgreementTable, raw.get("agreement"))
    found = raw.get("agreement")
    table: dict[str, Any] = found if isinstance(found, dict) else {}
    tz = table.get("timezone", "Europe/Helsinki")
    if isinstance(tz, str):
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            problems.append(
                f"agreement.timezone: unknown time zone {shown(tz)}; use one like 'Europe/Helsinki'"
            )
    language = head.language if head else "fi"
    if head is not None:
        problems.extend(_languages_problems(head))
    raw_parties = raw.get("parties")
    listed: list[tuple[int, _Party | None]] = (
        list(enumerate(data.parties))
        if data
        else [(i, _valid(_Party, p)) for i, p in enumerate(raw_parties)]
        if isinstance(raw_parties, list)
        else []
    )
    # Ids are compared as written, whatever else is wrong with a party: one pass finds it all.
    seen: set[str] = set()
    for index, entry in enumerate(raw_parties if isinstance(raw_parties, list) else []):
        ident = entry.get("id") if isinstance(entry, dict) else None
        if not isinstance(ident, str):
            continue
        if ident in seen:
            problems.append(
                f"parties[{index}] (id {ident!r}).id: {ident!r} is used by an earlier party; "
                "give each a unique id"
            )
        seen.add(ident)
    parties: list[PartyPlan] = []
    for index, party in listed:
        if party is None:
            continue  # its shape is wrong: reported above
        key = f"parties[{index}] (id {party.id!r})"
        plan = _plan(party, key, language, problems)
        if plan is not None and party.calendars:
            found = _calendars(
                party, plan, key, calendar_texts or {}, calendars_from or _today(tz), problems
            )
            plan = replace(plan, calendars=found)
        if plan is not None and party.source is not None:
            plan = replace(plan, source=_source(party.source, key, problems))
        if plan is not None:
            parties.append(plan)
    if problems or data is None:
        raise AgreementFileError(where, problems)
    given = data.agreement.title
    titles: dict[str, str] = (
        {str(k): v for k, v in given.items()} if isinstance(given, dict) else {language: given}
    )
    texts = [
        LanguageText(
            lang,
            titles[lang],
            documents[lang][0],
            documents[lang][1],
            sha256_text(documents[lang][1]),
        )
        for lang in sorted(documents, key=lambda lang: (lang != language, lang))
    ]
    main = texts[0]
    return Agreement(
        id=data.agreement.id,
        title=main.title,
        path=path,
        document_path=main.path,
        document=main.text,
        document_sha256=combined_sha256({t.language: t.sha256 for t in texts}),
        texts=tuple(texts),
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
    """The party's authorised signatories: each once, and enough of them to sign. A name's
    length, lines and script are checked with the file's shape."""
    found = len(problems)
    listed: list[Signature] = []
    for index, entry in enumerate(party.signatories):
        name = " ".join(entry.name.split())
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


def _one(model: type[_M], field_prefix: str, **values: object) -> _M:
    """One table of an agreement file checked alone (a contact, a signatory given on a page or
    on the command line), its first problem as InvalidInput naming the field."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(p) for p in error["loc"]) or field_prefix
        message = str(error["msg"]).removeprefix("Value error, ")
        raise InvalidInput(f"{field_prefix} {field}: {message}", field=field) from None


def check_contact(name: str, email: str, language: str) -> Contact:
    """A contact as an agreement file would give it, or InvalidInput."""
    checked = _one(_Contact, "contact", name=name, email=email, language=language)
    return Contact(checked.name, str(checked.email), checked.language or "fi")


def check_signatory(name: str, title: str) -> tuple[str, str]:
    """An authorised signatory (name, title) as an agreement file would list it, or InvalidInput."""
    checked = _one(_Signatory, "signatory", name=name, title=title)
    return checked.name, checked.title


# What the loader found of each iCalendar file a calendar names: its text, or (with this prefix)
# why it could not be read.
UNREADABLE = "\0unreadable: "


def _calendars(
    party: _Party,
    plan: PartyPlan,
    key: str,
    texts: Mapping[str, str],
    start: date,
    problems: list[str],
) -> tuple[BodyCalendar, ...]:
    """The party's bodies' calendars: each names one of its bodies, lists dates or an iCalendar
    file (or both), and keeps the meetings from ``start`` on."""
    found: list[BodyCalendar] = []
    names = {b.name.casefold(): b.name for b in plan.bodies}
    for written, given in party.calendars.items():
        where = f"{key}.calendars.{written}"
        body = names.get(written.casefold())
        if body is None:
            problems.append(
                f"{where}: {written!r} is not one of the party's bodies "
                f"({', '.join(names.values())}); name the calendar after one of them"
            )
            continue
        if not given.meetings and given.ical is None and given.url is None:
            problems.append(
                f"{where}: give the meetings' dates (meetings = [...]), an ical file or a url"
            )
            continue
        if given.ical is not None and given.url is not None:
            problems.append(f"{where}: give an ical file or a url, not both; keep one of them")
            continue
        if given.url is not None:
            try:
                check_url(given.url)
            except ValueError as exc:
                problems.append(f"{where}.url: {exc}")
                continue
        days = {d for d in given.meetings if d >= start}
        source = "file" if given.url is None else given.url
        if given.ical is not None:
            text = texts.get(given.ical, UNREADABLE + "was not read")
            if text.startswith(UNREADABLE):
                problems.append(f"{where}.ical: {given.ical!r} {text[len(UNREADABLE) :]}")
                continue
            try:
                days.update(ical_meetings(text, start))
            except ValueError as exc:
                problems.append(
                    f"{where}.ical: {given.ical!r} {exc}; export the body's meetings "
                    "as an .ics file"
                )
                continue
            source = given.ical
        found.append(BodyCalendar(body, tuple(sorted(days)), given.agenda_days, source, given.url))
    return tuple(found)


def _today(tz: object) -> date:
    from engine.clock import SystemClock

    try:
        return SystemClock().now(ZoneInfo(str(tz))).date()
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return SystemClock().now(ZoneInfo("Europe/Helsinki")).date()


def _source(given: _Source, key: str, problems: list[str]) -> Source | None:
    """The party's decision source: a known kind, and an http(s) address unless it is manual."""
    where = f"{key}.source"
    kind = given.kind.strip().lower()
    if kind not in KINDS:
        problems.append(
            f"{where}.kind: unknown kind {shown(given.kind)}; use one of {', '.join(KINDS)}"
        )
        return None
    url = given.url.strip() if given.url is not None else None
    if url is None and kind != "manual":
        problems.append(f'{where}.url: a {kind} source needs its address: add url = "https://…"')
        return None
    if url is not None and (problem := web_address_problem(url)) is not None:
        problems.append(f"{where}.url: {shown(url)} {problem}")
        return None
    diary = " ".join(given.diary.split()) if given.diary else None
    if diary is not None and line_problem(diary):
        problems.append(f"{where}.diary: {line_problem(diary)}")
        return None
    return Source(kind, url, diary or None)
