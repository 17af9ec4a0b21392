"""SVG charts for report PDFs, drawn with matplotlib's SVG backend and no pyplot state.

Text is converted to paths (``svg.fonttype = "path"``), so every chart looks the same
wherever it is opened and the PDF needs no font for it; ids are salted with a constant so
the same input gives the same bytes.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import matplotlib as mpl
import numpy as np
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

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
MAX_CATEGORIES = 12

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
    with _figure(3.45, 1.6) as figure:
        axes = figure.add_axes((0.13, 0.15, 0.84, 0.7))
        if distribution.edges is not None:
            edges = np.asarray(distribution.edges, dtype=float)
            axes.stairs(ref, edges, fill=True, color=REFERENCE_FILL)
            axes.stairs(ref, edges, color=REFERENCE_COLOUR, linewidth=1.0)
            axes.stairs(cur, edges, color=CURRENT_COLOUR, linewidth=1.4)
            axes.set_xlim(edges[0], edges[-1])
            axes.xaxis.set_major_locator(mpl.ticker.MaxNLocator(6))
        else:
            labels = [str(c) for c in distribution.categories or ()]
            if len(labels) > MAX_CATEGORIES:
                order = np.argsort(-(ref + cur), kind="stable")[:MAX_CATEGORIES]
                labels, ref, cur = [labels[i] for i in order], ref[order], cur[order]
            x = np.arange(len(labels))
            axes.bar(
                x - 0.2, ref, 0.4, color=REFERENCE_FILL, edgecolor=REFERENCE_COLOUR, linewidth=0.6
            )
            axes.bar(x + 0.2, cur, 0.4, color=CURRENT_COLOUR)
            axes.set_xticks(x, [label[:10] for label in labels])
        axes.yaxis.set_major_formatter(mpl.ticker.PercentFormatter(1.0, decimals=0))
        axes.yaxis.set_major_locator(mpl.ticker.MaxNLocator(4))
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


def impact_ratio_chart(
    labels: Sequence[str],
    ratios: Sequence[float | None],
    unstable: Sequence[bool],
    *,
    threshold: float = 0.8,
) -> str:
    """The four-fifths rule: each group's favourable-outcome rate relative to the best
    stable group, with the 0.8 line; bars below it are red, unstable groups hatched."""
    height = 0.55 + 0.28 * len(labels)
    with _figure(6.6, height) as figure:
        axes = figure.add_axes((0.27, 0.42 / height, 0.68, 1 - 0.62 / height))
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
        axes.set_yticks(y, [_short(label, 32) for label in labels])
        axes.set_xlim(0, max(1.1, max(values, default=1) + 0.12))
        axes.set_xlabel("impact ratio (favourable-outcome rate / highest stable group)")
        axes.grid(axis="x", color=GRID, linewidth=0.5)
        axes.set_axisbelow(True)
        axes.tick_params(length=2)
        return _svg(figure)


def group_rates_chart(labels: Sequence[str], rates: dict[str, Sequence[float | None]]) -> str:
    """Selection rate, TPR and FPR per group as grouped horizontal bars."""
    palette = ["#3d5a80", "#98c1d9", "#ee6c4d", "#7d8597"]
    height = 0.6 + 0.36 * len(labels)
    with _figure(6.6, height) as figure:
        axes = figure.add_axes((0.27, 0.25 / height, 0.68, 1 - 0.55 / height))
        y = np.arange(len(labels))[::-1].astype(float)
        width = 0.8 / max(len(rates), 1)
        for index, (name, values) in enumerate(rates.items()):
            offsets = y + 0.4 - width * (index + 0.5)
            clean = [np.nan if v is None else v for v in values]
            axes.barh(offsets, clean, width * 0.92, color=palette[index % 4], label=name)
        axes.set_yticks(y, [_short(label, 32) for label in labels])
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


def lineage_chart(graph: LineageGraph) -> str:
    """A left-to-right layered drawing: datasets, model versions, deployment requests with
    their sign-offs, deployments; an empty layer says so."""
    kinds = list(_LAYERS)
    layers: dict[str, list[Any]] = {kind: [] for kind, _ in kinds}
    for node in graph.nodes:
        layers[node.kind].append(node)
    rows = max((len(nodes) for nodes in layers.values()), default=1)
    width, height = 6.8, max(1.6, 0.62 * rows + 0.5)
    gap = 0.09
    box_w = (0.98 - gap * (len(kinds) - 1)) / len(kinds) - 0.005
    box_h = min(0.6 / rows, 0.22)
    xs = {kind: 0.01 + index * (box_w + gap) for index, (kind, _) in enumerate(kinds)}
    label_chars = int(box_w * 130)
    centres: dict[str, tuple[float, float]] = {}
    with _figure(width, height) as figure:
        axes = figure.add_axes((0, 0, 1, 1))
        axes.set_xlim(0, 1)
        axes.set_ylim(0, 1)
        axes.axis("off")
        for kind, heading in kinds:
            axes.text(xs[kind], 0.97, heading.upper(), fontsize=7, color=MUTED, va="top")
        for kind, nodes in layers.items():
            if not nodes:
                axes.text(xs[kind], 0.8, "none", fontsize=7, color=MUTED, style="italic")
            step = 0.86 / max(len(nodes), 1)
            for index, node in enumerate(nodes):
                cy = 0.88 - step * (index + 0.5)
                x0 = xs[kind]
                patch = FancyBboxPatch(
                    (x0, cy - box_h / 2),
                    box_w,
                    box_h,
                    boxstyle="round,pad=0.004,rounding_size=0.012",
                    facecolor=_NODE_FILL[node.kind],
                    edgecolor=_NODE_EDGE[node.kind],
                    linewidth=1,
                )
                axes.add_patch(patch)
                axes.text(
                    x0 + 0.01,
                    cy + box_h * 0.12,
                    _short(node.label, label_chars),
                    fontsize=7,
                    fontweight="bold",
                    color=INK,
                    va="bottom",
                )
                if node.detail:
                    axes.text(
                        x0 + 0.01,
                        cy - box_h * 0.08,
                        _short(node.detail, int(label_chars * 1.25)),
                        fontsize=5.8,
                        color=MUTED,
                        va="top",
                    )
                centres[node.id] = (x0, cy)
        incoming: dict[str, int] = {}
        outgoing: dict[str, int] = {}
        for edge in graph.edges:
            incoming[edge.target] = incoming.get(edge.target, 0) + 1
            outgoing[edge.source] = outgoing.get(edge.source, 0) + 1
        for edge in graph.edges:
            if edge.source not in centres or edge.target not in centres:
                continue
            (sx, sy), (tx, ty) = centres[edge.source], centres[edge.target]
            if abs(sx - tx) < 1e-9:
                # Same layer (a parent version): straight down or up between the boxes.
                sign = 1 if ty < sy else -1
                start = (sx + box_w * 0.5, sy - sign * box_h / 2)
                end = (tx + box_w * 0.5, ty + sign * box_h / 2)
                label_at = ((start[0] + end[0]) / 2 + 0.01, (start[1] + end[1]) / 2)
                align = "left"
            else:
                start, end = (sx + box_w, sy), (tx, ty)
                # Labels go where the arrows fan out, not where they converge.
                t = 0.3 if incoming.get(edge.target, 0) > outgoing.get(edge.source, 0) else 0.68
                label_at = (start[0] + t * (end[0] - start[0]), start[1] + t * (end[1] - start[1]))
                align = "center"
            axes.add_patch(
                FancyArrowPatch(
                    start,
                    end,
                    arrowstyle="-|>",
                    mutation_scale=8,
                    color=MUTED,
                    linewidth=0.8,
                    shrinkA=1,
                    shrinkB=1,
                )
            )
            if edge.label:
                axes.text(
                    *label_at,
                    edge.label,
                    fontsize=6,
                    color=MUTED,
                    ha=align,
                    va="center",
                    bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.6},
                )
        return _svg(figure)


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"
