"""Draws a flow's graph (`dialog.graph.FlowGraph`) as inline SVG, on the server.

A layered, top-down layout in the manner of Sugiyama: edges that go back up (loops) are turned
round for the layering, every node sits one layer below the lowest of its predecessors, an
edge that skips layers passes through placeholder points so it never cuts through a box,
nodes are ordered in each layer to cross fewer edges (barycentre sweeps), then pulled
sideways toward their neighbours. Branch conditions are written on their edges, in the gap
below the step they leave (above it for a loop), and staggered over as many rows as the gap
needs so no two labels overlap. Every node has a `<title>` (what it says, asks or runs, and
its file:line); `call` and `handoff` nodes link to the flow they run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from html import escape
from itertools import pairwise

from dialog.graph import DONE, START, Edge, FlowGraph, Node

__all__ = ["EDGE_COLOURS", "STYLE", "render_svg"]

NODE_H = 40
MIN_W, MAX_W = 100, 204
END_W = 60  # the small "end" marker
GAP_X = 26  # between boxes in a layer
DUMMY_W = 12  # the room an edge passing through a layer takes
GAP_Y = 34  # between layers, before edge labels
LABEL_ROW = 15
MARGIN = 14
TITLE_PX, DETAIL_PX, LABEL_PX = 7.2, 6.1, 6.0  # average glyph widths of the fonts used
LABEL_MAX = 34  # characters of a condition written on its edge (all of it in the tooltip)

# Fill and stroke of each kind of node; edge colours by kind.
STYLE = {
    "start": ("#101828", "#101828"),
    "say": ("#eef3ff", "#7a9be0"),
    "collect": ("#fff4dc", "#d39b2a"),
    "action": ("#e6f5ec", "#46a06b"),
    "branch": ("#f3eefc", "#8a6cc9"),
    "set": ("#f4f5f7", "#9aa3b2"),
    "call": ("#e4f4f8", "#3a8ea5"),
    "end": ("#f4f5f7", "#5f6b7a"),
    "handoff": ("#fdecea", "#c4473d"),
    "done": ("#5f6b7a", "#5f6b7a"),
    "missing": ("#ffffff", "#b3261e"),
}
EDGE_COLOURS = {
    "next": "#8791a1",
    "branch": "#6a4fb3",
    "else": "#8791a1",
    "fail": "#c4473d",
    "error": "#c4473d",
}


@dataclass
class _Box:
    key: str
    node: Node | None  # None: a placeholder an edge passes through
    width: float
    layer: int = 0
    order: float = 0.0
    x: float = 0.0  # centre
    y: float = 0.0  # top


@dataclass
class _Route:
    edge: Edge
    chain: list[str]  # box keys from the upper end to the lower end
    reversed: bool  # drawn against the chain: a loop back up
    points: list[tuple[float, float]] = field(default_factory=list)
    label_at: tuple[float, float] | None = None


def _text_width(text: str, px: float) -> float:
    return len(text) * px


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _node_width(node: Node) -> float:
    if node.kind == "done":
        return END_W
    title = _text_width(node.title, TITLE_PX)
    detail = _text_width(_short(node.detail, 32 if node.kind != "start" else 64), DETAIL_PX)
    widest = MAX_W if node.kind != "start" else 2 * MAX_W
    return max(MIN_W, min(widest, max(title, detail) + 22))


def _own_ends(graph: FlowGraph) -> FlowGraph:
    """The same graph with an end marker of its own under every step that finishes the flow:
    one shared marker at the bottom would pull long edges across the whole drawing."""
    done = next((n for n in graph.nodes if n.key == DONE), None)
    if done is None:
        return graph
    nodes = [n for n in graph.nodes if n.key != DONE]
    edges = []
    for i, e in enumerate(graph.edges):
        if e.target == DONE:
            key = f"{DONE}.{i}"
            nodes.append(replace(done, key=key))
            e = replace(e, target=key)
        edges.append(e)
    return replace(graph, nodes=nodes, edges=edges)


# --- layering --------------------------------------------------------------------------------


def _back_edges(graph: FlowGraph) -> set[int]:
    """Indexes of edges that close a loop, found by a depth-first walk in file order."""
    out: dict[str, list[int]] = {}
    for i, e in enumerate(graph.edges):
        out.setdefault(e.source, []).append(i)
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    back: set[int] = set()
    for root in [n.key for n in graph.nodes]:
        if root in state:
            continue
        stack = [(root, iter(out.get(root, [])))]
        state[root] = 1
        while stack:
            key, todo = stack[-1]
            step = next(todo, None)
            if step is None:
                state[key] = 2
                stack.pop()
                continue
            target = graph.edges[step].target
            if target == key or state.get(target) == 1:
                back.add(step)
            elif target not in state:
                state[target] = 1
                stack.append((target, iter(out.get(target, []))))
    return back


def _layers(keys: list[str], down: list[tuple[str, str]]) -> dict[str, int]:
    """Longest-path layering of an acyclic graph: each node below all its predecessors."""
    preds: dict[str, list[str]] = {k: [] for k in keys}
    for a, b in down:
        if a != b:
            preds[b].append(a)
    layer: dict[str, int] = {}
    visiting: set[str] = set()  # a cycle (there should be none left) is cut, never followed

    for key in keys:
        stack = [key]
        while stack:
            k = stack[-1]
            if k in layer:
                stack.pop()
                continue
            visiting.add(k)
            pending = [p for p in preds[k] if p not in layer and p not in visiting]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            visiting.discard(k)
            layer[k] = max((layer[p] + 1 for p in preds[k] if p in layer), default=0)
    return layer


# --- ordering and positions ------------------------------------------------------------------


def _crossings(upper: list[_Box], lower: list[_Box], links: list[tuple[str, str]]) -> int:
    pos_u = {b.key: i for i, b in enumerate(upper)}
    pos_l = {b.key: i for i, b in enumerate(lower)}
    pairs = [(pos_u[a], pos_l[b]) for a, b in links if a in pos_u and b in pos_l]
    return sum(
        1
        for i, (a1, b1) in enumerate(pairs)
        for a2, b2 in pairs[i + 1 :]
        if (a1 - a2) * (b1 - b2) < 0
    )


def _total_crossings(rows: list[list[_Box]], links: list[tuple[str, str]]) -> int:
    return sum(_crossings(rows[i], rows[i + 1], links) for i in range(len(rows) - 1))


def _order(rows: list[list[_Box]], links: list[tuple[str, str]]) -> list[list[_Box]]:
    """Barycentre sweeps down and up; the arrangement with the fewest crossings wins."""
    ups: dict[str, list[str]] = {}
    downs: dict[str, list[str]] = {}
    for a, b in links:
        downs.setdefault(a, []).append(b)
        ups.setdefault(b, []).append(a)
    best = [list(r) for r in rows]
    best_score = _total_crossings(best, links)
    current = [list(r) for r in rows]
    for sweep in range(8):
        going_down = sweep % 2 == 0
        indexes = range(1, len(current)) if going_down else range(len(current) - 2, -1, -1)
        for i in indexes:
            ref = current[i - 1] if going_down else current[i + 1]
            pos = {b.key: k for k, b in enumerate(ref)}
            neighbours = ups if going_down else downs
            for k, box in enumerate(current[i]):
                near = [pos[n] for n in neighbours.get(box.key, []) if n in pos]
                box.order = sum(near) / len(near) if near else k
            current[i].sort(key=lambda b: b.order)
        score = _total_crossings(current, links)
        if score < best_score:
            best, best_score = [list(r) for r in current], score
    return best


def _separate(row: list[_Box], wanted: list[float]) -> None:
    """Put a layer's boxes as near `wanted` as their order and widths allow (least squares).

    With `offset[i]` the least distance from the first box to box i, the boxes keep their
    order and gaps exactly when `x[i] - offset[i]` never decreases: an isotonic regression,
    solved by pooling adjacent violators.
    """
    offsets = [0.0]
    for left, right in pairwise(row):
        offsets.append(offsets[-1] + left.width / 2 + GAP_X + right.width / 2)
    blocks: list[list[float]] = []  # [mean, weight]
    for w, off in zip(wanted, offsets, strict=True):
        blocks.append([w - off, 1.0])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            mean2, n2 = blocks.pop()
            mean1, n1 = blocks[-1]
            blocks[-1] = [(mean1 * n1 + mean2 * n2) / (n1 + n2), n1 + n2]
    shifts = [mean for mean, n in blocks for _ in range(int(n))]
    for box, shift, off in zip(row, shifts, offsets, strict=True):
        box.x = shift + off


def _positions(rows: list[list[_Box]], links: list[tuple[str, str]]) -> None:
    ups: dict[str, list[str]] = {}
    downs: dict[str, list[str]] = {}
    for a, b in links:
        downs.setdefault(a, []).append(b)
        ups.setdefault(b, []).append(a)
    for row in rows:
        x = 0.0
        for box in row:
            box.x = x + box.width / 2
            x += box.width + GAP_X
    by_key = {b.key: b for row in rows for b in row}
    for sweep in range(10):
        going_down = sweep % 2 == 0
        order = rows[1:] if going_down else rows[-2::-1]
        for row in order:
            wanted = []
            for box in row:
                near = (ups if going_down else downs).get(box.key, [])
                xs = [by_key[n].x for n in near]
                wanted.append(sum(xs) / len(xs) if xs else box.x)
            _separate(row, wanted)
    left = min(b.x - b.width / 2 for row in rows for b in row)
    for row in rows:
        for box in row:
            box.x += MARGIN - left


# --- labels ----------------------------------------------------------------------------------


def _curve_x(x1: float, x2: float, s: float) -> float:
    """x where the S-curve drawn between two layers (`_path`: control points at half height)
    is a fraction `s` of the way down."""
    low, high = 0.0, 1.0
    for _ in range(30):  # y(t) = 1.5t - 1.5t² + t³ rises steadily: bisect for t
        t = (low + high) / 2
        if 1.5 * t - 1.5 * t * t + t**3 < s:
            low = t
        else:
            high = t
    t = (low + high) / 2
    return x1 + (x2 - x1) * (3 * t * t - 2 * t**3)


def _label_y(k: int) -> float:
    """How far below the top of its gap the `k`th row of labels is written."""
    return GAP_Y / 2 + 4 + k * LABEL_ROW


def _stagger(
    labels: list[tuple[float, float, float, _Route]],
) -> tuple[int, dict[int, tuple[int, float]]]:
    """Rows for the labels of one gap so that none overlaps another: each label is
    `(x where its edge leaves, x where it arrives, width, route)`. Returns the number of rows
    and, per route, its row and the x its label is centred on (on its edge, at that row)."""
    for rows in range(1, len(labels) + 1):
        height = GAP_Y + rows * LABEL_ROW
        placed: dict[int, tuple[int, float]] = {}
        taken: list[list[tuple[float, float]]] = [[] for _ in range(rows)]
        for x1, x2, width, route in sorted(labels, key=lambda item: (item[0], item[1])):
            for k in range(rows):
                s = _label_y(k) / height
                x = _curve_x(x1, x2, s)
                if all(abs(x - c) >= (width + w) / 2 + 4 for c, w in taken[k]):
                    taken[k].append((x, width))
                    placed[id(route)] = (k, x)
                    break
            else:
                break
        else:
            return rows, placed
    raise AssertionError("one label per row always fits")  # pragma: no cover


# --- drawing ---------------------------------------------------------------------------------


def _attr(value: object) -> str:
    return escape(str(value), quote=True)


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def render_svg(graph: FlowGraph, *, href: Callable[[str], str] | None = None) -> str:
    """The graph as an `<svg>` element; `href(flow)` is where a link to another flow points."""
    href = href or (lambda flow: f"#flow-{flow}")
    graph = _own_ends(graph)
    boxes = {n.key: _Box(n.key, n, _node_width(n)) for n in graph.nodes}
    back = _back_edges(graph)
    down: list[tuple[str, str]] = []
    for i, e in enumerate(graph.edges):
        if e.source != e.target:
            down.append((e.target, e.source) if i in back else (e.source, e.target))
    layer = _layers(list(boxes), down)
    for key, box in boxes.items():
        box.layer = layer[key]

    # Edges spanning several layers pass through placeholders, one per layer in between.
    routes: list[_Route] = []
    links: list[tuple[str, str]] = []
    for i, e in enumerate(graph.edges):
        upper, lower = (e.target, e.source) if i in back else (e.source, e.target)
        chain = [upper]
        if e.source != e.target:
            for level in range(layer[upper] + 1, layer[lower]):
                key = f"~{i}.{level}"
                boxes[key] = _Box(key, None, DUMMY_W, layer=level)
                chain.append(key)
            chain.append(lower)
        links.extend(pairwise(chain))
        routes.append(_Route(e, chain, i in back))

    depth = max(b.layer for b in boxes.values()) + 1
    rows: list[list[_Box]] = [[] for _ in range(depth)]
    for box in boxes.values():  # file order first: the sweeps start from the author's order
        rows[box.layer].append(box)
    rows = _order(rows, links)
    _positions(rows, links)

    xs = _port_xs(routes, boxes)

    # Labels: in the gap below the step an edge leaves (above it for a loop back up).
    gap_labels: dict[int, list[tuple[float, float, float, _Route]]] = {}
    for route in routes:
        e = route.edge
        if not e.label or len(route.chain) < 2:
            continue
        gap = boxes[route.chain[-2] if route.reversed else route.chain[0]].layer
        x1, x2 = _label_segment(route, xs)
        width = _text_width(_short(e.label, LABEL_MAX), LABEL_PX) + 8
        gap_labels.setdefault(gap, []).append((x1, x2, width, route))
    staggered = {gap: _stagger(items) for gap, items in gap_labels.items()}

    y = MARGIN
    for level, row in enumerate(rows):
        for box in row:
            box.y = y
        label_rows = staggered[level][0] if level in staggered else 0
        y += NODE_H + GAP_Y + label_rows * LABEL_ROW
    height = y - GAP_Y + MARGIN
    width = max(b.x + b.width / 2 for b in boxes.values()) + MARGIN + 40
    for gap, (_count, placed) in staggered.items():
        top = rows[gap][0].y + NODE_H
        for route in routes:
            if id(route) in placed:
                k, x = placed[id(route)]
                route.label_at = (x, top + _label_y(k))

    _points(routes, boxes, xs)
    parts = [_svg_open(graph, width, height)]
    parts.append(_defs(graph.name))
    parts.extend(_edge_svg(route, graph.name) for route in routes)
    parts.extend(_node_svg(box, graph, href) for box in boxes.values() if box.node is not None)
    parts.append("</svg>")
    return "\n".join(parts)


def _port_xs(routes: list[_Route], boxes: dict[str, _Box]) -> dict[int, list[float]]:
    """Per route, the x it has at each box of its chain: spread apart where several edges
    leave the bottom, or enter the top, of the same box."""
    leaving: dict[str, list[tuple[float, _Route]]] = {}
    entering: dict[str, list[tuple[float, _Route]]] = {}
    for route in routes:
        chain = route.chain
        if len(chain) < 2:
            continue
        leaving.setdefault(chain[0], []).append((boxes[chain[1]].x, route))
        entering.setdefault(chain[-1], []).append((boxes[chain[-2]].x, route))
    start: dict[int, float] = {}
    end: dict[int, float] = {}
    for ports, out in ((leaving, start), (entering, end)):
        for key, items in ports.items():
            box = boxes[key]
            items.sort(key=lambda item: item[0])
            step = min(14.0, (box.width - 16) / max(1, len(items)))
            for k, (_x, route) in enumerate(items):
                out[id(route)] = box.x + (k - (len(items) - 1) / 2) * step
    xs: dict[int, list[float]] = {}
    for route in routes:
        if len(route.chain) < 2:
            continue
        middle = [boxes[key].x for key in route.chain[1:-1]]
        xs[id(route)] = [start[id(route)], *middle, end[id(route)]]
    return xs


def _label_segment(route: _Route, xs: dict[int, list[float]]) -> tuple[float, float]:
    """The x at both ends of the stretch between two layers that carries the route's label."""
    along = xs[id(route)]
    return (along[-2], along[-1]) if route.reversed else (along[0], along[1])


