"""Batch normalization: each channel scaled to mean 0 and variance 1, then by a learned scale and shift."""

import sys
from typing import Literal

import numpy as np
from pydantic import Field

from netspec.fields import Ones, Zeros, param_source
from netspec.layers import batch_parts
from netspec.layers.activations import ACTIVATIONS, ActivationName
from netspec.layers.common import ActivatedLayer, activation_to_onnx, alpha_of
from netspec.layers.kind import OneInput, dims
from netspec.layers.sums import Channels


class BatchNorm(ActivatedLayer):
    """As PyTorch's BatchNorm1d/2d and ONNX's BatchNormalization, over channels (or features)."""

    type: Literal["batchnorm"] = "batchnorm"
    """Layer type."""
    momentum: float = Field(default=0.1, gt=0, le=1)
    """Weight of each training batch in the running statistics: running = (1 - m)·running + m·batch."""
    epsilon: float = Field(default=1e-5, gt=0)
    """Added to the variance before its square root."""
    scale: param_source(1) = Field(default_factory=lambda: Ones(init="ones"))
    """Learned scale (γ), one value per channel."""
    shift: param_source(1) = Field(default_factory=lambda: Zeros(init="zeros"))
    """Learned shift (β), one value per channel."""
    mean: param_source(1) = Field(default_factory=lambda: Zeros(init="zeros"))
    """Running mean, one value per channel; used when running the network."""
    var: param_source(1) = Field(default_factory=lambda: Ones(init="ones"))
    """Running variance, one value per channel; used when running the network."""
    activation: ActivationName = "linear"
    """Function applied to the scaled and shifted values (conv → batchnorm → relu, as PyTorch models are written)."""
    alpha: float | None = Field(default=None, ge=0)
    """leaky_relu's slope below 0 (default 0.01), or elu's alpha·(e^z − 1) below 0 (default 1); only they take it."""


PARAMS = ("scale", "shift", "mean", "var")
NON_NEGATIVE = frozenset({"var"})
"""Parameters whose values can never be negative; the builder refuses arrays that are."""
NOT_LEARNED = frozenset({"mean", "var"})
"""Kept up to date while training, but not by gradients: Keras's non-trainable weights."""


def output_shape(layer: BatchNorm, input_shape: tuple[int, ...]) -> tuple[int, ...]:
    return input_shape


