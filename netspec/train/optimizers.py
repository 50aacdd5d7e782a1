"""Optimizers: SGD with momentum and Adam, updating parameter arrays in place."""

from __future__ import annotations

import numpy as np

Params = list[dict[str, np.ndarray]]
Decayed = list[frozenset[str]] | None
"""For each layer, the parameters weight decay shrinks (its kind's `decayed`); None: those named "weights"."""


class SGD:
    """v = momentum·v − rate·g; w += v (PyTorch's form with dampening 0, Nesterov off)."""

    def __init__(self, params: Params, rate: float, momentum: float, weight_decay: float, decayed: Decayed = None):
        self.rate, self.momentum, self.weight_decay = float(rate), float(momentum), weight_decay
        self.decayed = _decayed_keys(params, decayed)
        self.velocity = [{k: np.zeros_like(a) for k, a in layer.items()} for layer in params]
        self.scratch = [{k: np.empty_like(a) for k, a in layer.items()} for layer in params]

    def step(self, params: Params, grads: Params) -> None:
        # In place, through one scratch array per parameter: no temporaries in the inner loop.
        for layer, layer_grads, velocity, scratch, decayed in zip(
            params, grads, self.velocity, self.scratch, self.decayed
        ):
            for key, g in layer_grads.items():
                g = _decayed(g, layer[key], key in decayed, self.weight_decay)
                v, buffer = velocity[key], scratch[key]
                v *= self.momentum
                np.multiply(g, self.rate, out=buffer)
                v -= buffer
                layer[key] += v


class Adam:
    """Adam (Kingma & Ba) with bias correction; weight decay is added to the gradient (L2)."""

    def __init__(
        self,
        params: Params,
        rate: float,
        weight_decay: float,
        beta1=0.9,
        beta2=0.999,
        epsilon=1e-8,
        decayed: Decayed = None,
    ):
        self.rate, self.weight_decay = float(rate), weight_decay
        self.decayed = _decayed_keys(params, decayed)
        self.beta1, self.beta2, self.epsilon = float(beta1), float(beta2), float(epsilon)
        self.steps = 0
        self.m = [{k: np.zeros_like(a) for k, a in layer.items()} for layer in params]
        self.v = [{k: np.zeros_like(a) for k, a in layer.items()} for layer in params]
        self.scratch = [{k: np.empty_like(a) for k, a in layer.items()} for layer in params]

    def step(self, params: Params, grads: Params) -> None:
        self.steps += 1
        correction1 = 1 - self.beta1**self.steps
        correction2 = 1 - self.beta2**self.steps
        # Python floats, not NumPy scalars: a float64 scalar would turn float32 arrays into float64 ones.
        size = float(self.rate * np.sqrt(correction2) / correction1)
        # The epsilon of the paper is added to the corrected second moment; scaled here to match.
        eps = float(self.epsilon * np.sqrt(correction2))
        for layer, layer_grads, m_layer, v_layer, scratch, decayed in zip(
            params, grads, self.m, self.v, self.scratch, self.decayed
        ):
            for key, g in layer_grads.items():
                g = _decayed(g, layer[key], key in decayed, self.weight_decay)
                m, v, buffer = m_layer[key], v_layer[key], scratch[key]
                # All in place, through one scratch array per parameter: this is most of a training step.
                m *= self.beta1
                np.multiply(g, 1 - self.beta1, out=buffer)
                m += buffer
                v *= self.beta2
                np.multiply(g, g, out=buffer)
                buffer *= 1 - self.beta2
                v += buffer
                np.sqrt(v, out=buffer)
                buffer += eps
                np.divide(m, buffer, out=buffer)
                buffer *= size
                layer[key] -= buffer


def _decayed_keys(params: Params, decayed: Decayed) -> list[frozenset[str]]:
    return [frozenset({"weights"})] * len(params) if decayed is None else list(decayed)


def _decayed(grad: np.ndarray, param: np.ndarray, decays: bool, weight_decay: float) -> np.ndarray:
    # Only weights are decayed (each kind says which it has): shrinking biases or batch-norm scales
    # and shifts toward 0 does not limit the function's complexity, it only distorts it.
    if weight_decay and decays:
        return grad + weight_decay * param
    return grad
