"""The pages' words in Finnish, Swedish and English, from ``templates/web/strings/*.toml``.

Each file holds one area's words (``common``, ``party``, ``coordinator``, ``auditor``…) as a
``[fi]``, ``[sv]`` and ``[en]`` table with the same keys; a key is used as ``t("key")`` in a
template, with ``{name}`` fields filled from keyword arguments. A key missing in a language, or
defined by two areas, is an error when the words load (and a test loads them).
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

__all__ = ["LANGUAGES", "Words", "pick_language", "words"]

LANGUAGES = ("fi", "sv", "en")
LANGUAGE_NAMES = {"fi": "suomeksi", "sv": "på svenska", "en": "in English"}


class Words:
    """One language's words: ``t("key", name=…)``."""

    def __init__(self, language: str, table: Mapping[str, str]) -> None:
        self.language = language
        self._table = table
        self._keys = frozenset(table)

    def __call__(self, key: str, **fields: object) -> str:
        text = self._table[key]  # a KeyError here is a template's typo: the tests render them all
        return text.format(**fields) if fields else text

    def keys(self) -> frozenset[str]:
        return self._keys

    def term(self, prefix: str, name: object) -> str:
        """ratify's words for a term (a state, an event, a field) when it has some, else the term
        as the log has it: a workflow of one's own may name its states and events as it likes."""
        return self._table.get(f"{prefix}{name}", str(name))


def _folder() -> Path:
    return Path(str(resources.files("ratify_templates") / "web" / "strings"))


@functools.cache
def _tables() -> dict[str, dict[str, str]]:
    merged: dict[str, dict[str, str]] = {lang: {} for lang in LANGUAGES}
    owner: dict[str, str] = {}
    for path in sorted(_folder().glob("*.toml")):
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        keys = {lang: set(data.get(lang, {})) for lang in LANGUAGES}
        every = set().union(*keys.values())
        for lang in LANGUAGES:
            if missing := sorted(every - keys[lang]):
                raise ValueError(f"{path.name}: [{lang}] lacks {', '.join(missing)}")
        for key in every:
            if key in owner:
                raise ValueError(f"{path.name}: {key!r} is defined in {owner[key]} already")
            owner[key] = path.name
        for lang in LANGUAGES:
            merged[lang].update({k: str(v) for k, v in data[lang].items()})
    return merged


@functools.cache
def words(language: str) -> Words:
    lang = language if language in LANGUAGES else "fi"
    return Words(lang, _tables()[lang])


def pick_language(asked: str | None, cookie: str | None, accept: str | None, default: str) -> str:
    """The language to show: asked for in the address, chosen before (cookie), the person's own
    (a contact's, the round's), or the browser's first known one."""
    for choice in (asked, cookie):
        if choice in LANGUAGES:
            return choice
    if default in LANGUAGES and default != "":
        return default
    for part in (accept or "").split(","):
        tag = part.split(";")[0].strip().lower()[:2]
        if tag in LANGUAGES:
            return tag
    return "fi"
