"""A convolution's gradients (weights and input) split over the batch between threads.

The images of a batch go back independently: the weights' gradient is a sum over the images, the input
gradient of an image reads that image's output gradient only. So the batch is cut into one run of images
per thread, each thread computes its run's weight gradient and writes its images' input gradient, BLAS on
one thread in each (OpenBLAS's own threads measured slower than one on these products on a shared
machine), and the runs' weight gradients are added. With one thread (the user's choice, or too little
work) it is the plain path, unchanged.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from concurrent.futures import wait

import numpy as np

from netspec import threads as blas

THREADS_FROM = 1 << 22
"""Multiply-adds of a convolution's backward (its forward's, twice) from which it is split between
threads: a hand-off costs 20-50 µs (as netspec.layers.conv_forward.THREADS_FROM)."""

Part = Callable[[np.ndarray, np.ndarray, bool], tuple[np.ndarray, np.ndarray | None]]
"""(x of some images, their dz rows, input_grad) → (their weights' gradient, their input gradient
channels-last (images, height, width, channels), or None)."""


def runs(batch: int, multiply_adds: int) -> list[tuple[int, int]]:
    """(first image, last image + 1) of each thread's run: one run where one thread is to do it all."""
    n = min(blas.workers(), batch) if multiply_adds >= THREADS_FROM else 1
    cuts = [batch * k // n for k in range(n + 1)]
    return [(cuts[k], cuts[k + 1]) for k in range(n)]


def gradients(part: Part, x: np.ndarray, dz: np.ndarray, input_grad: bool, multiply_adds: int):
    """(weights' gradient, input gradient channels-last or None) of the whole batch, `part` run on each
    thread's images (see `runs`); dz has one row per output pixel, the images' rows one after another."""
    batch = len(x)
    each = runs(batch, multiply_adds)
    if len(each) == 1:
        return part(x, dz, input_grad)
    pixels = len(dz) // batch
    dx = np.empty((batch, *x.shape[2:], x.shape[1]), dtype=dz.dtype) if input_grad else None
    work = functools.partial(_run, part, x, dz, pixels, input_grad, dx)
    with blas.one_each():
        pending = [blas.pool(len(each) - 1).submit(work, run) for run in each[1:]]
        try:
            dweights = work(each[0])
        finally:  # every run ends before BLAS's setting comes back, also after an error
            wait(pending)
        for done in pending:
            dweights += done.result()  # in order: the same sum whatever thread ends first
    return dweights, dx


def _run(part: Part, x, dz, pixels: int, input_grad: bool, dx, run: tuple[int, int]) -> np.ndarray:
    """One run's weight gradient; its images' input gradient written into dx."""
    first, last = run
    dweights, mine = part(x[first:last], dz[first * pixels : last * pixels], input_grad)
    if input_grad:
        dx[first:last] = mine
    return dweights
