"""The forward pass checked by hand, activations and their gradients, predictions, save and load."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml

import netspec
from netspec.layers.activations import ACTIVATIONS

from conftest import numeric_gradient

ROOT = Path(__file__).resolve().parent.parent

HAND = """\
netspec: 1
classes: [left, right]
input: {features: 2}
layers:
  - name: hidden
    type: dense
    neurons: 2
    activation: relu
    weights: [[1, -1], [0.5, 2]]
    bias: [0, -1]
  - name: output
    type: dense
    neurons: 2
    activation: softmax
    weights: [[1, 1], [-1, 1]]
    bias: [0, 0]
"""


def test_forward_matches_hand_computation(write_spec):
    network = netspec.load(write_spec(HAND.replace("netspec: 1", "netspec: 1\ndtype: float64")))
    # x = (2, 1): hidden z = (2 - 1 + 0, 1 + 2 - 1) = (1, 2), relu keeps both;
    # output z = (1 + 2, -1 + 2) = (3, 1); softmax = (e^3, e^1) / (e^3 + e^1).
    # x = (-1, 0): hidden z = (-1, -0.5 - 1) -> relu (0, 0); output z = (0, 0) -> (0.5, 0.5).
    scores = network.forward(np.array([[2.0, 1.0], [-1.0, 0.0]]))
    e3, e1 = math.exp(3), math.exp(1)
    np.testing.assert_allclose(scores, [[e3 / (e3 + e1), e1 / (e3 + e1)], [0.5, 0.5]], rtol=1e-12)
    assert network.predict(np.array([[2.0, 1.0]])) == ["left"]
    assert network.classes == ["left", "right"]


def test_float32_forward_is_float32(write_spec):
    network = netspec.load(write_spec(HAND))
    out = network.forward(np.array([[2.0, 1.0]]))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[1 / (1 + math.exp(-2)), 1 / (1 + math.exp(2))]], rtol=1e-6)


def test_image_shaped_input_is_flattened_channels_first(write_spec):
    text = """\
    netspec: 1
    classes: [only]
    input: {image: {width: 2, height: 1, color: rgb}}
    layers:
      - {type: dense, neurons: 1, weights: [[1, 10, 100, 1000, 10000, 100000]], bias: 0}
    """
    network = netspec.load(write_spec(text))
    x = np.zeros((1, 3, 1, 2))
    x[0, 0, 0, 1] = 1  # red, second pixel -> input index 1
    x[0, 2, 0, 0] = 1  # blue, first pixel -> input index 4
    assert network.forward(x)[0, 0] == pytest.approx(10 + 10000)


@pytest.mark.parametrize(
    "name, z, expected",
    [
        ("linear", [-2.0, 0.5], [-2.0, 0.5]),
        ("relu", [-2.0, 0.5], [0.0, 0.5]),
        ("leaky_relu", [-2.0, 0.5], [-0.2, 0.5]),  # alpha 0.1 below
        ("sigmoid", [0.0, math.log(3)], [0.5, 0.75]),
        ("tanh", [0.0, math.log(2)], [0.0, 0.6]),  # (4 - 1) / (4 + 1)
        ("softmax", [0.0, math.log(3)], [0.25, 0.75]),
    ],
)
def test_activation_values(name, z, expected):
    np.testing.assert_allclose(ACTIVATIONS[name].forward(np.array([z]), 0.1), [expected], rtol=1e-12, atol=1e-15)
    # The running path computes in place: one row (a single image) and a batch whose rows differ in scale.
    for rows, wanted in [([z], [expected]), ([z, [v + 50 for v in z], z], None)]:
        batch = np.array(rows)
        wanted = ACTIVATIONS[name].forward(batch.copy(), 0.1) if wanted is None else wanted
        result = ACTIVATIONS[name].in_place(batch, 0.1)
        np.testing.assert_allclose(result, wanted, rtol=1e-12, atol=1e-15)
        assert np.shares_memory(result, batch)


def test_sigmoid_and_softmax_do_not_overflow():
    with np.errstate(over="raise", invalid="raise"):  # underflow to 0 is fine
        for apply in ("forward", "in_place"):
            sigmoid, softmax = getattr(ACTIVATIONS["sigmoid"], apply), getattr(ACTIVATIONS["softmax"], apply)
            np.testing.assert_allclose(sigmoid(np.array([[-1000.0, 1000.0]]), 0), [[0, 1]])
            np.testing.assert_allclose(softmax(np.array([[1000.0, 0.0]]), 0), [[1, 0]])
            np.testing.assert_allclose(softmax(np.array([[1000.0, 0.0], [0.0, -1000.0]]), 0), [[1, 0], [1, 0]])


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_dense_backprop_matches_finite_differences(activation):
    """Gradients of sum(y * g) for a dense layer, against central differences in float64."""
    from netspec.layers import dense

    rng = np.random.default_rng(0)
    extra = {"alpha": 0.1} if activation == "leaky_relu" else {}
    layer = dense.Dense(neurons=3, activation=activation, **extra)
    params = {"weights": rng.normal(size=(3, 4)), "bias": rng.normal(size=3)}
    x = rng.normal(size=(5, 4))
    g = rng.normal(size=(5, 3))
    y, backprop = dense.forward(layer, params, x)
    dx, grads = backprop(g)

    def loss() -> float:
        return float((dense.forward(layer, params, x)[0] * g).sum())

    for array, analytic in [(x, dx), (params["weights"], grads["weights"]), (params["bias"], grads["bias"])]:
        np.testing.assert_allclose(analytic, numeric_gradient(loss, array), rtol=1e-5, atol=1e-7)


def test_wrong_input_shape_is_an_input_error(write_spec):
    network = netspec.load(write_spec(HAND))
    with pytest.raises(netspec.InputError) as caught:
        network.forward(np.zeros((4, 3)))
    assert str(caught.value) == "NS305 input batch has shape (4, 3), expected (batch, 2)"
    with pytest.raises(netspec.InputError, match="this network reads 2 numbers, not images; pass arrays"):
        network.predict(["picture.png"])


def test_save_and_load_give_exactly_the_same_arrays(write_spec, tmp_path):
    spec = HAND.replace("weights: [[1, -1], [0.5, 2]]", "weights: {init: normal, std: 0.7}")
    network = netspec.load(write_spec(spec.replace("netspec: 1", "netspec: 1\ndtype: float64\nseed: 5")))
    (tmp_path / "out").mkdir()
    spec_path, arrays_path = network.save(tmp_path / "out" / "saved.yaml")
    assert arrays_path == tmp_path / "out" / "saved.npz"
    loaded = netspec.load(spec_path)
    for before, after in zip(network.layers, loaded.layers):
        assert before.name == after.name
        for key in ("weights", "bias"):
            assert after.params[key].dtype == np.float64
            np.testing.assert_array_equal(before.params[key], after.params[key])
    document = yaml.safe_load(spec_path.read_text())
    assert document["weights_file"] == "saved.npz"
    assert document["layers"][0] == {"name": "hidden", "type": "dense", "neurons": 2, "activation": "relu"}
    assert sorted(np.load(arrays_path).files) == ["hidden.bias", "hidden.weights", "output.bias", "output.weights"]
    # Nothing else is left in the folder: no temporary files.
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["saved.npz", "saved.yaml"]


def test_saved_specs_load_again_with_the_training_they_said(tmp_path):
    """Defaults are not written out: momentum's default beside adam would break the spec's own rule."""
    for name in ("rose-vs-lotus.yaml", "digits.yaml", "digits-cnn.yaml"):
        network = netspec.load(ROOT / "specs" / name)
        spec_path, _ = network.save(tmp_path / name)
        again = netspec.load(spec_path)
        assert again.spec.training == network.spec.training
        assert (
            yaml.safe_load(spec_path.read_text())["training"]
            == yaml.safe_load((ROOT / "specs" / name).read_text())["training"]
        )
        for before, after in zip(network.layers, again.layers):
            for key, array in before.params.items():
                np.testing.assert_array_equal(array, after.params[key])


def test_saved_labels_that_look_like_numbers_stay_text(write_spec, tmp_path):
    text = HAND.replace("classes: [left, right]", "classes: ['1e3', '0o7']")
    network = netspec.load(write_spec(text))
    spec_path, _ = network.save(tmp_path / "saved.yaml")
    assert netspec.load(spec_path).classes == ["1e3", "0o7"]


def test_empty_batches_give_empty_results(write_spec):
    network = netspec.load(write_spec(HAND))
    assert network.forward(np.zeros((0, 2))).shape == (0, 2)
    assert network.predict([]) == [] and network.predict(np.zeros((0, 2))) == []


def test_predict_gives_no_label_for_non_finite_scores(write_spec):
    network = netspec.load(write_spec(HAND))
    with pytest.raises(netspec.InputError) as caught:
        network.predict(np.array([[1.0, 2.0], [np.nan, 0.0]]))
    assert str(caught.value) == "NS306 the scores of input(s) 1 are not finite (overflow); no label given"


def test_save_creates_the_folder(write_spec, tmp_path):
    network = netspec.load(write_spec(HAND))
    spec_path, _ = network.save(tmp_path / "new" / "deeper" / "net.yaml")
    assert netspec.load(spec_path).classes == ["left", "right"]


def test_inputs_in_every_form(write_spec, tmp_path):
    from PIL import Image

    colours = write_spec(
        "netspec: 1\nclasses: [red, blue]\ninput: {image: {width: 1, height: 1}}\n"
        "layers:\n  - {type: dense, neurons: 2, weights: [[1, 0, 0], [0, 0, 1]], bias: 0}\n",
        "colours.yaml",
    )
    network = netspec.load(colours)
    Image.new("RGB", (2, 2), (255, 0, 0)).save(tmp_path / "red.png")
    blue = Image.new("RGB", (2, 2), (0, 0, 255))
    assert network.predict(str(tmp_path / "red.png")) == "red"  # one path, one answer, as for one array
    assert network.predict(tmp_path / "red.png") == "red"
    assert network.scores(tmp_path / "red.png").shape == (2,) and network.scores([tmp_path / "red.png"]).shape == (1, 2)
    assert network.predict(blue) == "blue" and network.predict([blue]) == ["blue"]
    assert network.predict([tmp_path / "red.png", blue, np.array([[[0.0]], [[0.0]], [[1.0]]])]) == [
        "red",
        "blue",
        "blue",
    ]
    features = netspec.load(write_spec(HAND))
    nested = [[2.0, 1.0], [-1.0, 0.0]]
    np.testing.assert_array_equal(features.scores(nested), features.forward(np.array(nested)))
    with pytest.raises(netspec.InputError, match=r"NS305 inputs must be numbers shaped \(batch, 2\), got list values"):
        features.forward([[1, 2, None]])
    with pytest.raises(netspec.InputError, match="NS305 inputs must be numbers"):
        features.forward("abc")


def test_one_input_array_gives_one_result_and_a_batch_a_batch(write_spec):
    features = netspec.load(write_spec(HAND.replace("netspec: 1", "netspec: 1\ndtype: float64")))
    one = features.scores([2.0, 1.0])
    assert one.shape == (2,)
    np.testing.assert_array_equal(one, features.forward(np.array([[2.0, 1.0]]))[0])
    assert features.predict([2.0, 1.0]) == "left" and features.predict(np.array([2.0, 1.0])) == "left"
    assert features.predict([[2.0, 1.0]]) == ["left"] and features.scores([[2.0, 1.0]]).shape == (1, 2)
    with pytest.raises(
        netspec.InputError, match=r"NS305 input batch has shape \(3,\), expected \(batch, 2\) or \(2,\)"
    ):
        features.predict([1.0, 2.0, 3.0])
    colours = netspec.load(
        write_spec(
            "netspec: 1\nclasses: [red, blue]\ninput: {image: {width: 1, height: 1}}\n"
            "layers:\n  - {type: dense, neurons: 2, weights: [[1, 0, 0], [0, 0, 1]], bias: 0}\n",
            "colours.yaml",
        )
    )
    blue = np.array([[[0.0]], [[0.0]], [[1.0]]])  # one image array, shaped (channels, height, width)
    assert colours.predict(blue) == "blue" and colours.scores(blue).tolist() == [0.0, 1.0]
    assert colours.predict(blue[None]) == ["blue"]


def test_feature_mean_and_std_are_applied_to_numbers_given(write_spec):
    text = HAND.replace("netspec: 1", "netspec: 1\ndtype: float64").replace(
        "input: {features: 2}", "input: {features: {size: 2, mean: [1.0, -3.0], std: [2.0, 0.5]}}"
    )
    network = netspec.load(write_spec(text))
    raw = np.array([[2.0, 1.0], [-1.0, 0.0], [4.0, -2.5]])
    standard = (raw - np.array([1.0, -3.0])) / np.array([2.0, 0.5])  # computed here, independently
    np.testing.assert_allclose(network.inputs(raw), standard, rtol=1e-15)
    np.testing.assert_allclose(network.scores(raw), network.forward(standard), rtol=1e-15)
    np.testing.assert_allclose(network.scores(raw[0]), network.forward(standard[:1])[0], rtol=1e-15)
    # A network that says 'left' where the first standardised feature is above 0: rows whose raw first
    # feature is above 0 but below the mean of 1 change label only if the mean and std are applied.
    sign = netspec.load(
        write_spec(
            "netspec: 1\ndtype: float64\nclasses: [left, right]\n"
            "input: {features: {size: 2, mean: [1.0, -3.0], std: [2.0, 0.5]}}\n"
            "layers:\n  - {type: dense, neurons: 2, activation: softmax, weights: [[1, 0], [-1, 0]], bias: 0}\n",
            "sign.yaml",
        )
    )
    rows = np.array([[0.5, 0.0], [3.0, 0.0], [0.2, 9.0]])
    assert sign.predict(rows) == ["right", "left", "right"]  # raw, the first and last would be 'left'
    assert sign.evaluate(rows, ["right", "left", "right"]).accuracy == 1.0  # evaluate reads raw numbers too
    shared = netspec.load(write_spec(text.replace("mean: [1.0, -3.0], std: [2.0, 0.5]", "mean: 2, std: 4"), "b.yaml"))
    np.testing.assert_allclose(shared.inputs(raw), (raw - 2) / 4, rtol=1e-15)


def test_repr_shows_the_sizes_and_classes(write_spec):
    assert repr(netspec.load(write_spec(HAND))) == "<Network 'network': 2 → 2 → 2, classes ['left', 'right']>"


def test_save_refuses_a_path_that_is_not_a_spec(write_spec, tmp_path):
    with pytest.raises(ValueError, match="save writes a spec: give a .yaml or .yml path"):
        netspec.load(write_spec(HAND)).save(tmp_path / "net.npz")
    assert not (tmp_path / "net.npz").exists()


def test_a_failed_write_removes_its_temporary_file_and_keeps_the_old_file(tmp_path):
    from netspec.files import atomic_write

    target = tmp_path / "result.yaml"
    target.write_text("before")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as stream:
            stream.write(b"half")
            raise RuntimeError("crash while writing")
    assert target.read_text() == "before" and [p.name for p in tmp_path.iterdir()] == ["result.yaml"]


def test_a_write_that_cannot_start_names_the_file_asked_for_not_a_temporary_one(tmp_path):
    from netspec.files import atomic_write

    (tmp_path / "plain").write_text("a file, not a folder")
    target = tmp_path / "plain" / "result.yaml"
    with pytest.raises(NotADirectoryError) as raised:
        with atomic_write(target) as stream:
            stream.write(b"never")
    assert raised.value.filename == str(target)


def test_saved_files_have_ordinary_permissions(write_spec, tmp_path):
    import os

    mask = os.umask(0o022)
    try:
        spec_path, arrays_path = netspec.load(write_spec(HAND)).save(tmp_path / "out" / "net.yaml")
    finally:
        os.umask(mask)
    assert oct(spec_path.stat().st_mode & 0o777) == oct(arrays_path.stat().st_mode & 0o777) == "0o644"


def test_cnn_with_every_layer_type_saves_and_loads_exactly(write_spec, tmp_path):
    text = """\
    netspec: 1
    classes: [a, b, c]
    input: {image: {width: 6, height: 6, color: rgb}}
    dtype: float64
    layers:
      - {name: conv, type: conv2d, filters: 4, kernel: 3, padding: same, activation: leaky_relu, alpha: 0.2}
      - {name: norm, type: batchnorm, mean: {init: normal, seed: 1}, var: 2.0}
      - {name: pool, type: maxpool2d, size: 2}
      - {name: avg, type: avgpool2d, size: 2, stride: 1}
      - {name: drop, type: dropout, rate: 0.5}
      - {name: gap, type: global_avgpool}
      - {name: out, type: dense, neurons: 3, activation: softmax}
    """
    network = netspec.load(write_spec(text))
    spec_path, arrays_path = network.save(tmp_path / "saved" / "cnn.yaml")
    assert sorted(np.load(arrays_path).files) == [
        "conv.bias",
        "conv.weights",
        "norm.mean",
        "norm.scale",
        "norm.shift",
        "norm.var",
        "out.bias",
        "out.weights",
    ]
    loaded = netspec.load(spec_path)
    x = np.random.default_rng(0).normal(size=(5, 3, 6, 6))
    np.testing.assert_array_equal(loaded.forward(x), network.forward(x))
    document = yaml.safe_load(spec_path.read_text())
    assert document["layers"][1] == {"name": "norm", "type": "batchnorm"}
    assert document["layers"][0]["alpha"] == 0.2


def test_fit_on_raw_numbers_is_fit_on_standardised_ones_for_a_standardising_input(write_spec):
    base = (
        "netspec: 1\ndtype: float64\nclasses: [a, b]\nseed: 3\ninput: {features: FEATURES}\n"
        "layers:\n  - {name: h, type: dense, neurons: 3, activation: tanh}\n"
        "  - {name: out, type: dense, neurons: 2, activation: softmax}\n"
    )
    raw = np.random.default_rng(0).normal(loc=[50.0, -7.0], scale=[10.0, 0.1], size=(40, 2))
    labels = (raw[:, 0] > 50).astype(int)
    mean, std = raw.mean(axis=0), raw.std(axis=0)
    standardising = netspec.load(
        write_spec(base.replace("FEATURES", f"{{size: 2, mean: {mean.tolist()}, std: {std.tolist()}}}"), "s.yaml")
    )
    plain = netspec.load(write_spec(base.replace("FEATURES", "2"), "p.yaml"))
    options = {"epochs": 5, "batch_size": 8, "val_split": 0, "learning_rate": 0.1}
    standardising.fit(raw, labels, **options)
    plain.fit((raw - mean) / std, labels, **options)
    for mine, theirs in zip(standardising.layers, plain.layers):
        for key in mine.params:
            np.testing.assert_allclose(mine.params[key], theirs.params[key], rtol=1e-12, atol=1e-12)
