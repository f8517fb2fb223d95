"""The development mail sink's page (``make run``): the emails the SMTP sink caught, newest first,
each with its headers, its text, the links in it (a party's personal link among them) and its
attachments.

It is a development tool, open to anyone and there only when the application was given the sink's
folder. A message is named only by one of that folder's own ``.eml`` files, so no name can reach
anything else. The HTML part is shown as text, never rendered: nothing is fetched from elsewhere.
"""

from __future__ import annotations

import email.policy
import re
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.parser import BytesParser
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from engine.interfaces.web.common import config, language_words, page

__all__ = ["router"]

router = APIRouter()

_LINK = re.compile(r"https?://[^\s<>\"'`]+", re.IGNORECASE)
_TRAILING = ".,;:!?)]}>'\""  # punctuation that ends a sentence, not the link it follows
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_BLOCKS = {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "hr"}


@dataclass(frozen=True)
class Summary:
    name: str
    href: str
    date: datetime | None
    to: str
    subject: str
    kind: str


@dataclass(frozen=True)
class Attached:
    index: int
    filename: str
    content_type: str
    size: int


def _folder(request: Request) -> Path:
    folder = config(request).sink_folder
    if folder is None:
        raise HTTPException(status_code=404)
    return folder


def _files(folder: Path) -> list[Path]:
    """The folder's messages, newest first: the sink numbers them in the order it received them
    (zero-padded, and a restarted sink goes on counting), so the names sort by arrival."""
    if not folder.is_dir():
        return []
    found = [
        p for p in folder.iterdir() if p.suffix == ".eml" and p.is_file() and not p.is_symlink()
    ]
    return sorted(found, key=lambda p: p.name, reverse=True)


def _file(folder: Path, name: str) -> Path:
    # Compared with the listing, never joined to the folder: "..", "/etc/passwd", "a%2Fb" and a
    # symlink out of the folder are all simply not one of its messages.
    for path in _files(folder):
        if path.name == name:
            return path
    raise HTTPException(status_code=404)


def _parse(path: Path, *, headers_only: bool = False) -> EmailMessage:
    parser = BytesParser(policy=email.policy.default, _class=EmailMessage)
    return parser.parsebytes(path.read_bytes(), headersonly=headers_only)


def _header(message: EmailMessage, name: str) -> str:
    try:
        value = message.get(name)
    except (ValueError, IndexError, AttributeError):  # a header the policy cannot parse
        return ""
    return "" if value is None else str(value)


def _date(message: EmailMessage) -> datetime | None:
    try:
        value = message.get("date")
        moment = getattr(value, "datetime", None)
    except (ValueError, IndexError, AttributeError):
        return None
    return moment if isinstance(moment, datetime) and moment.utcoffset() is not None else None


def _href(name: str, *more: str) -> str:
    return "/sink/" + "/".join(quote(part, safe="") for part in (name, *more))


class _Text(HTMLParser):
    """An HTML body's words and link targets, with nothing rendered or fetched."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.links: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "head", "title"):
            self._skip += 1
        if tag in _BLOCKS:
            self.parts.append("\n")
        if tag == "a":
            self.links += [v for k, v in attrs if k == "href" and v]

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "head", "title") and self._skip:
            self._skip -= 1
        if tag in _BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)

    def text(self) -> str:
        lines = [" ".join(line.split()) for line in "".join(self.parts).splitlines()]
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _content(part: EmailMessage) -> str:
    try:
        content = part.get_content()
    except (LookupError, ValueError, AssertionError):  # an unknown charset, a broken encoding
        raw = part.get_payload(decode=True)
        return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else ""
    return content if isinstance(content, str) else ""


def _links(text: str, more: list[str]) -> list[str]:
    found = [m.group(0).rstrip(_TRAILING) for m in _LINK.finditer(text)]
    found += [u.strip() for u in more if _LINK.fullmatch(u.strip())]
    return list(dict.fromkeys(u for u in found if u))  # once each, in order


def _attachments(message: EmailMessage) -> list[tuple[Attached, EmailMessage]]:
    found: list[tuple[Attached, EmailMessage]] = []
    for part in message.walk():
        if part.is_multipart():
            continue
        if part.get_content_disposition() != "attachment" and not part.get_filename():
            continue
        assert isinstance(part, EmailMessage)
        data = part.get_payload(decode=True)
        size = len(data) if isinstance(data, bytes) else 0
        name = part.get_filename() or f"attachment-{len(found) + 1}"
        found.append((Attached(len(found), name, part.get_content_type(), size), part))
    return found


def _body(message: EmailMessage) -> tuple[str, list[str], bool]:
    """The text to show, the links in it, and whether it came from the HTML part (no text one)."""
    plain = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    hrefs: list[str] = []
    from_html = ""
    if isinstance(html, EmailMessage):
        reader = _Text()
        reader.feed(_content(html))
        reader.close()
        hrefs, from_html = reader.links, reader.text()
    if isinstance(plain, EmailMessage):
        text = _content(plain)
        return text, _links(text, hrefs), False
    return from_html, _links(from_html, hrefs), bool(from_html)


@router.get("/sink")
def sink_page(request: Request) -> Response:
    folder = _folder(request)
    messages = []
    for path in _files(folder):
        headers = _parse(path, headers_only=True)
        messages.append(
            Summary(
                name=path.name,
                href=_href(path.name),
                date=_date(headers),
                to=_header(headers, "to"),
                subject=_header(headers, "subject"),
                kind=_header(headers, "x-ratify-kind"),
            )
        )
    return page(
        request,
        "sink.html.j2",
        {"messages": messages, "kinds": any(m.kind for m in messages), "folder": str(folder)},
        title=language_words(request)("sink.title"),
    )


@router.get("/sink/{name}")
def sink_message(request: Request, name: str) -> Response:
    path = _file(_folder(request), name)
    message = _parse(path)
    text, links, from_html = _body(message)
    headers = [
        (label, _header(message, label))
        for label in ("From", "To", "Cc", "Reply-To", "Subject", "Date", "Message-ID")
    ]
    return page(
        request,
        "sink_message.html.j2",
        {
            "name": name,
            "headers": [(label, value) for label, value in headers if value],
            "subject": _header(message, "subject"),
            "date": _date(message),
            "text": text,
            "from_html": from_html,
            "links": links,
            "attachments": [
                (item, _href(name, "attachment", str(item.index)))
                for item, _ in _attachments(message)
            ],
        },
        title=_header(message, "subject") or name,
    )


@router.get("/sink/{name}/attachment/{index}")
def sink_attachment(request: Request, name: str, index: str) -> Response:
    path = _file(_folder(request), name)
    found = _attachments(_parse(path))
    if not index.isdigit() or int(index) >= len(found):
        raise HTTPException(status_code=404)
    item, part = found[int(index)]
    data = part.get_payload(decode=True)
    safe = _UNSAFE.sub("-", Path(item.filename).name).strip("-.") or "attachment"
    # Always a download, never shown in a page of this site, whatever type the mail claims.
    disposition = (
        f"attachment; filename=\"{safe}\"; filename*=UTF-8''{quote(item.filename, safe='')}"
    )
    return Response(
        data if isinstance(data, bytes) else b"",
        media_type="application/octet-stream",
        headers={"Content-Disposition": disposition},
    )
