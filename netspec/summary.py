"""A table of a network's layers and its totals, like Keras's model.summary(), worked out from the plan alone.

No array is made: a network too large for this machine's memory is summarised as readily as a small one.
`netspec summary` prints it; `Network.summary()` and `summarise(spec)` give it to Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from math import prod

import numpy as np

from netspec.builder import plan
from netspec.errors import plural, size_shown
from netspec.fusion import folds
from netspec.graph import is_chain
from netspec.spec import Spec
from netspec.units import owners, reads, shown, units

HEADERS = ("Layer", "Type", "Output shape", "Params", "Mult-adds", "Activation")
CONNECTED = "Connected to"
"""The column a graph's table adds: what each layer reads (a chain's table leaves it out: always the row above)."""
BLOCK = "block "
"""How a use's type starts in the table: "block identity ×2", "block basic + identity"."""
CLASSES_WIDTH = 100
"""Characters of the classes line; longer lists (ImageNet's 1,000 labels) show their first labels and a count."""


@dataclass(frozen=True)
class LayerRow:
    """One line of the table: the input or a layer, the shape it gives, and what it costs."""

    name: str
    type: str
    """The layer's type, or for the input `image` or `features`."""
    output_shape: tuple[int, ...]
    params: int
    multiply_adds: int
    """Multiply-adds for one input."""
    activation: str = ""
    inputs: tuple[str, ...] = ()
    """The names of what the layer reads ("input": the network's input); none for the input."""

    def cells(self, connected: bool = False) -> tuple[str, ...]:
        """The row as the table shows it, one text per column of HEADERS (and CONNECTED if `connected`)."""
        shape, params, adds = str(self.output_shape), f"{self.params:,}", f"{self.multiply_adds:,}"
        cells = (self.name, self.type, shape, params, adds, self.activation)
        return (*cells, ", ".join(self.inputs)) if connected else cells


@dataclass(frozen=True)
class Summary:
    """What `netspec summary` shows of a spec; `str()` gives the table as it prints it."""

    name: str
    description: str
    classes: list[str]
    rows: list[LayerRow]
    """The input, then each layer in order."""
    params: int
    trainable_params: int
    """Parameters learned from gradients (batchnorm's running statistics are not)."""
    multiply_adds: int
    """Multiply-adds for one input, all layers together."""
    input_values: int
    """Numbers in one input (features, or channels × height × width)."""
    dtype: np.dtype
    graph: bool = False
    """Whether some layer reads other than the layer before it: the table then shows what each reads."""
    folded: dict[str, str] = field(default_factory=dict)
    """Each batch norm folded into the layer before it when the network runs (netspec.fusion): its name →
    that layer's type (conv2d or dense)."""
    units: list[LayerRow] = field(default_factory=list)
    """For a spec with blocks: the input, then one row per layer or use of a block written at top level
    (a use's row: its name, type "block <its copies' blocks>", its last layer's output shape, the sums of
    its layers' parameters and multiply-adds, and what it reads from outside). Empty without blocks."""
    expand: bool = False
    """Whether the table shows every layer (`rows`) rather than one row per use of a block (`units`)."""

    @property
    def non_trainable_params(self) -> int:
        return self.params - self.trainable_params

    @property
    def shown(self) -> list[LayerRow]:
        """The rows the table shows: one per use of a block, or every layer (with `expand`, or without blocks)."""
        return self.units if self.units and not self.expand else self.rows

    def __str__(self) -> str:
        rows = self.shown
        # The units of a ResNet read one another in a chain: what each reads is then the row above.
        graph = self.graph if rows is self.rows else not _reads_row_above(rows)
        headers = (*HEADERS, CONNECTED) if graph else HEADERS
        table = [headers, *(row.cells(graph) for row in rows)]
        widths = [max(len(cells[i]) for cells in table) for i in range(len(headers))]
        numeric = {3, 4}

        def line(cells: tuple[str, ...]) -> str:
            aligned = [c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))]
            return "  ".join(aligned).rstrip()

        rule = "─" * len(line(headers))
        described = f" — {self.description}" if self.description else ""
        return "\n".join(
            [
                f"{self.name}{described}",
                classes_line(self.classes),
                rule,
                line(headers),
                rule,
                *(line(cells) for cells in table[1:]),
                rule,
                f"Total params: {self.params:,} ({size_shown(self.params * self.dtype.itemsize)} as {self.dtype})",
                f"Trainable params: {self.trainable_params:,}",
                f"Non-trainable params: {self.non_trainable_params:,}",
                f"Mult-adds per input: {self.multiply_adds:,}",
                f"Input values per sample: {self.input_values:,}",
                *([folded_line(self.folded)] if self.folded else []),
                *([self._blocks_line()] if rows is self.units else []),
            ]
        )

    def _blocks_line(self) -> str:
        uses = [row for row in self.units if row.type.startswith(BLOCK)]
        layers = len(self.rows) - len(self.units) + len(uses)
        shown = f"{plural(len(uses), 'use')} shown as one row each ({layers:,} layers)"
        return f"Blocks: {shown}; --expand shows every layer"


