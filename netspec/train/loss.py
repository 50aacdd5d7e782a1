"""Softmax cross-entropy, the loss of classification, with its gradient."""

from __future__ import annotations

import numpy as np

from netspec.layers.activations import ACTIVATIONS


def cross_entropy(outputs: np.ndarray, targets: np.ndarray, softmax_output: bool) -> tuple[float, np.ndarray, bool]:
    """Mean cross-entropy of a batch, and its gradient.

    With a softmax output layer the outputs are probabilities, and the gradient returned is the
    one of the layer's pre-activation, (p - onehot) / N: folding the two avoids dividing by
    probabilities that may have underflowed to 0. Otherwise the outputs are taken as logits (as
    PyTorch's CrossEntropyLoss does) and the gradient is the one of the outputs.

    Returns:
        (loss, gradient, whether the gradient is of the pre-activation)
    """
    rows = np.arange(len(targets))
    probabilities = outputs if softmax_output else ACTIVATIONS["softmax"].forward(outputs, 0.0)
    tiny = np.finfo(probabilities.dtype).tiny
    loss = float(-np.log(np.maximum(probabilities[rows, targets], tiny)).mean())
    grad = probabilities.copy()
    grad[rows, targets] -= 1
    grad /= len(targets)
    return loss, grad, softmax_output
