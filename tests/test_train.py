"""Training: loss and optimizer steps by hand, learning small problems, determinism, interruption."""

from __future__ import annotations

import numpy as np
import pytest

import netspec
from netspec.spec import Training
from netspec.train.loss import cross_entropy
from netspec.train.optimizers import SGD, Adam

XOR = {
    "netspec": 1,
    "classes": ["same", "different"],
    "input": {"features": 2},
    "seed": 3,
    "layers": [
        {"name": "hidden", "type": "dense", "neurons": 8, "activation": "tanh"},
        {"name": "output", "type": "dense", "neurons": 2, "activation": "softmax"},
    ],
}
XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
XOR_Y = np.array([0, 1, 1, 0])


def network(spec: dict = XOR, **changes) -> netspec.Network:
    return netspec.build(netspec.Spec.model_validate({**spec, **changes}))


def test_cross_entropy_value_and_gradient_against_finite_differences():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(4, 3))
    targets = np.array([0, 2, 1, 2])

    def loss_of(z: np.ndarray) -> float:
        p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        return float(-np.log(p[np.arange(4), targets]).mean())  # the definition, written out

    loss, grad = cross_entropy(z, targets)
    assert loss == pytest.approx(loss_of(z), rel=1e-12)
    numeric = np.zeros_like(z)
    for i in np.ndindex(z.shape):
        step = np.zeros_like(z)
        step[i] = 1e-6
        numeric[i] = (loss_of(z + step) - loss_of(z - step)) / 2e-6
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)


def test_cross_entropy_where_a_probability_underflows_is_pytorchs():
    torch = pytest.importorskip("torch")
    # Softmax gives target 0 of [0, 3000] a probability of exactly 0: the true loss is 3000, not the
    # 708.4 of −log(tiny) a cap would report, nor infinity.
    logits = np.array([[0.0, 3000.0], [5.0, -900.0], [1.0, 2.0], [-1e4, 1e4]])
    targets = np.array([0, 1, 0, 1])
    loss, grad = cross_entropy(logits, targets)
    expected = torch.nn.functional.cross_entropy(torch.tensor(logits), torch.tensor(targets))
    assert loss == pytest.approx(expected.item(), rel=1e-14)
    assert loss == pytest.approx((3000 + 905 + (np.log(np.exp(1) + np.exp(2)) - 1) + 0) / 4, rel=1e-14)
    reference = torch.tensor(logits, requires_grad=True)
    torch.nn.functional.cross_entropy(reference, torch.tensor(targets)).backward()
    np.testing.assert_allclose(grad, reference.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_reported_losses_are_pytorchs_cross_entropy_after_a_step_that_makes_logits_large():
    torch = pytest.importorskip("torch")
    spec = {
        **XOR,
        "dtype": "float64",
        "classes": ["a", "b", "c"],
        "input": {"features": 4},
        "layers": [
            {"name": "hidden", "type": "dense", "neurons": 8, "activation": "relu"},
            {"name": "output", "type": "dense", "neurons": 3, "activation": "softmax"},
        ],
    }
    net = network(spec)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(60, 4)) * 10, rng.integers(0, 3, 60)
    arrays = []  # each layer's arrays at the start of each epoch (and at the end)

    def snapshot(epoch=None) -> None:
        arrays.append([{key: a.copy() for key, a in layer.params.items()} for layer in net.layers])

    snapshot()
    # One batch per epoch: an epoch's loss is that of the arrays it starts from; 10 examples are held out.
    history = net.fit(
        x,
        y,
        optimizer="sgd",
        momentum=0,
        learning_rate=2.0,
        epochs=3,
        batch_size=64,
        val_split=1 / 6,
        on_epoch=snapshot,
    )
    order = np.random.default_rng(spec["seed"]).permutation(60)  # fit's split, with the spec's seed
    val, train = order[:10], order[10:]

    def pytorch_loss(params, rows) -> tuple[float, float]:
        (hidden, output) = [{k: torch.tensor(v) for k, v in p.items()} for p in params]
        h = torch.relu(torch.tensor(x[rows]) @ hidden["weights"].T + hidden["bias"])
        logits = h @ output["weights"].T + output["bias"]
        losses = torch.nn.functional.cross_entropy(logits, torch.tensor(y[rows]), reduction="none")
        return losses.mean().item(), losses.max().item()

    assert not history.diverged and len(history.epochs) == 3
    largest = 0.0
    for epoch, start, end in zip(history.epochs, arrays, arrays[1:]):
        loss, most = pytorch_loss(start, train)
        largest = max(largest, most)
        assert epoch.loss == pytest.approx(loss, rel=1e-10)
        assert epoch.val_loss == pytest.approx(pytorch_loss(end, val)[0], rel=1e-10)
    assert largest > 2 * 708.4  # some examples' probabilities underflowed: a cap would have hidden it


