"""Activation functions as pure NumPy pairs: forward(z) -> y and backward(z, y, dy) -> dz."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, NamedTuple

import numpy as np

ActivationName = Literal["linear", "relu", "leaky_relu", "sigmoid", "tanh", "softmax"]


class Activation(NamedTuple):
    forward: Callable[[np.ndarray, float], np.ndarray]
    backward: Callable[[np.ndarray, np.ndarray, np.ndarray, float], np.ndarray]


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


ACTIVATIONS: dict[str, Activation] = {
    "linear": Activation(_linear, _linear_back),
    "relu": Activation(_relu, _relu_back),
    "leaky_relu": Activation(_leaky_relu, _leaky_relu_back),
    "sigmoid": Activation(_sigmoid, _sigmoid_back),
    "tanh": Activation(_tanh, _tanh_back),
    "softmax": Activation(_softmax, _softmax_back),
}
