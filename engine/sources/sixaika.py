"""The 6Aika cities' open decision APIs (Ahjo-style JSON: Helsinki, Espoo, Vantaa, Tampere,
Turku, Oulu).

An answer lists decisions (``{"decisions": [...]}``, an OData ``value`` or a bare list), each with
its ``Section`` (``"5"`` or ``"§ 5"``), its ``Subject`` (or ``Title``), the case's ``DiaryNumber``
or ``CaseIDLabel``, its ``MeetingDate`` (or ``DecisionDate``), its ``DecisionMaker`` (a name or
``{"Name": …}``) and its ``Url`` (or ``Permalink``).
"""

from __future__ import annotations

from engine.sources.cloudnc import name_of, when
from engine.sources.item import MAX_ITEMS, Item, one_line, section_of, web_link
from engine.sources.json_input import load_json, records

__all__ = ["parse"]

KIND = "6Aika decision API"


def parse(data: bytes, url: str = "") -> list[Item]:
    """The decisions of a 6Aika answer; SourceError when it is none."""
    found = load_json(data, KIND)
    items: list[Item] = []
    for decision in records(found, KIND, "decisions", "value", "objects")[:MAX_ITEMS]:
        body = name_of(decision.get("DecisionMaker") or decision.get("Organization"))
        day = when(decision.get("MeetingDate") or decision.get("DecisionDate"))
        section = section_of(decision.get("Section"))
        title = one_line(decision.get("Subject") or decision.get("Title"))
        if not body or day is None or section is None or not title:
            continue
        diary = one_line(decision.get("DiaryNumber") or decision.get("CaseIDLabel"), 100) or None
        link = web_link(decision.get("Url") or decision.get("Permalink"), f"{url}#{section}")
        items.append(Item(body, day, section, title, diary, link))
    return items
