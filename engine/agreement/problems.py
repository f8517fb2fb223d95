"""How pydantic's errors about an agreement file are worded: each named by the file's own keys
(a party by its id), with what to write instead; union members, validators and class names, which
are no words of the file, left out."""

from __future__ import annotations

import re
from typing import Any

__all__ = ["describe", "key_name", "one_branch", "shown"]

_FIXES = {
    "missing": "add it",
    "extra_forbidden": "remove it or check its spelling",
    "string_pattern_mismatch": "use lowercase letters, digits and single hyphens, like 'hattula'",
    "literal_error": "use one of the values listed",
    "too_short": "give at least one",
    "too_long": "list fewer",
    "string_too_short": "it must not be empty",
}


def _is_union_tag(part: Any) -> bool:
    """pydantic names union members and validators as path parts ('str', '_BodyEntry',
    'function-after[check(), constrained-str]'); they are no keys of the file."""
    return isinstance(part, str) and (
        part[:1].isupper()
        or part[:1] == "_"
        or part in ("str", "[key]")
        or part.startswith(("constrained-", "function-", "dict[", "list["))
    )


def _file_keys(loc: tuple[int | str, ...], raw: dict[str, Any]) -> list[int | str]:
    """The keys of the file in pydantic's ``loc``: a union tag is dropped unless the file has
    such a key (a key of the file may well begin with a capital)."""
    keys: list[int | str] = []
    node: Any = raw
    for part in loc:
        if _is_union_tag(part) and not (isinstance(node, dict) and part in node):
            continue
        keys.append(part)
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            node = None
    return keys


def one_branch(errors: list[Any], raw: dict[str, Any]) -> list[Any]:
    """pydantic's errors without those of a union's other branch: where a key may be a string or
    a table (``title``, ``document``), "should be a valid string" is no news beside what is wrong
    with the table given, nor "should be a valid dictionary" beside what is wrong with a string."""
    keys = [tuple(_file_keys(e["loc"], raw)) for e in errors]
    kept = []
    for error, loc in zip(errors, keys, strict=True):
        other = any(
            o is not error and k[: len(loc)] == loc and o["type"] not in _BRANCH
            for o, k in zip(errors, keys, strict=True)
        )
        if error["type"] in _BRANCH and other:
            continue
        both = {o["type"] for o, k in zip(errors, keys, strict=True) if k == loc} >= set(_BRANCH)
        if both and error["type"] == "string_type":
            continue  # said once, below
        kept.append(error | {"type": "text_or_table"} if both else error)
    return kept


_BRANCH = ("string_type", "dict_type")


def describe(error: Any, raw: dict[str, Any]) -> str:
    loc = _file_keys(error["loc"], raw)
    parts: list[str] = []
    node: Any = raw
    for part in loc:
        if isinstance(part, int):
            ident = (
                node[part].get("id")
                if isinstance(node, list) and 0 <= part < len(node) and isinstance(node[part], dict)
                else None
            )
            named = isinstance(ident, str) and parts[-1:] == ["parties"]
            label = f" (id {ident!r})" if named else ""
            if parts:
                parts[-1] += f"[{part}]{label}"
            else:
                parts.append(f"[{part}]")
        else:
            parts.append(key_name(str(part)))
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            node = None
    where = ".".join(parts) or "(top level)"
    kind = error["type"]
    message = error["msg"]
    fix = _FIXES.get(kind)
    if kind == "missing":
        message = "is required"
    elif kind == "extra_forbidden":
        message = "is not a known key"
        if len(loc) == 1:
            fix = (
                "remove it; the tables are [agreement], [coordinator], [[parties]] and [reminders]"
            )
    elif kind == "text_or_table":
        message = "must be a text, or a table of one per language"
        fix = 'write it as "…", or as { fi = "…", sv = "…" }'
    elif kind == "string_pattern_mismatch":
        message = f"{shown(error['input'])} is not a valid id"
    elif kind == "value_error":
        message = message.removeprefix("Value error, ")
        if loc and loc[-1] == "email":
            fix = "write an address like name@example.fi"
    elif message:
        message = message[0].lower() + message[1:]
        message = _INSTANCE.sub("", message)  # pydantic's class names are no words of the file
        if kind == "model_type":
            fix = "write it as a table"
    return f"{where}: {message}" + (f"; {fix}" if fix else "")


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_INSTANCE = re.compile(r" or instance of \w+")


def key_name(key: str) -> str:
    """A key as TOML writes it: bare when it can be, else quoted (its characters escaped)."""
    if _BARE_KEY.match(key) and len(key) <= 60:
        return key
    text = repr(key)[1:-1]
    return '"' + (text if len(text) <= 60 else text[:57] + "…") + '"'


def shown(value: Any) -> str:
    """``value`` as a message quotes it: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "…"
