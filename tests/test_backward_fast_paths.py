"""Backward passes of convolutional networks (issue 15): float32 batch norm's precision while training,
and every gradient of the fast paths against PyTorch's autograd and against the plain path."""

import numpy as np
import pytest

from netspec.layers import batchnorm, conv2d
from netspec.layers.batchnorm import BatchNorm
from netspec.layers.conv2d import Conv2D

torch = pytest.importorskip("torch")
F = torch.nn.functional


# --- batch norm in float32 --------------------------------------------------------------------------


def _stack(seed: int = 0):
    """A stack of conv → batchnorm(relu), 4 deep, whose values sit far from 0 (as after relus and
    shortcuts): 16 × 32 × 32 values per channel, where float32 sums lose digits."""
    rng = np.random.default_rng(seed)
    depth, channels, batch, side, offset = 4, 4, 16, 32, 20.0
    x = rng.normal(size=(batch, channels, side, side)) + offset
    weights = [rng.normal(0, (2 / (9 * channels)) ** 0.5, size=(channels, channels, 3, 3)) for _ in range(depth)]
    scales = [rng.uniform(0.5, 1.5, size=channels) for _ in range(depth)]
    shifts = [rng.normal(0, 0.1, size=channels) + offset for _ in range(depth)]
    return x, weights, scales, shifts, rng.normal(size=x.shape)


def _netspec_grads(dtype, x, weights, scales, shifts, g):
    conv, norm = Conv2D(filters=len(weights[0]), kernel=3, padding=1, use_bias=False), BatchNorm(activation="relu")
    backprops, h = [], x.astype(dtype)
    for w, scale, shift in zip(weights, scales, shifts):
        running = {"mean": np.zeros(len(scale), dtype), "var": np.ones(len(scale), dtype)}
        h, back = conv2d.forward(conv, {"weights": w.astype(dtype)}, h, train=True)
        backprops.append(back)
        h, back = batchnorm.forward(
            norm, {"scale": scale.astype(dtype), "shift": shift.astype(dtype)} | running, h, True
        )
        backprops.append(back)
    grads, dy = [], g.astype(dtype)
    for back in reversed(backprops):
        dy, each = back(dy)
        grads += [each[key] for key in ("weights", "scale", "shift") if key in each]
    return grads, dy


def _torch_grads(dtype, x, weights, scales, shifts, g):
    def leaf(a):
        return torch.tensor(a, dtype=dtype, requires_grad=True)

    ws, ss, bs, tx = [leaf(w) for w in weights], [leaf(s) for s in scales], [leaf(b) for b in shifts], leaf(x)
    h = tx
    for w, scale, shift in zip(ws, ss, bs):
        h = torch.relu(F.batch_norm(F.conv2d(h, w, padding=1), None, None, scale, shift, training=True))
    (h * torch.tensor(g, dtype=dtype)).sum().backward()
    grads = [a.grad.numpy() for w, s, b in zip(ws[::-1], ss[::-1], bs[::-1]) for a in (s, b, w)]  # netspec's order
    return grads, tx.grad.numpy()


def _error(ours: np.ndarray, exact: np.ndarray) -> float:
    return float(np.max(np.abs(ours - exact)) / np.max(np.abs(exact)))


def test_float32_batchnorm_training_is_as_precise_as_pytorchs():
    """Each gradient of a float32 conv+batchnorm stack, against the same stack in float64, is within 3× of
    PyTorch float32's own error (before, batch sums in float32 put the input gradient 20× further off)."""
    data = _stack()
    exact, exact_dx = _netspec_grads(np.float64, *data)
    theirs64, theirs64_dx = _torch_grads(torch.float64, *data)
    for a, b in zip(exact + [exact_dx], theirs64 + [theirs64_dx]):  # the float64 reference is PyTorch's
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9 * np.max(np.abs(b)))
    ours, ours_dx = _netspec_grads(np.float32, *data)
    theirs, theirs_dx = _torch_grads(torch.float32, *data)
    assert all(a.dtype == np.float32 for a in ours + [ours_dx])
    worst_theirs = max(_error(a, b) for a, b in zip(theirs, exact))
    worst_ours = max(_error(a, b) for a, b in zip(ours, exact))
    assert worst_ours <= 3 * worst_theirs, (worst_ours, worst_theirs)
    assert _error(ours_dx, exact_dx) <= 3 * _error(theirs_dx, exact_dx), (ours_dx, theirs_dx)
