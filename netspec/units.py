"""A spec's top-level uses of blocks as units: the layers each stands for, for views that show a use as one.

`netspec summary` shows a unit as one row and `netspec draw` as one box, unless asked to expand them.
A unit is either a layer written at top level (itself alone) or a top-level use of a block: every
layer its copies expanded to, nested uses included, which the expansion lists one after the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby

from netspec.node import INPUT
from netspec.spec import Spec


@dataclass(frozen=True)
class Unit:
    """A layer written at top level, or a use of a block with the layers it expanded to."""

    name: str
    """The layer's name, or the use's (`layer2`): what later layers read it by."""
    start: int
    """The index of its first layer in `spec.layers`."""
    stop: int
    """One past the index of its last layer (its output)."""
    blocks: tuple[str, ...] = ()
    """The block of each copy, in order (`("basic", "identity")`); empty for a layer written at top level."""

    @property
    def is_use(self) -> bool:
        return bool(self.blocks)

    @property
    def layers(self) -> range:
        return range(self.start, self.stop)

    @property
    def copies(self) -> str:
        """Its copies' blocks, runs counted: 'identity ×2', 'basic + identity', 'bottleneck_down + bottleneck ×5'."""
        runs = [(block, len(list(run))) for block, run in groupby(self.blocks)]
        return " + ".join(block if n == 1 else f"{block} ×{n}" for block, n in runs)


def units(spec: Spec) -> list[Unit] | None:
    """The spec's layers grouped by top-level use, in order; None for a spec that uses no block.

    The layers of one use are contiguous (a use is expanded in place), so each run of layers made by
    the same top-level use (the same `uses[0].path`; each copy is its own `Use`) is one unit.
    """
    origins = spec.origins
    if origins is None or not any(origin.uses for origin in origins):  # blocks defined but none used: flat
        return None
    found: list[Unit] = []
    for path, run in groupby(enumerate(origins), key=lambda item: item[1].uses[0].path if item[1].uses else None):
        members = list(run)
        if path is None:  # layers written at top level: one unit each
            found.extend(Unit(spec.layers[i].name, i, i + 1) for i, _ in members)
        else:
            uses = [origin.uses[0] for _, origin in members]
            blocks: dict[str, str] = {}  # each copy's name → its block, in order
            for use in uses:
                blocks.setdefault(use.copy, use.block)
            start = members[0][0]
            found.append(Unit(uses[0].name or uses[0].copy, start, start + len(members), tuple(blocks.values())))
    return found


def owners(found: list[Unit], names: Sequence[str]) -> dict[str, Unit]:
    """Each layer's name (the `names` of `spec.layers`, in order) → the unit it belongs to."""
    return {names[i]: unit for unit in found for i in unit.layers}


def reads(unit: Unit, inputs: Sequence[Sequence[str]], names: Sequence[str]) -> list[str]:
    """What a unit's layers read from outside it, in order, once each (`inputs[i]`: what layer i reads)."""
    inside = {names[i] for i in unit.layers}
    outside = [name for i in unit.layers for name in inputs[i] if name not in inside]
    return list(dict.fromkeys(outside))


def shown(name: str, by_layer: dict[str, Unit], names: Sequence[str]) -> str:
    """How a unit view names an input: a use's output by the use's name, any other layer (or the input) by its own."""
    unit = by_layer.get(name)
    if name != INPUT and unit is not None and unit.is_use and names[unit.stop - 1] == name:
        return unit.name
    return name
