"""CloudNC (Innofactor) public sites: the OData API of meetings and their items.

An answer is an OData collection (``{"value": [...]}``) of meetings, each with its body
(``Organ``/``Body``, a name or ``{"Name": …}``), its ``MeetingDate`` and its ``Contents``: the
items, each with its ``Article`` (§), ``Title``, the case's ``CaseNativeId`` (the diary number)
and its ``Url``. A collection of the items themselves, each with its meeting's fields, is read
the same way.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from engine.sources.item import MAX_ITEMS, Item, one_line, section_of, web_link
from engine.sources.json_input import load_json, records

__all__ = ["parse", "when"]

KIND = "CloudNC OData"


def when(value: object) -> date | None:
    """An OData date: ``2026-12-14``, ``2026-12-14T00:00:00Z`` or with an offset."""
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        try:
            return datetime.fromisoformat(value).date()
        except ValueError:
            return None


def name_of(value: object) -> str:
    if isinstance(value, dict):
        value = value.get("Name") or value.get("Title")
    return one_line(value, 200)


def _item(meeting: dict[str, Any], content: dict[str, Any], fallback_url: str) -> Item | None:
    body = name_of(content.get("Organ") or meeting.get("Organ") or meeting.get("Body"))
    day = when(content.get("MeetingDate") or meeting.get("MeetingDate"))
    section = section_of(content.get("Article"))
    title = one_line(content.get("Title"))
    if not body or day is None or section is None or not title:
        return None
    diary = one_line(content.get("CaseNativeId"), 100) or None
    url = web_link(content.get("Url") or content.get("Link"), f"{fallback_url}#{section}")
    return Item(body=body, meeting=day, section=section, title=title, diary=diary, url=url)


def parse(data: bytes, url: str = "") -> list[Item]:
    """The items of a CloudNC OData answer; SourceError when it is none. ``url``: the source's
    address, the item's own when it gives none."""
    found = load_json(data, KIND)
    items: list[Item] = []
    for meeting in records(found, KIND, "value"):
        contents = meeting.get("Contents")
        listed = contents if isinstance(contents, list) else [meeting]
        for content in listed[:MAX_ITEMS]:
            if isinstance(content, dict) and (item := _item(meeting, content, url)) is not None:
                items.append(item)
        if len(items) >= MAX_ITEMS:
            break
    return items[:MAX_ITEMS]
