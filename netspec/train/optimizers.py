"""Optimizers: SGD with momentum and Adam, updating parameter arrays in place."""

from __future__ import annotations

import numpy as np

Params = list[dict[str, np.ndarray]]


class SGD:
    """v = momentum·v − rate·g; w += v (PyTorch's form with dampening 0, Nesterov off)."""

    def __init__(self, params: Params, rate: float, momentum: float, weight_decay: float):
        self.rate, self.momentum, self.weight_decay = rate, momentum, weight_decay
        self.velocity = [{k: np.zeros_like(a) for k, a in layer.items()} for layer in params]

    def step(self, params: Params, grads: Params) -> None:
        for layer, layer_grads, velocity in zip(params, grads, self.velocity):
            for key, g in layer_grads.items():
                g = _decayed(g, layer[key], key, self.weight_decay)
                v = velocity[key]
                v *= self.momentum
                v -= self.rate * g
                layer[key] += v


class Adam:
    """Adam (Kingma & Ba) with bias correction; weight decay is added to the gradient (L2)."""

    def __init__(self, params: Params, rate: float, weight_decay: float, beta1=0.9, beta2=0.999, epsilon=1e-8):
        self.rate, self.weight_decay = rate, weight_decay
        self.beta1, self.beta2, self.epsilon = beta1, beta2, epsilon
        self.steps = 0
        self.m = [{k: np.zeros_like(a) for k, a in layer.items()} for layer in params]
        self.v = [{k: np.zeros_like(a) for k, a in layer.items()} for layer in params]

    def step(self, params: Params, grads: Params) -> None:
        self.steps += 1
        correction1 = 1 - self.beta1**self.steps
        correction2 = 1 - self.beta2**self.steps
        size = self.rate * np.sqrt(correction2) / correction1
        # The epsilon of the paper is added to the corrected second moment; scaled here to match.
        eps = self.epsilon * np.sqrt(correction2)
        for layer, layer_grads, m_layer, v_layer in zip(params, grads, self.m, self.v):
            for key, g in layer_grads.items():
                g = _decayed(g, layer[key], key, self.weight_decay)
                m, v = m_layer[key], v_layer[key]
                m *= self.beta1
                m += (1 - self.beta1) * g
                v *= self.beta2
                v += (1 - self.beta2) * (g * g)
                layer[key] -= size * m / (np.sqrt(v) + eps)


def _decayed(grad: np.ndarray, param: np.ndarray, key: str, weight_decay: float) -> np.ndarray:
    # Only weights are decayed: shrinking biases or batch-norm scales and shifts toward 0 does not
    # limit the function's complexity, it only distorts it.
    if weight_decay and key == "weights":
        return grad + weight_decay * param
    return grad
