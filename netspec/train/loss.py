"""Cross-entropy from logits, the loss of classification, with its gradient."""

from __future__ import annotations

import numpy as np


def cross_entropy(logits: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of a batch of logits (scores before softmax) and its gradient, as PyTorch's.

    The loss of an example is log Σ exp(z) − z[target], with the log-sum-exp taken after subtracting
    the row's largest logit: it stays exact when a probability underflows to 0 (logits [0, 3000] with
    target 0 lose 3000, where −log of a softmax probability would be infinite, or capped). The
    gradient is (softmax(z) − onehot) / N, the softmax and the loss folded into one.

    Returns:
        (loss, gradient of the logits)
    """
    rows = np.arange(len(targets))
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    sums = exp.sum(axis=1, keepdims=True)
    # The loss in float64 whatever the network's dtype: a reported and compared number, not a step.
    losses = np.log(sums[:, 0].astype(np.float64)) - shifted[rows, targets].astype(np.float64)
    grad = exp / sums
    grad[rows, targets] -= 1
    grad /= len(targets)
    return float(losses.mean()), grad
