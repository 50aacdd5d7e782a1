"""The network as the classic diagram: columns of neurons joined by weights, blocks for image layers."""

from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import TYPE_CHECKING

import numpy as np

from netspec.graph import is_chain
from netspec.layers.kind import dims
from netspec.pictures import boxes
from netspec.pictures.canvas import NEGATIVE, NEUTRAL, POSITIVE, pyplot
from netspec.units import units

if TYPE_CHECKING:
    from netspec.network import Network

MOST_LAYERS = 12
"""Chains up to this many layers are drawn neuron by neuron; a graph, or a longer chain, as boxes."""
MOST_DRAWN = 10  # neurons drawn in a column before it is summarised
HEAD, TAIL = 6, 2  # a summarised column shows the first HEAD and the last TAIL neurons


@dataclass
class Column:
    """One column of the diagram: a vector of neurons, or an image-shaped block."""

    title: str
    detail: str
    size: int  # neurons (vectors) or 0 (blocks)
    shape: tuple[int, ...]

    @property
    def shown(self) -> list[int]:
        """Which neurons are drawn: all of a small column, the ends of a large one."""
        if self.size <= MOST_DRAWN:
            return list(range(self.size))
        return list(range(HEAD)) + list(range(self.size - TAIL, self.size))


def columns(network: Network) -> list[Column]:
    spec = network.spec
    image = spec.input.image
    first = network.layers[0]
    if image and not first.flattened:
        kind = f"{image.color} image"
        cols = [Column("input", f"{kind}\n{dims(network.input_shape)}", 0, network.input_shape)]
    else:
        count = prod(network.input_shape)
        where = f"\n({dims(network.input_shape)} image)" if image else ""
        cols = [Column("input", f"{count:,} inputs{where}", count, (count,))]
    for layer in network.layers:
        out = layer.output_shape
        detail = layer.kind.caption(layer.spec, out)
        cols.append(Column(layer.name, detail, out[0] if len(out) == 1 else 0, out))
    return cols


def draw(network: Network, expand: bool = False):
    """The diagram as a matplotlib figure: neurons and weights for a short chain, else boxes (pictures.boxes).

    A spec with blocks is drawn as boxes, one per use of a block, unless `expand` (then as the flat spec).
    """
    if not expand and units(network.spec) is not None:
        return boxes.draw(network)
    if len(network.layers) > MOST_LAYERS or not is_chain(network.layers):
        return boxes.draw(network, expand=True)
    plt = pyplot()
    cols = columns(network)
    tallest = max((len(c.shown) + (1 if c.size > MOST_DRAWN else 0)) for c in cols)
    figure, ax = plt.subplots(figsize=(2.4 * len(cols) + 2.2, max(3.5, 0.55 * tallest + 2.2)))
    ax.set_xlim(-1.2, 3 * (len(cols) - 1) + 2.8)
    ax.set_ylim(-tallest / 2 - 1.6, tallest / 2 + 1.9)
    ax.axis("off")
    positions = [_positions(c) for c in cols]
    heaviest = max(
        (np.abs(layer.params["weights"]).max() for layer in network.layers if layer.kind.neurons == "fan"), default=1.0
    )
    for index, (left, right) in enumerate(zip(cols, cols[1:])):
        x0, x1 = 3 * index, 3 * (index + 1)
        layer = network.layers[index]
        if left.size and right.size and layer.kind.neurons == "fan":
            weights = layer.params["weights"]
            for j, yj in positions[index + 1].items():
                for i, yi in positions[index].items():
                    w = float(weights[j, i])
                    ax.plot(
                        [x0, x1],
                        [yi, yj],
                        color=POSITIVE if w >= 0 else NEGATIVE,
                        linewidth=0.3 + 2.7 * abs(w) / heaviest,
                        alpha=0.75,
                        zorder=1,
                    )
        elif left.size and left.size == right.size and layer.kind.passes == "elementwise":
            for i, yi in positions[index].items():  # value by value, no weights between
                ax.plot([x0, x1], [yi, positions[index + 1][i]], color=NEUTRAL, linewidth=0.8, alpha=0.6, zorder=1)
        else:  # a block on either side: the connection is drawn, not each weight
            ys0 = list(positions[index].values()) or [0.0]
            ys1 = list(positions[index + 1].values()) or [0.0]
            for y0 in (min(ys0), max(ys0)):
                for y1 in (min(ys1), max(ys1)):
                    ax.plot([x0 + 0.6, x1 - 0.6], [y0, y1], color=NEUTRAL, linewidth=0.8, alpha=0.6, zorder=1)
    for index, column in enumerate(cols):
        x = 3 * index
        top = tallest / 2 + 0.7
        ax.text(x, top, column.title, ha="center", va="bottom", fontsize=10, fontweight="bold")
        ax.text(x, -tallest / 2 - 0.75, column.detail, ha="center", va="top", fontsize=8, color="#333333")
        if column.size:
            ys = list(positions[index].values())
            ax.scatter([x] * len(ys), ys, s=260, facecolor="white", edgecolor="#333333", linewidth=1.2, zorder=3)
            if column.size > MOST_DRAWN:
                gap = (positions[index][HEAD - 1] + positions[index][column.size - TAIL]) / 2
                ax.text(x, gap, "⋮", ha="center", va="center", fontsize=14, zorder=3)
        else:
            height = min(tallest, 2 + np.log2(1 + column.shape[1] * column.shape[2]) / 2)
            ax.add_patch(
                plt.Rectangle(
                    (x - 0.6, -height / 2),
                    1.2,
                    height,
                    facecolor="#E8E8E8",
                    edgecolor="#333333",
                    linewidth=1.2,
                    zorder=3,
                )
            )
            ax.text(
                x,
                0,
                f"{column.shape[0]}\n×\n{column.shape[1]}×{column.shape[2]}",
                ha="center",
                va="center",
                fontsize=8,
                zorder=4,
            )
    for label, y in zip(network.classes, positions[-1].values()):
        ax.text(3 * (len(cols) - 1) + 0.4, y, label, ha="left", va="center", fontsize=9)
    ax.plot([], [], color=POSITIVE, linewidth=2, label="positive weight")
    ax.plot([], [], color=NEGATIVE, linewidth=2, label="negative weight")
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    title = network.spec.name + (f" — {network.spec.description}" if network.spec.description else "")
    ax.set_title(
        f"{title}\neach neuron: Output = activation(Weight · Input + Bias); lines thicker for larger weights",
        fontsize=10,
    )
    return figure


def _positions(column: Column) -> dict[int, float]:
    """Vertical place of each drawn neuron, centred, with a gap for the ellipsis of a large column."""
    if not column.size:
        return {}
    shown = column.shown
    slots = len(shown) + (1 if column.size > MOST_DRAWN else 0)
    ys = [slots / 2 - 0.5 - k for k in range(slots)]
    if column.size > MOST_DRAWN:
        ys = ys[:HEAD] + ys[HEAD + 1 :]
    return dict(zip(shown, ys))
