"""The complementary error function erfc and the standard normal's cdf Φ, for arrays, without SciPy.

NumPy has no erf, and math.erf over an array through np.frompyfunc is some 50 times slower than
array arithmetic. This is W. J. Cody's rational Chebyshev approximation ("Rational Chebyshev
approximations for the error function", Math. Comp. 23, 1969; his Fortran CALERF, used by R and
Julia), which is accurate to a few units in the last place of a float64 on its whole range
(tests/test_activations.py measures it against mpmath). erfc is computed directly in the tail, so
Φ(x) = erfc(-x/√2)/2 keeps its relative accuracy far below the mean, where 1 + erf(x) would lose it.
"""

from __future__ import annotations

import numpy as np

# erf(x) = x·A(x²)/B(x²) for |x| ≤ 0.46875
_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02, 3.20937758913846947e03)
_A_TOP = 1.85777706184603153e-1
_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03, 2.84423683343917062e03)
# erfc(x) = exp(-x²)·C(x)/D(x) for 0.46875 < x ≤ 4
_C = (
    5.64188496988670089e-1,
    8.88314979438837594e00,
    6.61191906371416295e01,
    2.98635138197400131e02,
    8.81952221241769090e02,
    1.71204761263407058e03,
    2.05107837782607147e03,
    1.23033935479799725e03,
)
_C_TOP = 2.15311535474403846e-8
_D = (
    1.57449261107098347e01,
    1.17693950891312499e02,
    5.37181101862009858e02,
    1.62138957456669019e03,
    3.29079923573345963e03,
    4.36261909014324716e03,
    3.43936767414372164e03,
    1.23033935480374942e03,
)
# erfc(x) = exp(-x²)/x·(1/√π + P(1/x²)/(x²·Q(1/x²))) for x > 4
_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1, 1.60837851487422766e-2)
_P_LAST, _P_TOP = 6.58749161529837803e-4, 1.63153871373020978e-2
_Q = (2.56852019228982242e00, 1.87295284992346725e00, 5.27905102951428412e-1, 6.05183413124413191e-2)
_Q_LAST = 2.33520497626869185e-3
_ONE_OVER_SQRT_PI = 5.6418958354775628695e-1
_SMALL, _MIDDLE, _HUGE = 0.46875, 4.0, 26.543  # erfc(x) is below the smallest normal float64 past _HUGE


def _horner(z: np.ndarray, top: float, coefficients: tuple[float, ...], out: np.ndarray) -> np.ndarray:
    """(((top·z + c0)·z + c1)·z + …)·z, written into `out` (in place: fresh arrays are what cost here)."""
    np.multiply(z, top, out=out)
    for c in coefficients:
        out += c
        out *= z
    return out


def _exp_minus_square(y: np.ndarray, out: np.ndarray, head: np.ndarray) -> np.ndarray:
    """exp(-y²) into `out`, as exp(-head²)·exp(-(y - head)(y + head)) with head = y rounded down to 1/16.

    Cody's trick: head² is exact and the second part small, where y² rounded once and then
    exponentiated would carry its rounding error times y². `y` and `head` are overwritten.
    """
    np.multiply(y, 16, out=head)
    np.trunc(head, out=head)
    head /= 16
    np.add(y, head, out=out)
    y -= head
    out *= y
    np.negative(out, out=out)
    np.exp(out, out=out)
    head *= head
    np.negative(head, out=head)
    out *= np.exp(head, out=head)
    return out


def erfc(x: np.ndarray) -> np.ndarray:
    """1 − erf(x), elementwise, in x's dtype; accurate relative to its value on the whole line."""
    x = np.asarray(x)
    if x.ndim == 0:  # ufuncs give scalars, not arrays, for 0-d input: no buffers to reuse
        return erfc(x.reshape(1)).reshape(())
    y = np.abs(x)
    small, tail, negative = y <= _SMALL, y > _MIDDLE, x < 0
    tail_values = y[tail] if tail.any() else None
    # Each range's formula runs on the whole array clipped into its range (no overflow, no fancy
    # indexing), in a few buffers reused in place (fresh arrays cost more than the arithmetic);
    # each element then keeps its own range's value.
    m = np.clip(y, _SMALL, _MIDDLE, out=y)
    out, bottom = _horner(m, _C_TOP, _C[:7], np.empty_like(y)), _horner(m, 1.0, _D[:7], np.empty_like(y))
    out += _C[7]
    bottom += _D[7]
    out /= bottom
    scratch = np.empty_like(y)
    out *= _exp_minus_square(m, bottom, scratch)
    if tail_values is not None:
        out[tail] = _erfc_tail(tail_values)
    np.copysign(out, x, out=out)  # erfc(-y) = 2 - erfc(y)
    out += negative * 2.0
    s = np.clip(x, -_SMALL, _SMALL, out=m)
    s2 = np.multiply(s, s, out=scratch)
    erf_small, bottom = _horner(s2, _A_TOP, _A[:3], bottom), _horner(s2, 1.0, _B[:3], np.empty_like(y))
    erf_small += _A[3]
    erf_small *= s
    bottom += _B[3]
    erf_small /= bottom
    np.subtract(1, erf_small, out=erf_small)
    np.copyto(out, erf_small, where=small)
    return out


def _erfc_tail(t: np.ndarray) -> np.ndarray:
    """erfc for t > 4 (few values of an activation's input: these get arrays of their own)."""
    r = 1 / (t * t)
    top, bottom = _horner(r, _P_TOP, _P, np.empty_like(t)), _horner(r, 1.0, _Q, np.empty_like(t))
    top += _P_LAST
    bottom += _Q_LAST
    series = r * top / bottom
    value = (_ONE_OVER_SQRT_PI - series) / t
    value *= _exp_minus_square(np.minimum(t, _HUGE), np.empty_like(t), np.empty_like(t))
    return np.where(t >= _HUGE, 0, value)


def normal_cdf(x: np.ndarray) -> np.ndarray:
    """Φ(x), the probability that a standard normal value is below x: erfc(-x/√2)/2."""
    x = np.asarray(x)
    out = erfc(x * -np.sqrt(0.5, dtype=x.dtype))
    out *= 0.5
    return out