def test_sgd_step_by_hand():
    params = [{"weights": np.array([1.0, -2.0]), "bias": np.array([0.5])}]
    grads = [{"weights": np.array([0.5, 0.5]), "bias": np.array([1.0])}]
    sgd = SGD(params, rate=0.1, momentum=0.9, weight_decay=0.01)
    sgd.step(params, grads)  # v = -0.1 * (g + 0.01 w) for weights, -0.1 * g for the bias
    np.testing.assert_allclose(params[0]["weights"], [1 - 0.1 * 0.51, -2 - 0.1 * 0.48])
    np.testing.assert_allclose(params[0]["bias"], [0.4])
    sgd.step(params, grads)  # v = 0.9 v - 0.1 g
    np.testing.assert_allclose(params[0]["bias"], [0.4 + 0.9 * -0.1 - 0.1])


def test_adam_steps_by_hand():
    params = [{"w": np.array([1.0])}]
    adam = Adam(params, rate=0.01, weight_decay=0.0)
    adam.step(params, [{"w": np.array([2.0])}])
    # First step: m̂ = g, v̂ = g², so the update is rate · g / (|g| + eps) ≈ rate.
    np.testing.assert_allclose(params[0]["w"], [1 - 0.01 * 2 / (2 + 1e-8)])
    adam.step(params, [{"w": np.array([-1.0])}])
    m = (0.9 * 0.1 * 2 + 0.1 * -1) / (1 - 0.9**2)
    v = (0.999 * 0.001 * 4 + 0.001 * 1) / (1 - 0.999**2)
    np.testing.assert_allclose(params[0]["w"], [1 - 0.01 * 2 / (2 + 1e-8) - 0.01 * m / (np.sqrt(v) + 1e-8)])


def test_xor_is_learned_to_100_percent():
    net = network()
    history = net.fit(
        np.repeat(XOR_X, 8, axis=0), np.repeat(XOR_Y, 8), epochs=300, learning_rate=0.05, val_split=0, batch_size=8
    )
    assert net.predict(XOR_X) == ["same", "different", "different", "same"]
    assert history.epochs[-1].accuracy == 1.0 and history.best_epoch == 300


def test_sgd_learns_separable_blobs_from_labels():
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(-2, 1, (100, 2)), rng.normal(2, 1, (100, 2))]).astype(np.float32)
    labels = ["same"] * 100 + ["different"] * 100
    net = network()
    net.fit(x, labels, optimizer="sgd", learning_rate=0.1, epochs=20, val_split=0.2)
    assert net.evaluate(x, labels).accuracy >= 0.97


def test_training_is_deterministic():
    x, y = np.repeat(XOR_X, 8, axis=0), np.repeat(XOR_Y, 8)
    first, second = network(), network()
    first.fit(x, y, epochs=20)
    second.fit(x, y, epochs=20)
    for a, b in zip(first.layers, second.layers):
        for key in a.params:
            np.testing.assert_array_equal(a.params[key], b.params[key])
    third = network()
    third.fit(x, y, epochs=20, seed=99)
    assert not np.array_equal(third.layers[0].params["weights"], first.layers[0].params["weights"])