def _points(routes: list[_Route], boxes: dict[str, _Box], xs: dict[int, list[float]]) -> None:
    """The points each edge passes, from the upper end of its chain to the lower."""
    for route in routes:
        chain = route.chain
        if len(chain) < 2:  # a step that goes to itself: a small loop on its right
            box = boxes[chain[0]]
            right, mid = box.x + box.width / 2, box.y + NODE_H / 2
            route.points = [(right, mid - 8), (right + 22, mid - 8), (right + 22, mid + 8),
                            (right, mid + 8)]  # fmt: skip
            route.label_at = (right + 26, mid)
            continue
        along = xs[id(route)]
        points = [(along[0], boxes[chain[0]].y + NODE_H)]
        for key, x in zip(chain[1:-1], along[1:-1], strict=True):
            points += [(x, boxes[key].y), (x, boxes[key].y + NODE_H)]
        points.append((along[-1], boxes[chain[-1]].y))
        route.points = points


def _svg_open(graph: FlowGraph, width: float, height: float) -> str:
    steps = sum(1 for n in graph.nodes if n.key != START and n.kind not in ("done", "missing"))
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="flowgraph" '
        f'viewBox="0 0 {_num(width)} {_num(height)}" width="{_num(width)}" '
        f'height="{_num(height)}" role="img" font-family="system-ui, sans-serif" '
        f'aria-label="{_attr(f"Flow {graph.name}: {steps} steps")}">'
        f"<title>{escape(f'Flow {graph.name}: {steps} steps')}</title>"
    )


