"""Reading a JSON answer of a decision source: its size capped, its nesting bounded."""

from __future__ import annotations

import json
from typing import Any

from engine.sources.item import SourceError, check_size

__all__ = ["MAX_DEPTH", "load_json", "records"]

MAX_DEPTH = 32  # an API's answer nests some levels; a hostile one thousands


def _depth(data: bytes) -> int:
    """How deep the brackets of a JSON text nest (strings skipped), without parsing it."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_DEPTH:
                    return deepest
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def load_json(data: bytes, kind: str) -> Any:
    check_size(data, kind)
    if _depth(data) > MAX_DEPTH:
        raise SourceError(
            f"the {kind} answer nests more than {MAX_DEPTH} levels deep; it is no decision list"
        )
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise SourceError(f"the {kind} answer is not JSON ({exc})") from None


def records(found: Any, kind: str, *keys: str) -> list[dict[str, Any]]:
    """The list of objects under the first of ``keys`` the answer has (or the answer itself when
    it is a list); SourceError when there is none."""
    listed: Any = found
    if isinstance(found, dict):
        listed = next((found[k] for k in keys if k in found), None)
    if not isinstance(listed, list):
        names = ", ".join(f"`{k}`" for k in keys)
        raise SourceError(f"the {kind} answer has no list of items ({names})")
    return [r for r in listed if isinstance(r, dict)]
