"""SVG charts for report PDFs, drawn with matplotlib's SVG backend and no pyplot state.

Text is converted to paths (``svg.fonttype = "path"``), so every chart looks the same
wherever it is opened and the PDF needs no font for it; ids are salted with a constant so
the same input gives the same bytes.
"""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import matplotlib as mpl
import numpy as np
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle
from matplotlib.textpath import TextPath

from governance.reports.pdf.context import ColumnDistribution, LineageGraph

REFERENCE_COLOUR = "#5b7fa6"
REFERENCE_FILL = "#bccadb"
CURRENT_COLOUR = "#e07b39"
INK = "#1f2933"
MUTED = "#616e7c"
GRID = "#d9dee3"
RED = "#b42318"
GREEN = "#1b7a3d"
PURPLE = "#6941c6"
# A categorical chart shows the most frequent categories and lumps the rest as "other".
MAX_CATEGORIES = 10
# Longest category label, in characters, before it is shortened in the middle.
CATEGORY_LABEL = 14

_RC: Any = {  # matplotlib types rc keys as literals
    "svg.fonttype": "path",
    "svg.hashsalt": "warden-report",
    "font.family": "DejaVu Sans",
    "font.size": 7.5,
    "axes.edgecolor": GRID,
    "axes.labelcolor": MUTED,
    "axes.titlesize": 8.5,
    "axes.titleweight": "bold",
    "axes.titlecolor": INK,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "xtick.color": MUTED,
    "ytick.color": MUTED,
    "legend.frameon": False,
    "legend.fontsize": 7,
}


@contextmanager
def _figure(width_in: float, height_in: float) -> Iterator[Figure]:
    with mpl.rc_context(_RC):
        figure = Figure(figsize=(width_in, height_in))
        FigureCanvasSVG(figure)
        yield figure


def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    return buffer.getvalue()


def _shares(counts: Sequence[int]) -> np.ndarray:
    array = np.asarray(counts, dtype=float)
    total = array.sum()
    return array / total if total else array


def drift_column_chart(name: str, distribution: ColumnDistribution, *, drifted: bool) -> str:
    """Reference against current for one column: step histograms of the share of rows per
    bin for a numerical column, side-by-side bars for a categorical one."""
    ref, cur = _shares(distribution.reference), _shares(distribution.current)
    labels: list[str] = []
    rotate = False
    if distribution.edges is None:
        labels, ref, cur = _top_categories(
            [str(c) for c in distribution.categories or ()], ref, cur
        )
        labels = _distinct_labels(labels, CATEGORY_LABEL)
        # Horizontal labels while each fits its slot (about 4.2 pt a character at 7 pt),
        # turned otherwise.
        slot = 0.84 * 3.45 * 72 / max(len(labels), 1)
        rotate = max((len(label) for label in labels), default=0) * 4.2 > slot * 0.9
    with _figure(3.45, 1.6) as figure:
        bottom = 0.34 if rotate else 0.15
        axes = figure.add_axes((0.13, bottom, 0.84, 0.81 - bottom))
        if distribution.edges is not None:
            edges = np.asarray(distribution.edges, dtype=float)
            axes.stairs(ref, edges, fill=True, color=REFERENCE_FILL)
            axes.stairs(ref, edges, color=REFERENCE_COLOUR, linewidth=1.0)
            axes.stairs(cur, edges, color=CURRENT_COLOUR, linewidth=1.4)
            axes.set_xlim(edges[0], edges[-1])
            axes.xaxis.set_major_locator(mpl.ticker.MaxNLocator(6))
        else:
            x = np.arange(len(labels))
            axes.bar(
                x - 0.2, ref, 0.4, color=REFERENCE_FILL, edgecolor=REFERENCE_COLOUR, linewidth=0.6
            )
            axes.bar(x + 0.2, cur, 0.4, color=CURRENT_COLOUR)
            axes.set_xlim(-0.6, len(labels) - 0.4)
            if rotate:
                axes.set_xticks(x, labels, rotation=35, ha="right", rotation_mode="anchor")
            else:
                axes.set_xticks(x, labels)
            axes.tick_params(axis="x", labelsize=6.5)
        _percent_axis(axes, max(float(np.max(ref, initial=0)), float(np.max(cur, initial=0))))
        axes.tick_params(length=2, pad=1.5)
        axes.grid(axis="y", color=GRID, linewidth=0.5)
        axes.set_axisbelow(True)
        figure.text(0.02, 0.93, name, fontsize=8.5, fontweight="bold", color=INK, va="top")
        figure.text(
            0.98,
            0.93,
            "drifted" if drifted else "no drift",
            fontsize=7.5,
            fontweight="bold",
            color=RED if drifted else GREEN,
            va="top",
            ha="right",
        )
        return _svg(figure)


