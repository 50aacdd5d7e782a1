"""The inference plan's fusions: batch norms folded into the layer before them, merges written in place.

At inference a batch norm is an affine map per channel, y = x·s + t with s = γ/√(var + ε) and
t = β − mean·s. When the layer computing its input is a convolution or a dense layer without an
activation, whose output nothing else reads, the map goes into that layer's arrays (as ONNX
Runtime, TensorRT and torch.fx fold them): weights' = weights·s per filter, bias' = (bias − mean)·s
+ β, and the batch norm's activation becomes the fused layer's. The product then gives the batch
norm's output directly, with no pass over the values for the normalisation.

Only the running steps fuse: the spec, the saved arrays and training (`forward_with_backprop`)
keep each layer apart. A fused step reads the arrays as they are at each run, so arrays changed in
place (by training, or by hand) are always what runs: its batch norm's (s, t) are computed anew
(one value a channel), and then, whichever costs less for the batch at hand, the weights are folded
anew into a buffer the fused runner holds (a pass over the weights), or the layer runs as it is and
(s, t) and the activation are applied in place to its output (a pass over the output). Deep layers
of a small batch take the second way, wide layers of a large batch the first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from netspec.graph import INPUT, last_readers
from netspec.layers.activations import ACTIVATIONS
from netspec.layers.common import alpha_of

FOLDS_INTO = ("conv2d", "dense")
"""Kinds a batch norm after them folds into: each output channel comes from its own row of weights and its bias."""

FRESH = frozenset({"conv2d", "dense", "batchnorm", "add"})
"""Kinds whose running step returns an array of its own (never a view of an input): a merge reading such a
value, as its last reader, may write its result into it."""


def folds(nodes: Sequence[Any]) -> dict[int, int]:
    """For each batch norm that folds at inference, its index → the index of the layer it folds into.

    It folds into the conv2d or dense layer computing its input when that layer has no activation
    (linear) and no other layer reads its output.
    """
    index_of = {node.name: index for index, node in enumerate(nodes)}
    readers: dict[str, int] = {}
    for node in nodes:
        for name in node.inputs:
            readers[name] = readers.get(name, 0) + 1
    found = {}
    for index, node in enumerate(nodes):
        if node.type != "batchnorm" or len(node.inputs) != 1 or node.inputs[0] == INPUT:
            continue
        before = index_of.get(node.inputs[0])
        if before is None or before >= index:
            continue
        producer = nodes[before]
        if producer.type not in FOLDS_INTO or producer.spec.activation != "linear" or readers[producer.name] > 1:
            continue
        found[index] = before
    return found


class Folded:
    """The running step of a layer with the batch norm after it folded in: run(x) gives the batch norm's output."""

    def __init__(self, layer: Any, norm: Any):
        self.layer, self.norm = layer, norm
        # The fused layer's own arrays and its runner, made the first time that way is taken (a layer whose
        # batches never take it costs no copy of its weights), then folded anew in place at each run.
        self.params: dict[str, np.ndarray] = {}
        self.fused = layer.spec.model_copy(update={"activation": norm.spec.activation, "alpha": norm.spec.alpha})
        self.run_folded: Callable[[np.ndarray], np.ndarray] | None = None
        self.run_plain = layer.infer  # the layer as it is (no activation: it folds only so), arrays as they are
        self.activation = ACTIVATIONS[norm.spec.activation].in_place
        self.alpha = alpha_of(norm.spec)
        self.per_channel = (-1, 1, 1) if len(norm.input_shape) == 3 else (-1,)
        self.values = int(np.prod(norm.input_shape))  # of the layer's output, per example

    def run(self, x: np.ndarray) -> np.ndarray:
        scale, shift = _affine(self.norm.params, self.norm.spec.epsilon)
        if self.layer.params["weights"].size <= len(x) * self.values:  # folding the weights costs less
            self._fold(scale, shift)
            return self.run_folded(x)
        y = self.run_plain(x)  # an array of its own: the map is applied in place
        dtype = y.dtype
        y *= scale.astype(dtype).reshape(self.per_channel)
        y += shift.astype(dtype).reshape(self.per_channel)  # the layer's bias is in y: (Wx + b)·s + (β − mean·s)
        return self.activation(y, self.alpha)

    def _fold(self, scale: np.ndarray, shift: np.ndarray) -> None:
        """weights' = weights·s per output channel, bias' = (bias − mean)·s + β, from the arrays as they are now."""
        own = self.layer.params
        weights = own["weights"]
        if self.run_folded is None:  # runners bind their arrays as they are made: the arrays first
            self.params.update(weights=np.empty_like(weights), bias=np.empty(len(weights), dtype=weights.dtype))
            self.run_folded = self.layer.kind.runner(self.fused, self.params)
        np.multiply(
            weights, scale.astype(weights.dtype).reshape(-1, *[1] * (weights.ndim - 1)), out=self.params["weights"]
        )
        bias = own["bias"].astype(np.float64) if "bias" in own else 0.0
        np.copyto(self.params["bias"], bias * scale + shift, casting="same_kind")


