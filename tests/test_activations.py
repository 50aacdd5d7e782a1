"""The activations PyTorch has and netspec took from it: values and gradients against PyTorch and mpmath.

Each new activation is checked in float64 on a grid that holds its kinks and large |x|, against
torch.nn.functional and its autograd; gelu's erf, which NumPy lacks, against mpmath's.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from netspec.layers import erf
from netspec.layers.activations import ACTIVATIONS

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install -e '.[test]')")
F = torch.nn.functional

NEW = ["relu6", "hard_sigmoid", "hard_swish", "silu", "gelu", "elu"]
TORCH = {
    "relu6": F.relu6,
    "hard_sigmoid": F.hardsigmoid,
    "hard_swish": F.hardswish,
    "silu": F.silu,
    "gelu": F.gelu,  # approximate='none'
    "elu": F.elu,  # alpha 1.0
}
KINKS = [-6.0, -3.0, -1e-10, -0.0, 0.0, 1e-10, 3.0, 6.0, -1e-300, 1e-300]
GRID = np.concatenate([np.linspace(-40, 40, 3201), KINKS, [-700.0, -37.5, -8.4, 8.4, 37.5, 700.0]])

# torch's gelu computes 1 + erf(x/√2), which is 0 below about -8 (and its gradient, Φ(x) + x·φ(x),
# a percent off there); netspec's, from erfc, is checked against mpmath instead. Values that small
# agree with torch to 1e-15 absolute.
ABSOLUTE = {"gelu": 1e-15}


def torch_values(name: str, x: np.ndarray, alpha: float | None = None):
    """(y, dy/dx · g) by PyTorch in float64, for g = 0.7 everywhere."""
    tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    y = TORCH[name](tx) if alpha is None else F.elu(tx, alpha)
    y.backward(torch.full_like(y, 0.7))
    return y.detach().numpy(), tx.grad.numpy()


def ours(name: str, x: np.ndarray, alpha: float = 1.0):
    act = ACTIVATIONS[name]
    y = act.forward(x, alpha)
    return y, act.backward(x, y, np.full_like(x, 0.7), alpha)


@pytest.mark.parametrize("name", NEW)
def test_values_are_pytorchs(name):
    y, _ = ours(name, GRID)
    np.testing.assert_allclose(y, torch_values(name, GRID)[0], rtol=1e-12, atol=ABSOLUTE.get(name, 0))


@pytest.mark.parametrize("name", NEW)
def test_gradients_are_pytorchs_autograd(name):
    _, dx = ours(name, GRID)
    theirs = torch_values(name, GRID)[1]
    if name == "hard_sigmoid":
        # PyTorch's backward multiplies by the float32 constant 1/6 even in float64 (0.1666666716…);
        # netspec uses 1/6 itself.
        np.testing.assert_allclose(dx, theirs, rtol=1e-7)
        np.testing.assert_array_equal(dx, np.where((GRID > -3) & (GRID < 3), 0.7 / 6, 0))
    else:
        np.testing.assert_allclose(dx, theirs, rtol=1e-10, atol=ABSOLUTE.get(name, 0))


@pytest.mark.parametrize(
    "name, x, gradient",
    [
        ("relu6", 0.0, 0.0),  # PyTorch's relu6 is hardtanh(x, 0, 6): slope 1 strictly inside only
        ("relu6", 6.0, 0.0),
        ("relu6", 3.0, 1.0),
        ("hard_sigmoid", -3.0, 0.0),
        ("hard_sigmoid", 3.0, 0.0),
        ("hard_swish", -3.0, 0.0),  # 0 up to -3 included ...
        ("hard_swish", 3.0, 1.0),  # ... 1 from 3 included, x/3 + 1/2 between
        ("hard_swish", 0.0, 0.5),
        ("elu", 0.0, 1.0),  # alpha·e^0
        ("silu", 0.0, 0.5),
        ("gelu", 0.0, 0.5),
    ],
)
def test_gradients_at_the_kinks_are_the_ones_pytorch_gives(name, x, gradient):
    point = np.array([x])
    assert ours(name, point)[1][0] == pytest.approx(0.7 * gradient, rel=1e-15)
    assert torch_values(name, point)[1][0] == pytest.approx(0.7 * gradient, rel=1e-7)  # hard_sigmoid's float32 1/6


def test_elu_takes_alpha_as_pytorch_does():
    for alpha in (0.5, 2.0, 0.0):
        y, dx = ours("elu", GRID, alpha)
        ty, tdx = torch_values("elu", GRID, alpha)
        np.testing.assert_allclose(y, ty, rtol=1e-12, atol=0)
        np.testing.assert_allclose(dx, tdx, rtol=1e-10, atol=0)
    assert ours("elu", np.array([0.0]), 0.5)[1][0] == 0.7 * 0.5  # at 0: alpha, as PyTorch


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", NEW)
def test_in_place_forms_give_the_plain_forms_values(name, dtype):
    rng = np.random.default_rng(3)
    for batch in (np.concatenate([GRID[:-6], [-50, 50]]).reshape(1, -1), rng.normal(0, 4, size=(7, 5))):
        batch = batch.astype(dtype)
        plain = ACTIVATIONS[name].forward(batch, 1.0)
        assert plain.dtype == dtype
        result = ACTIVATIONS[name].in_place(batch, 1.0)
        assert np.shares_memory(result, batch) and result.dtype == dtype
        np.testing.assert_array_equal(result, plain)


@pytest.mark.parametrize("name", NEW)
def test_float32_values_are_float64_values_rounded(name):
    x = np.random.default_rng(4).normal(0, 5, size=1000)
    np.testing.assert_allclose(
        ACTIVATIONS[name].forward(x.astype(np.float32), 1.0), ACTIVATIONS[name].forward(x, 1.0), rtol=2e-6, atol=1e-6
    )


def test_erfc_is_accurate_to_a_few_units_in_the_last_place():
    """Cody's approximation against mpmath at 30 digits, relative to the value, over the whole range."""
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 30
    x = np.concatenate([np.linspace(-6, 26.5, 6501), [0.46875, np.nextafter(0.46875, 1), 4.0, np.nextafter(4.0, 5)]])
    reference = np.array([float(mpmath.erfc(mpmath.mpf(v))) for v in x])
    np.testing.assert_allclose(erf.erfc(x), reference, rtol=4e-15, atol=0)  # measured: 3.4 units (7.4e-16)
    # Past 26.543 erfc is below the smallest normal float64 (0 here); ±inf and NaN come out as erfc says.
    np.testing.assert_array_equal(erf.erfc(np.array([27.0, np.inf, -np.inf])), [0.0, 0.0, 2.0])
    assert np.isnan(erf.erfc(np.array([np.nan]))).all()
    assert erf.erfc(np.float64(0.3)) == pytest.approx(math.erfc(0.3), rel=1e-15)


def test_gelu_is_accurate_where_torch_is_not():
    """x·Φ(x) and Φ(x) + x·φ(x) against mpmath: relative, also far below the mean."""
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 40
    x = np.concatenate([np.linspace(-37, 10, 4701), KINKS])
    exact = [(mpmath.mpf(v), mpmath.ncdf(mpmath.mpf(v)), mpmath.npdf(mpmath.mpf(v))) for v in x]
    values = np.array([float(v * cdf) for v, cdf, _ in exact])
    slopes = np.array([float(cdf + v * pdf) for v, cdf, pdf in exact])
    y, dx = ours("gelu", x)
    # Measured: 1.9e-13 and 5.7e-14 (x/√2 is rounded once; that error grows with x²).
    np.testing.assert_allclose(y, values, rtol=1e-12, atol=0)
    np.testing.assert_allclose(dx / 0.7, slopes, rtol=1e-12, atol=0)
