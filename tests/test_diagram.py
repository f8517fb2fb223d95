"""The workflow picture: every state and move of each shipped workflow drawn once, the current
state marked in more than colour, text escaped and legible, nothing fetched, the same string for
the same input; and, in chromium, the labels fit their boxes and overlap nothing."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import Page

from engine.interfaces.web.diagram import workflow_svg
from engine.runtime import workflows
from tests.browser_support import check_axe, launch_chromium
from workflows import WorkflowDefinition

SVG = "{http://www.w3.org/2000/svg}"
SHIPPED = {d.name: d for d in workflows()}
EACH = pytest.mark.parametrize("definition", SHIPPED.values(), ids=list(SHIPPED))


def _tree(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def _states(root: ET.Element) -> dict[str, ET.Element]:
    found: dict[str, ET.Element] = {}
    for g in root.iter(f"{SVG}g"):
        if "state" in g.get("class", "").split():
            name = g.get("data-state")
            assert name is not None
            assert name not in found, f"{name} is drawn twice"
            found[name] = g
    return found


def _rect(g: ET.Element) -> ET.Element:
    rect = g.find(f"{SVG}rect")
    assert rect is not None
    return rect


def _text(element: ET.Element) -> str:
    """The words of ``element``'s texts, a label's lines joined by spaces."""
    return " ".join(
        " ".join(span.text or "" for span in t) if len(t) else t.text or ""
        for t in element.iter(f"{SVG}text")
    )


def _edges(root: ET.Element) -> dict[tuple[str, str], list[str]]:
    """(from, to) → the events on its label."""
    found: dict[tuple[str, str], list[str]] = {}
    for g in root.iter(f"{SVG}g"):
        if g.get("class") == "edge":
            key = (g.get("data-from", ""), g.get("data-to", ""))
            assert key not in found, f"{key} is drawn twice"
            found[key] = _text(g).split(", ")
    return found


def test_the_shipped_workflows_are_all_here() -> None:
    assert set(SHIPPED) == {"municipality", "regional-council", "wellbeing-county"}


@EACH
def test_every_state_is_one_labelled_box(definition: WorkflowDefinition) -> None:
    labels = {s: f"State {i}" for i, s in enumerate(definition.states)}
    for given in (None, labels):
        root = _tree(workflow_svg(definition, labels=given, title="t"))
        states = _states(root)
        assert list(states) == list(definition.states)
        for name, g in states.items():
            assert _text(g) == (given or {}).get(name, name)
            assert len(g.findall(f"{SVG}rect")) == 1


@EACH
def test_every_transition_is_an_edge(definition: WorkflowDefinition) -> None:
    edges = _edges(_tree(workflow_svg(definition, title="t")))
    expected: dict[tuple[str, str], set[str]] = {}
    for t in definition.transitions:
        for source in t.sources:
            expected.setdefault((source, t.dest or source), set()).add(t.event)
    assert {pair: set(events) for pair, events in edges.items()} == expected
    # The self-loop (one of several signatures) is a loop, the others end in the arrowhead.
    assert ("awaiting_signature", "awaiting_signature") in edges


@EACH
def test_states_run_left_to_right_in_layers(definition: WorkflowDefinition) -> None:
    states = _states(_tree(workflow_svg(definition, title="t")))
    x = {name: float(_rect(g).get("x", "")) for name, g in states.items()}
    assert min(x, key=lambda s: x[s]) == definition.initial
    for t in definition.transitions:
        for source in t.sources:
            if t.dest is None:
                continue
            if t.event == "return":  # the one move back: drawn right to left
                assert x[t.dest] < x[source]
            else:
                assert x[source] < x[t.dest], f"{t.event}: {source} → {t.dest}"
    assert x["board_review"] < x["council_review"] < x["legal_force_wait"] < x["appeal_pending"]
    assert x["rejected"] == pytest.approx(x["legal_force_wait"], abs=80)  # the same layer


@EACH
def test_only_the_current_state_is_marked_and_not_by_colour_alone(
    definition: WorkflowDefinition,
) -> None:
    plain = _states(_tree(workflow_svg(definition, title="t")))
    assert not any(g.get("aria-current") for g in plain.values())
    for current in definition.states:
        states = _states(_tree(workflow_svg(definition, current, title="t")))
        marked = [name for name, g in states.items() if g.get("aria-current") == "step"]
        assert marked == [current]
        here, other = states[current], states[next(s for s in states if s != current)]
        assert _text(here).startswith("● ")
        assert not _text(other).startswith("●")
        assert float(_rect(here).get("stroke-width", "")) > float(
            _rect(other).get("stroke-width", "")
        )


def test_an_unknown_current_state_is_refused() -> None:
    with pytest.raises(ValueError, match="'nowhere' is not a state"):
        workflow_svg(SHIPPED["municipality"], "nowhere", title="t")


def test_each_picture_has_ids_of_its_own() -> None:
    municipality = SHIPPED["municipality"]
    pictures = [
        workflow_svg(municipality, title="One"),
        workflow_svg(municipality, "draft", title="One"),
        workflow_svg(SHIPPED["wellbeing-county"], title="One"),
    ]
    markers = []
    for svg in pictures:
        root = _tree(svg)
        (marker,) = root.iter(f"{SVG}marker")
        markers.append(marker.get("id"))
        (title,) = root.findall(f"{SVG}title")
        assert root.get("aria-labelledby") == title.get("id")
        assert root.get("role") == "img"
        # Every arrow points at this picture's own marker.
        ends = {p.get("marker-end") for p in root.iter(f"{SVG}path") if p.get("marker-end")}
        assert ends == {f"url(#{marker.get('id')})"}
    assert len(set(markers)) == len(markers)
    mine = workflow_svg(municipality, title="One", id_prefix="second")
    assert 'id="second-arrow"' in mine
    with pytest.raises(ValueError, match="id_prefix"):
        workflow_svg(municipality, title="One", id_prefix='x" onload="')


def test_the_same_input_draws_the_same_string() -> None:
    for definition in SHIPPED.values():
        labels = {"draft": "Valmistelussa"}
        first = workflow_svg(definition, "council_review", labels=labels, title="T")
        assert workflow_svg(definition, "council_review", labels=dict(labels), title="T") == first


def test_hostile_labels_are_escaped() -> None:
    hostile = "<&\"'>\x00</text><script>alert(1)</script>"
    svg = workflow_svg(
        SHIPPED["municipality"],
        "draft",
        labels={"draft": hostile},
        event_labels={"submit": hostile},
        title=hostile,
    )
    root = _tree(svg)  # parses: nothing broke out of its element
    assert "<script" not in svg
    clean = hostile.replace("\x00", "\ufffd")
    assert _text(_states(root)["draft"]) == "● " + clean
    assert root.findtext(f"{SVG}title") == clean
    assert _edges(root)[("draft", "board_review")] == [clean]


@EACH
def test_nothing_is_fetched_or_run(definition: WorkflowDefinition) -> None:
    svg = workflow_svg(definition, definition.initial, title="t")
    assert not svg.startswith("<?xml")
    for forbidden in ("href", "<script", "url(http", "@import", "<image", "<foreignObject", " on"):
        assert forbidden not in svg
    assert re.findall(r"https?://[^\"]+", svg) == ["http://www.w3.org/2000/svg"]  # the namespace


@dataclass(frozen=True)
class Move:
    event: str
    sources: tuple[str, ...]
    dest: str | None


@dataclass(frozen=True)
class Tiny:
    key: str
    initial: str
    states: tuple[str, ...]
    transitions: tuple[Move, ...]


def test_the_width_follows_the_layers() -> None:
    tiny = Tiny("tiny@1", "open", ("open", "closed"), (Move("close", ("open",), "closed"),))
    width = {
        name: float(_tree(workflow_svg(d, title="t")).get("width", ""))
        for name, d in (("tiny", tiny), ("municipality", SHIPPED["municipality"]))
    }
    assert width["tiny"] < 400 < 3 * width["tiny"] < width["municipality"]
    root = _tree(workflow_svg(tiny, title="t"))
    assert root.get("viewBox") == f"0 0 {root.get('width')} {root.get('height')}"


def _luminance(colour: str) -> float:
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _contrast(a: str, b: str) -> float:
    light, dark = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


@EACH
def test_text_meets_wcag_aa_contrast(definition: WorkflowDefinition) -> None:
    root = _tree(workflow_svg(definition, "awaiting_signature", title="t"))
    background = root.find(f"{SVG}rect")
    assert background is not None
    page = background.get("fill", "")
    checked = 0
    for g in root.iter(f"{SVG}g"):
        box = g.find(f"{SVG}rect")
        behind = box.get("fill", "") if box is not None else page
        for text in g.findall(f"{SVG}text"):
            assert _contrast(text.get("fill", ""), behind) >= 4.5, ET.tostring(g)
            checked += 1
        if box is not None:  # the border against the page: 3:1 for graphics (1.4.11)
            assert _contrast(box.get("stroke", ""), page) >= 3
    assert checked > len(definition.states)


# --- in the browser ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def page() -> Iterator[Page]:
    with launch_chromium() as browser:
        yield browser.new_page()  # each test sets the whole content: one page serves them all


LONG = {
    "draft": "Valmistelussa",
    "board_review": "Kunnanhallituksen käsittelyssä",
    "council_review": "Valtuuston käsittelyssä",
    "legal_force_wait": "Odottaa päätöksen lainvoimaisuutta",
    "appeal_pending": "Valitus vireillä hallinto-oikeudessa",
    "awaiting_signature": "Odottaa allekirjoitusta",
    "signed": "Allekirjoitettu",
    "rejected": "Hylätty",
}

# For each picture: each state's text box and its rectangle, and the box of every edge label.
MEASURE = """() => [...document.querySelectorAll("svg")].map((svg) => {
  const box = (e) => { const b = e.getBBox(); return [b.x, b.y, b.x + b.width, b.y + b.height]; };
  return {
    current: svg.querySelector("[aria-current]")?.dataset.state ?? null,
    states: [...svg.querySelectorAll("g.state")].map((g) => ({
      name: g.dataset.state, rect: box(g.querySelector("rect")), text: box(g.querySelector("text")),
    })),
    labels: [...svg.querySelectorAll("g.edge text")].map((t) => ({
      name: t.textContent, box: box(t),
    })),
  };
})"""


def _inside(inner: list[float], outer: list[float], pad: float) -> bool:
    return (
        inner[0] >= outer[0] + pad
        and inner[1] >= outer[1]
        and inner[2] <= outer[2] - pad
        and inner[3] <= outer[3]
    )


def _overlap(a: list[float], b: list[float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


@EACH
@pytest.mark.parametrize("labels", [None, LONG], ids=["names", "finnish"])
def test_labels_fit_their_boxes_and_overlap_nothing(
    page: Page, definition: WorkflowDefinition, labels: dict[str, str] | None
) -> None:
    # One picture with each state current (its label is bold and marked, so wider), on one page.
    pictures = "".join(
        workflow_svg(definition, current, labels=labels, title="t") for current in definition.states
    )
    page.set_content(f'<!doctype html><html lang="fi"><body>{pictures}</body></html>')
    measured = page.evaluate(MEASURE)
    assert [m["current"] for m in measured] == list(definition.states)
    for picture in measured:
        rects = [s["rect"] for s in picture["states"]]
        for state in picture["states"]:
            assert _inside(state["text"], state["rect"], pad=4), (picture["current"], state)
        for i, label in enumerate(picture["labels"]):
            assert not any(_overlap(label["box"], r) for r in rects), (picture["current"], label)
            for other in picture["labels"][i + 1 :]:
                assert not _overlap(label["box"], other["box"]), (label, other)


def test_two_pictures_on_a_page_pass_axe(page: Page) -> None:
    one = workflow_svg(SHIPPED["municipality"], "draft", title="Forssa: where it is now")
    two = workflow_svg(SHIPPED["regional-council"], labels=LONG, title="Häme: the process")
    page.set_content(
        '<!doctype html><html lang="en"><head><title>Workflows</title></head>'
        f"<body><main><h1>Workflows</h1>{one}{two}</main></body></html>"
    )
    names = page.evaluate(
        "() => [...document.querySelectorAll('svg')].map("
        "(s) => document.getElementById(s.getAttribute('aria-labelledby')).textContent)"
    )
    assert names == ["Forssa: where it is now", "Häme: the process"]
    check_axe(page, context="two workflow pictures")