class Affine:
    """The running step of a batch norm that does not fold: y = x·s + t per channel, then the activation in place."""

    def __init__(self, norm: Any):
        self.norm = norm
        self.activation = ACTIVATIONS[norm.spec.activation].in_place
        self.alpha = alpha_of(norm.spec)
        self.shape = (-1, 1, 1) if len(norm.input_shape) == 3 else (-1,)  # per channel of an image, or per feature

    def run(self, x: np.ndarray) -> np.ndarray:
        dtype = self.norm.params["scale"].dtype
        scale, shift = _affine(self.norm.params, self.norm.spec.epsilon)  # one value a channel: anew each run
        y = x * scale.astype(dtype).reshape(self.shape)
        y += shift.astype(dtype).reshape(self.shape)
        return self.activation(y, self.alpha)


def _affine(norm: dict[str, np.ndarray], epsilon: float) -> tuple[np.ndarray, np.ndarray]:
    """(s, t) of the batch norm's map y = x·s + t, in float64 whatever the network's dtype (rounded once, after)."""
    scale = norm["scale"].astype(np.float64) / np.sqrt(norm["var"].astype(np.float64) + epsilon)
    return scale, norm["shift"] - norm["mean"].astype(np.float64) * scale


def add_into(layer: Any, into: int) -> Callable[..., np.ndarray]:
    """An add's running step writing the sum into its input `into`, a value no layer reads after it."""
    act, alpha = ACTIVATIONS[layer.activation].in_place, alpha_of(layer)

    def run(*inputs: np.ndarray) -> np.ndarray:
        z = inputs[into]
        for at, x in enumerate(inputs):
            if at != into:
                z += x
        return act(z, alpha)

    return run


@dataclass
class Step:
    """One running step: the function, the names it reads, the name of what it gives, and the layer it stands for."""

    run: Callable[..., np.ndarray]
    inputs: list[str]
    name: str
    type: str
    layer: int
    """Index of the layer whose step it is (for a fused step, the layer folded into)."""


def plan(nodes: Sequence[Any], fuse: bool = True) -> list[Step]:
    """The running steps of `nodes` in order.

    With `fuse`, each batch norm that folds runs inside the layer before it, one that does not runs
    as its per-channel map, and an add writes into an input that dies there; without, each layer
    runs its own runner.
    """
    found = folds(nodes) if fuse else {}
    into = {before: index for index, before in found.items()}
    steps = []
    for index, node in enumerate(nodes):
        if index in found:
            continue  # it runs inside the layer before it
        if index in into:
            norm = nodes[into[index]]
            each = Folded(node, norm)
            steps.append(Step(each.run, list(node.inputs), norm.name, norm.type, index))
        elif fuse and node.type == "batchnorm":
            each = Affine(node)
            steps.append(Step(each.run, list(node.inputs), node.name, node.type, index))
        else:
            steps.append(Step(node.infer, list(node.inputs), node.name, node.type, index))
    if fuse:
        last = last_readers(steps)
        kinds = {step.name: step.type for step in steps}
        for at, step in enumerate(steps):
            if step.type == "add":
                into_input = _dying_input(step, at, last, kinds)
                if into_input is not None:
                    step.run = add_into(nodes[step.layer].spec, into_input)
    return steps


def _dying_input(step: Step, at: int, last: dict[str, int], kinds: dict[str, str]) -> int | None:
    """Which input an add may write its sum into: one whose value no later step reads, read once by the add,
    and made by a step that returns an array of its own (not the network's input, not a view of a value)."""
    for position, name in enumerate(step.inputs):
        if last.get(name) == at and step.inputs.count(name) == 1 and kinds.get(name) in FRESH:
            return position
    return None
