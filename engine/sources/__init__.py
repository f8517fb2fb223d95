"""Decision sources: the published minutes of a party's bodies, read by pure adapters (bytes in,
items out) — Dynasty's RSS, CloudNC's OData, the 6Aika cities' decision APIs, and a manual
source, what a party pastes — and the match of an item with the decision a party's step waits on.
"""

from __future__ import annotations

from collections.abc import Callable

from engine.sources import cloudnc, dynasty, manual, sixaika
from engine.sources.item import MAX_BYTES, Item, Source, SourceError
from engine.sources.manual import web_address_problem
from engine.sources.match import Wanted, item_key, matches

__all__ = [
    "KINDS",
    "MAX_BYTES",
    "Item",
    "Source",
    "SourceError",
    "Wanted",
    "item_key",
    "matches",
    "parse",
    "web_address_problem",
]

# Each kind's adapter: (what was fetched, the source's address) → its items.
_ADAPTERS: dict[str, Callable[[bytes, str], list[Item]]] = {
    "dynasty": lambda data, url: dynasty.parse(data),
    "cloudnc": cloudnc.parse,
    "6aika": sixaika.parse,
    "manual": lambda data, url: manual.parse(data),
}
KINDS = tuple(_ADAPTERS)


def parse(kind: str, data: bytes, url: str = "") -> list[Item]:
    """The items ``data`` holds, read as ``kind``'s format; SourceError when it cannot be."""
    adapter = _ADAPTERS.get(kind)
    if adapter is None:
        raise SourceError(f"unknown source kind {kind!r}; the kinds are {', '.join(KINDS)}")
    return adapter(data, url)
