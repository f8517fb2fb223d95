"""The messages: every kind in every language, escaping, dates, the MIME form and its calendar."""

from __future__ import annotations

import dataclasses
import email
import email.policy
from collections.abc import Mapping
from datetime import UTC, date, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any, get_args

import icalendar
import jinja2
import pytest

from notifications.message import KINDS, OutgoingMessage, message_id_for
from notifications.render import LANGUAGES, TEMPLATES, message, render, to_email
from workflows import Role, available_workflows

TITLE = "Strateginen yhteistyösopimus"
SHA = "3f" * 32
COMMON: dict[str, Any] = {
    "title": TITLE,
    "round_id": "kanta-hame-strategic-2026/1",
    "sha256": SHA,
    "party": "Hattulan kunta",
    "coordinator": {"name": "Liisa Koskinen", "email": "liisa.koskinen@omahame.example.invalid"},
}
BODIES = ["Kunnanhallitus", "Kunnanvaltuusto"]
HELSINKI = "Europe/Helsinki"
# One context per kind (two where a kind has two shapes); each uses every variable it documents.
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "invitation": (
        "invitation",
        {
            "bodies": BODIES,
            "signatures_required": 2,
            "signatories": ["Aino Esimerkki (kunnanjohtaja)", "Veikko Malli (puheenjohtaja)"],
            "steps": [
                {"role": "preparing", "body": BODIES[0]},
                {"role": "review", "body": BODIES[0]},
                {"role": "review", "body": BODIES[1]},
                {"role": "legal_force", "body": BODIES[1]},
                {"role": "signing", "body": BODIES[1]},
            ],
            "deadline": date(2026, 12, 31),
        },
    ),
    "reminder": (
        "reminder",
        {
            "step": {"role": "review", "body": BODIES[0], "state": "board_review"},
            "since": datetime(2026, 12, 1, 7, 30, tzinfo=UTC),
            "timezone": HELSINKI,
            "reminder_number": 2,
            "max_reminders": 4,
            "deadline": date(2026, 12, 31),
        },
    ),
    "deadline": (
        "deadline",
        {
            "step": {"role": "signing", "body": BODIES[1], "state": "awaiting_signature"},
            "since": datetime(2026, 12, 1, 7, 30, tzinfo=UTC),
            "timezone": HELSINKI,
            "reminder_number": 1,
            "max_reminders": 2,
            "deadline": date(2026, 12, 31),
        },
    ),
    "agenda": (
        "agenda",
        {
            "step": {"role": "review", "body": BODIES[0], "state": "board_review"},
            "since": datetime(2026, 12, 1, 7, 30, tzinfo=UTC),
            "timezone": HELSINKI,
            "body": BODIES[0],
            "meeting": date(2026, 12, 14),
            "agenda_closes": date(2026, 12, 3),
            "deadline": date(2026, 12, 31),
        },
    ),
    "followup": (
        "followup",
        {
            "step": {"role": "review", "body": BODIES[0], "state": "board_review"},
            "since": datetime(2026, 12, 1, 7, 30, tzinfo=UTC),
            "timezone": HELSINKI,
            "body": BODIES[0],
            "meeting": date(2026, 12, 14),
            "agenda_closes": date(2026, 12, 3),
            "deadline": None,
        },
    ),
    "escalation-stalled": (
        "escalation",
        {
            "reason": "stalled",
            "step": {"role": "review", "body": BODIES[1], "state": "council_review"},
            "since": datetime(2026, 12, 1, 7, 30, tzinfo=UTC),
            "timezone": HELSINKI,
            "reminders_sent": 4,
            "forecast": {
                "in_force": date(2027, 3, 2),
                "party": "Hattula",
                "party_id": "hattula",
                "behind_days": 12,
                "late_days": None,
            },
        },
    ),
    "escalation-bounced": (
        "escalation",
        {
            "reason": "bounced",
            "recipients": ["kirjaamo.hattula@example.invalid"],
            "error": "550 5.1.1 mailbox unavailable",
        },
    ),
    "receipt": (
        "receipt",
        {
            "event": "sign",
            "from_step": {"role": "signing", "body": BODIES[1], "state": "awaiting_signature"},
            "to_step": {"role": "signing", "body": BODIES[1], "state": "awaiting_signature"},
            "evidence": {"signatory": "Aino Esimerkki", "title": "kunnanjohtaja"},
            "recorded_at": datetime(2026, 12, 30, 10, 0, tzinfo=UTC),
            "timezone": HELSINKI,
            "signatures_given": 1,
            "signatures_required": 2,
        },
    ),
    "active": ("active", {"effective_date": date(2027, 1, 15)}),
    "witness": (
        "witness",
        {
            "reason": "daily",
            "rounds": [{"round": "kanta-hame-strategic-2026/1", "entries": 15, "head": "ab" * 32}],
            "as_of": datetime(2026, 12, 2, 7, 0, tzinfo=UTC),
            "timezone": HELSINKI,
        },
    ),
    "failed": (
        "failed",
        {
            "rejected_by": "Forssan kaupunki",
            "ref": "Kaupunginhallitus 10.12.2026 § 300",
            "reason": "Ei vastaa kaupungin strategiaa",
        },
    ),
    "cancelled": ("cancelled", {"reason": "Sopimusluonnos vedettiin pois"}),
    "amended": (
        "amended",
        {"version": 2, "previous_sha256": "a1" * 32, "reason": "Liitteen 2 korjaus"},
    ),
}
SENT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
FROM = "ratify <ratify@example.invalid>"


