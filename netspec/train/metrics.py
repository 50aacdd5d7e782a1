"""Accuracy, per-class precision, recall and F1, and the confusion matrix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from netspec import threads as blas

if TYPE_CHECKING:
    from netspec.network import Network


@dataclass
class Evaluation:
    """How well a network classifies a set of labelled examples."""

    classes: list[str]
    confusion: np.ndarray
    """confusion[i, j]: how many examples of class i were predicted as class j."""

    @property
    def count(self) -> int:
        return int(self.confusion.sum())

    @property
    def accuracy(self) -> float:
        return float(np.trace(self.confusion) / max(self.count, 1))

    @property
    def support(self) -> np.ndarray:
        """Examples of each class."""
        return self.confusion.sum(axis=1)

    @property
    def precision(self) -> np.ndarray:
        """Of the examples predicted as each class, the fraction that were (0 where none were predicted)."""
        return _ratio(np.diag(self.confusion), self.confusion.sum(axis=0))

    @property
    def recall(self) -> np.ndarray:
        """Of the examples of each class, the fraction predicted as it (0 where there were none)."""
        return _ratio(np.diag(self.confusion), self.support)

    @property
    def f1(self) -> np.ndarray:
        p, r = self.precision, self.recall
        return _ratio(2 * p * r, p + r)

    def as_dict(self) -> dict:
        """Plain data for JSON output."""
        return {
            "count": self.count,
            "accuracy": self.accuracy,
            "classes": {
                label: {
                    "precision": float(self.precision[i]),
                    "recall": float(self.recall[i]),
                    "f1": float(self.f1[i]),
                    "support": int(self.support[i]),
                }
                for i, label in enumerate(self.classes)
            },
            "confusion": self.confusion.tolist(),
        }


def evaluate(network: Network, x: np.ndarray, y: np.ndarray, threads: int | None = None) -> Evaluation:
    """Classify `x` in chunks and compare with the class indices `y`.

    `threads`: BLAS threads (default: NETSPEC_NUM_THREADS if set, else chosen for the chunks' size
    by netspec.threads).
    """
    size = len(network.classes)
    confusion = np.zeros((size, size), dtype=np.int64)
    with blas.limited(network.threads_for(min(len(x), CHUNK), threads)):
        for start in range(0, len(x), CHUNK):
            predicted = network.forward(x[start : start + CHUNK]).argmax(axis=1)
            np.add.at(confusion, (y[start : start + CHUNK], predicted), 1)
    return Evaluation(list(network.classes), confusion)


CHUNK = 1024
"""Examples classified at once: memory stays bounded however many there are."""


def _ratio(top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    top, bottom = np.asarray(top, dtype=np.float64), np.asarray(bottom, dtype=np.float64)
    return np.divide(top, bottom, out=np.zeros_like(top), where=bottom > 0)