def param_shapes(layer: BatchNorm, input_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    return {name: (input_shape[0],) for name in PARAMS}


def fans(layer: BatchNorm, input_shape: tuple[int, ...]) -> tuple[int, int]:
    return 1, 1


def axis_meanings(layer: BatchNorm) -> dict[str, tuple[str, ...]]:
    return {name: ("channel",) for name in PARAMS}


def multiply_adds(layer: BatchNorm, input_shape: tuple[int, ...]) -> int:
    return int(np.prod(input_shape))


def forward(layer: BatchNorm, params: dict[str, np.ndarray], x: np.ndarray, train: bool = False, rng=None):
    """Normalised outputs through the activation, and the backprop function (see dense.forward).

    While training, the batch's own statistics normalise it and the running statistics are
    updated in place (the unbiased variance, as PyTorch); otherwise the running ones are used.
    Every sum over the batch is accumulated in float64 (`sums.column_sums`): in float32 a sum of
    thousands of values per channel keeps few correct digits, and the backward pass subtracts such
    sums from each other, so a deep float32 network's gradients drifted several times further from
    float64's than PyTorch's do.
    """
    count = x.size // max(x.shape[1], 1)
    # One value per channel has no variance: such a batch (say the last, of one example) is
    # normalised with the running statistics and leaves them as they are (PyTorch refuses it).
    train = train and count > 1
    layout = Channels(x)
    v, per = layout.flat(x), layout.vector
    if train:
        # The sweeps over the values run on the threads, each on fixed parts of the rows (batch_parts).
        parts = batch_parts.cuts(len(v), v.size)
        mean = batch_parts.added(batch_parts.each(parts, lambda a, b: layout.sums(v[a:b]))) / count
        normal = np.empty_like(v)
        centre = per(mean.astype(x.dtype))

        def deviations(a: int, b: int) -> np.ndarray:
            part = np.subtract(v[a:b], centre, out=normal[a:b])  # the deviations first: two passes, no cancellation
            return layout.sums(part * part)

        var = batch_parts.added(batch_parts.each(parts, deviations)) / count
        m = layer.momentum
        params["mean"] *= 1 - m
        params["mean"] += m * mean
        params["var"] *= 1 - m
        params["var"] += m * var * (count / (count - 1))
    else:
        parts = [(0, len(v))]
        mean, var = params["mean"], params["var"]
        normal = v - per(mean)
    inv_std = 1.0 / np.sqrt(var.astype(np.float64) + layer.epsilon)
    spread, scale, shift = per(inv_std.astype(x.dtype)), per(params["scale"]), per(params["shift"])
    act, alpha = ACTIVATIONS[layer.activation], alpha_of(layer)
    z = np.empty_like(normal, dtype=np.result_type(normal, params["scale"], params["shift"]))
    y = z if layer.activation == "linear" else np.empty_like(z)

    def scaled(a: int, b: int) -> None:
        normal[a:b] *= spread
        np.multiply(normal[a:b], scale, out=z[a:b])
        z[a:b] += shift
        if y is not z:
            y[a:b] = act.forward(z[a:b], alpha)  # every activation works row by row (softmax: along a row)

    batch_parts.each(parts, scaled)

    def backprop(dy, preactivation: bool = False, input_grad: bool = True):
        dy = layout.flat(dy)
        each = parts if len(dy) == len(v) else [(0, len(dy))]

        def gradients(a: int, b: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            dz = dy[a:b] if preactivation else act.backward(z[a:b], y[a:b], dy[a:b], alpha)
            return dz, layout.sums(dz), layout.sums(dz * normal[a:b])

        found = batch_parts.each(each, gradients)
        dzs = [dz for dz, _, _ in found]
        dshift = batch_parts.added([s for _, s, _ in found])
        dscale = batch_parts.added([s for _, _, s in found])
        dtype = dzs[0].dtype
        grads = {"scale": dscale.astype(dtype), "shift": dshift.astype(dtype)}
        if not input_grad:
            return None, grads
        # dx = scale·inv_std·(dz − mean(dz) − normal·mean(dz·normal)): the per-channel factors in
        # float64, then three passes over the values.
        factor = params["scale"].astype(np.float64) * inv_std
        first = per(factor.astype(dtype))
        if train:
            second = per((factor * dshift / count).astype(dtype))
            third = per((factor * dscale / count).astype(dtype))
        dx = np.empty_like(dy, dtype=dtype)

        def input_gradient(k: int) -> None:
            a, b = each[k]
            np.multiply(dzs[k], first, out=dx[a:b])
            if train:
                dx[a:b] -= second
                dx[a:b] -= normal[a:b] * third

        batch_parts.each([(k, k + 1) for k in range(len(each))], lambda k, _: input_gradient(k))
        return layout.shaped(dx), grads

    return layout.shaped(y), backprop


def to_onnx(node, x: str, emit) -> str:
    inputs = [x] + [emit.constant(f"{node.name}.{key}", node.params[key]) for key in PARAMS]
    # ONNX's momentum weighs the running value: running = running·momentum + batch·(1 − momentum).
    z = emit.node("BatchNormalization", inputs, node.name, epsilon=node.spec.epsilon, momentum=1 - node.spec.momentum)
    return activation_to_onnx(node.spec, z, len(node.output_shape), emit)


def caption(layer: BatchNorm, output_shape: tuple[int, ...]) -> str:
    activation = "" if layer.activation == "linear" else f", {layer.activation}"
    return f"batchnorm{activation}\n{dims(output_shape)}"


KIND = OneInput(
    BatchNorm, sys.modules[__name__], not_learned=NOT_LEARNED, non_negative=NON_NEGATIVE, passes="elementwise"
)