def test_best_epoch_is_kept_and_patience_stops_early():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(200, 2)).astype(np.float32)
    y = rng.integers(0, 2, 200)  # noise: validation accuracy soon stops improving
    net = network()
    history = net.fit(x, y, epochs=200, learning_rate=0.05, patience=5)
    assert history.stopped_early and len(history.epochs) < 200
    assert len(history.epochs) - history.best_epoch == 5
    best = history.best
    assert best.val_accuracy == max(e.val_accuracy for e in history.epochs)
    # The network holds the best epoch's arrays: measuring again gives its validation numbers.
    held = np.random.default_rng(net.spec.seed).permutation(200)[:20]
    assert net.evaluate(x[held], y[held]).accuracy == pytest.approx(best.val_accuracy)


def test_ctrl_c_keeps_the_best_epoch_so_far():
    x, y = np.repeat(XOR_X, 8, axis=0), np.repeat(XOR_Y, 8)
    net = network()

    def interrupt(epoch):
        if epoch.number == 3:
            raise KeyboardInterrupt

    history = net.fit(x, y, epochs=50, on_epoch=interrupt)
    assert history.interrupted and len(history.epochs) == 3 and history.best_epoch in (1, 2, 3)


def test_spec_training_section_and_overrides():
    spec = netspec.Spec.model_validate({**XOR, "training": {"optimizer": "sgd", "epochs": 7}})
    from netspec.train import resolve_options

    options = resolve_options(spec, epochs=3, batch_size=None)
    assert (options.optimizer, options.epochs, options.learning_rate, options.seed) == ("sgd", 3, 0.01, 3)
    with pytest.raises(netspec.SpecError) as caught:
        resolve_options(spec, learning_rate=-1.0)
    assert str(caught.value) == "NS104 training.learning_rate: must be above 0, got -1.0"
    assert Training().optimizer == "adam"


def test_mismatched_examples_and_labels():
    net = network()
    with pytest.raises(netspec.InputError, match="4 inputs but 3 labels; give one label per input"):
        net.fit(XOR_X, [0, 1, 1])
    from netspec.train.data import DataError

    with pytest.raises(DataError, match="y holds labels that are not classes: 'other'"):
        net.evaluate(XOR_X, ["same", "other", "same", "same"])


def test_evaluation_numbers_by_hand():
    net = network(
        layers=[{"name": "output", "type": "dense", "neurons": 2, "weights": [[1, 0], [0, 1]], "bias": [0, 0]}]
    )
    x = np.array([[1, 0], [1, 0], [0, 1], [1, 0], [0, 1]], dtype=np.float32)  # predicted: 0, 0, 1, 0, 1
    result = net.evaluate(x, [0, 1, 1, 0, 0])
    np.testing.assert_array_equal(result.confusion, [[2, 1], [1, 1]])
    assert result.accuracy == pytest.approx(3 / 5)
    np.testing.assert_allclose(result.precision, [2 / 3, 1 / 2])
    np.testing.assert_allclose(result.recall, [2 / 3, 1 / 2])
    np.testing.assert_allclose(result.f1, [2 / 3, 1 / 2])
    np.testing.assert_array_equal(result.support, [3, 2])


def test_options_that_would_do_nothing_are_refused():
    from netspec.train import resolve_options

    spec = netspec.Spec.model_validate(XOR)
    with pytest.raises(netspec.SpecError) as caught:
        resolve_options(spec, momentum=0.5, patience=3, val_split=0.0)
    assert [str(p) for p in caught.value.problems] == [
        "NS125 training.momentum: only sgd takes momentum, but the optimizer is adam; leave momentum out or use sgd",
        "NS125 training.patience: patience counts epochs without a better validation accuracy; it needs val_split above 0",
    ]


def test_no_examples_left_to_train_on():
    with pytest.raises(
        netspec.DataError, match="NS403 no examples to train on: the data has 4 once val_split 0.99 holds out 4"
    ):
        network().fit(XOR_X, XOR_Y, val_split=0.99)
    with pytest.raises(netspec.DataError, match="NS403 no examples to train on: the data has 0"):
        network().fit(XOR_X[:0], XOR_Y[:0])


