"""A depthwise convolution's images shared between threads (netspec.layers.depthwise) give what one thread
gives, and PyTorch's convolution; a caller who asks for one thread, or a batch below the threshold, never
starts a pool thread."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from netspec import threads as blas
from netspec.layers import conv_forward, depthwise

CASES = [
    # batch, channels, height, width, filters per channel, kernel, stride, dilation, padding (top, bottom, left, right)
    (3, 5, 13, 11, 1, (3, 3), (1, 1), (1, 1), [1, 1, 1, 1]),
    (7, 6, 17, 19, 1, (3, 3), (2, 2), (1, 1), [1, 2, 0, 1]),
    (9, 4, 15, 12, 1, (3, 2), (2, 1), (2, 1), [2, 1, 2, 2]),
    (7, 3, 14, 16, 1, (5, 5), (1, 2), (1, 2), [2, 2, 4, 3]),
    (3, 4, 11, 9, 2, (3, 3), (2, 2), (1, 1), [1, 0, 1, 1]),  # two filters per channel
    (9, 5, 10, 13, 3, (2, 3), (1, 1), (2, 2), [0, 1, 2, 1]),
]


@pytest.fixture
def split_always(monkeypatch):
    """Every depthwise convolution split, whatever its size and batch, between two threads."""
    monkeypatch.setattr(depthwise, "THREADS_FROM", 0)
    monkeypatch.setattr(depthwise, "THREADS_FROM_BATCH", 1)
    monkeypatch.setattr(blas, "CORES", 2)
    monkeypatch.delenv(blas.ENVVAR, raising=False)


def run(case, dtype, threads):
    batch, channels, height, width, each, kernel, stride, dilation, padding = case
    rng = np.random.default_rng(batch * 31 + channels)
    x = rng.standard_normal((batch, channels, height, width)).astype(dtype)
    w = rng.standard_normal((channels * each, 1, *kernel)).astype(dtype)
    bias = rng.standard_normal(channels * each).astype(dtype)
    p = conv_forward.plan(x.shape, kernel, stride, dilation, padding, channels, x.itemsize, channels * each)
    taps = w.reshape(channels, each, *kernel).transpose(2, 3, 0, 1)
    with blas.limited(threads):
        z = depthwise.depthwise(x, taps, p, None, bias, lambda rows: np.maximum(rows, 0, out=rows))
    return x, w, bias, p, z.reshape(batch, *p.out_hw, channels * each)


def counting_runs(monkeypatch, threads_seen: set | None = None) -> list[int]:
    """The number of runs of images each depthwise call was cut into (1: not split), each call's runs
    checked to cover its batch once; the threads that ran images go in `threads_seen`."""
    seen = []
    shared = depthwise._shared

    def counting(images, p, outputs):
        calls = []

        def counted(first, last):
            calls.append((first, last))
            if threads_seen is not None:
                threads_seen.add(threading.get_ident())
            images(first, last)

        shared(counted, p, outputs)
        ordered = sorted(calls)
        assert ordered[0][0] == 0 and ordered[-1][1] == p.batch
        assert all(a[1] == b[0] for a, b in zip(ordered, ordered[1:]))
        seen.append(len(calls))

    monkeypatch.setattr(depthwise, "_shared", counting)
    return seen


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES)
def test_threads_give_what_one_thread_gives(split_always, monkeypatch, case, dtype):
    runs = counting_runs(monkeypatch)
    x, w, bias, p, threaded = run(case, dtype, None)
    assert runs == [min(case[0], 2 * depthwise.RUNS_PER_THREAD)]  # it did split, into runs of images
    *_, alone = run(case, dtype, 1)
    assert runs[-1] == 1
    eps = np.finfo(dtype).eps
    # Each image's numbers are computed by the same operations in the same order on either path.
    np.testing.assert_allclose(threaded, alone, rtol=0, atol=4 * eps * np.abs(alone).max())
    # And both are the convolution: PyTorch's, padded per side by hand.
    top, bottom, left, right = p.padding[0] + p.padding[1]
    tx = torch.nn.functional.pad(torch.from_numpy(x), (left, right, top, bottom))
    expected = torch.nn.functional.conv2d(
        tx, torch.from_numpy(w), torch.from_numpy(bias), p.stride, dilation=p.dilation, groups=p.channels
    )
    expected = expected.relu().permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(threaded, expected, rtol=1e-4 if dtype == np.float32 else 1e-10, atol=1e-4)


def test_small_batches_and_one_thread_stay_on_this_thread(monkeypatch):
    """Below THREADS_FROM_BATCH images, or with one thread asked for, no pool thread runs any image."""
    monkeypatch.setattr(depthwise, "THREADS_FROM", 0)
    monkeypatch.setattr(blas, "CORES", 2)
    monkeypatch.delenv(blas.ENVVAR, raising=False)
    seen_threads: set = set()
    runs = counting_runs(monkeypatch, seen_threads)
    small = (depthwise.THREADS_FROM_BATCH - 1, 4, 9, 9, 1, (3, 3), (1, 1), (1, 1), [1, 1, 1, 1])
    run(small, np.float32, None)
    large = (depthwise.THREADS_FROM_BATCH + 1, *small[1:])
    run(large, np.float32, 1)
    assert runs == [1, 1]
    assert seen_threads == {threading.get_ident()}
    run(large, np.float32, None)
    assert runs[-1] > 1  # the same work with the cores free to share it does split


def test_a_failing_run_is_raised_after_every_run_has_ended(split_always, monkeypatch):
    """An error in a pool thread's images reaches the caller, and no run is left writing afterwards."""
    calls = []

    def images(first, last):
        calls.append(first)
        if first == 0:
            raise MemoryError("no room")

    p = conv_forward.plan((8, 2, 5, 5), (3, 3), (1, 1), (1, 1), 1, 2, 4, 2)
    with pytest.raises(MemoryError, match="no room"):
        depthwise._shared(images, p, 8 * 25 * 2)
    assert len(calls) == 2 * depthwise.RUNS_PER_THREAD