def _top_categories(
    labels: list[str], ref: np.ndarray, cur: np.ndarray
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The most frequent categories (both sides together) in their order, the others summed
    as one ``other (n)`` bar, so that no category's share is silently left out."""
    if len(labels) <= MAX_CATEGORIES:
        return labels, ref, cur
    keep = np.sort(np.argsort(-(ref + cur), kind="stable")[: MAX_CATEGORIES - 1])
    rest = np.setdiff1d(np.arange(len(labels)), keep)
    return (
        [labels[i] for i in keep] + [f"other ({len(rest)})"],
        np.append(ref[keep], ref[rest].sum()),
        np.append(cur[keep], cur[rest].sum()),
    )


def _distinct_labels(labels: Sequence[str], limit: int) -> list[str]:
    """Each label at most ``limit`` characters, shortened in the middle (``district…-east``)
    so that labels sharing a prefix stay apart."""
    head = (limit - 1) // 2 + (limit - 1) % 2
    tail = limit - 1 - head
    return [
        label if len(label) <= limit else label[:head] + "\u2026" + label[len(label) - tail :]
        for label in labels
    ]


def _percent_axis(axes: Any, top: float) -> None:
    """A share axis from 0 with three to five round ticks, and as many decimals as the
    step between them needs (0.5 % steps print one decimal): never "0% 0% 0%"."""
    limit = (top if top > 0 else 1.0) * 1.08
    locator = mpl.ticker.MaxNLocator(4, steps=[1, 2, 2.5, 5, 10])
    ticks = [float(t) for t in locator.tick_values(0, limit) if 0 <= t <= limit * (1 + 1e-9)]
    step = ticks[1] - ticks[0] if len(ticks) > 1 else limit
    decimals = 0
    while decimals < 3 and abs(round(step * 100, decimals) - step * 100) > 1e-9:
        decimals += 1
    axes.set_ylim(0, limit)
    axes.yaxis.set_major_locator(mpl.ticker.FixedLocator(ticks))
    axes.yaxis.set_major_formatter(mpl.ticker.PercentFormatter(1.0, decimals=decimals))


# Group charts: at most this many rows at full height, then rows shrink to fit a page.
_FULL_ROWS = 20
_GROUP_LABEL_WIDTH = 160.0  # points


def _group_rows(labels: Sequence[str], row: float) -> tuple[float, float, list[str], float]:
    """Row height (in), label size (pt), labels and left margin (share of the width) of a
    chart with one row per group: many groups get lower rows and smaller labels, and the
    margin is as wide as the widest label (shortened in the middle beyond 160 pt)."""
    many = len(labels) > _FULL_ROWS
    size = 6.5 if many else 7.5
    height = max(row * 0.6, row * _FULL_ROWS / len(labels)) if many else row
    names = [_fit(label, _GROUP_LABEL_WIDTH, size, middle=True) for label in labels]
    widest = max((text_width(name, size) for name in names), default=0.0)
    return height, size, names, min(0.4, (widest + 8) / (6.6 * 72))


def impact_ratio_chart(
    labels: Sequence[str],
    ratios: Sequence[float | None],
    unstable: Sequence[bool],
    *,
    threshold: float = 0.8,
) -> str:
    """The four-fifths rule: each group's favourable-outcome rate relative to the best
    stable group, with the 0.8 line; bars below it are red, unstable groups hatched."""
    row, size, names, left = _group_rows(labels, 0.28)
    height = 0.55 + row * len(labels)
    with _figure(6.6, height) as figure:
        axes = figure.add_axes((left, 0.42 / height, 0.95 - left, 1 - 0.62 / height))
        y = np.arange(len(labels))[::-1]
        values = [0.0 if r is None else r for r in ratios]
        colours = [GRID if r is None else (RED if r < threshold else GREEN) for r in ratios]
        bars = axes.barh(y, values, 0.6, color=colours)
        for bar, flag, ratio in zip(bars, unstable, ratios, strict=True):
            if flag:
                bar.set_hatch("////")
                bar.set_alpha(0.55)
            text = "not estimable" if ratio is None else f"{ratio:.2f}"
            axes.text(bar.get_width() + 0.01, bar.get_y() + 0.3, text, va="center", color=INK)
        axes.axvline(threshold, color=INK, linestyle="--", linewidth=1)
        axes.text(threshold, len(labels) - 0.35, f" four-fifths line ({threshold:g})", color=INK)
        axes.set_yticks(y, names, fontsize=size)
        axes.set_xlim(0, max(1.1, max(values, default=1) + 0.12))
        axes.set_xlabel("impact ratio (favourable-outcome rate / highest stable group)")
        axes.grid(axis="x", color=GRID, linewidth=0.5)
        axes.set_axisbelow(True)
        axes.tick_params(length=2)
        return _svg(figure)


def group_rates_chart(labels: Sequence[str], rates: dict[str, Sequence[float | None]]) -> str:
    """Selection rate, TPR and FPR per group as grouped horizontal bars."""
    palette = ["#3d5a80", "#98c1d9", "#ee6c4d", "#7d8597"]
    row, size, names, left = _group_rows(labels, 0.36)
    height = 0.6 + row * len(labels)
    with _figure(6.6, height) as figure:
        axes = figure.add_axes((left, 0.25 / height, 0.95 - left, 1 - 0.55 / height))
        y = np.arange(len(labels))[::-1].astype(float)
        width = 0.8 / max(len(rates), 1)
        for index, (name, values) in enumerate(rates.items()):
            offsets = y + 0.4 - width * (index + 0.5)
            clean = [np.nan if v is None else v for v in values]
            axes.barh(offsets, clean, width * 0.92, color=palette[index % 4], label=name)
        axes.set_yticks(y, names, fontsize=size)
        axes.set_xlim(0, 1)
        axes.xaxis.set_major_formatter(mpl.ticker.PercentFormatter(1.0, decimals=0))
        axes.grid(axis="x", color=GRID, linewidth=0.5)
        axes.set_axisbelow(True)
        axes.tick_params(length=2)
        axes.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncols=len(rates))
        return _svg(figure)


