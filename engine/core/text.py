"""Rules for text that people type: evidence, names, titles, actors. Every value ends up in the
log, in receipts and in exports, so each is bounded and fit for one line (a reason may have
several lines)."""

from __future__ import annotations

import re
from dataclasses import replace

from engine.core.evidence import Evidence
from engine.errors import InvalidInput

__all__ = ["check_evidence_text"]

_OPTION = {
    "ref": "--ref",
    "reason": "--reason",
    "signatory": "--signatory",
    "title": "--title",
    "diary": "--diary",
}
# Evidence goes into the log, receipts and exports: bounded, and one line (a reason may have more).
_MAX_LENGTH = {"ref": 200, "reason": 2000, "signatory": 200, "title": 200, "diary": 100}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_BUT_NEWLINE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")


def check_evidence_text(evidence: Evidence) -> Evidence:
    """Evidence as typed, made fit for the log, receipts and exports: one bounded line each (a
    reason may have several lines). The runtime asks this of new input; replay does not, so a
    rule tightened later never fails an old log."""
    for key in _OPTION:
        value = getattr(evidence, key)
        if value is None:
            continue
        if key == "reason":
            value = value.replace("\r\n", "\n")
            if _CONTROL_BUT_NEWLINE.search(value):
                raise InvalidInput(
                    "--reason contains a tab or another control character; write plain text "
                    "(line breaks are fine)"
                )
            evidence = replace(evidence, reason=value)
        elif _CONTROL.search(value):
            raise InvalidInput(
                f"{_OPTION[key]} contains a line break or another control character; "
                "write it on one line"
            )
        if len(value.strip()) > _MAX_LENGTH[key]:
            raise InvalidInput(
                f"{_OPTION[key]} is {len(value.strip())} characters long; keep it to "
                f"{_MAX_LENGTH[key]} (the full text belongs in the minutes)"
            )
    return evidence
