"""A workflow drawn as an inline SVG on the server: no script, no font, nothing fetched.

The layout is a small Sugiyama: the back edges that a depth-first walk from the initial state
finds (``return`` to ``draft``) are turned round, every state goes to the layer of its longest
path from the initial state, and an edge that spans several layers passes through a reserved slot
in each layer between, so it never crosses a state. Between two layers of states lies a column of
edge labels, each in a slot of its own, so no label overlaps another or a state. The order within
each column comes from a few barycentre sweeps, keeping the order with the fewest crossings.

The picture stands alone for a screen reader as its title (``role="img"``); the page around it
says in words where the party is. Everything is deterministic: the same input draws the same
string, down to the ids.
"""

from __future__ import annotations

import hashlib
import re
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Protocol
from xml.sax.saxutils import escape

__all__ = ["DrawableTransition", "DrawableWorkflow", "workflow_svg"]


class DrawableTransition(Protocol):
    @property
    def event(self) -> str: ...
    @property
    def sources(self) -> Sequence[str]: ...
    @property
    def dest(self) -> str | None: ...  # None: the state stays (a self-loop)


class DrawableWorkflow(Protocol):
    """What the picture needs of a workflow definition (``engine.runtime.workflow(...)[0]``)."""

    @property
    def key(self) -> str: ...  # "name@version"
    @property
    def initial(self) -> str: ...
    @property
    def states(self) -> Sequence[str]: ...
    @property
    def transitions(self) -> Sequence[DrawableTransition]: ...


# Sizes, in px. The widths of text are estimated (no font is measured on the server): 0.62 em a
# character is wider than the average of the usual sans-serif faces, bold included.
FONT, EDGE_FONT, EM = 13, 11, 0.62
LINE, PAD_X, PAD_Y = 17, 12, 9
WRAP = 22  # characters on a line of a state's label
MIN_NODE = 80
MARGIN, GAP, SPACING = 16, 30, 10
PORT = 9  # between two edges that meet a state on the same side
LABEL_SLOT, PASS_SLOT = 20, 8  # the height of an edge's slot with its label, and without
LOOP = 26  # the room above a state for its self-loop
LOOP_LABEL_X = 22  # from the middle of the state to the loop's label

# Colours, with their contrast (WCAG 2.1): dark text on white 17:1, white on the current
# state's blue 10:1, the edge labels' grey on white 10:1; the lines 7:1 (1.4.11 asks 3:1).
BACKGROUND, INK, EDGE_INK, LINE_INK = "#ffffff", "#1a1a1a", "#3b3b3b", "#595959"
CURRENT_FILL, CURRENT_INK, CURRENT_BORDER = "#0b3d91", "#ffffff", "#061f4a"
CURRENT_MARK = "\N{BLACK CIRCLE} "

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ID = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


def workflow_svg(
    definition: DrawableWorkflow,
    current: str | None = None,
    *,
    labels: Mapping[str, str] | None = None,
    event_labels: Mapping[str, str] | None = None,
    title: str,
    id_prefix: str | None = None,
) -> str:
    """The workflow as an ``<svg>`` element, ``current`` (a state) highlighted.

    ``labels`` and ``event_labels`` name states and events (by default, their own names). The ids
    inside the picture start with ``id_prefix``, by default one derived from all the arguments:
    two different pictures on one page never share an id, and the same picture twice is the
    same string (pass a prefix of your own to show one picture twice).
    """
    states = tuple(definition.states)
    if current is not None and current not in states:
        raise ValueError(f"{current!r} is not a state of this workflow ({', '.join(states)})")
    names = dict(labels or {})
    events = dict(event_labels or {})
    edges = _edges(definition)
    prefix = (
        id_prefix
        if id_prefix is not None
        else _derived_id(definition, edges, current, names, events, title)
    )
    if not _ID.fullmatch(prefix):
        raise ValueError(f"id_prefix {prefix!r} must be a letter then letters, digits, - or _")
    nodes = {
        s: _Node(s, _lines(names.get(s, s), current=s == current), current=s == current)
        for s in states
    }
    layout = _layout(definition.initial, states, edges, nodes, events)
    return _draw(layout, nodes, prefix, title)


# --- the graph -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Edge:
    """Every event from one state to another, drawn as one line (a self-loop when they're one)."""

    source: str
    dest: str
    events: tuple[str, ...]