_LAYERS = (
    ("dataset", "Datasets"),
    ("model_version", "Model versions"),
    ("request", "Sign-off"),
    ("deployment", "Deployments"),
)
_NODE_FILL = {
    "dataset": "#e8f0f8",
    "model_version": "#fdf0e6",
    "request": "#f3effa",
    "deployment": "#e9f5ec",
}
_NODE_EDGE = {
    "dataset": REFERENCE_COLOUR,
    "model_version": CURRENT_COLOUR,
    "request": PURPLE,
    "deployment": GREEN,
}


# The lineage drawing is laid out in points (1/72 in) on a page-wide figure.
LINEAGE_WIDTH = 6.8 * 72
_LABEL_SIZE, _DETAIL_SIZE, _EDGE_SIZE = 7.0, 5.8, 6.0
_PAD, _GAP, _MARGIN, _HEADING = 5.0, 46.0, 3.0, 16.0
_LINE, _DETAIL_LINE, _ROW_GAP = 8.6, 7.4, 12.0


@dataclass(frozen=True)
class Box:
    """A node's box (lower-left corner, size) and the lines written in it."""

    x: float
    y: float
    w: float
    h: float
    lines: tuple[str, ...]
    detail: str

    def overlaps(self, other: Box, margin: float = 0.0) -> bool:
        return (
            self.x - margin < other.x + other.w
            and other.x - margin < self.x + self.w
            and self.y - margin < other.y + other.h
            and other.y - margin < self.y + self.h
        )


@dataclass(frozen=True)
class EdgeLabel:
    """An edge's label: the box it is printed in (white behind it)."""

    text: str
    box: Box


@dataclass(frozen=True)
class LineageLayout:
    """Where everything of a lineage drawing goes, in points from the lower-left corner."""

    width: float
    height: float
    headings: dict[str, float]
    boxes: dict[str, Box]
    arrows: list[tuple[tuple[float, float], tuple[float, float]]]
    labels: list[EdgeLabel]


@lru_cache(maxsize=4096)
def text_width(text: str, size: float, *, bold: bool = False) -> float:
    """The width in points of ``text`` in DejaVu Sans at ``size`` points."""
    if not text:
        return 0.0
    with mpl.rc_context(_RC):
        prop = FontProperties(family="DejaVu Sans", weight="bold" if bold else "normal")
        return float(TextPath((0, 0), text, size=size, prop=prop).get_extents().width)


