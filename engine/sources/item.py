"""What every decision source gives: the items of published minutes, and the checks they share.

Everything here is pure: bytes in, items out. What was fetched is untrusted, so every adapter
refuses more than :data:`MAX_BYTES`, and a problem with the whole of it is a :class:`SourceError`
that says what is wrong and what to do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from engine.core.evidence import DecisionRef, mixed_scripts

__all__ = [
    "MAX_BYTES",
    "MAX_ITEMS",
    "Item",
    "Source",
    "SourceError",
    "diary_in",
    "finnish_date",
    "section_of",
    "web_link",
]

MAX_BYTES = 2 * 1024 * 1024  # a day's feed of a body's minutes is some kilobytes
MAX_ITEMS = 2000  # items kept of one feed


@dataclass(frozen=True)
class Source:
    """Where a party's decisions are published, as its agreement file names it: the kind of
    system (its adapter), the address to read, and the case's diary number where known."""

    kind: str
    url: str | None = None  # None: a manual source without a fixed address
    diary: str | None = None


class SourceError(ValueError):
    """What was fetched cannot be read as the source's format; the message says why."""


@dataclass(frozen=True)
class Item:
    """One item of a body's published minutes: ``Kunnanhallitus 14.12.2026 § 5``, its title, the
    case's diary number where the source gives it, and the item's own address."""

    body: str
    meeting: date
    section: int
    title: str
    diary: str | None
    url: str

    @property
    def ref(self) -> DecisionRef:
        return DecisionRef(self.body, self.meeting, self.section)

    def problem(self) -> str | None:
        """Why the item cannot be trusted as it reads, or None: a body's name or a title whose
        letters mix scripts (a Cyrillic Ka for the K of 'Kunnanhallitus') only looks like the
        real one."""
        for what, text in (("body", self.body), ("title", self.title)):
            mixed = mixed_scripts(text)
            if mixed:
                scripts = ", ".join(f"{script} ({letters})" for script, letters in mixed)
                return (
                    f"item {self.url}: its {what} {text!r} mixes scripts: {scripts}; it only "
                    "looks like the name, so it is not proposed"
                )
        return None


_DATE = re.compile(r"\b(\d{1,2})\.(\d{1,2})\.(\d{4})\b")
_SECTION = re.compile(r"§\s*(\d{1,5})|\b(\d{1,5})\s*§")
_DIARY = re.compile(r"\b(?:Dno|Dnro|DNRO|DNo|Diaarinumero|Diaarinro)\b\.?:?\s*([^\s,;<]+)", re.I)


def finnish_date(text: str) -> date | None:
    """The first date written dd.mm.yyyy in ``text``, or None."""
    for match in _DATE.finditer(text):
        try:
            return date(int(match[3]), int(match[2]), int(match[1]))
        except ValueError:
            continue
    return None


def section_of(value: object) -> int | None:
    """A section number as sources write it: 5, "5", "§ 5", "5 §"; None when there is none."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.isdigit():
        number = int(text)
    else:
        match = _SECTION.search(text)
        if match is None:
            return None
        number = int(match[1] or match[2])
    return number if number > 0 else None


def diary_in(text: str) -> str | None:
    """The diary number a text gives after "Dno" / "Dnro", or None."""
    match = _DIARY.search(text)
    return match[1].rstrip(".") if match else None


def check_size(data: bytes, kind: str) -> None:
    if len(data) > MAX_BYTES:
        raise SourceError(
            f"the {kind} answer is {len(data):,} bytes, more than the {MAX_BYTES:,} read; "
            "name a feed of one body's recent minutes"
        )


def web_link(value: object, fallback: str) -> str:
    """An item's address as a page may link it: an http(s) address, else ``fallback`` (a
    ``javascript:`` or ``file:`` link in a feed is never shown as the item's)."""
    from urllib.parse import urlsplit

    text = one_line(value, 2000)
    try:
        parts = urlsplit(text)
    except ValueError:
        return fallback
    return text if parts.scheme in ("http", "https") and parts.hostname else fallback


def one_line(value: object, limit: int = 500) -> str:
    """A field's text as one line of at most ``limit`` characters ('' when it is no text)."""
    if not isinstance(value, str):
        return ""
    return " ".join(value.split())[:limit]