def _edges(definition: DrawableWorkflow) -> list[_Edge]:
    by_pair: dict[tuple[str, str], list[str]] = {}
    for t in definition.transitions:
        for source in t.sources:
            events = by_pair.setdefault((source, t.dest or source), [])
            if t.event not in events:  # the same move under other conditions: one line
                events.append(t.event)
    return [_Edge(s, d, tuple(events)) for (s, d), events in by_pair.items()]


def _derived_id(
    definition: DrawableWorkflow,
    edges: list[_Edge],
    current: str | None,
    labels: dict[str, str],
    events: dict[str, str],
    title: str,
) -> str:
    drawn = (
        definition.key,  # two workflows drawn alike still get ids of their own
        definition.initial,
        tuple(definition.states),
        tuple((e.source, e.dest, e.events) for e in edges),
        current,
        sorted(labels.items()),
        sorted(events.items()),
        title,
    )
    return "wf-" + hashlib.sha256(repr(drawn).encode()).hexdigest()[:12]


def _back_edges(initial: str, states: tuple[str, ...], edges: list[_Edge]) -> set[tuple[str, str]]:
    """The edges a depth-first walk from ``initial`` finds leading back onto its own path."""
    out: dict[str, list[str]] = {s: [] for s in states}
    for e in edges:
        if e.source != e.dest:
            out[e.source].append(e.dest)
    seen: dict[str, str] = {}  # "open" while on the path, then "done"
    back: set[tuple[str, str]] = set()
    for root in (initial, *states):
        if root in seen:
            continue
        seen[root] = "open"
        path = [(root, iter(out[root]))]
        while path:
            node, onward = path[-1]
            for nxt in onward:
                if seen.get(nxt) == "open":
                    back.add((node, nxt))
                elif nxt not in seen:
                    seen[nxt] = "open"
                    path.append((nxt, iter(out[nxt])))
                    break
            else:
                seen[node] = "done"
                path.pop()
    return back


def _layers(states: tuple[str, ...], forward: list[tuple[str, str]]) -> dict[str, int]:
    """Each state's longest path from a state nothing leads to (the forward edges are acyclic)."""
    layer = dict.fromkeys(states, 0)
    for _ in states:
        moved = False
        for source, dest in forward:
            if layer[dest] <= layer[source]:
                layer[dest] = layer[source] + 1
                moved = True
        if not moved:
            break
    return layer


# --- the layout ----------------------------------------------------------------------------------


def _width(text: str, size: float) -> float:
    return len(text) * size * EM


def _lines(label: str, *, current: bool) -> list[str]:
    lines = textwrap.wrap(label, WRAP, break_long_words=False) or [label]
    if current:
        lines[0] = CURRENT_MARK + lines[0]
    return lines


@dataclass
class _Node:
    state: str
    lines: list[str]
    current: bool
    loop: _Edge | None = None
    loop_label: str = ""
    ports: int = 0  # the most edges that meet one of its sides
    x: float = 0
    y: float = 0

    @property
    def width(self) -> float:
        text = max(_width(line, FONT) for line in self.lines)
        return max(MIN_NODE, round(text + 2 * PAD_X))

    @property
    def height(self) -> float:
        # Tall enough to keep the arrowheads that meet one side apart.
        return max(2 * PAD_Y + LINE * len(self.lines), PORT * (self.ports + 1))


@dataclass
class _Slot:
    """One place in a column: a state, or a point an edge passes through (maybe its label)."""

    key: int
    rank: int
    node: _Node | None = None
    label: str | None = None
    top: float = 0

    @property
    def height(self) -> float:
        if self.node is not None:
            return self.node.height + (LOOP if self.node.loop else 0)
        return LABEL_SLOT if self.label is not None else PASS_SLOT

    @property
    def up(self) -> float:
        """From the top of the slot to its line: where an edge passes, or a state's middle."""
        if self.node is not None:
            return (LOOP if self.node.loop else 0) + self.node.height / 2
        return LABEL_SLOT - 3 if self.label is not None else PASS_SLOT / 2

    @property
    def line(self) -> float:
        return self.top + self.up


# Each slot's neighbours along the edges through it (by the slot's key): on its left, on its right.
_Links = list[tuple[list[_Slot], list[_Slot]]]


