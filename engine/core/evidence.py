"""What an event must carry: decision references, reasons and signatories, parsed and checked."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from engine.errors import InvalidInput

__all__ = ["DecisionRef", "Evidence", "Signature", "parse_decision_ref", "same_person"]

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
        """Whether it is ``body``'s decision (case-insensitive; an organisation name may lead)."""
        mine, theirs = self.body.casefold(), body.casefold()
        return mine == theirs or mine.endswith(" " + theirs)


def parse_decision_ref(text: str) -> DecisionRef:
    match = _REF.match(text)
    if not match:
        raise InvalidInput(
            f"decision reference {text!r} is not of the form 'Body dd.mm.yyyy § n', "
            "for example 'Kunnanhallitus 04.12.2026 § 198'"
        )
    try:
        decided = date(int(match["y"]), int(match["m"]), int(match["d"]))
    except ValueError:
        raise InvalidInput(f"decision reference {text!r} has no such date") from None
    section = int(match["n"])
    if section < 1:
        raise InvalidInput(f"decision reference {text!r}: the section (§) must be 1 or more")
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


def same_person(a: str, b: str) -> bool:
    """Whether two written names are one signatory's: case and spacing do not matter."""
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()
