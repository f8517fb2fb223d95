"""A manual source: what a party pastes — the minutes' address and the decision's reference
(``Kunnanhallitus 14.12.2026 § 5``), optionally the diary number (after "Dno") and the item's
title, one per line. For every system without a feed (KT Web and the rest)."""

from __future__ import annotations

from engine.core.addresses import address_problem
from engine.errors import InvalidInput
from engine.sources.item import Item, SourceError, check_size, diary_in, one_line

__all__ = ["parse", "web_address_problem"]

MAX_PASTED = 4000  # characters: a few lines


def web_address_problem(url: str) -> str | None:
    """Why ``url`` is no web address to read, or None (the calendars' rules, a #fragment let
    through: a minutes item's anchor)."""
    return address_problem(
        url, "like 'https://hattula.example.invalid/poytakirjat/'", fragment=True
    )


def parse(data: bytes) -> list[Item]:
    """The one item the pasted lines give; SourceError when an address or a reference is
    missing or malformed."""
    from engine.core.evidence import parse_decision_ref

    check_size(data, "pasted")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SourceError("the pasted text is not UTF-8") from None
    if len(text) > MAX_PASTED:
        raise SourceError(f"paste at most {MAX_PASTED} characters: the address and the § line")
    lines = [one_line(line, 2000) for line in text.splitlines()]
    lines = [line for line in lines if line]
    url = next((line for line in lines if line.lower().startswith(("http://", "https://"))), "")
    if not url or (problem := web_address_problem(url)) is not None:
        raise SourceError(
            "paste the minutes' address (https://…) on a line of its own"
            + (f": it {problem}" if url and problem else "")
        )
    ref = None
    title = ""
    diary = None
    for line in lines:
        if line == url:
            continue
        if "§" in line and ref is None:
            try:
                ref = parse_decision_ref(line)
            except InvalidInput as exc:
                raise SourceError(str(exc.template)) from None
        elif (found := diary_in(line)) is not None and diary is None:
            diary = found
        elif not title:
            title = line[:500]
    if ref is None:
        raise SourceError(
            "paste the decision's reference on a line of its own, for example "
            "'Kunnanhallitus 14.12.2026 § 5'"
        )
    return [Item(ref.body, ref.decided, ref.section, title, diary, url)]