@dataclass
class _Chain:
    """An edge's slots, left to right; ``backward`` when it is drawn right to left."""

    edge: _Edge
    slots: list[_Slot]
    backward: bool
    ports: list[float] = field(default_factory=lambda: [0.0, 0.0])  # y at the left and right end


@dataclass
class _Layout:
    ranks: list[list[_Slot]]
    chains: list[_Chain]
    column_x: list[float]
    column_width: list[float]
    width: float
    height: float


def _layout(
    initial: str,
    states: tuple[str, ...],
    edges: list[_Edge],
    nodes: dict[str, _Node],
    events: dict[str, str],
) -> _Layout:
    back = _back_edges(initial, states, edges)
    forward = [
        (e.source, e.dest) for e in edges if e.source != e.dest and (e.source, e.dest) not in back
    ]
    layer = _layers(states, forward)
    ranks: list[list[_Slot]] = [[] for _ in range(2 * max(layer.values()) + 1)]
    slots: list[_Slot] = []

    def slot(rank: int, node: _Node | None = None, label: str | None = None) -> _Slot:
        made = _Slot(len(slots), rank, node, label)
        slots.append(made)
        ranks[rank].append(made)
        return made

    placed = {s: slot(2 * layer[s], node=nodes[s]) for s in states}
    chains: list[_Chain] = []
    for e in edges:
        text = ", ".join(events.get(name, name) for name in e.events)
        if e.source == e.dest:
            nodes[e.source].loop, nodes[e.source].loop_label = e, text
            continue
        backward = (e.source, e.dest) in back
        left, right = (e.dest, e.source) if backward else (e.source, e.dest)
        first, last = 2 * layer[left] + 1, 2 * layer[right] - 1
        # The label sits next to where the edge starts: after its source, in the drawn direction.
        labelled = last if backward else first
        between = [slot(r, label=text if r == labelled else None) for r in range(first, last + 1)]
        chains.append(_Chain(e, [placed[left], *between, placed[right]], backward))
    links: _Links = [([], []) for _ in slots]
    for chain in chains:
        for a, b in pairwise(chain.slots):
            links[b.key][0].append(a)
            links[a.key][1].append(b)
    for s in placed.values():
        assert s.node is not None
        s.node.ports = max(len(links[s.key][0]), len(links[s.key][1]))
    _order(ranks, links)
    return _place(ranks, chains, links)


def _positions(ranks: list[list[_Slot]]) -> dict[int, int]:
    return {s.key: i for rank in ranks for i, s in enumerate(rank)}


def _crossings(ranks: list[list[_Slot]], links: _Links) -> int:
    pos = _positions(ranks)
    total = 0
    for rank in ranks:
        segments = [(pos[a.key], pos[b.key]) for a in rank for b in links[a.key][1]]
        total += sum(
            1
            for i, (a1, b1) in enumerate(segments)
            for a2, b2 in segments[i + 1 :]
            if (a1 - a2) * (b1 - b2) < 0
        )
    return total


def _order(ranks: list[list[_Slot]], links: _Links) -> None:
    """Reorder each column, in place, to cross as few edges as a few barycentre sweeps find."""

    def sweep(order: range, side: int) -> None:
        pos = _positions(ranks)

        def centre(s: _Slot) -> tuple[float, int]:
            near, here = links[s.key][side], pos[s.key]
            return (sum(pos[n.key] for n in near) / len(near) if near else here, here)

        for r in order:
            ranks[r].sort(key=centre)
            pos.update({s.key: i for i, s in enumerate(ranks[r])})

    best, fewest = [list(r) for r in ranks], _crossings(ranks, links)
    for i in range(8):
        if i % 2 == 0:
            sweep(range(1, len(ranks)), 0)
        else:
            sweep(range(len(ranks) - 2, -1, -1), 1)
        if (now := _crossings(ranks, links)) < fewest:
            best, fewest = [list(r) for r in ranks], now
    ranks[:] = best


