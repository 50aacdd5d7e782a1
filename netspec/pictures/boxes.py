"""A graph or a deep network as a column of labelled boxes, top to bottom, as Netron draws one.

Each layer is a box (its name, its kind's caption, its output shape). A layer sits one row below the
lowest layer it reads, so parallel branches share rows and stand side by side; a merge joins them
below. An arrow runs from each input to its reader: straight down to the next row, or, when it skips
rows, around the boxes between (down an empty column, else down a lane to the right of them).
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from netspec.layers.kind import dims
from netspec.node import INPUT
from netspec.pictures.canvas import NEUTRAL, pyplot
from netspec.units import Unit, owners, reads, units

if TYPE_CHECKING:
    from netspec.network import Network

# Sizes in inches: the axes span the figure and a data unit is an inch, so text and boxes keep their size
# however many layers there are, and the figure grows downwards instead.
BOX_WIDTH, BOX_HEIGHT = 2.5, 0.5
COLUMN_PITCH, ROW_PITCH = 2.85, 0.8
LANE_PITCH = 0.16  # between side arrows running side by side
MARGIN, TITLE = 0.3, 0.7
TITLE_LINE = 0.19  # inches between the title's lines (10 points, bold)
TITLE_CHARS_PER_INCH = 10  # of the bold 10-point title: its widest letters average about 9.5
WIDEST = 13.0  # inches: about 1,600 px at the 120 dpi pictures are saved at
NAME_SIZE, DETAIL_SIZE = 9, 8  # points: legible at that dpi
WIDEST_LINE = 38  # characters of detail that fit in a box at DETAIL_SIZE
EDGE = "#333333"
FILLS = {"kernel": "#D6E9F5", "fan": "#D6E9F5", "merge": "#FBE3D2", "input": "#FFFFFF", "unit": "#DCEFD9"}
OTHER_FILL = "#EDEDED"
UNITS_NOTE = "green: a use of a block, one box; --expand draws its layers"
MERGES = ("add", "concat", "multiply")


@dataclass
class Box:
    """A node's place: its row (0 is the input) and its column, and what it says."""

    name: str
    title: str
    detail: str
    fill: str
    inputs: list[str]
    row: int = 0
    column: int = 0


def boxes(network: Network, expand: bool = False) -> dict[str, Box]:
    """Every node's box, placed: rows by longest path from the input, columns so that branches stand apart.

    A spec with blocks has one box per use of a block (netspec.units), unless `expand`.
    """
    placed = {INPUT: Box(INPUT, "input", dims(network.input_shape), FILLS["input"], [])}
    readers: dict[str, list[str]] = {}
    taken: set[tuple[int, int]] = {(0, 0)}
    found = None if expand else units(network.spec)
    for box in _layer_boxes(network) if found is None else _unit_boxes(network, found):
        sources = [placed[name] for name in box.inputs]
        box.row = 1 + max(source.row for source in sources)
        first = sources[0]
        if len(sources) > 1:  # a merge: under the leftmost branch it joins
            wanted = min(source.column for source in sources)
        else:  # the first reader continues its input's column; later readers are branches beside it
            wanted = first.column + (1 if readers.get(first.name) else 0)
        for name in box.inputs:
            readers.setdefault(name, []).append(box.name)
        while (box.row, wanted) in taken:
            wanted += 1
        box.column = wanted
        taken.add((box.row, box.column))
        placed[box.name] = box
    return placed


def _layer_boxes(network: Network) -> Iterator[Box]:
    for node in network.layers:
        caption = node.kind.caption(node.spec, node.output_shape).split("\n")
        shape = dims(node.output_shape)
        detail = ", ".join(caption) if shape in caption else f"{', '.join(caption)} → {shape}"
        fill = FILLS["merge"] if node.type in MERGES else FILLS.get(node.kind.neurons or "", OTHER_FILL)
        yield Box(node.name, node.name, detail, fill, list(node.inputs))


