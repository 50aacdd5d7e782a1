"""Layer types: each module holds its layers' pydantic models and their pure NumPy math.

Every layer module offers the same functions (output_shape, param_shapes, fans, axis_meanings,
multiply_adds, forward), so the builder and the network treat layers alike. A module may add
`runner(layer, params)`, a faster function for running (not training) than its forward (dense
and conv2d do). A new type is its model and functions in a module, and one entry each in
LAYER_MODULES, LAYER_MODELS and the Layer union.
"""

from __future__ import annotations

from types import ModuleType
from typing import Annotated

from pydantic import Discriminator, Tag

from netspec.layers import batchnorm, conv2d, dense, dropout, flatten, pooling
from netspec.layers.batchnorm import BatchNorm
from netspec.layers.conv2d import Conv2D
from netspec.layers.dense import Dense
from netspec.layers.dropout import Dropout
from netspec.layers.flatten import Flatten
from netspec.layers.pooling import AvgPool2D, GlobalAvgPool, MaxPool2D

LAYER_MODULES: dict[str, ModuleType] = {
    "dense": dense,
    "conv2d": conv2d,
    "maxpool2d": pooling,
    "avgpool2d": pooling,
    "global_avgpool": pooling,
    "flatten": flatten,
    "dropout": dropout,
    "batchnorm": batchnorm,
}


LAYER_MODELS: dict[str, type] = {
    "dense": Dense,
    "conv2d": Conv2D,
    "maxpool2d": MaxPool2D,
    "avgpool2d": AvgPool2D,
    "global_avgpool": GlobalAvgPool,
    "flatten": Flatten,
    "dropout": Dropout,
    "batchnorm": BatchNorm,
}


def _layer_type(value: object) -> str | None:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return kind if isinstance(kind, str) else None


Layer = Annotated[
    Annotated[Dense, Tag("dense")]
    | Annotated[Conv2D, Tag("conv2d")]
    | Annotated[MaxPool2D, Tag("maxpool2d")]
    | Annotated[AvgPool2D, Tag("avgpool2d")]
    | Annotated[GlobalAvgPool, Tag("global_avgpool")]
    | Annotated[Flatten, Tag("flatten")]
    | Annotated[Dropout, Tag("dropout")]
    | Annotated[BatchNorm, Tag("batchnorm")],
    Discriminator(_layer_type),
]
"""Any layer, chosen by its `type` key."""

__all__ = [
    "LAYER_MODELS",
    "LAYER_MODULES",
    "AvgPool2D",
    "BatchNorm",
    "Conv2D",
    "Dense",
    "Dropout",
    "Flatten",
    "GlobalAvgPool",
    "Layer",
    "MaxPool2D",
]
