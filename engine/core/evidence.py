"""What an event must carry: decision references, reasons and signatories, parsed and checked."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date

from engine.errors import InvalidInput
from workflows.definition import names_body

__all__ = [
    "DecisionRef",
    "Evidence",
    "Signature",
    "mixed_scripts",
    "parse_decision_ref",
    "person_key",
    "same_person",
]

_REF = re.compile(
    r"^\s*(?P<body>\S.*?)\s+(?P<d>\d{1,2})\.(?P<m>\d{1,2})\.(?P<y>\d{4})\s*§\s*(?P<n>\d+)\s*$"
)


@dataclass(frozen=True)
class DecisionRef:
    """A decision as it is cited in Finnish minutes: ``Kunnanhallitus 04.12.2026 § 198``."""

    body: str
    decided: date
    section: int

    def __str__(self) -> str:
        return f"{self.body} {self.decided:%d.%m.%Y} § {self.section}"

    def names(self, body: str) -> bool:
        """Whether it is ``body``'s decision (case-insensitive; an organisation name may lead; a
        Swedish name in its definite form, "Kommunstyrelsen" for "Kommunstyrelse")."""
        return names_body(self.body, body)


def parse_decision_ref(text: str) -> DecisionRef:
    match = _REF.match(text)
    if not match:
        raise InvalidInput(
            f"decision reference {text!r} is not of the form 'Body dd.mm.yyyy § n', "
            "for example 'Kunnanhallitus 04.12.2026 § 198'",
            field="ref",
        )
    try:
        decided = date(int(match["y"]), int(match["m"]), int(match["d"]))
    except ValueError:
        raise InvalidInput(f"decision reference {text!r} has no such date", field="ref") from None
    section = int(match["n"])
    if section < 1:
        raise InvalidInput(
            f"decision reference {text!r}: the section (§) must be 1 or more", field="ref"
        )
    return DecisionRef(match["body"].strip(), decided, section)


@dataclass(frozen=True)
class Evidence:
    """What the person recording an event says about it. Which fields an event needs: core.py."""

    ref: str | None = None
    reason: str | None = None
    signatory: str | None = None
    title: str | None = None
    diary: str | None = None  # the party's own diary number, opaque: formats differ by system


@dataclass(frozen=True)
class Signature:
    """A signatory: who signed, or who is authorised to sign, and in which capacity."""

    name: str
    title: str

    def __str__(self) -> str:
        return f"{self.name} ({self.title})"


# Invisible code points that are not format characters (Cf) but are default-ignorable all the same
# (Unicode's DerivedCoreProperties): combining grapheme joiner, Hangul fillers, Khmer inherent
# vowels, Mongolian free variation selectors, variation selectors.
_IGNORABLE = frozenset(
    "\u034f\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180f\u3164\uffa0"
    + "".join(map(chr, range(0xFE00, 0xFE10)))
    + "".join(map(chr, range(0xE0100, 0xE01F0)))
)
# What people type for an apostrophe (U+2019, U+02BC…): O'Brien is one name however written.
_APOSTROPHES = frozenset("\u2018\u2019\u201b\u02bc\u02bb\u02b9\u0060\u00b4\u2032")


def _visible(text: str) -> str:
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cf" and ch not in _IGNORABLE)


def person_key(name: str) -> str:
    """What identifies a written name: NFKC-normalised (fullwidth and other compatibility forms
    become plain letters), without format characters (zero-width space and joiner, soft hyphen,
    bidi marks, BOM…) or other invisible ones, case-folded, without whitespace of any kind, and
    with every dash written '-' and every apostrophe "'"."""
    folded = unicodedata.normalize("NFKC", _visible(name))
    folded = unicodedata.normalize("NFKC", _visible(folded).casefold())
    key = []
    for ch in folded:
        if ch.isspace():
            continue
        if unicodedata.category(ch) == "Pd":
            ch = "-"
        elif ch in _APOSTROPHES:
            ch = "'"
        key.append(ch)
    return "".join(key)


def same_person(a: str, b: str) -> bool:
    """Whether two written names are one signatory's: case, spacing, invisible characters and
    compatibility forms (fullwidth letters…) do not matter (:func:`person_key`)."""
    return person_key(a) == person_key(b)


# The script of a letter is the first word of its Unicode name ("LATIN SMALL LETTER A WITH
# DIAERESIS"); Python's unicodedata has no script property. The scripts of Chinese, Japanese and
# Korean names mix by nature, so they count as one.
_SCRIPT_GROUP = {
    "HIRAGANA": "CJK",
    "KATAKANA": "CJK",
    "HANGUL": "CJK",
    "BOPOMOFO": "CJK",
    "IDEOGRAPHIC": "CJK",
    "HENTAIGANA": "CJK",
    "TURNED": "LATIN",  # Ⅎ, the Claudian letter
    "ROMAN": "LATIN",  # Ↄ
}
_LETTER = frozenset({"Lu", "Ll", "Lt", "Lo"})  # not Lm (modifier letters): apostrophe-like


def _script(ch: str) -> str | None:
    if unicodedata.category(ch) not in _LETTER:
        return None  # spaces, hyphens, apostrophes, digits, combining marks: any script's
    name = unicodedata.name(ch, "")
    if not name:
        return None
    word = name.split(" ", 1)[0]
    return _SCRIPT_GROUP.get(word, word)


def mixed_scripts(name: str) -> list[tuple[str, str]]:
    """The scripts of ``name``'s letters with the letters of each, most used first, when there
    are two or more; an empty list when the name is written in one script (or has no letters).
    Compatibility forms count as the letters they stand for (a fullwidth A is Latin)."""
    letters: dict[str, list[str]] = {}
    for ch in unicodedata.normalize("NFKC", name):
        script = _script(ch)
        if script is not None:
            letters.setdefault(script, []).append(ch)
    if len(letters) < 2:
        return []
    ranked = sorted(letters.items(), key=lambda item: -len(item[1]))  # stable: ties keep order
    return [(script, "".join(dict.fromkeys(chars))) for script, chars in ranked]
