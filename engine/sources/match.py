"""Which published item is the decision a party's step waits on: pure, values in and out."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date

from engine.sources.item import Item

__all__ = ["Wanted", "folded", "item_key", "matches", "same_title"]


@dataclass(frozen=True)
class Wanted:
    """What the party's pending step waits on: the agreement's title, its diary number where the
    party named one, the body that is to decide, and the day the step began."""

    title: str
    diary: str | None
    body: str
    since: date


def folded(text: str) -> str:
    """A text as compared: NFC, case-folded, its whitespace one space, dashes '-'."""
    text = unicodedata.normalize("NFC", text).casefold()
    text = "".join("-" if unicodedata.category(ch) == "Pd" else ch for ch in text)
    return " ".join(text.split())


def _same_body(written: str, body: str) -> bool:
    mine, theirs = folded(written), folded(body)
    return mine == theirs or mine.endswith(" " + theirs)  # "Hattulan kunnanhallitus"


def _same_diary(a: str, b: str) -> bool:
    return "".join(folded(a).split()) == "".join(folded(b).split())


def matches(item: Item, wanted: Wanted) -> bool:
    """Whether ``item`` is the body's decision on the agreement: its diary number or its title
    (the agreement's title in the item's), AND the body, AND a meeting on or after the day the
    step began. A look-alike name (mixed scripts) never matches."""
    if item.problem() is not None:
        return False
    if not _same_body(item.body, wanted.body) or item.meeting < wanted.since:
        return False
    if wanted.diary and item.diary and _same_diary(item.diary, wanted.diary):
        return True
    return same_title(item.title, wanted.title)


_WORD = re.compile(r"[^\W_]+(?:-[^\W_]+)*")
ENDING = (
    4  # the letters a Finnish inflection may change at a word's end (-nen → -sen, -us → -uksen)
)
STEM = 4  # a word shorter than this is compared whole


def _words(text: str) -> list[str]:
    return _WORD.findall(folded(text))


def same_title(published: str, title: str) -> bool:
    """Whether the agreement's ``title`` is in the ``published`` item's title, as minutes write
    it: inflected ("strategisen yhteistyösopimuksen hyväksyminen" for "strateginen
    yhteistyösopimus"). Each of the title's words must begin a word of the item's, in order, with
    at most its last :data:`ENDING` letters changed (a short word whole)."""
    wanted, words = _words(title), _words(published)
    if not wanted:
        return False
    at = 0
    for word in wanted:
        stem = word if len(word) <= STEM else word[: max(STEM, len(word) - ENDING)]
        while at < len(words) and not (
            words[at] == word if len(word) <= STEM else words[at].startswith(stem)
        ):
            at += 1
        if at == len(words):
            return False
        at += 1
    return True


def item_key(item: Item) -> str:
    """What makes two fetched items one decision: its body, meeting and section."""
    return f"{folded(item.body)}|{item.meeting.isoformat()}|{item.section}"