def _reads_row_above(rows: list[LayerRow]) -> bool:
    return all(row.inputs == (above.name,) for above, row in zip(rows, rows[1:]))


def folded_line(folded: dict[str, str]) -> str:
    """'At inference, 19 batch norms are folded into the conv2d layers before them' (Keras and PyTorch say fused)."""
    kinds = " and ".join(sorted(set(folded.values())))
    if len(folded) == 1:
        return f"At inference, 1 batch norm is folded into the {kinds} layer before it"
    return f"At inference, {plural(len(folded), 'batch norm')} are folded into the {kinds} layers before them"


def summarise(spec: Spec, expand: bool = False) -> Summary:
    """The summary of a valid spec, from the shapes its plan gives (no array is made).

    A spec with blocks shows one row per use of a block, unless `expand` (every layer, as written flat).

    Raises:
        SpecError: a layer that does not fit its input (NS126), as building would say.
    """
    plans = plan(spec)
    kind = "image" if spec.input.image else "features"
    rows = [LayerRow("input", kind, spec.input.shape, 0, 0)]
    for p in plans:
        activation = p.kind.activation(p.spec)
        row = LayerRow(p.name, p.kind.tag, p.output_shape, p.param_count, p.multiply_adds, activation, tuple(p.inputs))
        rows.append(row)
    return Summary(
        name=spec.name,
        description=spec.description,
        classes=list(spec.classes),
        rows=rows,
        params=sum(p.param_count for p in plans),
        trainable_params=sum(p.trainable_count for p in plans),
        multiply_adds=sum(p.multiply_adds for p in plans),
        input_values=prod(spec.input.shape),
        dtype=np.dtype(spec.dtype),
        graph=not is_chain(plans),
        folded={plans[norm].name: plans[into].type for norm, into in folds(plans).items()},
        units=_unit_rows(spec, rows),
        expand=expand,
    )


def _unit_rows(spec: Spec, rows: list[LayerRow]) -> list[LayerRow]:
    """The input's row, then one row per top-level layer (as in `rows`) or use of a block (summed)."""
    found = units(spec)
    if found is None:
        return []
    layers = rows[1:]
    names = [row.name for row in layers]
    inputs = [row.inputs for row in layers]
    by_layer = owners(found, names)
    result = [rows[0]]
    for unit in found:
        read = tuple(shown(name, by_layer, names) for name in reads(unit, inputs, names))
        if not unit.is_use:
            result.append(replace(layers[unit.start], inputs=read))
            continue
        members = layers[unit.start : unit.stop]
        params, adds = sum(row.params for row in members), sum(row.multiply_adds for row in members)
        result.append(LayerRow(unit.name, BLOCK + unit.copies, members[-1].output_shape, params, adds, "", read))
    return result


def classes_line(classes: list[str], width: int = CLASSES_WIDTH) -> str:
    """'classes: cat, dog', or for a long list 'classes (1,000): tench, goldfish, … (998 more)'."""
    line = f"classes: {', '.join(classes)}"
    if len(line) <= width:
        return line
    head, shown = f"classes ({len(classes):,}): ", classes[:1]  # the first label, however long
    for label in classes[1:]:
        rest = len(classes) - len(shown) - 1
        if len(head + ", ".join([*shown, label]) + f", … ({rest:,} more)") > width:
            break
        shown.append(label)
    return head + ", ".join(shown) + f", … ({len(classes) - len(shown):,} more)"