def _unit_boxes(network: Network, found: list[Unit]) -> Iterator[Box]:
    """A box per layer written at top level, as for a flat spec, and one per use of a block, whose arrows
    come from whatever its layers read outside it (a layer inside another use: from that use's box)."""
    layers = _layer_boxes(network)
    names = [node.name for node in network.layers]
    by_layer = owners(found, names)
    inputs = [node.inputs for node in network.layers]
    for unit in found:
        outside = reads(unit, inputs, names)
        read = list(dict.fromkeys(by_layer[name].name if name in by_layer else name for name in outside))
        if not unit.is_use:
            box = next(layers)
            box.inputs = read
            yield box
            continue
        for _ in unit.layers:
            next(layers)
        shape = dims(network.layers[unit.stop - 1].output_shape)
        copies = unit.copies
        if len(copies) > WIDEST_LINE:  # long block names: the count and the last block, which most copies are
            copies = f"{len(unit.blocks)} copies of {unit.blocks[-1]}, …"
        detail = f"{copies}\n{len(unit.layers)} layers → {shape}"
        yield Box(unit.name, unit.name, detail, FILLS["unit"], read)


def x_at(column: int) -> float:
    """The middle of a column, in inches from the left."""
    return MARGIN + BOX_WIDTH / 2 + column * COLUMN_PITCH


def x_of(box: Box) -> float:
    return x_at(box.column)


def y_of(box: Box) -> float:
    """The middle of a box's row, in inches from the top."""
    return TITLE + MARGIN + BOX_HEIGHT / 2 + box.row * ROW_PITCH


@dataclass
class Route:
    """An arrow's path, as points in inches; a shortcut runs down a side lane."""

    source: str
    target: str
    points: list[tuple[float, float]]
    shortcut: bool = False


def _between(rows: dict[int, list[int]], source: Box, box: Box) -> range:
    return range(source.row + 1, box.row)


def _column_taken(rows: dict[int, list[int]], source: Box, box: Box) -> bool:
    """Whether a box stands in the source's column on some row between it and its reader."""
    return any(source.column in rows.get(row, []) for row in _between(rows, source, box))


def _ends(box: Box, sources: list[Box], side: list[bool]) -> list[float]:
    """Where each arrow meets the box's top: the middle for one, spread by the column it comes from for
    several, shortcuts at the right (where their lane comes in)."""
    half_w = BOX_WIDTH / 2
    ends = [x_of(box) + 0.6 * half_w if shortcut else 0.0 for shortcut in side]
    direct = sorted((i for i, shortcut in enumerate(side) if not shortcut), key=lambda i: (sources[i].column, i))
    low, high = -0.7, (0.2 if any(side) else 0.7)
    for rank, i in enumerate(direct):
        share = 0.5 if len(direct) == 1 else rank / (len(direct) - 1)
        ends[i] = x_of(box) + half_w * (low + (high - low) * share if len(direct) > 1 else 0.0)
    return ends


def routes(placed: dict[str, Box]) -> tuple[list[Route], float]:
    """Each input edge's path, and how far right the side lanes reach (inches)."""
    rows: dict[int, list[int]] = {}
    for box in placed.values():
        rows.setdefault(box.row, []).append(box.column)
    found: list[Route] = []
    lanes: list[tuple[int, int, float]] = []  # (first row, last row, x) of the side arrows so far
    farthest = 0.0
    half_w, half_h, gap = BOX_WIDTH / 2, BOX_HEIGHT / 2, (ROW_PITCH - BOX_HEIGHT) / 2
    for box in placed.values():
        sources = [placed[name] for name in box.inputs]
        side = [bool(_between(rows, source, box)) and _column_taken(rows, source, box) for source in sources]
        ends = _ends(box, sources, side)
        for source, shortcut, end_x in zip(sources, side, ends):
            x0, y0, y1 = x_of(source), y_of(source), y_of(box)
            start, end = (x0, y0 + half_h), (end_x, y1 - half_h)
            if not _between(rows, source, box):
                found.append(Route(source.name, box.name, [start, end]))
            elif not shortcut:  # its column is free below it: straight down, then across in the last gap
                found.append(Route(source.name, box.name, [start, (x0, y1 - half_h - gap), end]))
            else:  # a shortcut: out to a lane right of every box it passes, down, and back in
                right = max(max(rows[row]) for row in range(source.row, box.row + 1))
                x = x_at(right) + half_w + 2 * LANE_PITCH
                while any(a < box.row and source.row < b and abs(x - lane) < LANE_PITCH / 2 for a, b, lane in lanes):
                    x += LANE_PITCH
                lanes.append((source.row, box.row, x))
                farthest = max(farthest, x)
                out_y, in_y = y0 + half_h + gap * 0.6, y1 - half_h - gap * 0.6
                x_out = x0 + half_w * 0.6
                points = [(x_out, start[1]), (x_out, out_y), (x, out_y), (x, in_y), (end_x, in_y), end]
                found.append(Route(source.name, box.name, points, shortcut=True))
    return found, farthest


