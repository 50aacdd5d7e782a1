"""The shipped example: specs validate, the sample pictures and fresh generated ones are classified right."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import netspec
from netspec.images import to_array

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))

from make_flowers import draw_lotus, draw_rose  # noqa: E402


def test_every_shipped_spec_is_valid():
    specs = sorted((ROOT / "specs").glob("*.yaml"))
    assert specs, "no specs shipped"
    for spec in specs:
        assert netspec.check(spec) == [], spec


def test_sample_pictures_are_classified_right():
    network = netspec.load(ROOT / "specs" / "rose-vs-lotus.yaml")
    images = ROOT / "examples" / "images"
    assert network.predict([images / "red-rose.png", images / "white-lotus.png"]) == ["red rose", "white lotus"]


def test_shipped_weights_classify_fresh_pictures():
    """At least 95% of pictures the training never saw (seed 2; training used 0, its report 1)."""
    network = netspec.load(ROOT / "specs" / "rose-vs-lotus.yaml")
    x, labels = [], []
    for label, draw in (("red rose", draw_rose), ("white lotus", draw_lotus)):
        for index in range(100):
            x.append(to_array(draw(np.random.default_rng([2, index]), 64), network.spec.input.image))
            labels.append(label)
    predicted = network.predict(np.stack(x))
    assert np.mean(np.array(predicted) == np.array(labels)) >= 0.95


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Path:
    pytest.importorskip("sklearn", reason="the digits come from scikit-learn (pip install -e '.[test]')")
    sys.path.insert(0, str(ROOT / "examples" / "digits"))
    from make_digits import write

    folder = tmp_path_factory.mktemp("digits")
    write(folder)
    return folder


def train_and_evaluate(spec: str, digits: Path, out: Path) -> dict:
    from netspec.cli import main

    runner = CliRunner()
    trained = runner.invoke(
        main, ["train", str(ROOT / "specs" / spec), str(digits / "train"), "-o", str(out), "--quiet"]
    )
    assert trained.exit_code == 0, trained.output
    return json.loads(runner.invoke(main, ["eval", str(out), str(digits / "test"), "--json"]).stdout)


def test_digits_specs_trained_with_netspec_train(digits, tmp_path):
    """The dense spec reaches 97% on the held-out digits; the convolutional and residual ones 98%, both better.

    Which of the two CNNs is ahead, and by how much, is a few digits of the 360 that float32 rounding and the order
    of summing move (runs on different kernels and code gave 357-354, 356-356, 355-354; docs/examples.md): their
    order and their gap are no promise, their level is.
    """
    dense = train_and_evaluate("digits.yaml", digits, tmp_path / "dense" / "digits.yaml")
    cnn = train_and_evaluate("digits-cnn.yaml", digits, tmp_path / "cnn" / "digits-cnn.yaml")
    resnet = train_and_evaluate("digits-resnet.yaml", digits, tmp_path / "resnet" / "digits-resnet.yaml")
    assert dense["count"] == cnn["count"] == resnet["count"] == 360
    assert dense["accuracy"] >= 0.97
    assert cnn["accuracy"] > dense["accuracy"] and cnn["accuracy"] >= 0.98
    assert resnet["accuracy"] > dense["accuracy"] and resnet["accuracy"] >= 0.98


def test_digits_resnet_has_the_parameters_counted_by_hand():
    def conv(k: int, cin: int, cout: int) -> int:
        return k * k * cin * cout + cout  # weights and one bias per filter

    def norm(c: int) -> int:
        return 4 * c  # scale and shift learned; running mean and var kept

    spec = ROOT / "specs" / "digits-resnet.yaml"
    assert netspec.check(spec) == []
    stem = conv(3, 1, 16) + norm(16)
    block1 = 2 * (conv(3, 16, 16) + norm(16))
    block2 = conv(3, 16, 32) + norm(32) + conv(3, 32, 32) + norm(32) + conv(1, 16, 32) + norm(32)
    output = 32 * 10 + 10
    summary = netspec.load(spec).summary()
    assert summary.params == stem + block1 + block2 + output == 20_138
    assert summary.non_trainable_params == 2 * (16 + 2 * 16 + 3 * 32)
    assert summary.graph  # the shortcuts make it a graph: summary shows what each layer reads


def test_iris_numbers_trained_evaluated_and_run(tmp_path):
    """make_iris.py's files through train --normalize, eval and run: numbers in, species out."""
    preprocessing = pytest.importorskip("sklearn.preprocessing", reason="the iris come from scikit-learn")
    from netspec.cli import main

    data = tmp_path / "data"
    made = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "iris" / "make_iris.py"), str(data)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert made.stdout.startswith("wrote 120 training and 30 test flowers to ")
    runner = CliRunner()
    out = tmp_path / "trained" / "iris.yaml"
    train = ["train", str(ROOT / "specs" / "iris.yaml"), str(data / "train.npz"), "-o", str(out), "--normalize"]
    trained = runner.invoke(main, [*train, "--quiet"])
    assert trained.exit_code == 0, trained.output
    assert netspec.check(out) == []

    # --normalize wrote the training data's mean and std, as scikit-learn's StandardScaler measures them.
    features = netspec.load(out).spec.input.features
    scaler = preprocessing.StandardScaler().fit(np.load(data / "train.npz")["x"])
    assert features.mean == pytest.approx(scaler.mean_, rel=1e-6)
    assert features.std == pytest.approx(scaler.scale_, rel=1e-6)

    evaluated = runner.invoke(main, ["eval", str(out), str(data / "test.npz"), "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    result = json.loads(evaluated.stdout)
    assert result["count"] == 30
    assert result["accuracy"] >= 0.9

    # The CSV holds the same flowers as test.npz, in order: sample i is on line i + 2 (the header is line 1).
    ran = runner.invoke(main, ["run", str(out), str(data / "test.csv"), "--top-k", "1"])
    assert ran.exit_code == 0, ran.output
    csv_file = data / "test.csv"
    named = [line.rsplit(": ", 1) for line in ran.stdout.splitlines() if not line.startswith(" ")]
    assert [name for name, _ in named] == [f"{csv_file}:{line}" for line in range(2, 32)]
    truth = np.load(data / "test.npz")["y"]
    assert np.mean(np.array([label for _, label in named]) == truth) == pytest.approx(result["accuracy"])
