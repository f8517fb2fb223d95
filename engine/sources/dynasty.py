"""Dynasty 10's public sites: the RSS 2.0 feed of a body's meeting items.

Each ``<item>`` is one section of the minutes: its title ``§ 5 Kanta-Hämeen …`` (or ``5 § …``),
its ``<link>``, the body as its ``<category>`` (else the channel's title before " - "), and in its
``<description>`` the meeting's date (dd.mm.yyyy) and the diary number after "Dno" or "Dnro".
Read with defusedxml: entities and DTDs are refused, so an entity bomb is an error, not a hang.
"""

from __future__ import annotations

import re
from email.utils import parsedate_to_datetime
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeTree
from defusedxml import DefusedXmlException

from engine.sources.item import (
    MAX_ITEMS,
    Item,
    SourceError,
    check_size,
    diary_in,
    finnish_date,
    one_line,
    section_of,
    web_link,
)

__all__ = ["parse"]

_LEADING_SECTION = re.compile(r"^\s*(?:§\s*\d+|\d+\s*§)[\s.:\u2013-]*")


def _text(element: Element, tag: str) -> str:
    found = element.find(tag)
    return one_line(found.text if found is not None else None)


def parse(data: bytes) -> list[Item]:
    """The meeting items of a Dynasty RSS feed; SourceError when it is no such feed."""
    check_size(data, "Dynasty RSS")
    try:
        root = SafeTree.fromstring(data, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise SourceError(
            f"the Dynasty RSS feed declares entities or a DTD ({type(exc).__name__}), which are "
            "not read; name the body's plain RSS feed"
        ) from None
    except (ParseError, ValueError) as exc:
        raise SourceError(f"the Dynasty RSS feed is not well-formed XML ({exc})") from None
    channel = root.find("channel") if root.tag == "rss" else None
    if channel is None:
        raise SourceError(
            f"the Dynasty answer is no RSS 2.0 feed (its root is <{root.tag}>, not <rss> with a "
            "<channel>); name the feed's address (…/rss)"
        )
    fallback_body = _text(channel, "title").split(" - ")[0].strip()
    items: list[Item] = []
    for element in channel.findall("item")[:MAX_ITEMS]:
        title = _text(element, "title")
        section = section_of(title)
        description = _text(element, "description")
        body = _text(element, "category") or fallback_body
        meeting = finnish_date(description) or finnish_date(title)
        if meeting is None:
            published = _text(element, "pubDate")
            try:
                meeting = parsedate_to_datetime(published).date() if published else None
            except (TypeError, ValueError):
                meeting = None
        link = web_link(_text(element, "link"), "")
        if section is None or meeting is None or not body or not link:
            continue  # not a section of minutes (an announcement, an agenda's heading)
        heading = _LEADING_SECTION.sub("", title)
        items.append(
            Item(
                body=body,
                meeting=meeting,
                section=section,
                title=heading.strip(" -\u2013:"),
                diary=diary_in(description),
                url=link,
            )
        )
    return items
