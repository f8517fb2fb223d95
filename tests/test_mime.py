"""The bytes the sender writes itself (notifications.mime) read back as what to_email builds."""

from __future__ import annotations

import dataclasses
import email
import email.policy
from datetime import UTC, date, datetime
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtplib.email import extract_recipients, extract_sender, flatten_message

from notifications.message import Attachment, OutgoingMessage
from notifications.mime import Wire, to_wire
from notifications.render import LANGUAGES, message, to_email
from tests.test_render import CASES, context

SENT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
FROM = "ratify <ratify@example.invalid>"
TO = ("kirjaamo.hattula@example.invalid", "kalle.salo@example.invalid")
REPLY = "liisa.koskinen@omahame.example.invalid"


def read(data: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def shape(part: Any) -> list[Any]:
    """What a reader sees of a message: each part's headers (its boundary aside), its type and
    parameters, and its decoded content, depth first."""
    params = {k: v for k, v in part["Content-Type"].params.items() if k != "boundary"}
    headers = [
        (name, str(value))
        for name, value in part.items()
        if name not in ("Content-Type", "Content-Transfer-Encoding", "MIME-Version")
    ]
    seen: list[Any] = [(part.get_content_type(), params, headers)]
    if part.is_multipart():
        for sub in part.iter_parts():
            seen += shape(sub)
    else:
        content = part.get_content()
        # Text's lines end as its transfer encoding left them: CRLF from quoted-printable (as
        # text's canonical form has it), LF from the email package's base64. A reader sees lines.
        seen.append(content.replace("\r\n", "\n") if isinstance(content, str) else content)
    return seen


def both(outgoing: OutgoingMessage, mail_from: str = FROM, reply_to: str | None = REPLY) -> Wire:
    wire = to_wire(outgoing, mail_from, SENT, reply_to)
    assert isinstance(wire, Wire)
    built = to_email(outgoing, mail_from, SENT, reply_to)
    assert shape(read(wire.data)) == shape(read(flatten_message(built)))
    # The envelope aiosmtplib would have taken from the email package's message.
    assert wire.sender == extract_sender(built)
    assert list(wire.recipients) == extract_recipients(built)
    return wire


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("case", sorted(CASES))
def test_every_kind_in_every_language_reads_as_to_email_builds_it(case: str, language: str) -> None:
    kind, _ = CASES[case]
    outgoing = message(f"{kind}:r/1:{case}", kind, TO, language, context(case), date(2027, 3, 31))
    data = both(outgoing).data
    assert data.isascii()  # 7-bit: no server needs 8BITMIME for it
    assert all(len(line) <= 78 for line in data.split(b"\r\n"))
    assert b"\n" not in data.replace(b"\r\n", b"")  # every line ends in CRLF


def test_attachments_headers_and_a_sender_with_a_name_to_encode() -> None:
    outgoing = message("invitation:r/1:a", "invitation", TO[:1], "sv", context("invitation"))
    outgoing = dataclasses.replace(
        outgoing,
        subject="Hyväksymispyyntö: " + "pitkä otsikko " * 8,
        attachments=(
            Attachment("agreement.md", "text/markdown", "# Sopimus\n\nTämä on teksti.\n".encode()),
            Attachment("certificate.html", "text/html", b"<p>ok</p>"),
            Attachment("data.bin", "application/octet-stream", bytes(range(256)) * 3),
        ),
    )
    wire = both(outgoing, mail_from="Kanta-Hämeen liitto <ratify@example.invalid>")
    parsed = read(wire.data)
    assert parsed["From"] == "Kanta-Hämeen liitto <ratify@example.invalid>"
    assert parsed["Subject"] == outgoing.subject
    names = [p.get_filename() for p in parsed.iter_attachments()]
    assert names == ["agreement.md", "certificate.html", "data.bin"]
    assert wire.sender == "ratify@example.invalid"


def test_no_attachment_no_reply_to() -> None:
    outgoing = message("receipt:r/1:a", "receipt", TO, "en", context("receipt"))
    parsed = read(both(outgoing, reply_to=None).data)
    assert parsed.get_content_type() == "multipart/alternative"
    assert "Reply-To" not in parsed


def test_text_that_quoted_printable_must_take_care_of() -> None:
    text = "Rivi\n.\nFrom here\n=3D is not a code\nlopussa välilyönti \n\ttab\t\n" + "x" * 300
    outgoing = dataclasses.replace(
        message("active:r/1:a", "active", TO, "fi", context("active")),
        text=text + "\n",
        html="<p>" + "ä" * 500 + "</p>\n",
    )
    plain, _ = read(both(outgoing).data).iter_parts()
    assert plain.get_content().replace("\r\n", "\n") == text + "\n"


@pytest.mark.parametrize(
    "change",
    [
        {"to": ("Kalle Salo <kalle.salo@example.invalid>",)},  # a name: the email package's
        {"to": ("käyttäjä@example.invalid",)},  # an address that needs SMTPUTF8
        {"attachments": (Attachment("sopimus-hämeenlinna.md", "text/markdown", b"x"),)},
    ],
)
def test_what_it_does_not_write_itself_it_leaves_to_to_email(change: dict[str, Any]) -> None:
    outgoing = dataclasses.replace(
        message("active:r/1:a", "active", TO, "fi", context("active")), **change
    )
    made = to_wire(outgoing, FROM, SENT)
    assert isinstance(made, EmailMessage)
    assert made.as_bytes().split(b"\n\n", 1)[0].count(b"Message-ID") == 1


@pytest.mark.parametrize(
    ("change", "mail_from", "when"),
    [
        ({"subject": "Kutsu\r\nBcc: kaikki@example.invalid"}, FROM, SENT),
        ({"to": ("a@example.invalid\nBcc: kaikki@example.invalid",)}, FROM, SENT),
        ({}, "ratify <r@example.invalid>\nBcc: x@example.invalid", SENT),
        ({}, FROM, datetime(2026, 12, 1, 9, 0)),  # noqa: DTZ001  (no offset for the Date)
    ],
)
def test_refuses_what_to_email_refuses(
    change: dict[str, Any], mail_from: str, when: datetime
) -> None:
    outgoing = dataclasses.replace(
        message("active:r/1:a", "active", TO, "fi", context("active")), **change
    )
    with pytest.raises(ValueError, match=r"line break|aware"):
        to_wire(outgoing, mail_from, when)
    with pytest.raises(ValueError, match=r"line break|aware"):
        to_email(outgoing, mail_from, when)
