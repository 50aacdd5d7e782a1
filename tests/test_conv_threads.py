"""A convolution's forward split between threads (netspec.layers.conv_forward.inferred) gives what one
thread gives, and a caller who asks for one thread never starts a pool thread."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from netspec import busy
from netspec import threads as blas
from netspec.layers import conv_forward

CASES = [
    # batch, channels, height, width, filters, kernel, stride, padding (top, bottom, left, right), groups
    (1, 3, 37, 41, 8, (3, 3), (1, 1), [1, 1, 1, 1], 1),
    (3, 4, 17, 19, 6, (3, 2), (2, 2), [1, 2, 0, 1], 2),
    (7, 5, 13, 11, 7, (1, 1), (1, 1), 0, 1),
    (7, 6, 15, 12, 4, (1, 1), (2, 2), 0, 1),
    (3, 8, 23, 21, 16, (5, 5), (2, 1), [2, 1, 2, 2], 4),
]


@pytest.fixture
def split_always(monkeypatch):
    """Every convolution split, whatever its size and batch, between two threads."""
    monkeypatch.setattr(conv_forward, "THREADS_FROM", 0)
    monkeypatch.setattr(conv_forward, "THREADS_FROM_BATCH", 1)
    monkeypatch.setattr(conv_forward, "ROWS_PER_FILTER", 0)
    monkeypatch.setattr(blas, "CORES", 2)
    monkeypatch.setattr(busy, "others", lambda: 0.0)  # whatever else runs on the machine meanwhile
    monkeypatch.delenv(blas.ENVVAR, raising=False)


def run(case, dtype, threads):
    batch, channels, height, width, filters, kernel, stride, padding, groups = case
    rng = np.random.default_rng(batch * 31 + channels)
    x = rng.standard_normal((batch, channels, height, width)).astype(dtype)
    w = rng.standard_normal((filters, channels // groups, *kernel)).astype(dtype)
    bias = rng.standard_normal(filters).astype(dtype)
    p = conv_forward.plan(x.shape, kernel, stride, (1, 1), padding, groups, x.itemsize, filters)
    with blas.limited(threads):
        z = conv_forward.inferred(x, w, p, bias, lambda rows: np.maximum(rows, 0, out=rows))
    return x, w, bias, p, z


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES)
def test_threads_give_what_one_thread_gives(split_always, case, dtype):
    pieces_seen = []
    shares = conv_forward._shares

    def counting(*args):
        pieces_seen.append(shares(*args))
        return pieces_seen[-1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(conv_forward, "_shares", counting)
        x, w, bias, p, threaded = run(case, dtype, None)
    assert len(pieces_seen) == 1 and len(pieces_seen[0]) == 2  # it did split
    *_, alone = run(case, dtype, 1)
    eps = np.finfo(dtype).eps
    np.testing.assert_allclose(threaded, alone, rtol=0, atol=4 * eps * np.abs(alone).max())
    # And both are the convolution: PyTorch's, padded per side by hand.
    top, bottom, left, right = p.padding[0] + p.padding[1]
    tx = torch.nn.functional.pad(torch.from_numpy(x), (left, right, top, bottom))
    expected = torch.nn.functional.conv2d(tx, torch.from_numpy(w), torch.from_numpy(bias), p.stride, groups=p.groups)
    expected = expected.relu().permute(0, 2, 3, 1).reshape(-1, len(w)).numpy()
    np.testing.assert_allclose(threaded, expected, rtol=1e-4 if dtype == np.float32 else 1e-10, atol=1e-4)


def test_pieces_cover_every_output_row_once():
    """The blocks of a plan cut into pieces: each output row (image, row) in exactly one piece."""
    for batch, out_h, blocks in [
        (3, 9, ((0, 3, 0, 9),)),
        (1, 112, ((0, 1, 0, 63), (0, 1, 63, 112))),
        (7, 5, ((0, 4, 0, 5), (4, 7, 0, 5))),
    ]:
        for n in (2, 3, 5):
            rows = [
                (image, row)
                for piece in conv_forward._shares(blocks, out_h, n)
                for first, last, top, bottom in piece
                for image in range(first, last)
                for row in range(top, bottom)
            ]
            assert sorted(rows) == [(image, row) for image in range(batch) for row in range(out_h)]


def test_one_thread_asked_starts_no_pool(split_always, monkeypatch):
    """threads=1 (or NETSPEC_NUM_THREADS=1): the work stays on the caller's thread, no pool is made."""
    monkeypatch.setattr(blas, "_pool", None)
    before = threading.active_count()
    *_, z = run(CASES[1], np.float32, 1)
    monkeypatch.setenv(blas.ENVVAR, "1")
    run(CASES[1], np.float32, None)
    assert blas._pool is None
    assert threading.active_count() == before


def test_netspec_rule_of_one_blas_thread_still_lets_the_pool_run(split_always, monkeypatch):
    """netspec's own choice of one BLAS thread (small products) is not the user's: the pool may run."""
    monkeypatch.setattr(blas, "_pool", None)
    with blas.limited(blas.for_work(1 << 20)):
        assert blas.workers() == 2
    with blas.limited(blas.for_work(1 << 20, threads=1)):
        assert blas.workers() == 1
    with blas.limited(3):
        assert blas.workers() == 3


def test_a_forked_child_makes_its_own_pool(split_always):
    """A process forked after the pool was made (multiprocessing's default on Linux) has none of the
    pool's threads: it makes its own rather than waiting for threads that do not exist."""
    import multiprocessing

    *_, expected = run(CASES[4], np.float64, 1)
    run(CASES[4], np.float64, None)  # the pool is made here, in the parent
    context = multiprocessing.get_context("fork")
    with context.Pool(1) as children:
        result = children.apply_async(_split_in_a_child, (CASES[4],))
        np.testing.assert_allclose(result.get(), expected, rtol=1e-12)


def _split_in_a_child(case):
    conv_forward.THREADS_FROM, conv_forward.THREADS_FROM_BATCH, conv_forward.ROWS_PER_FILTER = 0, 1, 0
    blas.CORES = 2
    *_, z = run(case, np.float64, None)
    return z
