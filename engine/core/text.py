"""Rules for text that people type: evidence, names, titles, actors. Every value ends up in the
log, in receipts, in email subjects and in exports, so each is bounded and fit for one line (a
reason may have several lines). This is the one place these rules live: the agreement file's
schema, the evidence of an event and the actor all use them.

A line may not hold a control character (category Cc: CR, LF, tab, NUL, NEL U+0085…), a Unicode
line or paragraph separator (Zl, Zp: U+2028, U+2029) or an undecodable byte (a lone surrogate,
which is how Python passes bytes that are not UTF-8 in arguments and the environment). Any of
these in a title or a name would break an email header, and with it every email of a round.
"""

from __future__ import annotations

import unicodedata
from dataclasses import replace

from engine.core.evidence import Evidence, mixed_scripts
from engine.errors import InvalidInput

__all__ = [
    "ACTOR_MAX",
    "BODY_MAX",
    "NAME_MAX",
    "PATH_MAX",
    "TITLE_MAX",
    "check_evidence_text",
    "check_line",
    "length_problem",
    "line_problem",
    "signatory_problem",
]

NAME_MAX = 200  # a party's, a contact's, a coordinator's or a signatory's name
TITLE_MAX = 200  # the agreement's title, a signatory's title
BODY_MAX = 100  # a body's or a workflow's name (it must fit in a 200-character reference)
ACTOR_MAX = 200  # who records (--by, RATIFY_ACTOR, the OS user)
PATH_MAX = 500  # a path written in the agreement file

# Evidence goes into the log, receipts and exports: bounded, and one line (a reason may have more).
_MAX_LENGTH = {"ref": 200, "reason": 2000, "signatory": NAME_MAX, "title": TITLE_MAX, "diary": 100}


def _codepoint(ch: str) -> str:
    name = unicodedata.name(ch, "")
    return f"U+{ord(ch):04X}" + (f" {name}" if name else "")


def line_problem(value: str, *, lines: bool = False) -> str | None:
    """What makes ``value`` unfit to be one line of text (``lines``: plain LF line breaks are
    allowed), as the end of a sentence ("contains …; …"), or None when it is fit."""
    for ch in value:
        category = unicodedata.category(ch)
        if category == "Cs":
            return (
                "contains bytes that are not valid UTF-8; write it as UTF-8 text "
                "(check the terminal's or the file's encoding)"
            )
        if lines and ch == "\n":
            continue
        if category in ("Zl", "Zp"):
            fix = "use plain line breaks" if lines else "write it on one line"
            return f"contains a Unicode line or paragraph separator ({_codepoint(ch)}); {fix}"
        if category == "Cc":
            if lines:
                return (
                    f"contains a tab or another control character ({_codepoint(ch)}); "
                    "write plain text (line breaks are fine)"
                )
            return (
                f"contains a line break or another control character ({_codepoint(ch)}); "
                "write it on one line"
            )
    return None


def length_problem(value: str, limit: int) -> str | None:
    """Why ``value`` is too long, or None."""
    if len(value) > limit:
        return f"is longer than {limit} characters ({len(value)}); shorten it"
    return None


def signatory_problem(name: str) -> str | None:
    """Why ``name`` cannot be a signatory's name (its letters mix scripts), or None. A name that
    mixes, say, Latin with Cyrillic look-alikes (a Cyrillic A, U+0410, in a Latin name) could
    pass for another person's, so it is refused wherever a signatory is named."""
    scripts = mixed_scripts(name)
    if not scripts:
        return None
    (main, _), *others = scripts
    odd = "; ".join(
        f"{script.title()}: " + ", ".join(f"{ch!r} ({_codepoint(ch)})" for ch in letters)
        for script, letters in others
    )
    return (
        f"mixes {main.title()} letters with letters of another script ({odd}); write every "
        "letter of the name in one script (a Cyrillic '\u0410' looks like a Latin 'A' but is "
        "another letter)"
    )


def check_line(value: str, field: str, *, limit: int) -> str:
    """``value`` stripped, if it is one line of at most ``limit`` characters; else InvalidInput
    naming the input with a marker (``{opt.by}``), which each interface words its own way."""
    problem = line_problem(value)
    stripped = value.strip()
    if problem is None and len(stripped) > limit:
        problem = f"is {len(stripped)} characters long; keep it to {limit}"
    if problem is not None:
        raise InvalidInput(f"{{opt.{field}}} {problem}", field=field)
    return stripped


def check_evidence_text(evidence: Evidence) -> Evidence:
    """Evidence as typed, made fit for the log, receipts and exports: one bounded line each (a
    reason may have several lines), and a signatory's name in one script. The runtime asks this
    of new input; replay does not, so a rule tightened later never fails an old log."""
    for key, limit in _MAX_LENGTH.items():
        value = getattr(evidence, key)
        if value is None:
            continue
        if key == "reason":
            value = value.replace("\r\n", "\n")
            evidence = replace(evidence, reason=value)
        problem = line_problem(value, lines=key == "reason")
        if problem is None and key == "signatory":
            problem = signatory_problem(value)
        if problem is not None:
            raise InvalidInput(f"{{opt.{key}}} {problem}", field=key)
        if len(value.strip()) > limit:
            raise InvalidInput(
                f"{{opt.{key}}} is {len(value.strip())} characters long; keep it to {limit} "
                "(the full text belongs in the minutes)",
                field=key,
            )
    return evidence