def _fit(text: str, width: float, size: float, *, bold: bool = False, middle: bool = False) -> str:
    """``text``, shortened with an ellipsis until it is at most ``width`` points wide: at the
    end, or in the ``middle`` (which keeps a name's version number: ``credit-…-train v3``)."""
    if text_width(text, size, bold=bold) <= width:
        return text
    head, tail = text, ""
    if middle:
        head, tail = text[: len(text) // 2], text[len(text) // 2 :]
    while head and text_width(head + "\u2026" + tail, size, bold=bold) > width:
        if middle and len(tail) > len(head):
            tail = tail[1:]
        else:
            head = head[:-1]
    return head.rstrip() + "\u2026" + tail.lstrip()


def _wrap(text: str, width: float) -> tuple[str, ...]:
    """A node's name on at most two lines of ``width`` points: broken at a space or a
    hyphen when one fits, else where the width runs out; the second line is shortened."""
    if text_width(text, _LABEL_SIZE, bold=True) <= width:
        return (text,)
    cut = 0
    for index in range(1, len(text)):
        if text_width(text[:index], _LABEL_SIZE, bold=True) > width:
            break
        if text[index - 1] in " -_/:":
            cut = index
        last = index
    cut = cut or last
    first, rest = text[:cut].rstrip(), text[cut:].lstrip()
    return (first, _fit(rest, width, _LABEL_SIZE, bold=True, middle=True)) if rest else (first,)


def _layer_widths(needs: dict[str, float], available: float) -> dict[str, float]:
    """Each layer as wide as its widest text needs, if they all fit; otherwise the narrow ones
    keep their width and the wide ones share what is left equally."""
    widths = dict(needs)
    wide = list(needs)
    while wide:
        share = (available - sum(widths[k] for k in needs if k not in wide)) / len(wide)
        narrow = [k for k in wide if needs[k] <= share]
        if not narrow:
            for kind in wide:
                widths[kind] = share
            break
        wide = [k for k in wide if k not in narrow]
    return widths


def lineage_layout(graph: LineageGraph) -> LineageLayout:
    """Boxes sized to their text (a long name wraps onto a second line, then is shortened;
    the report's table below the drawing names every node in full), layers left to right,
    and each edge label placed where it overlaps no box and no other label."""
    kinds = [kind for kind, _ in _LAYERS]
    layers: dict[str, list[Any]] = {kind: [] for kind in kinds}
    for node in graph.nodes:
        layers[node.kind].append(node)
    needs = {
        kind: max(
            [54.0]
            + [
                max(
                    text_width(n.label, _LABEL_SIZE, bold=True),
                    text_width(n.detail, _DETAIL_SIZE),
                )
                + 2 * _PAD
                for n in nodes
            ]
        )
        for kind, nodes in layers.items()
    }
    available = LINEAGE_WIDTH - 2 * _MARGIN - _GAP * (len(kinds) - 1)
    widths = _layer_widths(needs, available)
    xs: dict[str, float] = {}
    x = _MARGIN
    for kind in kinds:
        xs[kind] = x
        x += widths[kind] + _GAP
    content: dict[str, tuple[tuple[str, ...], str]] = {}
    for kind, nodes in layers.items():
        inner = widths[kind] - 2 * _PAD
        for node in nodes:
            content[node.id] = (
                _wrap(node.label, inner),
                _fit(node.detail, inner, _DETAIL_SIZE) if node.detail else "",
            )

    def box_height(node_id: str) -> float:
        lines, detail = content[node_id]
        return 2 * _PAD + _LINE * len(lines) + (_DETAIL_LINE if detail else 0) - 1.5

    rows = max((len(nodes) for nodes in layers.values()), default=1) or 1
    row_h = max((box_height(n.id) for n in graph.nodes), default=24.0) + _ROW_GAP
    height = _HEADING + rows * row_h + 4
    # Deployments in the order of the requests (and versions) they come from: fewer crossings.
    order = {node.id: index for kind in kinds for index, node in enumerate(layers[kind])}
    sources: dict[str, list[int]] = defaultdict(list)
    for edge in graph.edges:
        if edge.source in order:
            sources[edge.target].append(order[edge.source])
    layers["deployment"].sort(
        key=lambda n: sum(sources[n.id]) / len(sources[n.id]) if sources[n.id] else 0
    )
    boxes: dict[str, Box] = {}
    for kind in kinds:
        nodes = layers[kind]
        top = height - _HEADING - (rows - len(nodes)) * row_h / 2
        for index, node in enumerate(nodes):
            h = box_height(node.id)
            cy = top - row_h * (index + 0.5)
            lines, detail = content[node.id]
            boxes[node.id] = Box(xs[kind], cy - h / 2, widths[kind], h, lines, detail)
    arrows: list[tuple[tuple[float, float], tuple[float, float]]] = []
    labels: list[EdgeLabel] = []
    for edge in graph.edges:
        if edge.source not in boxes or edge.target not in boxes:
            continue
        s, t = boxes[edge.source], boxes[edge.target]
        if abs(s.x - t.x) < 1e-6:
            # Same layer (a parent version): straight down or up between the boxes.
            mid = s.x + s.w / 2
            start = (mid, s.y if t.y < s.y else s.y + s.h)
            end = (mid, t.y + t.h if t.y < s.y else t.y)
        else:
            start, end = (s.x + s.w, s.y + s.h / 2), (t.x, t.y + t.h / 2)
        arrows.append((start, end))
        if edge.label:
            labels.append(_place_label(edge.label, start, end, boxes, labels))
    return LineageLayout(
        width=LINEAGE_WIDTH,
        height=height,
        headings={kind: xs[kind] for kind in kinds},
        boxes=boxes,
        arrows=arrows,
        labels=labels,
    )


def _place_label(
    text: str,
    start: tuple[float, float],
    end: tuple[float, float],
    boxes: dict[str, Box],
    placed: Sequence[EdgeLabel],
) -> EdgeLabel:
    """The first point along the edge (from its middle outwards) where the label's box
    overlaps no node and no label placed before; the least crowded one when none is free."""
    w, h = text_width(text, _EDGE_SIZE) + 2.4, _EDGE_SIZE + 2.4
    candidates: list[tuple[int, int, Box]] = []
    vertical = abs(start[0] - end[0]) < 1e-6
    steps = (0.5, 0.38, 0.62, 0.26, 0.74, 0.16, 0.84, 0.08, 0.92)
    # On the edge first; then just above or below it, where converging edges leave no room.
    for shift, t in [(0.0, t) for t in steps] + [(d, t) for t in steps for d in (h, -h)]:
        cx, cy = start[0] + t * (end[0] - start[0]), start[1] + t * (end[1] - start[1]) + shift
        box = Box(cx + 2 if vertical else cx - w / 2, cy - h / 2, w, h, (text,), "")
        crowding = sum(box.overlaps(b, 0.5) for b in boxes.values()) * 10 + sum(
            box.overlaps(label.box, 0.8) for label in placed
        )
        if crowding == 0:
            return EdgeLabel(text, box)
        candidates.append((crowding, len(candidates), box))
    return EdgeLabel(text, min(candidates)[2])


def lineage_chart(graph: LineageGraph) -> str:
    """A left-to-right layered drawing: datasets, model versions, deployment requests with
    their sign-offs, deployments; an empty layer says so."""
    layout = lineage_layout(graph)
    with _figure(layout.width / 72, layout.height / 72) as figure:
        axes = figure.add_axes((0, 0, 1, 1))
        axes.set_xlim(0, layout.width)
        axes.set_ylim(0, layout.height)
        axes.axis("off")
        kinds = {node.id: node.kind for node in graph.nodes}
        for kind, heading in _LAYERS:
            x = layout.headings[kind]
            axes.text(x, layout.height - 3, heading.upper(), fontsize=7, color=MUTED, va="top")
            if kind not in kinds.values():
                axes.text(
                    x,
                    layout.height - _HEADING - 12,
                    "none",
                    fontsize=7,
                    color=MUTED,
                    style="italic",
                )
        for (sx, sy), (tx, ty) in layout.arrows:
            axes.add_patch(
                FancyArrowPatch(
                    (sx, sy),
                    (tx, ty),
                    arrowstyle="-|>",
                    mutation_scale=8,
                    color=MUTED,
                    linewidth=0.8,
                    shrinkA=1,
                    shrinkB=1,
                )
            )
        for node_id, box in layout.boxes.items():
            axes.add_patch(
                FancyBboxPatch(
                    (box.x, box.y),
                    box.w,
                    box.h,
                    boxstyle="round,pad=0,rounding_size=3.5",
                    facecolor=_NODE_FILL[kinds[node_id]],
                    edgecolor=_NODE_EDGE[kinds[node_id]],
                    linewidth=1,
                )
            )
            y = box.y + box.h - _PAD + 1
            for line in box.lines:
                axes.text(
                    box.x + _PAD,
                    y,
                    line,
                    fontsize=_LABEL_SIZE,
                    fontweight="bold",
                    color=INK,
                    va="top",
                )
                y -= _LINE
            if box.detail:
                axes.text(
                    box.x + _PAD, y - 0.6, box.detail, fontsize=_DETAIL_SIZE, color=MUTED, va="top"
                )
        for label in layout.labels:
            axes.add_patch(
                Rectangle(
                    (label.box.x, label.box.y),
                    label.box.w,
                    label.box.h,
                    facecolor="white",
                    edgecolor="none",
                )
            )
            axes.text(
                label.box.x + label.box.w / 2,
                label.box.y + label.box.h / 2,
                label.text,
                fontsize=_EDGE_SIZE,
                color=MUTED,
                ha="center",
                va="center_baseline",
            )
        return _svg(figure)