def draw(network: Network, expand: bool = False):
    """The boxes diagram as a matplotlib figure, sized in inches to its rows and columns.

    A spec with blocks is drawn with one box per use of a block, unless `expand`.
    """
    plt = pyplot()
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
    from matplotlib.path import Path

    placed = boxes(network, expand)
    columns = 1 + max(box.column for box in placed.values())
    rows = 1 + max(box.row for box in placed.values())
    left = x_at(0)
    found, farthest = routes(placed)
    width = max(left + (columns - 1) * COLUMN_PITCH + BOX_WIDTH / 2, farthest) + MARGIN
    height = TITLE + 2 * MARGIN + (rows - 1) * ROW_PITCH + BOX_HEIGHT
    figure = plt.figure(figsize=(max(width, 4.0), height))
    ax = figure.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, max(width, 4.0))
    ax.set_ylim(height, 0)  # rows go down
    ax.axis("off")
    title = network.spec.name + (f" — {network.spec.description}" if network.spec.description else "")
    # Wrapped here, not by matplotlib's wrap=True, which ran a long description past the right edge and over the
    # note below it: two lines fit above the boxes (TITLE), the note under the last.
    lines = textwrap.wrap(title, int((max(width, 4.0) - 2 * MARGIN) * TITLE_CHARS_PER_INCH)) or [""]
    if len(lines) > 2:
        lines = [lines[0], textwrap.shorten(" ".join(lines[1:]), len(lines[1]), placeholder=" …")]
    ax.text(MARGIN, MARGIN, "\n".join(lines), ha="left", va="top", fontsize=10, fontweight="bold")
    if any(box.fill == FILLS["unit"] for box in placed.values()):
        note_y = MARGIN + 0.2 + TITLE_LINE * (len(lines) - 1)
        ax.text(MARGIN, note_y, UNITS_NOTE, ha="left", va="top", fontsize=DETAIL_SIZE, color=EDGE)
    for box in placed.values():
        x, y = x_of(box), y_of(box)
        patch = ax.add_patch(
            FancyBboxPatch(
                (x - BOX_WIDTH / 2, y - BOX_HEIGHT / 2),
                BOX_WIDTH,
                BOX_HEIGHT,
                boxstyle="round,pad=0,rounding_size=0.08",
                facecolor=box.fill,
                edgecolor=EDGE,
                linewidth=1.0,
                zorder=3,
            )
        )
        patch.set_gid(f"box {box.name}")
        # A use's box says two lines under its name (its blocks; its layers and shape): set closer, and higher.
        title_y, detail_y = (y - 0.08, y - 0.05) if "\n" in box.detail else (y - 0.07, y + 0.03)
        ax.text(x, title_y, box.title, ha="center", va="bottom", fontsize=NAME_SIZE, fontweight="bold", zorder=4)
        detail = ax.text(x, detail_y, box.detail, ha="center", va="top", fontsize=DETAIL_SIZE, color=EDGE, zorder=4)
        detail.set_linespacing(1.05)
    for route in found:
        codes = [Path.MOVETO] + [Path.LINETO] * (len(route.points) - 1)
        arrow = FancyArrowPatch(
            path=Path(route.points, codes),
            arrowstyle="-|>,head_length=5,head_width=3",
            color=NEUTRAL if route.shortcut else EDGE,
            linewidth=1.0,
            shrinkA=0,
            shrinkB=0,
            zorder=2,
        )
        arrow.set_gid(f"edge {route.source} -> {route.target}")
        ax.add_patch(arrow)
    return figure
