"""Per-value work over a batch cut into fixed parts that the threads (netspec.threads) take in turn.

Batch normalization's training passes are a few sweeps over all the values (a sum per channel, then
elementwise arithmetic), each as long as a convolution's im2col copy: on one core they took half of
ResNet-20's training step once its convolutions used both. NumPy lets go of the GIL inside large
elementwise and reduction calls, so Python threads sweeping parts of the rows run on both cores.

The parts depend on the work's shape alone (never on the threads), and the per-part float64 sums are
added in the parts' order by the caller: one thread and two give the same numbers, however loaded
the machine is.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from concurrent.futures import wait
from typing import TypeVar

from netspec import threads as blas

T = TypeVar("T")

PARTS = 8
"""Parts a large batch's rows are cut into: several per thread, so a thread slowed by other work takes fewer."""

THREADS_FROM = 1 << 16
"""Values from which the rows are cut into parts: below, a pool's hand-over (some 50 µs) costs more than it gains."""


def cuts(rows: int, values: int) -> list[tuple[int, int]]:
    """(first row, last row + 1) of each part: PARTS parts (at most one a row) from THREADS_FROM values,
    one part below. It depends on the shape alone."""
    n = max(1, min(rows, PARTS)) if values >= THREADS_FROM else 1
    ends = [rows * k // n for k in range(n + 1)]
    return [(ends[k], ends[k + 1]) for k in range(n)]


def each(parts: list[tuple[int, int]], work: Callable[[int, int], T]) -> list[T]:
    """work(first, last) of every part, in the parts' order; the threads (netspec.threads.workers) take
    the parts in turn, one thread does them one after another."""
    found: list = [None] * len(parts)
    helpers = min(blas.workers(), len(parts)) - 1
    if helpers < 1:
        for k, (first, last) in enumerate(parts):
            found[k] = work(first, last)
        return found
    turns = itertools.count()

    def taking_turns() -> None:
        with blas.one_part():
            for k in turns:
                if k >= len(parts):
                    return
                found[k] = work(*parts[k])

    with blas.one_each():  # the sums' small products: one BLAS thread each, not two fighting for a core
        pending = [blas.pool(helpers).submit(taking_turns) for _ in range(helpers)]
        try:
            taking_turns()
        finally:  # every part ends before BLAS's setting comes back, also after an error
            wait(pending)
        for done in pending:
            done.result()  # raises a helper's error
    return found


def added(partial: list) -> object:
    """The parts' sums added in the parts' order (never in the order the threads finished)."""
    total = partial[0]
    for more in partial[1:]:
        total = total + more
    return total