def _place(ranks: list[list[_Slot]], chains: list[_Chain], links: _Links) -> _Layout:
    widths: list[float] = []
    for rank in ranks:
        width = 24.0
        for s in rank:
            if s.node is not None:
                width = max(width, s.node.width)
                if s.node.loop:  # the loop's label starts right of the loop
                    label = _width(s.node.loop_label, EDGE_FONT)
                    width = max(width, 2 * (LOOP_LABEL_X + label))
            elif s.label is not None:
                width = max(width, round(_width(s.label, EDGE_FONT) + 8))
        widths.append(width)
    xs, x = [], float(MARGIN)
    for width in widths:
        xs.append(x)
        x += width + GAP
    _align(ranks, links)
    top = min(s.top for rank in ranks for s in rank)
    bottom = 0.0
    for r, rank in enumerate(ranks):
        for s in rank:
            s.top += MARGIN - top
            bottom = max(bottom, s.top + s.height)
            if s.node is not None:
                s.node.x = xs[r] + (widths[r] - s.node.width) / 2
                s.node.y = s.top + (LOOP if s.node.loop else 0)
    _ports(chains)
    return _Layout(ranks, chains, xs, widths, x - GAP + MARGIN, bottom + MARGIN)


def _align(ranks: list[list[_Slot]], links: _Links) -> None:
    """Move each slot towards the height of its neighbours, keeping each column's order and
    spacing, for a few sweeps: edges come out straighter, long ones flat."""
    for rank in ranks:
        y = 0.0
        for s in rank:
            s.top = y
            y += s.height + SPACING
    for i in range(24):
        for r in range(len(ranks)) if i % 2 == 0 else range(len(ranks) - 1, -1, -1):
            rank = ranks[r]
            wanted = []
            for s in rank:
                near = links[s.key][0] + links[s.key][1]
                wanted.append(sum(n.line for n in near) / len(near) if near else s.line)
            for s, line in zip(rank, _spaced(rank, wanted), strict=True):
                s.top = line - s.up


def _spaced(rank: list[_Slot], wanted: list[float]) -> list[float]:
    """The lines nearest ``wanted`` (least squares) that keep the slots in order and apart.

    With each slot's least offset from the first, the constraint is that the lines less their
    offsets never decrease: an isotonic regression, solved by pooling adjacent violators.
    """
    offsets, offset = [], 0.0
    for i, s in enumerate(rank):
        if i:
            before = rank[i - 1]
            offset += before.height - before.up + SPACING + s.up
        offsets.append(offset)
    pools: list[list[float]] = []  # [sum, count] of each run of slots moved together
    for w, o in zip(wanted, offsets, strict=True):
        pools.append([w - o, 1])
        while len(pools) > 1 and pools[-2][0] / pools[-2][1] > pools[-1][0] / pools[-1][1]:
            total, count = pools.pop()
            pools[-1][0] += total
            pools[-1][1] += count
    levels = [total / count for total, count in pools for _ in range(int(count))]
    return [level + o for level, o in zip(levels, offsets, strict=True)]


def _ports(chains: list[_Chain]) -> None:
    """Spread the edges that meet a side of a state along it, in the order of where they go."""
    # (the state's slot, its side: 0 left, 1 right) -> (the neighbour's line, which end, chain)
    sides: dict[tuple[int, int], list[tuple[float, int, _Chain]]] = {}
    for chain in chains:
        left, right = chain.slots[0], chain.slots[-1]
        sides.setdefault((left.key, 1), []).append((chain.slots[1].line, 0, chain))
        sides.setdefault((right.key, 0), []).append((chain.slots[-2].line, 1, chain))
    for meeting in sides.values():
        meeting.sort(key=lambda m: m[0])  # stable: ties keep the order of the edges
        for i, (_, end, chain) in enumerate(meeting):
            node = (chain.slots[0] if end == 0 else chain.slots[-1]).node
            assert node is not None
            spread = PORT * (len(meeting) - 1)
            chain.ports[end] = node.y + (node.height - spread) / 2 + PORT * i


# --- the drawing ---------------------------------------------------------------------------------


def _esc(text: str) -> str:
    return escape(_NOT_XML.sub("\N{REPLACEMENT CHARACTER}", text), {'"': "&quot;"})


def _n(value: float) -> str:
    text = f"{value:.1f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _path(chain: _Chain, layout: _Layout) -> str:
    # Waypoints left to right: where the line enters and leaves each slot, and at what height.
    points: list[tuple[float, float, float]] = []
    for i, s in enumerate(chain.slots):
        if s.node is not None:
            side = s.node.x + s.node.width if i == 0 else s.node.x
            y = chain.ports[0 if i == 0 else 1]
            points.append((side, side, y))
        else:
            x = layout.column_x[s.rank]
            points.append((x, x + layout.column_width[s.rank], s.line))
    if chain.backward:
        points = [(out, into, y) for into, out, y in reversed(points)]
    d = [f"M{_n(points[0][1])},{_n(points[0][2])}"]
    for (_, px, py), (ax, bx, y) in pairwise(points):
        mid = (px + ax) / 2  # horizontal tangents at both ends: an S between columns
        d.append(f"C{_n(mid)},{_n(py)} {_n(mid)},{_n(y)} {_n(ax)},{_n(y)}")
        if bx != ax:
            d.append(f"L{_n(bx)},{_n(y)}")
    return " ".join(d)


