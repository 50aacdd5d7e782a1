"""What the merge kinds (add, concat, multiply) share: several inputs, no parameters, an optional activation.

Each merge kind is a `Merge` whose module gives its shape rule, its math and its ONNX node;
this module answers the rest of the `Kind` contract for all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from netspec.layers.activations import ACTIVATIONS, ActivationName
from netspec.layers.common import ActivatedLayer, activation_to_onnx, alpha_of
from netspec.layers.kind import Emitter, Shape, dims


class ActivatedMerge(ActivatedLayer):
    """A merge that may apply an activation to what it combines (add, concat), as dense and conv2d do."""

    activation: ActivationName = "linear"
    """Function applied to the merged values."""
    alpha: float | None = Field(default=None, ge=0)
    """leaky_relu's slope below 0 (default 0.01), or elu's alpha·(e^z − 1) below 0 (default 1); only they take it."""


def shape_text(shape: Shape) -> str:
    """A shape as merge messages write it, as Keras does: (64, 56, 56)."""
    return str(tuple(shape))


def activated(layer: Any, z: np.ndarray) -> tuple[np.ndarray, Callable[[np.ndarray, bool], np.ndarray]]:
    """The layer's activation of `z` (its own array), and the function taking dy back to dz."""
    act = ACTIVATIONS[getattr(layer, "activation", "linear")]
    alpha = alpha_of(layer) if hasattr(layer, "alpha") else 0.0
    y = act.forward(z, alpha)

    def back(dy: np.ndarray, preactivation: bool) -> np.ndarray:
        return dy if preactivation else act.backward(z, y, dy, alpha)

    return y, back


def in_place_activation(layer: Any) -> Callable[[np.ndarray], np.ndarray]:
    """The layer's activation applied in place to an array the merge made itself (running, not training)."""
    act, alpha = ACTIVATIONS[layer.activation].in_place, alpha_of(layer)
    return lambda z: act(z, alpha)


def onnx_activation(node: Any, z: str, emit: Emitter) -> str:
    """The merge's activation on tensor `z`, as an ONNX node (none for linear)."""
    return activation_to_onnx(node.spec, z, len(node.output_shape), emit)


@dataclass(frozen=True)
class Merge:
    """A kind reading two or more inputs, with no parameters; its math lives in `module`.

    The module provides output_shape(layer, input_shapes), forward(layer, inputs, train) ->
    (y, backprop(dy, preactivation, input_grad) -> [one gradient per input]), runner(layer) ->
    run(*inputs), to_onnx(node, inputs, emit) and multiply_adds(layer, input_shapes).
    """

    model: type
    module: ModuleType
    max_inputs: int | None = None
    passes: str | None = None
    min_inputs: ClassVar[int] = 2
    not_learned: ClassVar[frozenset[str]] = frozenset()
    non_negative: ClassVar[frozenset[str]] = frozenset()
    decayed: ClassVar[frozenset[str]] = frozenset()
    reads_flat: ClassVar[bool] = False
    neurons: ClassVar[None] = None

    @property
    def tag(self) -> str:
        return self.model.model_fields["type"].default

    def output_shape(self, layer: Any, input_shapes: list[Shape]) -> Shape:
        return self.module.output_shape(layer, input_shapes)

    def param_shapes(self, layer: Any, input_shapes: list[Shape]) -> dict[str, Shape]:
        return {}

    def fans(self, layer: Any, input_shapes: list[Shape]) -> tuple[int, int]:
        return 1, 1

    def axis_meanings(self, layer: Any) -> dict[str, tuple[str, ...]]:
        return {}

    def multiply_adds(self, layer: Any, input_shapes: list[Shape]) -> int:
        return self.module.multiply_adds(layer, input_shapes)

    def forward(self, layer: Any, params: dict[str, np.ndarray], inputs: list[np.ndarray], train=False, rng=None):
        y, backprop = self.module.forward(layer, inputs)

        def backprop_each(dy: np.ndarray, preactivation: bool = False, input_grad: bool = True):
            return backprop(dy, preactivation, input_grad), {}

        return y, backprop_each

    def runner(self, layer: Any, params: dict[str, np.ndarray]) -> Callable[..., np.ndarray]:
        return self.module.runner(layer)

    def to_onnx(self, node: Any, inputs: list[str], emit: Emitter) -> str:
        return self.module.to_onnx(node, inputs, emit)

    def activation(self, layer: Any) -> str:
        return getattr(layer, "activation", "")

    def caption(self, layer: Any, output_shape: Shape) -> str:
        activation = getattr(layer, "activation", "linear")
        return f"{self.tag}" + (f", {activation}" if activation != "linear" else "") + f"\n{dims(output_shape)}"