def _defs(flow: str) -> str:
    markers = "".join(
        f'<marker id="pv-arrow-{_attr(flow)}-{kind}" viewBox="0 0 10 10" refX="9" refY="5" '
        f'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        f'<path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>'
        for kind, colour in EDGE_COLOURS.items()
    )
    return f"<defs>{markers}</defs>"


def _path(points: list[tuple[float, float]], loop: bool) -> str:
    x, y = points[0]
    d = [f"M{_num(x)},{_num(y)}"]
    if loop:
        d += [f"L{_num(px)},{_num(py)}" for px, py in points[1:]]
        return " ".join(d)
    for (x1, y1), (x2, y2) in pairwise(points):
        if abs(x1 - x2) < 0.5:  # straight down (or up) through a layer
            if y1 != y2:
                d.append(f"L{_num(x2)},{_num(y2)}")
            continue
        mid = (y1 + y2) / 2
        d.append(f"C{_num(x1)},{_num(mid)} {_num(x2)},{_num(mid)} {_num(x2)},{_num(y2)}")
    return " ".join(d)


def _edge_svg(route: _Route, flow: str) -> str:
    e = route.edge
    colour = EDGE_COLOURS.get(e.kind, EDGE_COLOURS["next"])
    self_loop = len(route.chain) < 2
    points = route.points if not route.reversed else route.points[::-1]
    dash = ' stroke-dasharray="5 3"' if e.kind in ("fail", "error") or route.reversed else ""
    words = f"{e.source} → {e.target}" + (f" when {e.label}" if e.label else "")
    out = [
        f'<g class="edge edge-{e.kind}" data-from="{_attr(e.source)}" '
        f'data-to="{_attr(e.target)}"><title>{escape(words)}</title>',
        f'<path d="{_path(points, self_loop)}" fill="none" stroke="{colour}" '
        f'stroke-width="1.4"{dash} marker-end="url(#pv-arrow-{_attr(flow)}-{e.kind})"/>',
    ]
    if e.label and route.label_at is not None:
        x, y = route.label_at
        text = _short(e.label, LABEL_MAX)
        w = _text_width(text, LABEL_PX) + 8
        anchor_x = x if not self_loop else x + w / 2
        out.append(
            f'<rect x="{_num(anchor_x - w / 2)}" y="{_num(y - 10)}" width="{_num(w)}" '
            f'height="13" rx="3" fill="#ffffff" fill-opacity="0.92"/>'
            f'<text x="{_num(anchor_x)}" y="{_num(y)}" text-anchor="middle" font-size="10" '
            f'fill="{colour}">{escape(text)}</text>'
        )
    out.append("</g>")
    return "".join(out)


