"""Activation functions as pure NumPy pairs: forward(z) -> y and backward(z, y, dy) -> dz.

Each is PyTorch's function of the same name (torch.nn.functional), values and gradients, including
the gradient PyTorch's autograd gives at a kink (relu6 at 0 and 6, hard_swish at ±3).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, NamedTuple

import numpy as np

from netspec.layers.erf import normal_cdf

ActivationName = Literal[
    "linear",
    "relu",
    "leaky_relu",
    "sigmoid",
    "tanh",
    "softmax",
    "relu6",
    "hard_sigmoid",
    "hard_swish",
    "silu",
    "gelu",
    "elu",
]


class Activation(NamedTuple):
    """An activation's forward function, its backward function, and a forward that reuses z's memory."""

    forward: Callable[[np.ndarray, float], np.ndarray]
    backward: Callable[[np.ndarray, np.ndarray, np.ndarray, float], np.ndarray]
    in_place: Callable[[np.ndarray, float], np.ndarray]


def _linear(z, alpha):
    return z


def _linear_back(z, y, dy, alpha):
    return dy


def _relu(z, alpha):
    return np.maximum(z, 0)


def _relu_back(z, y, dy, alpha):
    return dy * (z > 0)


def _leaky_relu(z, alpha):
    return np.where(z > 0, z, alpha * z).astype(z.dtype, copy=False)


def _leaky_relu_back(z, y, dy, alpha):
    return np.where(z > 0, dy, alpha * dy).astype(dy.dtype, copy=False)


def _sigmoid(z, alpha):
    # Written through tanh so large |z| neither overflows exp nor loses precision.
    return 0.5 * (1 + np.tanh(0.5 * z))


def _sigmoid_back(z, y, dy, alpha):
    return dy * y * (1 - y)


def _tanh(z, alpha):
    return np.tanh(z)


def _tanh_back(z, y, dy, alpha):
    return dy * (1 - y * y)


def _softmax(z, alpha):
    # Subtracting the row maximum leaves the result unchanged and keeps exp from overflowing.
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _softmax_back(z, y, dy, alpha):
    return y * (dy - (dy * y).sum(axis=-1, keepdims=True))


def _relu6(z, alpha):
    return np.clip(z, 0, 6)


def _relu6_back(z, y, dy, alpha):
    return dy * ((z > 0) & (z < 6))  # 0 at both kinks, as PyTorch


def _hard_sigmoid(z, alpha):
    return np.clip(z + 3, 0, 6) / 6  # relu6(z + 3) / 6


def _hard_sigmoid_back(z, y, dy, alpha):
    # 1/6 exactly: PyTorch's own backward uses the float32 constant 1/6 even for float64.
    return dy * ((z > -3) & (z < 3)) / 6


def _hard_swish(z, alpha):
    return z * np.clip(z + 3, 0, 6) / 6  # z · relu6(z + 3) / 6


def _hard_swish_back(z, y, dy, alpha):
    # As PyTorch: 0 up to -3 included, z/3 + 1/2 between, 1 from 3 included.
    return dy * np.where(z < 3, np.where(z > -3, z / 3 + 0.5, 0), 1)


def _logistic(z):
    """sigmoid(z) accurate relative to its value (silu needs it for large negative z, where 1 + tanh cancels)."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1, e) / (1 + e)


def _silu(z, alpha):
    return z * _logistic(z)


def _silu_back(z, y, dy, alpha):
    s = _logistic(z)
    return dy * s * (1 + z * (1 - s))


def _gelu(z, alpha):
    return z * normal_cdf(z)  # z · Φ(z) = z/2 · (1 + erf(z/√2)), PyTorch's approximate='none'


_ONE_OVER_SQRT_2PI = 0.3989422804014327


def _gelu_back(z, y, dy, alpha):
    return dy * (normal_cdf(z) + z * np.exp(-0.5 * z * z) * _ONE_OVER_SQRT_2PI)  # Φ(z) + z·φ(z)


def _elu(z, alpha):
    # max(z, 0) + alpha·expm1(min(z, 0)): z above 0, alpha·(e^z − 1) below; expm1 keeps small z exact.
    negative = np.expm1(np.minimum(z, 0))
    negative *= alpha
    return np.maximum(z, 0) + negative


def _elu_back(z, y, dy, alpha):
    # From z, not y + alpha, which loses every digit where e^z is below alpha's last one. At 0: alpha, as PyTorch.
    return dy * np.where(z > 0, 1, alpha * np.exp(np.minimum(z, 0)))


# In-place forms for running a network, where z is not needed afterwards: no new arrays, so less
# memory traffic (this is what lets netspec's forward pass beat a plain chain of NumPy calls).


def _relu_in_place(z, alpha):
    return np.maximum(z, 0, out=z)


def _leaky_relu_in_place(z, alpha):
    return np.multiply(z, alpha, out=z, where=z < 0)


def _sigmoid_in_place(z, alpha):
    z *= 0.5
    np.tanh(z, out=z)
    z += 1
    z *= 0.5
    return z


def _tanh_in_place(z, alpha):
    return np.tanh(z, out=z)


def _softmax_in_place(z, alpha):
    if len(z) == 1:  # one input (a command on one image): whole-array reductions are 0.5 µs quicker
        z -= z.max()
        np.exp(z, out=z)
        z /= z.sum()
        return z
    z -= z.max(axis=-1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=-1, keepdims=True)
    return z


def _relu6_in_place(z, alpha):
    return np.clip(z, 0, 6, out=z)


def _hard_sigmoid_in_place(z, alpha):
    z += 3
    np.clip(z, 0, 6, out=z)
    z /= 6
    return z


def _hard_swish_in_place(z, alpha):
    gate = z + 3
    np.clip(gate, 0, 6, out=gate)
    z *= gate
    z /= 6
    return z


def _silu_in_place(z, alpha):
    z *= _logistic(z)
    return z


def _gelu_in_place(z, alpha):
    z *= normal_cdf(z)
    return z


def _elu_in_place(z, alpha):
    negative = np.expm1(np.minimum(z, 0))
    negative *= alpha
    np.maximum(z, 0, out=z)
    z += negative
    return z


ACTIVATIONS: dict[str, Activation] = {
    "linear": Activation(_linear, _linear_back, _linear),
    "relu": Activation(_relu, _relu_back, _relu_in_place),
    "leaky_relu": Activation(_leaky_relu, _leaky_relu_back, _leaky_relu_in_place),
    "sigmoid": Activation(_sigmoid, _sigmoid_back, _sigmoid_in_place),
    "tanh": Activation(_tanh, _tanh_back, _tanh_in_place),
    "softmax": Activation(_softmax, _softmax_back, _softmax_in_place),
    "relu6": Activation(_relu6, _relu6_back, _relu6_in_place),
    "hard_sigmoid": Activation(_hard_sigmoid, _hard_sigmoid_back, _hard_sigmoid_in_place),
    "hard_swish": Activation(_hard_swish, _hard_swish_back, _hard_swish_in_place),
    "silu": Activation(_silu, _silu_back, _silu_in_place),
    "gelu": Activation(_gelu, _gelu_back, _gelu_in_place),
    "elu": Activation(_elu, _elu_back, _elu_in_place),
}