def context(case: str, **changes: Any) -> dict[str, Any]:
    return {**COMMON, **CASES[case][1], **changes}


def parse(message: EmailMessage) -> EmailMessage:
    """The email as a receiver reads it: from its bytes."""
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def invitation(key: str = "invitation:r/1:hattula:a", **kwargs: Any) -> OutgoingMessage:
    to = ["kirjaamo.hattula@example.invalid", "Kalle Salo <kalle.salo@example.invalid>"]
    return message(key, "invitation", to, "fi", context("invitation"), **kwargs)


def test_the_cases_cover_every_kind() -> None:
    assert {kind for kind, _ in CASES.values()} == set(KINDS)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("case", CASES)
def test_every_kind_renders_in_every_language(case: str, language: str) -> None:
    subject, text, html = render(CASES[case][0], language, context(case))
    assert subject.strip() == subject != ""
    assert "\n" not in subject
    assert not text.startswith("Subject:")
    for rendered in (subject, text, html):
        assert "{{" not in rendered
        assert "{%" not in rendered
    for body in (text, html):
        assert TITLE in body
        assert SHA in body
        assert "Hattulan kunta" in body
        assert "Liisa Koskinen" in body
        assert "liisa.koskinen@omahame.example.invalid" in body
        assert "ratify" in body
    assert html.startswith("<!DOCTYPE html>")
    assert f'<html lang="{language}">' in html
    assert "<p" not in text


@pytest.mark.parametrize("language", LANGUAGES)
def test_an_invitation_names_who_may_sign_only_when_the_party_lists_them(language: str) -> None:
    strings = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES))
    label = strings.get_template(f"_lang.{language}.j2").module.labels["signatories"]  # type: ignore[attr-defined]
    listed = "Aino Esimerkki (kunnanjohtaja), Veikko Malli (puheenjohtaja)"
    for body in render("invitation", language, context("invitation"))[1:]:
        assert label in body
        assert listed in body
    for body in render("invitation", language, context("invitation", signatories=[]))[1:]:
        assert label not in body


def test_every_template_exists() -> None:
    names = {path.name for path in TEMPLATES.iterdir()}
    for kind in KINDS:
        for language in LANGUAGES:
            assert {f"{kind}.{language}.txt.j2", f"{kind}.{language}.html.j2"} <= names


