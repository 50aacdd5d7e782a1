"""Batch normalization's training forward and backward against PyTorch's BatchNorm1d/2d, on odd shapes,
in float32 and float64, with values laid out as a convolution leaves them (channels-last) and plainly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from netspec.layers import batchnorm
from netspec.layers.batchnorm import BatchNorm

SHAPES = [(3, 5, 7, 6), (7, 5, 3, 5), (3, 64, 5, 4), (7, 64, 4, 4), (7, 5)]


def arrays(shape, dtype, channels_last: bool, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 3 + 1.5).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    if channels_last and len(shape) == 4:  # as a convolution leaves its output: `sums.Channels`' rows
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    c = shape[1]
    params = {
        "scale": rng.uniform(0.5, 1.5, c).astype(dtype),
        "shift": rng.standard_normal(c).astype(dtype),
        "mean": rng.standard_normal(c).astype(dtype),
        "var": rng.uniform(0.5, 2, c).astype(dtype),
    }
    return x, dy, params


@pytest.mark.parametrize("channels_last", [True, False], ids=["rows", "plain"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("activation", ["linear", "relu"])
def test_training_step_matches_pytorch(shape, dtype, channels_last, activation):
    layer = BatchNorm(activation=activation)
    x, dy, params = arrays(shape, dtype, channels_last)
    running = {k: v.copy() for k, v in params.items()}
    y, backprop = batchnorm.forward(layer, running, x, train=True)
    dx, grads = backprop(dy)
    got = [y, dx, grads["scale"], grads["shift"], running["mean"], running["var"]]
    assert all(a.dtype == dtype for a in got)

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
    for g, want in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, want.detach().numpy(), rtol=tol, atol=tol)
