"""Batch normalization's training forward and backward split between threads (fixed parts of the rows)
give exactly the numbers one thread gives, and PyTorch's BatchNorm2d's, on odd shapes and both layouts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from netspec import busy
from netspec import threads as blas
from netspec.layers import batch_parts, batchnorm
from netspec.layers.batchnorm import BatchNorm

SHAPES = [(3, 5, 7, 6), (7, 5, 3, 5), (3, 64, 5, 4), (7, 64, 4, 4), (7, 5)]


def arrays(shape, dtype, channels_last: bool, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 3 + 1.5).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    if channels_last and len(shape) == 4:  # as a convolution leaves its output: the rows layout of batch_parts
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    c = shape[1]
    params = {
        "scale": rng.uniform(0.5, 1.5, c).astype(dtype),
        "shift": rng.standard_normal(c).astype(dtype),
        "mean": rng.standard_normal(c).astype(dtype),
        "var": rng.uniform(0.5, 2, c).astype(dtype),
    }
    return x, dy, params


def step(layer, x, dy, params):
    """(output, input gradient, scale and shift gradients, running mean and variance) of one training step."""
    params = {k: v.copy() for k, v in params.items()}
    y, backprop = batchnorm.forward(layer, params, x, train=True)
    dx, grads = backprop(dy)
    return [np.array(y), np.array(dx), grads["scale"], grads["shift"], params["mean"], params["var"]]


@pytest.fixture
def threads(monkeypatch):
    """Every batch cut into parts, and a way to run on one thread or two; counts the parts given to the pool."""
    monkeypatch.setattr(batch_parts, "THREADS_FROM", 0)
    monkeypatch.setattr(blas, "CORES", 2)
    monkeypatch.setattr(busy, "others", lambda: 0.0)
    submitted = []
    pool = blas.pool

    class Spy:
        def __init__(self, size):
            self.real = pool(size)

        def submit(self, fn, *args):
            submitted.append(fn)
            return self.real.submit(fn, *args)

    monkeypatch.setattr(blas, "pool", Spy)

    def run(n: int, *args):
        monkeypatch.setenv(blas.ENVVAR, str(n))
        try:
            return step(*args)
        finally:
            monkeypatch.delenv(blas.ENVVAR)

    run.submitted = submitted
    return run


@pytest.mark.parametrize("channels_last", [True, False], ids=["rows", "plain"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("activation", ["linear", "relu"])
def test_two_threads_give_one_threads_numbers_and_pytorchs(threads, shape, dtype, channels_last, activation):
    layer = BatchNorm(activation=activation)
    x, dy, params = arrays(shape, dtype, channels_last)
    one = threads(1, layer, x, dy, params)
    assert not threads.submitted  # one thread: no pool
    two = threads(2, layer, x, dy, params)
    assert threads.submitted  # the parts really were shared
    for a, b in zip(one, two, strict=True):
        assert a.dtype == b.dtype == dtype
        np.testing.assert_array_equal(a, b)  # bitwise: the parts and the order of their sums are fixed

    # PyTorch's training forward and backward, in float64 on the same values.
    bn = torch.nn.BatchNorm2d(shape[1]) if len(shape) == 4 else torch.nn.BatchNorm1d(shape[1])
    bn = bn.double().train()
    with torch.no_grad():
        bn.weight.copy_(torch.from_numpy(params["scale"].astype(np.float64)))
        bn.bias.copy_(torch.from_numpy(params["shift"].astype(np.float64)))
        bn.running_mean.copy_(torch.from_numpy(params["mean"].astype(np.float64)))
        bn.running_var.copy_(torch.from_numpy(params["var"].astype(np.float64)))
    tx = torch.tensor(x.astype(np.float64), requires_grad=True)
    ty = bn(tx)
    if activation == "relu":
        ty = torch.relu(ty)
    ty.backward(torch.from_numpy(dy.astype(np.float64)))
    expected = [ty, tx.grad, bn.weight.grad, bn.bias.grad, bn.running_mean, bn.running_var]
    tol = 1e-10 if dtype == np.float64 else 2e-4
    for got, want in zip(two, expected, strict=True):
        np.testing.assert_allclose(got, want.detach().numpy(), rtol=tol, atol=tol)


def test_parts_depend_on_the_shape_alone():
    assert batch_parts.cuts(7, 10) == [(0, 7)]  # small: one part
    assert batch_parts.cuts(7, 1 << 20) == [(k, k + 1) for k in range(7)]  # at most one part a row
    parts = batch_parts.cuts(2048, 1 << 20)
    assert len(parts) == batch_parts.PARTS and parts[0][0] == 0 and parts[-1][1] == 2048
    assert all(a[1] == b[0] for a, b in zip(parts, parts[1:]))