def test_every_language_words_every_role_event_and_label() -> None:
    # A missing phrase would not fail a render: the raw role or event name would show instead.
    loader = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES))
    tables: dict[str, Any] = {
        lang: loader.get_template(f"_lang.{lang}.j2").module for lang in LANGUAGES
    }
    workflows = available_workflows()
    roles = set(get_args(Role))
    events = {event for workflow in workflows for event in workflow.events}
    for strings in tables.values():
        for table in ("labels", "states", "steps", "events", "evidence"):
            assert getattr(strings, table).keys() == getattr(tables["en"], table).keys(), table
        assert roles == strings.states.keys()
        assert roles | {"signing_one"} == strings.steps.keys()
        assert events <= strings.events.keys()


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("case", CASES)
def test_html_escapes_what_text_keeps(case: str, language: str) -> None:
    hostile = "<script>x</script>"
    _, text, html = render(CASES[case][0], language, context(case, party=hostile))
    assert hostile in text
    assert "&lt;script&gt;x&lt;/script&gt;" in html
    assert "<script>" not in html


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("case", ["invitation", "reminder", "escalation-stalled", "receipt"])
def test_values_that_pass_through_shared_macros_are_escaped(case: str, language: str) -> None:
    # A macro's output counts as safe in the template that calls it: this is where escaping
    # would silently break if a macro came from a text file.
    hostile = {
        "<b>Hallitus</b>": "&lt;b&gt;Hallitus&lt;/b&gt;",
        "<i>Valtu</i>": "&lt;i&gt;Valtu&lt;/i&gt;",
    }
    first, second = hostile
    steps: dict[str, dict[str, Any]] = {
        "invitation": {"bodies": [first, second]},
        "reminder": {"step": {"role": "review", "body": first, "state": "board_review"}},
        "escalation-stalled": {"step": {"role": "review", "body": first, "state": "board_review"}},
        "receipt": {
            "from_step": {"role": "review", "body": first, "state": "board_review"},
            "to_step": {"role": "review", "body": second, "state": "council_review"},
        },
    }
    values = context(case, **steps[case])
    if case == "invitation":
        values["steps"] = [{"role": "review", "body": first}, {"role": "review", "body": second}]
    _, text, html = render(CASES[case][0], language, values)
    assert any(raw in text for raw in hostile)
    for raw, escaped in hostile.items():
        assert (raw in text) == (escaped in html)
    assert "<b>" not in html
    assert "<i>" not in html


@pytest.mark.parametrize(
    ("language", "expected"),
    [("fi", "31.12.2026"), ("sv", "31.12.2026"), ("en", "31 December 2026")],
)
def test_dates_are_in_the_contacts_locale(language: str, expected: str) -> None:
    _, text, html = render("invitation", language, context("invitation"))
    assert expected in text
    assert expected in html


@pytest.mark.parametrize(
    ("language", "since", "expected"),
    [
        ("fi", datetime(2026, 12, 1, 7, 30, tzinfo=UTC), "1.12.2026 klo 9.30"),
        ("sv", datetime(2026, 12, 1, 7, 30, tzinfo=UTC), "1.12.2026 kl. 9.30"),
        ("en", datetime(2026, 12, 1, 7, 30, tzinfo=UTC), "1 December 2026, 09:30"),
        # 22:30 UTC on New Year's Eve is already the next year in Helsinki.
        ("fi", datetime(2026, 12, 31, 22, 30, tzinfo=UTC), "1.1.2027 klo 0.30"),
    ],
)
def test_times_are_local_to_the_rounds_timezone(
    language: str, since: datetime, expected: str
) -> None:
    _, text, html = render("reminder", language, context("reminder", since=since))
    assert expected in text
    assert expected in html


