"""Rendering the messages: templates → (subject, text, HTML) → an email with its attachments.

Each kind has ``templates/email/{kind}.{language}.txt.j2`` (its first line is ``Subject: …``) and
``{kind}.{language}.html.j2``, for the languages fi, sv and en. A template reads only the context it
is given; a variable it needs and the context lacks is an error (StrictUndefined), never a blank.

The context of each kind; ``render`` adds ``language`` and, for the HTML, ``subject`` itself, so a
caller may not pass those two.

Every kind:

| variable      | type        | meaning                                                     |
|---------------|-------------|-------------------------------------------------------------|
| `title`       | str         | the agreement's title                                       |
| `round_id`    | str         | the round, e.g. `kanta-hame-strategic-2026/1`               |
| `sha256`      | str         | the SHA-256 of the document (for `amended`: the new text's) |
| `party`       | str or None | the recipients' party; for `escalation` the party it is     |
|               |             | about; None where there is none (e.g. to the coordinator)   |
| `coordinator` | mapping     | `name` and `email` of the round's coordinator               |

Optional, for an agreement in several languages: `text_sha256` (str), the SHA-256 of the text in
the recipient's language (`sha256` is then the texts' combined hash, engine.core.chain).

And by kind:

| kind         | variables                                                                       |
|--------------|---------------------------------------------------------------------------------|
| `invitation` | `bodies` (list of str: the deciding bodies, in order),                          |
|              | `signatures_required` (int), `signatories` (list of str), `steps` (list of      |
|              | steps the party goes through), `deadline` (date or None)                        |
| `reminder`   | `step` (the pending step), `since` (aware datetime: when it began), `timezone`  |
|              | (str, e.g. `Europe/Helsinki`), `reminder_number` (int, from 1),                 |
|              | `max_reminders` (int), `deadline` (date or None)                                |
| `deadline`   | as `reminder`, but `reminder_number` and `max_reminders` count the reminders    |
|              | before the deadline (`before_deadline_days`), and `deadline` is a date          |
| `agenda`     | `step`, `since`, `timezone`, `body` (str: the body the step waits on),          |
|              | `meeting` (date: its next meeting), `agenda_closes` (date: the last day to put  |
|              | the agreement on that meeting's agenda), `deadline` (date or None)              |
| `followup`   | as `agenda`, `meeting` being the meeting that passed without a decision         |
| `escalation` | `reason`: `"stalled"`, with `step`, `since`, `timezone`, `reminders_sent`       |
|              | (int) and `forecast` (None, or a mapping: `in_force` (date: the earliest entry  |
|              | into force), `party` (str: the party holding the round back), `party_id`,       |
|              | `behind_days` (int or None: how much later than the next party), `late_days`    |
|              | (int or None: days past the deadline)); or `"bounced"`, with `recipients` (list |
|              | of str) and `error` (str: the server's reply)                                   |
| `receipt`    | `event` (e.g. `approve`), `from_step`, `to_step`, `evidence` (mapping str → str |
|              | of what was given, in order: `ref`, `reason`, `signatory`, `title`, `diary`),   |
|              | `recorded_at` (aware datetime), `timezone`, `signatures_given` (int),           |
|              | `signatures_required` (int)                                                     |
| `active`     | `effective_date` (date)                                                         |
| `failed`     | `rejected_by` (str: the party's name), `ref` (str: its decision reference),     |
|              | `reason` (str or None)                                                          |
| `cancelled`  | `reason` (str)                                                                  |
| `amended`    | `version` (int: the text's version), `previous_sha256` (str), `reason` (str)    |
| `witness`    | `reason`: `"daily"` (a log changed since the last one) or `"activation"` (the   |
|              | round of `round_id` became active); `rounds` (list of mappings: `round` (str),  |
|              | `entries` (int), `head` (str: the hash of its last entry)), every round's;      |
|              | `as_of` (aware datetime: when they were read), `timezone`. The common           |
|              | variables are those of the round the message is filed under (for `daily`, the  |
|              | one whose log changed last)                                                     |

A step is a mapping: `role` (the state's role in its workflow: `preparing`, `review`,
`legal_force`, `on_hold`, `signing`, `done`, `failed`), `body` (str: the body it concerns) and,
but in an invitation's `steps`, `state` (the state's name). Templates word a step by its role, so
a workflow with other state names needs no new strings. Dates are written in the contact's locale
by the filters `date` (a date) and `datetime` (an aware datetime and a timezone name).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from html import escape
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time, get_datetime_format
from icalendar import Calendar, Event
from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    Undefined,
    pass_context,
    select_autoescape,
)
from jinja2.runtime import Context

from notifications.message import KINDS, Attachment, OutgoingMessage, message_id_for
from notifications.mime import check_headers

__all__ = [
    "LANGUAGES",
    "LINK",
    "SITE",
    "TEMPLATES",
    "freeze",
    "message",
    "personalize",
    "render",
    "thaw",
    "to_email",
    "write_date",
    "write_moment",
]

# Shipped inside the package (``ratify_templates``, the repository's templates/ folder).
TEMPLATES = Path(str(resources.files("ratify_templates") / "email"))
# A contact's language → the babel locale its dates are written in (Finland's Swedish for sv).
LOCALES = {"fi": "fi_FI", "sv": "sv_FI", "en": "en_GB"}
LANGUAGES = tuple(LOCALES)
CALENDAR_KINDS = frozenset({"invitation", "reminder", "deadline"})
ESCALATION_REASONS = ("stalled", "bounced")
WITNESS_REASONS = ("daily", "activation")
RESERVED = frozenset({"language", "subject"})
PRODID = "-//ratify//ratify notifications//EN"
_Width = Literal["full", "long", "medium", "short"]


def render(kind: str, language: str, context: Mapping[str, Any]) -> tuple[str, str, str]:
    """The subject, the plain text and the HTML of one message (see the table above)."""
    if kind not in KINDS:
        raise ValueError(f"unknown message kind {kind!r}; the kinds are {', '.join(KINDS)}")
    if language not in LOCALES:
        raise ValueError(f"unknown language {language!r}; the languages are {', '.join(LOCALES)}")
    if clash := sorted(RESERVED & context.keys()):
        raise ValueError(f"the context may not set {', '.join(clash)}: render() supplies it")
    if kind == "escalation" and context.get("reason") not in ESCALATION_REASONS:
        raise ValueError(
            f"an escalation's reason must be one of {', '.join(ESCALATION_REASONS)}, "
            f"not {context.get('reason')!r}"
        )
    if kind == "witness" and context.get("reason") not in WITNESS_REASONS:
        raise ValueError(
            f"a witness message's reason must be one of {', '.join(WITNESS_REASONS)}, "
            f"not {context.get('reason')!r}"
        )
    env = _environment()
    values = {**context, "language": language}
    first, _, text = env.get_template(f"{kind}.{language}.txt.j2").render(values).partition("\n")
    subject = first.removeprefix("Subject:").strip()
    if not first.startswith("Subject:") or not subject:
        raise ValueError(f"{kind}.{language}.txt.j2 must begin with a non-empty 'Subject: …' line")
    html = env.get_template(f"{kind}.{language}.html.j2").render({**values, "subject": subject})
    return subject, text.strip("\n") + "\n", html.strip("\n") + "\n"


def message(
    key: str,
    kind: str,
    to: Sequence[str],
    language: str,
    context: Mapping[str, Any],
    deadline: date | None = None,
    calendar_uid: str | None = None,
    *,
    stamp: datetime | None = None,
) -> OutgoingMessage:
    """The message for ``key``, rendered; an invitation or reminder with a deadline carries it
    as ``deadline.ics``.

    ``calendar_uid`` lets every message about one deadline share one calendar event (a client then
    updates it instead of adding another); by default it is derived from the key. ``stamp`` is
    when the message was made (the caller's clock, for the event's DTSTAMP); by default the start
    of the deadline day in UTC, so that the attachment depends on its inputs alone.
    """
    if isinstance(to, str):  # a str is a Sequence[str] too: one address would become its letters
        raise TypeError("to must be a sequence of addresses, not one string")
    if not to:
        raise ValueError("a message needs at least one recipient")
    subject, text, html = render(kind, language, context)
    attachments: tuple[Attachment, ...] = ()
    if deadline is not None and kind in CALENDAR_KINDS:
        summary = f"{_labels(language)['deadline']}: {context['title']}"
        uid = calendar_uid or message_id_for(key).strip("<>")
        ics = _calendar(deadline, uid, summary, stamp or datetime.combine(deadline, time(), UTC))
        attachments = (Attachment("deadline.ics", "text/calendar", ics),)
    return OutgoingMessage(
        key=key,
        kind=kind,
        to=tuple(to),
        language=language,
        subject=subject,
        text=text,
        html=html,
        attachments=attachments,
    )


def freeze(context: Mapping[str, Any]) -> dict[str, Any]:
    """A template context as JSON (dates and datetimes tagged), to render the message later:
    when it is sent, outside the transaction that queued it."""

    def cold(value: Any) -> Any:
        if isinstance(value, datetime):
            return {"$datetime": value.isoformat()}
        if isinstance(value, date):
            return {"$date": value.isoformat()}
        if isinstance(value, Mapping):
            return {str(k): cold(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [cold(v) for v in value]
        return value

    return cold(context)  # type: ignore[no-any-return]


def thaw(frozen: Mapping[str, Any]) -> dict[str, Any]:
    """The context :func:`freeze` stored, with its dates and datetimes back."""

    def warm(value: Any) -> Any:
        if isinstance(value, Mapping):
            if set(value) == {"$datetime"}:
                return datetime.fromisoformat(value["$datetime"])
            if set(value) == {"$date"}:
                return date.fromisoformat(value["$date"])
            return {k: warm(v) for k, v in value.items()}
        if isinstance(value, list):
            return [warm(v) for v in value]
        return value

    return warm(frozen)  # type: ignore[no-any-return]


# Stand-ins a message is rendered with and stored with, replaced when it is sent: a party
# contact's personal link (never stored: ``engine.runtime.access``), and where the server is.
LINK = "https://personal-link.ratify.invalid/"
SITE = "https://site.ratify.invalid"


def personalize(message: OutgoingMessage, link: str | None, site: str) -> OutgoingMessage:
    """The message with its stand-ins replaced (URLs need no escaping in HTML: they hold no
    character that HTML gives a meaning to). ``link`` None: the contact's link was withdrawn, so
    the message says so where the link would be, rather than carry one that opens nothing."""
    site = site.rstrip("/")
    text, html = message.text.replace(SITE, site), message.html.replace(SITE, site)
    if link is not None:
        return replace(message, text=text.replace(LINK, link), html=html.replace(LINK, link))
    withdrawn = _labels(message.language)["link_withdrawn"]
    text = _TEXT_LINK.sub(lambda _: withdrawn, text).replace(LINK, withdrawn)
    html = _HTML_LINK.sub(lambda _: escape(withdrawn), html).replace(LINK, "#")
    return replace(message, text=text, html=html)


# The link's line and its label's, as base.txt.j2 and base.html.j2 lay them out.
_TEXT_LINK = re.compile(r"[^\n]*:\n" + re.escape(LINK))
_HTML_LINK = re.compile(r'<a href="' + re.escape(LINK) + r'"[^>]*>[^<]*</a>')


def to_email(
    message: OutgoingMessage, mail_from: str, date: datetime, reply_to: str | None = None
) -> EmailMessage:
    """The message as MIME: text and HTML as alternatives, wrapped with any attachments.
    ``reply_to``: where answers go (the round's coordinator). The sender writes the same form
    with :func:`notifications.mime.to_wire`, much faster."""
    check_headers(message, mail_from, date, reply_to)
    email = EmailMessage()
    email["From"] = mail_from
    email["To"] = ", ".join(message.to)
    email["Subject"] = message.subject
    email["Date"] = format_datetime(date)
    email["Message-ID"] = message.message_id
    if reply_to:
        email["Reply-To"] = reply_to
    email["X-Ratify-Kind"] = message.kind  # lets a mail rule (or the development sink) sort them
    # RFC 3834: marks the mail as sent by a program, so vacation responders do not answer it.
    email["Auto-Submitted"] = "auto-generated"
    email.set_content(message.text, subtype="plain", charset="utf-8")
    email.add_alternative(message.html, subtype="html", charset="utf-8")
    for attachment in message.attachments:  # turns the alternative into part of a multipart/mixed
        maintype, _, subtype = attachment.content_type.partition("/")
        # Every text we attach is UTF-8 (the agreement, the certificate, the calendar); PUBLISH
        # tells a client that the calendar is no meeting invitation.
        params = {"charset": "utf-8"} if maintype == "text" else {}
        if attachment.content_type == "text/calendar":
            params = {"method": "PUBLISH", **params}
        email.add_attachment(
            attachment.data,
            maintype=maintype,
            subtype=subtype,
            filename=attachment.filename,
            params=params,
        )
    # Last: set_content and add_attachment move or drop the Content-* headers already there.
    email["Content-Language"] = message.language
    return email


# The same few calendars many times over: a tick's reminders of one round share their deadline's
# event (its uid), their stamp (the tick's moment) and, by language, their summary.
@functools.lru_cache(maxsize=256)
def _calendar(deadline: date, uid: str, summary: str, stamp: datetime) -> bytes:
    if stamp.utcoffset() is None:
        raise ValueError("the calendar stamp needs an aware datetime")
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    event = Event()
    event.add("uid", uid)
    event.add("dtstamp", stamp.astimezone(UTC))
    event.add("dtstart", deadline)  # a date, not a datetime: an all-day event
    event.add("dtend", deadline + timedelta(days=1))  # DTEND is exclusive
    event.add("summary", summary)
    event.add("transp", "TRANSPARENT")  # a deadline does not make anyone busy
    calendar.add_component(event)
    ics: bytes = calendar.to_ical()
    return ics


@functools.cache
def _environment() -> Environment:
    # Autoescaping is decided per template file, but Jinja trusts a macro's output according to the
    # template that *calls* it. So a macro defined in a text file and called from HTML would let
    # its arguments through unescaped. So base.html.j2 alone imports the macros for every HTML
    # template, from _macros.html.j2, and the _lang.*.j2 files hold strings and no macros.
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        # The templates ship with the package: a template compiled once is the one to render,
        # without a stat of its file (and of the files it extends and imports) at every message.
        auto_reload=False,
    )
    env.filters["date"] = _date_filter
    env.filters["datetime"] = _datetime_filter
    return env


@functools.cache
def _labels(language: str) -> Mapping[str, str]:
    """The strings of ``_lang.{language}.j2``, so the calendar event says what the mail says."""
    module = _environment().get_template(f"_lang.{language}.j2").module
    labels: Mapping[str, str] = module.labels  # type: ignore[attr-defined]  # set in the template
    return labels


def _defined(value: object) -> None:
    # A filter receives a missing variable as an Undefined, which babel would only assert on;
    # turning it into a string raises StrictUndefined's error, which names the variable.
    if isinstance(value, Undefined):
        str(value)


def _locale(context: Context) -> str:
    return LOCALES[context["language"]]


@pass_context
def _date_filter(context: Context, value: date, format: _Width = "long") -> str:
    _defined(value)
    if isinstance(value, datetime) or not isinstance(value, date):
        # A datetime's date would be the one of its own offset, maybe UTC's: it needs a timezone.
        raise TypeError(f"the date filter takes a date, not {value!r}")
    return write_date(value, context["language"], format)


@pass_context
def _datetime_filter(context: Context, value: datetime, zone: str, format: _Width = "long") -> str:
    """The date (long by default) and the time to the minute, in ``zone``."""
    _defined(value)
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValueError(f"the datetime filter needs an aware datetime, not {value!r}")
    return write_moment(value.astimezone(ZoneInfo(zone)), context["language"], format)


def write_date(value: date, language: str, width: _Width = "long") -> str:
    """A date as a reader of ``language`` (fi, sv, en) writes it: the emails', the pages' and the
    certificate's one way."""
    return _written_date(value, language, width)


# A page writes the same few days and moments many times over; babel takes tens of microseconds.
@functools.lru_cache(maxsize=4096)
def _written_date(value: date, language: str, width: _Width) -> str:
    if language in _OFFICIAL_TIME:  # as a Finnish authority writes it, in Finnish and Swedish
        return f"{value.day}.{value.month}.{value.year}"
    return format_date(value, format=width, locale=LOCALES[language])


# How a Finnish authority writes a time after the date, in Finnish and in Swedish: 8.12.2026 klo
# 9.00, 8.12.2026 kl. 9.00 (Kielitoimiston ohjepankki; Svenska språkbyrån in Finland). Every width
# is the same numeric date: babel's long form ("8. joulukuuta 2026 9.00") leaves out the word.
_OFFICIAL_TIME = {"fi": "klo", "sv": "kl."}


def write_moment(value: datetime, language: str, width: _Width = "long") -> str:
    """The date and the time to the minute, in the value's own zone."""
    # Keyed by the wall-clock time: aware datetimes of one instant in two zones compare equal.
    return _written_moment(value.replace(tzinfo=None), language, width)


@functools.lru_cache(maxsize=4096)
def _written_moment(value: datetime, language: str, width: _Width) -> str:
    if (word := _OFFICIAL_TIME.get(language)) is not None:
        day = _written_date(value.date(), language, width)
        return f"{day} {word} {value.hour}.{value.minute:02d}"
    locale = LOCALES[language]
    # As babel's own format_datetime joins a date and a time of one width: here, any and short.
    pattern = str(get_datetime_format(width, locale=locale)).replace("'", "")
    day = format_date(value.date(), format=width, locale=locale)
    hour = format_time(value.time(), format="short", locale=locale)
    return pattern.replace("{1}", day).replace("{0}", hour)
