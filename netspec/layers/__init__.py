"""Layer kinds: each module holds a kind's pydantic model and its pure NumPy math; KINDS lists them.

What a kind provides is written once, in netspec.layers.kind (`Kind`). Everything that depends on
a layer's type asks KINDS; a new kind is its module and one line below.
"""

from __future__ import annotations

from types import ModuleType

from netspec.layers import (
    activation,
    add,
    batchnorm,
    channel_shuffle,
    concat,
    conv2d,
    dense,
    dropout,
    flatten,
    lrn,
    multiply,
    pooling,
    slices,
)
from netspec.layers.activation import ActivationLayer
from netspec.layers.add import Add
from netspec.layers.batchnorm import BatchNorm
from netspec.layers.concat import Concat
from netspec.layers.conv2d import Conv2D
from netspec.layers.dense import Dense
from netspec.layers.dropout import Dropout
from netspec.layers.flatten import Flatten
from netspec.layers.kind import Kind, layer_union, registry
from netspec.layers.multiply import Multiply
from netspec.layers.pooling import AvgPool2D, GlobalAvgPool, MaxPool2D

KINDS: dict[str, Kind] = registry(
    dense.KIND,
    conv2d.KIND,
    pooling.MAX,
    pooling.AVG,
    pooling.GLOBAL,
    flatten.KIND,
    dropout.KIND,
    batchnorm.KIND,
    lrn.KIND,
    channel_shuffle.KIND,
    slices.KIND,
    activation.KIND,
    add.KIND,
    concat.KIND,
    multiply.KIND,
)
"""Every layer kind by its `type`, in the order messages and the JSON Schema list them."""

Layer = layer_union(KINDS)
"""Any layer, chosen by its `type` key."""

LAYER_MODELS: dict[str, type] = {tag: kind.model for tag, kind in KINDS.items()}
"""Each kind's pydantic model by its `type` (derived from KINDS)."""

LAYER_MODULES: dict[str, ModuleType] = {tag: kind.module for tag, kind in KINDS.items() if hasattr(kind, "module")}
"""The module holding the one-input math of each kind that has one (derived from KINDS; new code asks KINDS)."""

__all__ = [
    "KINDS",
    "Add",
    "LAYER_MODELS",
    "LAYER_MODULES",
    "ActivationLayer",
    "AvgPool2D",
    "BatchNorm",
    "Concat",
    "Conv2D",
    "Dense",
    "Dropout",
    "Flatten",
    "GlobalAvgPool",
    "Kind",
    "Layer",
    "MaxPool2D",
    "Multiply",
]