def test_a_naive_datetime_is_refused() -> None:
    naive = datetime(2026, 12, 1, 9, 30)  # noqa: DTZ001  (the mistake under test)
    with pytest.raises(ValueError, match="aware"):
        render("reminder", "fi", context("reminder", since=naive))


def test_a_datetime_where_a_date_belongs_is_refused() -> None:
    with pytest.raises(TypeError, match="date filter"):
        render("active", "fi", context("active", effective_date=SENT))


@pytest.mark.parametrize(
    ("case", "variable"),
    [(case, variable) for case in CASES for variable in context(case) if variable != "reason"]
    + [("failed", "reason"), ("cancelled", "reason"), ("amended", "reason")],
)
def test_every_documented_variable_is_required(case: str, variable: str) -> None:
    values = context(case)
    del values[variable]
    for language in LANGUAGES:
        with pytest.raises(jinja2.UndefinedError):
            render(CASES[case][0], language, values)


def test_an_escalation_needs_a_known_reason() -> None:
    with pytest.raises(ValueError, match="stalled, bounced"):
        render("escalation", "fi", context("escalation-stalled", reason="late"))
    values = context("escalation-bounced")
    del values["reason"]
    with pytest.raises(ValueError, match="stalled, bounced"):
        render("escalation", "fi", values)


def test_unknown_kind_or_language_names_what_exists() -> None:
    with pytest.raises(ValueError, match="invitation, reminder, escalation"):
        render("welcome", "fi", context("active"))
    with pytest.raises(ValueError, match="fi, sv, en"):
        render("active", "de", context("active"))


def test_the_context_may_not_set_what_render_supplies() -> None:
    with pytest.raises(ValueError, match="language"):
        render("active", "fi", context("active", language="sv"))


def test_to_email_is_text_and_html_alternatives_with_the_headers() -> None:
    outgoing = message(
        "receipt:r/1:hattula:7", "receipt", ["a@example.invalid"], "sv", context("receipt")
    )
    parsed = parse(to_email(outgoing, FROM, SENT))
    assert parsed.get_content_type() == "multipart/alternative"
    plain, html = parsed.iter_parts()
    assert plain.get_content_type() == "text/plain"
    assert html.get_content_type() == "text/html"
    assert plain.get_content_charset() == html.get_content_charset() == "utf-8"
    assert isinstance(plain, EmailMessage)
    assert isinstance(html, EmailMessage)
    assert plain.get_content() == outgoing.text
    assert html.get_content() == outgoing.html
    assert parsed["Subject"] == outgoing.subject
    assert parsed["From"] == FROM
    assert parsed["To"] == "a@example.invalid"
    assert parsed["Date"] == format_datetime(SENT)
    assert parsed["Message-ID"] == message_id_for("receipt:r/1:hattula:7")
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["Content-Language"] == "sv"


def test_to_email_addresses_every_recipient() -> None:
    parsed = parse(to_email(invitation(), FROM, SENT))
    addresses = {address.addr_spec for address in parsed["To"].addresses}
    assert addresses == {"kirjaamo.hattula@example.invalid", "kalle.salo@example.invalid"}


def test_the_message_id_follows_the_key() -> None:
    first = parse(to_email(invitation("k:1"), FROM, SENT))["Message-ID"]
    again = parse(to_email(invitation("k:1"), FROM, datetime(2027, 1, 2, tzinfo=UTC)))["Message-ID"]
    other = parse(to_email(invitation("k:2"), FROM, SENT))["Message-ID"]
    assert first == again == message_id_for("k:1")
    assert other != first


