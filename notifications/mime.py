"""A message as the bytes an SMTP server is sent, written directly rather than through the email
package's object model, which takes milliseconds a message (parsing every header it is given,
choosing each part's encoding twice over, then parsing and folding it all again to write it out).

:func:`to_wire` writes the form that :func:`notifications.render.to_email` builds: the same
headers in the same order, folded by the email package itself (each distinct value once: a batch
repeats its sender, subjects and reply-to addresses), the same tree of parts with the same types
and parameters, and the same decoded content; only the transfer encodings are chosen more simply
(quoted-printable for the text, base64 for attachments: 7-bit clean, so no 8BITMIME is needed).
A message it does not fully understand (an address that is not a plain ``local@domain``, a
filename that needs encoding) it leaves to ``to_email``, and returns that instead.
"""

from __future__ import annotations

import binascii
import functools
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from notifications.message import Attachment, OutgoingMessage

__all__ = ["Wire", "check_headers", "to_wire"]


@dataclass(frozen=True)
class Wire:
    """A message ready for SMTP: its envelope and its bytes (CRLF line ends, 7-bit)."""

    sender: str
    recipients: tuple[str, ...]
    data: bytes


def check_headers(
    message: OutgoingMessage, mail_from: str, date: datetime, reply_to: str | None
) -> None:
    """What no message may be sent with: a line break in a header, an empty address, a Date
    without its offset."""
    _refuse_line_breaks("subject", message.subject)
    for address in (mail_from, *message.to, *([reply_to] if reply_to else [])):
        _refuse_line_breaks("address", address)
        if not address.strip():
            raise ValueError("an address is empty")
    if date.utcoffset() is None:
        raise ValueError("the Date header needs an aware datetime")


def _refuse_line_breaks(what: str, value: str) -> None:
    # A CR or LF in a header value would let it start a header of its own (Bcc:, …).
    if "\r" in value or "\n" in value:
        raise ValueError(f"the {what} {value!r} contains a line break")


def to_wire(
    message: OutgoingMessage, mail_from: str, date: datetime, reply_to: str | None = None
) -> Wire | EmailMessage:
    """The message as SMTP sends it (see the module's docstring); ``to_email``'s form where this
    one would not be the same. Raises ValueError as ``to_email`` does."""
    check_headers(message, mail_from, date, reply_to)
    sender = _mailbox(mail_from)
    plain = all(_PLAIN_ADDRESS.fullmatch(a) for a in message.to)
    if sender is None or not plain or (reply_to and _mailbox(reply_to) is None):
        return _fallback(message, mail_from, date, reply_to)
    if not all(_PLAIN_NAME.fullmatch(a.filename) for a in message.attachments):
        return _fallback(message, mail_from, date, reply_to)
    head = [
        _folded("From", mail_from),
        _line("To", ", ".join(message.to)),
        _folded("Subject", message.subject),
        _line("Date", format_datetime(date)),
        _line("Message-ID", message.message_id),
    ]
    if reply_to:
        head.append(_folded("Reply-To", reply_to))
    head += [
        _folded("X-Ratify-Kind", message.kind),
        b"Auto-Submitted: auto-generated\r\n",
        b"MIME-Version: 1.0\r\n",
    ]
    language = _folded("Content-Language", message.language)
    alternative = _multipart(
        "alternative", [_text("plain", message.text), _text("html", message.html)]
    )
    if not message.attachments:
        content_type, body = alternative
    else:
        parts = [b"".join(alternative), *(_attachment(a) for a in message.attachments)]
        content_type, body = _multipart("mixed", parts)
    return Wire(sender, message.to, b"".join((*head, content_type, language, body)))


def _fallback(
    message: OutgoingMessage, mail_from: str, date: datetime, reply_to: str | None
) -> EmailMessage:
    from notifications.render import to_email

    return to_email(message, mail_from, date, reply_to)


# An address the email package reads back as itself: local@domain, nothing to quote or encode.
_PLAIN_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*"
)
# A filename written as filename="…" as it is.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9._ ()+,-]{1,32}")


@functools.lru_cache(maxsize=256)
def _mailbox(value: str) -> str | None:
    """The envelope address of a From or Reply-To header as aiosmtplib would take it from the
    email package's reading; None unless it is one mailbox with a plain ASCII address (its name
    may be anything: the header writes it in RFC 2047 words)."""
    import email.policy

    header: Any = email.policy.SMTP.header_factory("From", value)
    addresses: tuple[Any, ...] = getattr(header, "addresses", ())
    if len(addresses) != 1 or header.defects:
        return None
    spec: str = addresses[0].addr_spec
    return spec if _PLAIN_ADDRESS.fullmatch(spec) else None


@functools.lru_cache(maxsize=1024)
def _folded(name: str, value: str) -> bytes:
    """The header as the email package writes it for SMTP (RFC 2047 words, folded lines)."""
    import email.policy

    policy = email.policy.SMTP
    folded: str = policy.header_factory(name, value).fold(policy=policy)
    return folded.encode("ascii")


def _line(name: str, value: str) -> bytes:
    """A header that differs from message to message: written as it is when that is what the
    email package would write too (short and plain ASCII), folded by it otherwise."""
    if len(name) + len(value) <= 76 and value.isascii() and value.isprintable():
        return f"{name}: {value}\r\n".encode("ascii")
    return _folded.__wrapped__(name, value)


def _multipart(subtype: str, parts: list[bytes]) -> tuple[bytes, bytes]:
    """A multipart's Content-Type header, and its body (from the blank line that ends the
    headers), laid out as the email package's generator lays it out."""
    # "=_" never occurs in quoted-printable or base64 text (an "=" there is always followed by a
    # hex digit or a line end), so no line of a part can be taken for this boundary.
    boundary = f"=_{secrets.token_hex(12)}".encode("ascii")
    body = [b"\r\n--", boundary, b"\r\n", parts[0]]
    for part in parts[1:]:
        body += [b"\r\n--", boundary, b"\r\n", part]
    body += [b"\r\n--", boundary, b"--\r\n"]
    header = b"Content-Type: multipart/" + subtype.encode("ascii") + b';\r\n boundary="'
    return header + boundary + b'"\r\n', b"".join(body)


def _text(subtype: str, text: str) -> bytes:
    lines = text.encode("utf-8").splitlines()
    body = binascii.b2a_qp(b"\r\n".join(lines) + b"\r\n", istext=True)
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    ).encode("ascii") + body


def _attachment(attachment: Attachment) -> bytes:
    maintype, _, subtype = attachment.content_type.partition("/")
    # As to_email: every text attached is UTF-8, and a calendar is published, not an invitation.
    params = '; charset="utf-8"' if maintype == "text" else ""
    if attachment.content_type == "text/calendar":
        params = '; method="PUBLISH"' + params
    content_type = _folded("Content-Type", f"{maintype}/{subtype}{params}")
    encoded = binascii.b2a_base64(attachment.data, newline=False)
    lines = b"\r\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))
    return b"".join(
        (
            content_type,
            b"Content-Transfer-Encoding: base64\r\n",
            f'Content-Disposition: attachment; filename="{attachment.filename}"\r\n\r\n'.encode(
                "ascii"
            ),
            lines,
            b"\r\n",
        )
    )
