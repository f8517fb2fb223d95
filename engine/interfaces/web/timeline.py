"""The forecast drawn as an inline SVG timeline: a row a party, from today to the earliest day
it can have signed, with its steps marked (a decision on a known meeting filled, an assumed one
hollow; legal force a diamond; the signature a square), the deadline and the round's earliest
entry into force as vertical lines, and the party holding the round back drawn heavier.

No script, no font, nothing fetched; the same input draws the same string. The page says the
same in words beside it (a table of the steps), so the picture is a summary for the eye and its
title one sentence for a screen reader.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from xml.sax.saxutils import escape

from engine.runtime import PartyForecast, RoundForecast

__all__ = ["MAX_ROWS", "TimelineWords", "timeline_svg"]

MAX_ROWS = 40  # the latest parties drawn; the table beside it lists every one
WIDTH, LABEL, RIGHT, TOP, ROW = 760, 190, 24, 66, 24
INK, SOFT, HOLD, LATE, LINE = "#1b1b1b", "#6b6b6b", "#8a1c1c", "#b35900", "#c8c8c8"


@dataclass(frozen=True)
class TimelineWords:
    """What the picture says, in the page's language."""

    title: str  # one sentence: what the picture shows
    today: str
    deadline: str
    in_force: str
    steps: Mapping[str, str]  # decision, legal_force, signed: as a mark's tooltip names it
    month: Callable[[date], str]  # an axis label: the month of a date


def _x(day: date, start: date, span: int) -> float:
    return LABEL + (day - start).days / span * (WIDTH - LABEL - RIGHT)


def _label(text: str, limit: int = 26) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _months(start: date, end: date) -> list[date]:
    found, day = [], date(start.year, start.month, 1)
    while day <= end:
        if day > start:
            found.append(day)
        day = date(day.year + (day.month == 12), day.month % 12 + 1, 1)
    return found


def _rows(found: RoundForecast) -> list[PartyForecast]:
    dated = [p for p in found.parties if p.signed_by is not None]
    dated.sort(key=lambda p: (p.signed_by or date.min, p.party), reverse=True)
    return dated[:MAX_ROWS]


def timeline_svg(
    found: RoundForecast,
    names: Mapping[str, str],
    today: date,
    deadline: date | None,
    words: TimelineWords,
) -> str:
    """The picture, or "" when no party has a date to draw."""
    rows = _rows(found)
    if not rows:
        return ""
    ends: Sequence[date] = [p.signed_by for p in rows if p.signed_by is not None]
    end = max([*ends, *([deadline] if deadline and deadline >= today else [])])
    span = max((end - today).days, 1) + 7  # a week's room after the last mark
    height = TOP + ROW * len(rows) + 16
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="forecast-title" '
        f'viewBox="0 0 {WIDTH} {height}" width="100%" class="timeline">',
        f'<title id="forecast-title">{escape(words.title)}</title>',
        f'<g font-family="sans-serif" font-size="11" fill="{SOFT}">',
    ]
    for month in _months(today, end):
        x = _x(month, today, span)
        out.append(
            f'<line x1="{x:.1f}" y1="{TOP - 8}" x2="{x:.1f}" y2="{height - 10}" stroke="{LINE}"/>'
        )
        out.append(f'<text x="{x + 3:.1f}" y="{TOP - 12}">{escape(words.month(month))}</text>')
    out.append("</g>")

    def vertical(day: date, colour: str, text: str, y: int, dash: str = "") -> None:
        x = _x(day, today, span)
        style = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(
            f'<line x1="{x:.1f}" y1="{y + 4}" x2="{x:.1f}" y2="{height - 10}" '
            f'stroke="{colour}" stroke-width="1.5"{style}/>'
        )
        anchor = "end" if x > WIDTH - 120 else "start"
        out.append(
            f'<text x="{x + (-3 if anchor == "end" else 3):.1f}" y="{y}" font-family="sans-serif" '
            f'font-size="11" fill="{colour}" text-anchor="{anchor}">{escape(text)}</text>'
        )

    # Each vertical line's label on a line of its own above the months: none overlaps another.
    vertical(today, SOFT, words.today, 12)
    if found.in_force is not None:
        vertical(found.in_force, HOLD, words.in_force, 26, "2 2")
    if deadline is not None and deadline >= today:
        vertical(deadline, LATE, words.deadline, 40, "5 3")
    for n, party in enumerate(rows):
        y = TOP + ROW * n + ROW // 2
        critical = party.party == found.critical
        colour = HOLD if critical else (LATE if party.late else INK)
        weight = ' font-weight="bold"' if critical else ""
        name = _label(names.get(party.party, party.party))
        out.append(
            f'<text x="{LABEL - 8}" y="{y + 4}" text-anchor="end" font-family="sans-serif" '
            f'font-size="12" fill="{colour}"{weight}>{escape(name)}</text>'
        )
        assert party.signed_by is not None
        x0, x1 = _x(today, today, span), _x(party.signed_by, today, span)
        out.append(
            f'<line x1="{x0:.1f}" y1="{y}" x2="{x1:.1f}" y2="{y}" stroke="{colour}" '
            f'stroke-width="{4 if critical else 2}"/>'
        )
        for step in party.steps:
            x = _x(step.on, today, span)
            what = " ".join(w for w in (words.steps.get(step.what, ""), step.body or "") if w)
            tip = f"<title>{escape(name)}: {escape(what)} {step.on:%d.%m.%Y}</title>"
            if step.what == "decision":
                fill = colour if step.known else "#ffffff"
                out.append(
                    f'<circle cx="{x:.1f}" cy="{y}" r="5" fill="{fill}" stroke="{colour}" '
                    f'stroke-width="1.5">{tip}</circle>'
                )
            elif step.what == "legal_force":
                points = f"{x:.1f},{y - 6} {x + 6:.1f},{y} {x:.1f},{y + 6} {x - 6:.1f},{y}"
                out.append(f'<polygon points="{points}" fill="{colour}">{tip}</polygon>')
            else:
                out.append(
                    f'<rect x="{x - 5:.1f}" y="{y - 5}" width="10" height="10" '
                    f'fill="{colour}">{tip}</rect>'
                )
    out.append("</svg>")
    return "".join(out)
