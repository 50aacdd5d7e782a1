"""Why a network chose a class: gradient × input, the share each input value had in a score."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from netspec.network import Network


def attribution(network: Network, x: np.ndarray, class_index: int) -> np.ndarray:
    """Gradient × input of one class's score for one input, shaped as the input.

    Positive values pushed the score up, negative ones down; an input the network ignores gets 0.
    With a softmax output the score is taken before the softmax (the class's logit): a confident
    softmax is flat, and its gradient says little about which inputs mattered.
    """
    batch = np.asarray(x, dtype=network.dtype)[None]  # already as the first layer reads it
    out, backward = network.forward_with_backprop(batch)
    grad = np.zeros_like(out)
    grad[0, class_index] = 1.0
    grad, _ = backward(grad, preactivation=network.ends_in_softmax)
    return (grad * batch)[0]