def _node_svg(box: _Box, graph: FlowGraph, href: Callable[[str], str]) -> str:
    node = box.node
    assert node is not None
    fill, stroke = STYLE.get(node.kind, STYLE["set"])
    dark = node.kind in ("start", "done")
    ink = "#ffffff" if dark else "#1d2330"
    sub = "#dfe5ee" if dark else "#5f6b7a"
    left, top = box.x - box.width / 2, box.y
    radius = NODE_H / 2 if node.kind in ("start", "done") else 6
    where = f"{graph.path.name}:{node.line}" if node.line else graph.path.name
    tip = "\n".join(t for t in (f"{node.title} ({node.kind})", node.text, where) if t)
    limit = int((box.width - 14) / DETAIL_PX)
    dash = ' stroke-dasharray="4 2"' if node.kind == "missing" else ""
    if node.kind == "done":  # a small marker: edges only ever arrive at its top
        return (
            f'<g class="node kind-done" data-step="{_attr(node.key)}">'
            f"<title>{escape(tip)}</title>"
            f'<rect x="{_num(left)}" y="{_num(top)}" width="{_num(box.width)}" height="24" '
            f'rx="12" fill="{fill}" stroke="{stroke}"/>'
            f'<text x="{_num(box.x)}" y="{_num(top + 16)}" text-anchor="middle" '
            f'font-size="11" font-weight="600" fill="{ink}">{escape(node.title)}</text></g>'
        )
    body = (
        f'<g class="node kind-{node.kind}" data-step="{_attr(node.key)}">'
        f"<title>{escape(tip)}</title>"
        f'<rect x="{_num(left)}" y="{_num(top)}" width="{_num(box.width)}" height="{NODE_H}" '
        f'rx="{_num(radius)}" fill="{fill}" stroke="{stroke}" stroke-width="1.3"{dash}/>'
        f'<text x="{_num(box.x)}" y="{_num(top + 16)}" text-anchor="middle" font-size="12" '
        f'font-weight="600" fill="{ink}">{escape(_short(node.title, limit))}</text>'
        f'<text x="{_num(box.x)}" y="{_num(top + 31)}" text-anchor="middle" font-size="10.5" '
        f'fill="{sub}">{escape(_short(node.detail, limit))}</text>'
        "</g>"
    )
    if node.link:
        return f'<a href="{_attr(href(node.link))}" class="flowlink">{body}</a>'
    return body