def test_a_deadline_travels_as_a_calendar_event() -> None:
    stamp = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
    outgoing = invitation(deadline=date(2027, 3, 31), calendar_uid="r1-hattula", stamp=stamp)
    parsed = parse(to_email(outgoing, FROM, SENT))
    assert parsed.get_content_type() == "multipart/mixed"
    alternative, attachment = parsed.iter_parts()
    assert alternative.get_content_type() == "multipart/alternative"
    assert isinstance(attachment, EmailMessage)
    assert attachment.get_content_type() == "text/calendar"
    assert attachment.get_filename() == "deadline.ics"
    assert parsed["Content-Language"] == "fi"
    payload = attachment.get_payload(decode=True)
    assert isinstance(payload, bytes)
    calendar = icalendar.Calendar.from_ical(payload)
    assert str(calendar["METHOD"]) == "PUBLISH"
    assert str(calendar["VERSION"]) == "2.0"
    assert str(calendar["PRODID"])
    (event,) = calendar.walk("VEVENT")
    start = event.decoded("DTSTART")
    assert start == date(2027, 3, 31)
    assert not isinstance(start, datetime)  # all day
    assert str(event["UID"]) == "r1-hattula"
    assert TITLE in str(event["SUMMARY"])
    assert event.decoded("DTSTAMP") == stamp


def test_the_calendar_uid_defaults_to_one_derived_from_the_key() -> None:
    ics = invitation("k:1", deadline=date(2027, 3, 31)).attachments[0].data
    again = invitation("k:1", deadline=date(2027, 3, 31)).attachments[0].data
    other = invitation("k:2", deadline=date(2027, 3, 31)).attachments[0].data
    uid = str(icalendar.Calendar.from_ical(ics).walk("VEVENT")[0]["UID"])
    assert uid == message_id_for("k:1").strip("<>")
    assert ics == again
    assert other != ics


@pytest.mark.parametrize(
    ("case", "deadline", "attached"),
    [
        ("invitation", date(2027, 3, 31), True),
        ("reminder", date(2027, 3, 31), True),
        ("invitation", None, False),
        ("receipt", date(2027, 3, 31), False),
    ],
)
def test_only_invitations_and_reminders_with_a_deadline_carry_one(
    case: str, deadline: date | None, attached: bool
) -> None:
    kind, _ = CASES[case]
    outgoing = message("k", kind, ["a@example.invalid"], "en", context(case), deadline)
    assert [a.filename for a in outgoing.attachments] == (["deadline.ics"] if attached else [])


@pytest.mark.parametrize(
    "change",
    [
        {"subject": "Kutsu\r\nBcc: kaikki@example.invalid"},
        {"subject": "Kutsu\nX-Evil: 1"},
        {"to": ("a@example.invalid\r\nBcc: kaikki@example.invalid",)},
    ],
)
def test_line_breaks_in_headers_are_refused(change: Mapping[str, Any]) -> None:
    outgoing = dataclasses.replace(invitation(), **change)
    with pytest.raises(ValueError, match="line break"):
        to_email(outgoing, FROM, SENT)


def test_a_line_break_in_the_sender_is_refused() -> None:
    with pytest.raises(ValueError, match="line break"):
        to_email(invitation(), "ratify <r@example.invalid>\nBcc: x@example.invalid", SENT)


def test_the_date_header_needs_an_aware_datetime() -> None:
    with pytest.raises(ValueError, match="aware"):
        to_email(invitation(), FROM, datetime(2026, 12, 1, 9, 0))  # noqa: DTZ001


def test_recipients_must_be_a_list_of_addresses() -> None:
    with pytest.raises(TypeError):
        message("k", "active", "a@example.invalid", "fi", context("active"))
    with pytest.raises(ValueError, match="recipient"):
        message("k", "active", [], "fi", context("active"))


def test_a_moment_is_written_in_its_own_zone_even_when_one_instant_was_written_before() -> None:
    from zoneinfo import ZoneInfo

    from notifications.render import write_date, write_moment

    utc = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    first = write_moment(utc, "fi", "short")
    helsinki = write_moment(utc.astimezone(ZoneInfo("Europe/Helsinki")), "fi", "short")
    assert first != helsinki  # the same instant: equal datetimes, written apart
    assert "11.00" in helsinki
    assert write_date(utc.date(), "sv") == "1.12.2026"
