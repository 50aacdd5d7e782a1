"""A table of a network's layers and its totals, like Keras's model.summary(), worked out from the plan alone.

No array is made: a network too large for this machine's memory is summarised as readily as a small one.
`netspec summary` prints it; `Network.summary()` and `summarise(spec)` give it to Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

import numpy as np

from netspec.builder import plan
from netspec.errors import size_shown
from netspec.spec import Spec

HEADERS = ("Layer", "Type", "Output shape", "Params", "Mult-adds", "Activation")
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

    def cells(self) -> tuple[str, ...]:
        """The row as the table shows it, one text per column of HEADERS."""
        shape, params, adds = str(self.output_shape), f"{self.params:,}", f"{self.multiply_adds:,}"
        return (self.name, self.type, shape, params, adds, self.activation)


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

    @property
    def non_trainable_params(self) -> int:
        return self.params - self.trainable_params

    def __str__(self) -> str:
        table = [HEADERS, *(row.cells() for row in self.rows)]
        widths = [max(len(cells[i]) for cells in table) for i in range(len(HEADERS))]
        numeric = {3, 4}

        def line(cells: tuple[str, ...]) -> str:
            aligned = [c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))]
            return "  ".join(aligned).rstrip()

        rule = "─" * len(line(HEADERS))
        described = f" — {self.description}" if self.description else ""
        return "\n".join(
            [
                f"{self.name}{described}",
                classes_line(self.classes),
                rule,
                line(HEADERS),
                rule,
                *(line(cells) for cells in table[1:]),
                rule,
                f"Total params: {self.params:,} ({size_shown(self.params * self.dtype.itemsize)} as {self.dtype})",
                f"Trainable params: {self.trainable_params:,}",
                f"Non-trainable params: {self.non_trainable_params:,}",
                f"Mult-adds per input: {self.multiply_adds:,}",
                f"Input values per sample: {self.input_values:,}",
            ]
        )


def summarise(spec: Spec) -> Summary:
    """The summary of a valid spec, from the shapes its plan gives (no array is made).

    Raises:
        SpecError: a layer that does not fit its input (NS126), as building would say.
    """
    plans = plan(spec)
    kind = "image" if spec.input.image else "features"
    rows = [LayerRow("input", kind, spec.input.shape, 0, 0)]
    for p in plans:
        activation = p.kind.activation(p.spec)
        rows.append(LayerRow(p.name, p.kind.tag, p.output_shape, p.param_count, p.multiply_adds, activation))
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
    )


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
