"""Initial parameter values from a named initializer, the same on every machine and every run."""

from __future__ import annotations

import math
import zlib

import numpy as np

from netspec.fields import (
    GlorotNormal,
    GlorotUniform,
    HeNormal,
    HeUniform,
    LecunNormal,
    Normal,
    Ones,
    Uniform,
    Zeros,
)


def seed_sequence(spec_seed: int, layer_seed: int | None, init_seed: int | None, layer: str, param: str) -> list[int]:
    """The entropy behind one parameter's random numbers.

    The most specific seed wins: the initializer's own, else the layer's, else the spec's.
    Layer and parameter names (not positions) enter it, so adding a layer elsewhere in the
    spec leaves the others' numbers unchanged.
    """
    param_id = zlib.crc32(param.encode())
    if init_seed is not None:
        return [init_seed, param_id]
    if layer_seed is not None:
        return [layer_seed, param_id]
    return [spec_seed, zlib.crc32(layer.encode()), param_id]


def initialize(init, shape: tuple[int, ...], fan_in: int, fan_out: int, entropy: list[int]) -> np.ndarray:
    """Draw an array of `shape` in float64 (callers cast), so float32 and float64 specs agree."""
    if isinstance(init, Zeros):
        return np.zeros(shape)
    if isinstance(init, Ones):
        return np.ones(shape)
    rng = np.random.default_rng(entropy)
    if isinstance(init, Uniform):
        return rng.uniform(init.low, init.high, shape)
    if isinstance(init, Normal):
        return rng.normal(init.mean, init.std, shape)
    if isinstance(init, GlorotUniform):
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, shape)
    if isinstance(init, GlorotNormal):
        return rng.normal(0.0, np.sqrt(2.0 / (fan_in + fan_out)), shape)
    if isinstance(init, HeUniform):
        limit = np.sqrt(6.0 / fan_in)
        return rng.uniform(-limit, limit, shape)
    if isinstance(init, HeNormal):
        return rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
    if isinstance(init, LecunNormal):
        return rng.normal(0.0, np.sqrt(1.0 / fan_in), shape)
    raise TypeError(f"not an initializer: {init!r}")  # unreachable for validated specs


_BOUNDED_INITIALIZERS = (GlorotNormal, GlorotUniform, HeNormal, HeUniform, LecunNormal, Ones, Zeros)
"""Their values stay within a few units (the scale is at most sqrt(6 / fan_in)): they always fit the
dtype, and only a parameter that may not be negative needs them drawn to be checked."""

_SIGMAS = 40.0
"""No draw of a normal distribution lands this many standard deviations out (the odds are below 1e-300)."""


def fits_without_drawing(source, dtype: np.dtype) -> bool:
    """Whether every value an initializer can draw fits `dtype`, so that checking need not draw them."""
    if isinstance(source, _BOUNDED_INITIALIZERS):
        return True
    largest = float(np.finfo(dtype).max)
    if isinstance(source, Uniform):  # a range whose width overflows cannot be drawn from (NS104)
        return math.isfinite(source.high - source.low) and max(abs(source.low), abs(source.high)) <= largest
    if isinstance(source, Normal):
        return abs(source.mean) + _SIGMAS * source.std <= largest
    return False