def test_non_finite_inputs_are_refused():
    x = XOR_X.copy()
    x[1, 0] = np.nan
    with pytest.raises(netspec.InputError, match="NS305 inputs hold NaN or infinite values"):
        network().fit(x, XOR_Y)


def test_divergence_stops_training_and_keeps_the_last_finite_arrays():
    net = network(layers=[{"name": "out", "type": "dense", "neurons": 2, "weights": {"init": "normal", "std": 1.0}}])
    x = np.repeat(XOR_X, 8, axis=0) * 1e30
    history = net.fit(x, np.repeat(XOR_Y, 8), learning_rate=1e30, optimizer="sgd", momentum=0.9, epochs=50, val_split=0)
    assert history.diverged and len(history.epochs) < 50
    assert history.best_epoch == len(history.epochs) - 1  # the last epoch before the numbers overflowed
    assert all(np.isfinite(a).all() for layer in net.layers for a in layer.params.values())


def test_epochs_that_do_not_beat_the_start_are_not_kept():
    x, y = np.repeat(XOR_X, 8, axis=0), np.repeat(XOR_Y, 8)
    trained = network()
    trained.fit(x, y, epochs=300, learning_rate=0.05, val_split=0, batch_size=8)  # 100% on XOR
    before = [layer.params["weights"].copy() for layer in trained.layers]
    history = trained.fit(x, y, epochs=3, learning_rate=5.0, val_split=0.25)  # far too large a step
    assert history.best_epoch == 0 and history.start_val_accuracy == 1.0
    for layer, weights in zip(trained.layers, before):
        np.testing.assert_array_equal(layer.params["weights"], weights)


def test_a_cnn_with_batchnorm_and_dropout_learns_stripes():
    """Vertical against horizontal stripes at random phases: every image layer trains end to end."""
    rng = np.random.default_rng(0)
    x, y = [], []
    for index in range(200):
        stripes = (np.arange(8)[:, None] + rng.integers(0, 2) + np.zeros((8, 8), int)) % 2
        label = index % 2
        image = stripes if label == 0 else stripes.T
        x.append(image[None] + rng.normal(0, 0.2, (1, 8, 8)))
        y.append(label)
    x, y = np.array(x, dtype=np.float32), np.array(y)
    spec = {
        "netspec": 1,
        "classes": ["horizontal", "vertical"],
        "input": {"image": {"width": 8, "height": 8, "color": "grayscale"}},
        "layers": [
            {"name": "conv", "type": "conv2d", "filters": 4, "kernel": [1, 2], "activation": "relu"},
            {"name": "norm", "type": "batchnorm"},
            {"name": "pool", "type": "avgpool2d", "size": 2},
            {"name": "gap", "type": "global_avgpool"},
            {"name": "drop", "type": "dropout", "rate": 0.2},
            {"name": "out", "type": "dense", "neurons": 2, "activation": "softmax"},
        ],
    }
    first = netspec.build(netspec.Spec.model_validate(spec))
    running_mean = first.layers[1].params["mean"].copy()
    first.fit(x, y, epochs=30, learning_rate=0.02)
    assert first.evaluate(x, y).accuracy >= 0.95
    assert not np.array_equal(first.layers[1].params["mean"], running_mean)  # statistics were gathered
    second = netspec.build(netspec.Spec.model_validate(spec))
    second.fit(x, y, epochs=30, learning_rate=0.02)
    for a, b in zip(first.layers, second.layers):  # dropout's masks come from the seed too
        for key in a.params:
            np.testing.assert_array_equal(a.params[key], b.params[key])


def test_running_after_training_uses_the_kept_arrays():
    net = network()
    x, y = np.repeat(XOR_X, 8, axis=0), np.repeat(XOR_Y, 8)
    net.forward(x)  # the running steps exist before training
    net.fit(x, y, epochs=5, val_split=0.25)
    by_hand = x
    for layer in net.layers:
        by_hand, _ = layer.forward(by_hand)
    # The running path may use other BLAS calls than the training path: equal to float32's precision.
    np.testing.assert_allclose(net.forward(x), by_hand, rtol=1e-5, atol=1e-7)
