"""Initializers: shapes, the distributions' scales, and reproducibility across runs and dtypes."""

from __future__ import annotations

import numpy as np
import pytest

import netspec

SPEC = {
    "netspec": 1,
    "classes": [str(i) for i in range(50)],
    "input": {"features": 400},
    "seed": 7,
    "layers": [
        {"name": "big", "type": "dense", "neurons": 300},
        {"name": "out", "type": "dense", "neurons": 50},
    ],
}


def big_weights(init, dtype="float32", seed=7, bias=0.0):
    spec = dict(SPEC, dtype=dtype, seed=seed)
    spec["layers"] = [dict(SPEC["layers"][0], weights=init, bias=bias), SPEC["layers"][1]]
    return netspec.build(netspec.Spec.model_validate(spec)).layers[0].params


# (initializer, expected mean, expected std) for the big layer: fan_in 400, fan_out 300.
CASES = [
    ("zeros", 0.0, 0.0),
    ("ones", 1.0, 0.0),
    ({"init": "uniform", "low": -0.5, "high": 1.5}, 0.5, 2.0 / np.sqrt(12)),
    ({"init": "normal", "mean": 2.0, "std": 0.3}, 2.0, 0.3),
    ("uniform", 0.0, 0.1 / np.sqrt(12)),  # Keras' default ±0.05
    ("normal", 0.0, 0.05),
    ("glorot_uniform", 0.0, np.sqrt(6 / 700) / np.sqrt(3)),
    ("glorot_normal", 0.0, np.sqrt(2 / 700)),
    ("he_uniform", 0.0, np.sqrt(6 / 400) / np.sqrt(3)),
    ("he_normal", 0.0, np.sqrt(2 / 400)),
    ("lecun_normal", 0.0, np.sqrt(1 / 400)),
]


@pytest.mark.parametrize("init, mean, std", CASES, ids=[str(c[0]) for c in CASES])
def test_distribution_scale(init, mean, std):
    w = big_weights(init)["weights"].astype(np.float64)
    assert w.shape == (300, 400)
    # 120,000 draws: the mean is within 5 standard errors, the std within 2%.
    assert abs(w.mean() - mean) <= 5 * std / np.sqrt(w.size) + 1e-12
    assert w.std() == pytest.approx(std, rel=0.02, abs=1e-12)


def test_uniform_limits_are_respected():
    limit = np.sqrt(6 / 700)
    w = big_weights("glorot_uniform")["weights"]
    assert w.min() >= -limit and w.max() <= limit and w.max() > 0.99 * limit


def test_same_spec_same_numbers_and_dtypes_agree():
    a = big_weights("he_normal")["weights"]
    b = big_weights("he_normal")["weights"]
    c = big_weights("he_normal", dtype="float64")["weights"]
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c.astype(np.float32))


def test_seeds_change_numbers_and_the_most_specific_wins():
    base = big_weights("he_normal", seed=7)["weights"]
    assert not np.array_equal(base, big_weights("he_normal", seed=8)["weights"])
    own = big_weights({"init": "he_normal", "seed": 3}, seed=7)["weights"]
    np.testing.assert_array_equal(own, big_weights({"init": "he_normal", "seed": 3}, seed=99)["weights"])
    assert not np.array_equal(own, base)


def test_weights_and_bias_draw_different_numbers():
    params = big_weights({"init": "normal", "seed": 1}, bias={"init": "normal", "seed": 1})
    assert not np.array_equal(params["weights"][0, :300], params["bias"])


def test_layer_numbers_do_not_depend_on_other_layers():
    """Inserting a layer before 'out' does not change the numbers 'out' gets (seeded by name)."""
    spec = dict(SPEC, layers=[SPEC["layers"][0], {"name": "extra", "type": "dense", "neurons": 300}, SPEC["layers"][1]])
    with_extra = netspec.build(netspec.Spec.model_validate(spec)).layers[2].params["weights"]
    without = netspec.build(netspec.Spec.model_validate(SPEC)).layers[1].params["weights"]
    assert with_extra.shape == without.shape == (50, 300)
    np.testing.assert_array_equal(with_extra, without)