def _draw(layout: _Layout, nodes: dict[str, _Node], prefix: str, title: str) -> str:
    w, h = _n(layout.width), _n(layout.height)
    arrow = f"{prefix}-arrow"
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="workflow-diagram" role="img" '
        f'aria-labelledby="{prefix}-title" viewBox="0 0 {w} {h}" width="{w}" height="{h}" '
        f'font-family="system-ui, sans-serif">',
        f'<title id="{prefix}-title">{_esc(title)}</title>',
        f'<defs><marker id="{arrow}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        f'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        f'fill="{LINE_INK}"/></marker></defs>',
        f'<rect width="{w}" height="{h}" fill="{BACKGROUND}"/>',
    ]
    for chain in layout.chains:
        e = chain.edge
        out.append(f'<g class="edge" data-from="{_esc(e.source)}" data-to="{_esc(e.dest)}">')
        out.append(
            f'<path d="{_path(chain, layout)}" fill="none" stroke="{LINE_INK}" '
            f'stroke-width="1.5" marker-end="url(#{arrow})"/>'
        )
        for s in chain.slots:
            if s.label is not None:
                x = layout.column_x[s.rank] + layout.column_width[s.rank] / 2
                out.append(
                    f'<text x="{_n(x)}" y="{_n(s.top + EDGE_FONT)}" font-size="{EDGE_FONT}" '
                    f'text-anchor="middle" fill="{EDGE_INK}">{_esc(s.label)}</text>'
                )
        out.append("</g>")
    for node in nodes.values():
        out.extend(_state(node, arrow))
    out.append("</svg>")
    return "\n".join(out)


def _state(node: _Node, arrow: str) -> list[str]:
    x, y, w, h = node.x, node.y, node.width, node.height
    cx = x + w / 2
    out = []
    if node.loop:
        e = node.loop
        x1, x2, top = cx - 10, cx + 10, y
        out += [
            f'<g class="edge" data-from="{_esc(e.source)}" data-to="{_esc(e.dest)}">',
            f'<path d="M{_n(x1)},{_n(top)} C{_n(x1 - 6)},{_n(top - LOOP + 4)} '
            f'{_n(x2 + 6)},{_n(top - LOOP + 4)} {_n(x2)},{_n(top)}" fill="none" '
            f'stroke="{LINE_INK}" stroke-width="1.5" marker-end="url(#{arrow})"/>',
            f'<text x="{_n(cx + LOOP_LABEL_X)}" y="{_n(top - 8)}" font-size="{EDGE_FONT}" '
            f'fill="{EDGE_INK}">{_esc(node.loop_label)}</text>',
            "</g>",
        ]
    if node.current:
        head = f'<g class="state current" data-state="{_esc(node.state)}" aria-current="step">'
        fill, ink, border, stroke, weight = CURRENT_FILL, CURRENT_INK, CURRENT_BORDER, 3.0, "bold"
    else:
        head = f'<g class="state" data-state="{_esc(node.state)}">'
        fill, ink, border, stroke, weight = BACKGROUND, INK, LINE_INK, 1.5, "normal"
    out += [
        head,
        f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(w)}" height="{_n(h)}" rx="8" '
        f'fill="{fill}" stroke="{border}" stroke-width="{stroke}"/>',
    ]
    first = y + (h - LINE * len(node.lines)) / 2 + LINE * 0.75  # the block of lines, centred
    lines = "".join(  # no whitespace between the lines: it would be drawn as a space
        f'<tspan x="{_n(cx)}" y="{_n(first + i * LINE)}">{_esc(line)}</tspan>'
        for i, line in enumerate(node.lines)
    )
    out += [
        f'<text font-size="{FONT}" font-weight="{weight}" text-anchor="middle" '
        f'fill="{ink}">{lines}</text>',
        "</g>",
    ]
    return out
