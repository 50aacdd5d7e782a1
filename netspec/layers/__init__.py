"""Layer types: each module holds one layer's pydantic model and its pure NumPy math.

Every layer module offers the same functions (output_shape, param_shapes, fans,
axis_meanings, multiply_adds, forward), so the builder and the network treat layers alike.
A new type is one new module plus one line in LAYER_MODULES and the Layer union.
"""

from __future__ import annotations

from types import ModuleType
from typing import Annotated

from pydantic import Discriminator, Tag

from netspec.layers import dense
from netspec.layers.dense import Dense

LAYER_MODULES: dict[str, ModuleType] = {"dense": dense}


def _layer_type(value: object) -> str | None:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return kind if isinstance(kind, str) else None


# One member so far; each new layer type joins as `| Annotated[Conv2D, Tag("conv2d")]`.
Layer = Annotated[
    Annotated[Dense, Tag("dense")],
    Discriminator(_layer_type),
]
"""Any layer, chosen by its `type` key."""

__all__ = ["LAYER_MODULES", "Dense", "Layer"]
