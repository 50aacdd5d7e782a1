"""A convolution's training step split between threads (the forward's output rows, the backward's images)
gives the gradients one thread gives and PyTorch's, on odd shapes; BLAS's setting comes back after it."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from references import torch_conv2d
from threadpoolctl import threadpool_info

from netspec import busy
from netspec import threads as blas
from netspec.layers import conv2d, conv_backward, conv_forward
from netspec.layers.conv2d import Conv2D

CASES = [
    # layer, input shape (batch, channels, height, width)
    (Conv2D(filters=5, kernel=3, padding=1, activation="relu"), (7, 4, 9, 8)),  # stride 1: the padded grid
    (Conv2D(filters=6, kernel=3, stride=2, padding=[1, 2, 0, 1], groups=2), (3, 4, 11, 10)),
    (Conv2D(filters=4, kernel=[3, 2], stride=[2, 1], dilation=[1, 2], padding=[2, 0, 1, 1]), (7, 3, 10, 9)),
    (Conv2D(filters=8, kernel=1, stride=2, use_bias=False), (3, 6, 7, 7)),  # a shortcut's 1×1
    (Conv2D(filters=6, kernel=1, activation="tanh"), (7, 5, 5, 6)),  # 1×1 stride 1: the input as its columns
    (Conv2D(filters=6, kernel=3, padding=[0, 1, 2, 0], groups=3, activation="relu"), (3, 6, 6, 7)),
]
IDS = ["grid", "stride2-groups", "dilation", "1x1-stride2", "1x1", "groups3"]


@pytest.fixture
def split_always(monkeypatch):
    """Every convolution split between two threads, whatever its size and batch."""
    monkeypatch.setattr(conv_forward, "THREADS_FROM", 0)
    monkeypatch.setattr(conv_forward, "THREADS_FROM_BATCH", 1)
    monkeypatch.setattr(conv_forward, "ROWS_PER_FILTER", 0)
    monkeypatch.setattr(conv_backward, "THREADS_FROM", 0)
    monkeypatch.setattr(blas, "CORES", 2)
    monkeypatch.setattr(busy, "others", lambda: 0.0)  # whatever else runs on the machine meanwhile
    monkeypatch.delenv(blas.ENVVAR, raising=False)


def arrays(layer: Conv2D, shape, dtype):
    rng = np.random.default_rng(shape[0] * 100 + layer.filters)
    x = rng.standard_normal(shape).astype(dtype)
    params = {"weights": rng.standard_normal((layer.filters, shape[1] // layer.groups, *layer.kernel)).astype(dtype)}
    if layer.use_bias:
        params["bias"] = rng.standard_normal(layer.filters).astype(dtype)
    return x, params


def step(layer: Conv2D, x, params, threads, input_grad=True):
    """y, dx and the parameters' gradients of one training step under `threads` (None: automatic)."""
    with blas.limited(blas.for_work(1 << 30, threads=threads) if threads else blas.AUTOMATIC_ONE):
        y, backprop = conv2d.forward(layer, params, x, train=True)
        g = np.random.default_rng(3).standard_normal(y.shape).astype(x.dtype)
        dx, grads = backprop(g, input_grad=input_grad)
    return y, dx, grads, g


def counting_runs(monkeypatch) -> list:
    """The list of (first, last) image runs each backward was cut into."""
    seen = []
    runs = conv_backward.runs

    def counted(*args):
        seen.append(runs(*args))
        return seen[-1]

    monkeypatch.setattr(conv_backward, "runs", counted)
    return seen


def counting_threads(monkeypatch) -> list:
    """The list of threads that took runs of a backward (the main thread, and the pool's helpers)."""
    seen = []
    taking_turns = conv_backward._taking_turns

    def counted(*args):
        seen.append(threading.current_thread().name)
        return taking_turns(*args)

    monkeypatch.setattr(conv_backward, "_taking_turns", counted)
    return seen


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layer, shape", CASES, ids=IDS)
def test_split_gradients_are_one_threads(split_always, layer, shape, dtype, monkeypatch):
    """The same runs of images whatever the threads, added in the same order: the same numbers."""
    x, params = arrays(layer, shape, dtype)
    seen, threads_seen = counting_runs(monkeypatch), counting_threads(monkeypatch)
    alone = step(layer, x, params, 1)
    n = min(shape[0], conv_backward.RUNS)
    cut = [[(shape[0] * k // n, shape[0] * (k + 1) // n) for k in range(n)]]
    assert seen == cut and n > 1  # cut into runs of images ...
    assert threads_seen == [threading.current_thread().name]  # ... that the user's one thread does alone
    tight = {"rtol": 2e-5, "atol": 2e-5} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-12}
    for threads in (2, None):
        seen.clear()
        threads_seen.clear()
        y, dx, grads, _ = step(layer, x, params, threads)
        assert seen == cut
        assert len(threads_seen) == 2 and threads_seen[1] != threads_seen[0]  # a pool thread took runs too
        assert y.dtype == dx.dtype == grads["weights"].dtype == dtype
        np.testing.assert_allclose(y, alone[0], **tight)
        np.testing.assert_array_equal(dx, alone[1])
        assert grads.keys() == alone[2].keys()
        for key, value in grads.items():
            np.testing.assert_array_equal(value, alone[2][key])


@pytest.mark.parametrize("layer, shape", CASES, ids=IDS)
def test_split_gradients_are_pytorchs(split_always, layer, shape):
    x, params = arrays(layer, shape, np.float64)
    y, dx, grads, g = step(layer, x, params, None)
    leaves = {key: torch.tensor(a, requires_grad=True) for key, a in (("x", x), *params.items())}
    (top, bottom), (left, right) = conv_forward.plan(
        shape, layer.kernel, layer.stride, layer.dilation, layer.padding, layer.groups, 8
    ).padding
    theirs = torch_conv2d(layer, leaves, (top, bottom, left, right))
    (theirs * torch.from_numpy(g)).sum().backward()
    np.testing.assert_allclose(y, theirs.detach().numpy(), rtol=1e-12, atol=1e-12)
    for key, leaf in leaves.items():
        np.testing.assert_allclose(dx if key == "x" else grads[key], leaf.grad.numpy(), rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("layer, shape", CASES[:2], ids=IDS[:2])
def test_without_the_input_gradient_the_split_weights_gradient_is_the_same(split_always, layer, shape):
    """A first layer needs no input gradient: its weights' gradient comes from the input's windows."""
    x, params = arrays(layer, shape, np.float64)
    _, dx, grads, _ = step(layer, x, params, None, input_grad=False)
    _, _, alone, _ = step(layer, x, params, 1)
    assert dx is None
    np.testing.assert_array_equal(grads["weights"], alone["weights"])


def test_more_threads_than_runs_take_one_run_each(split_always, monkeypatch):
    monkeypatch.setattr(blas, "CORES", 4)
    layer, shape = CASES[3]
    x, params = arrays(layer, shape, np.float64)
    seen, threads_seen = counting_runs(monkeypatch), counting_threads(monkeypatch)
    _, dx, grads, _ = step(layer, x, params, None)
    assert seen == [[(0, 1), (1, 2), (2, 3)]] and len(threads_seen) == 3  # the main thread and 2 helpers
    _, dx_alone, alone, _ = step(layer, x, params, 1)
    np.testing.assert_array_equal(dx, dx_alone)
    np.testing.assert_array_equal(grads["weights"], alone["weights"])


def test_a_small_convolution_is_not_split():
    """Below conv_backward.THREADS_FROM the hand-offs would cost more than the work: one run. From it, the
    same runs on any number of threads."""
    assert conv_backward.runs(64, conv_backward.THREADS_FROM - 1) == [(0, 64)]
    for threads in (1, 2, None):
        with blas.limited(threads):
            assert conv_backward.runs(64, conv_backward.THREADS_FROM) == [(8 * k, 8 * k + 8) for k in range(8)]


def _blas_threads() -> list[int]:
    return [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]


def test_blas_threads_come_back_after_a_split_backward_even_after_an_error(split_always, monkeypatch):
    layer, shape = CASES[0]
    x, params = arrays(layer, shape, np.float32)
    before = _blas_threads()
    step(layer, x, params, None)
    assert _blas_threads() == before
    with blas.limited(blas.AUTOMATIC_ONE):
        y, backprop = conv2d.forward(layer, params, x, train=True)
    calls, gradients = [], conv2d._gradients

    def failing(*args):
        calls.append(args)
        if len(calls) == 2:  # the second run fails, in whichever thread takes it
            raise MemoryError("no room for this run")
        return gradients(*args)

    monkeypatch.setattr(conv2d, "_gradients", failing)
    with pytest.raises(MemoryError, match="no room for this run"):
        backprop(np.ones_like(y))
    assert 2 <= len(calls) <= shape[0]  # the other thread may go on with the runs left
    assert _blas_threads() == before


def test_a_core_kept_busy_by_other_processes_is_not_counted_on(split_always, monkeypatch):
    """On two cores with another job using most of one, netspec's automatic choice runs on one thread
    (a split would wait for the thread that gets a fraction of its core); the user's choice still splits."""
    layer, shape = CASES[0]
    x, params = arrays(layer, shape, np.float32)
    seen = counting_threads(monkeypatch)
    for load, expected in ((0.4, 2), (0.6, 1), (1.0, 1), (2.0, 1)):
        monkeypatch.setattr(busy, "others", lambda load=load: load)
        with blas.limited(blas.AUTOMATIC_ONE):
            assert blas.workers() == expected
        seen.clear()
        step(layer, x, params, None)
        assert len(seen) == expected
        seen.clear()
        step(layer, x, params, 2)
        assert len(seen) == 2


def test_other_processes_use_is_the_machines_busy_time_less_this_process(monkeypatch):
    """busy.others: over the interval between two reads, all cores' busy seconds less this process's CPU
    seconds, per second of wall clock; not read again within busy.SAMPLE seconds."""
    reads = iter([(100.0, 50.0, 3.0), (100.5, 50.9, 3.4), (101.5, 51.9, 4.4)])
    clock = iter([100.0, 100.5, 100.6, 101.5])
    monkeypatch.setattr(busy, "counters", lambda: next(reads))
    monkeypatch.setattr(busy.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(busy, "_last", None)
    monkeypatch.setattr(busy, "_others", 0.0)
    assert busy.others() == 0.0  # one read: nothing to compare yet
    assert busy.others() == pytest.approx((0.9 - 0.4) / 0.5)  # another job used one core
    assert busy.others() == pytest.approx(1.0)  # 0.1 s later: the same figure, no read
    assert busy.others() == pytest.approx(0.0)  # all the busy time was this process's


def test_busy_reads_this_machine():
    read = busy.counters()
    if read is None:
        pytest.skip("no /proc/stat here")
    wall, cores_busy, own = read
    assert cores_busy > 0 and own > 0


def test_training_on_two_threads_learns_what_one_thread_learns(split_always, tmp_path, monkeypatch):
    """`fit` over a few batches of 7 (every convolution split, forward and backward) ends with the arrays
    training on one thread gives, and on the automatic setting too: the same numbers."""
    import netspec
    from netspec.spec import Training
    from netspec.train.fit import fit

    spec = tmp_path / "small.yaml"
    spec.write_text(
        "netspec: 1\nname: small\nclasses: [a, b, c]\ninput: {image: {width: 8, height: 9, color: rgb}}\nseed: 4\ndtype: float64\nlayers:\n"
        "  - {type: conv2d, filters: 6, kernel: 3, padding: 1, activation: relu}\n"
        "  - {type: conv2d, filters: 8, kernel: 3, stride: 2, padding: [1, 0, 0, 1], groups: 2, use_bias: false}\n"
        "  - {type: batchnorm, activation: relu}\n"
        "  - {type: conv2d, filters: 4, kernel: 1}\n"
        "  - {type: flatten}\n"
        "  - {type: dense, neurons: 3, activation: softmax}\n"
    )
    rng = np.random.default_rng(2)
    x = rng.standard_normal((21, 3, 9, 8))
    y = rng.integers(0, 3, 21)
    options = Training(optimizer="sgd", batch_size=7, epochs=2, val_split=0, seed=0, learning_rate=0.05)
    learned, seen = {}, counting_threads(monkeypatch)
    for threads in (1, 2, None):
        network = netspec.load(spec)
        seen.clear()
        fit(network, x, y, options, threads=threads)
        learned[threads] = [dict(layer.params) for layer in network.layers]
        assert seen and (set(seen) == {threading.current_thread().name}) == (threads == 1)  # split unless one thread
    for threads in (2, None):
        for mine, alone in zip(learned[threads], learned[1]):
            for key in alone:
                np.testing.assert_allclose(mine[key], alone[key], rtol=1e-13, atol=1e-15)


def test_work_inside_a_part_of_split_work_does_not_split_again(split_always):
    """A part already on a pool thread that split again would wait for pool threads busy with the other
    parts: inside `one_part` netspec's choice is one thread, and outside it again what it was."""
    with blas.limited(blas.AUTOMATIC_ONE):
        assert blas.workers() == 2
        with blas.one_part():
            assert blas.workers() == 1
            with blas.one_part():
                assert blas.workers() == 1
            assert blas.workers() == 1
        assert blas.workers() == 2
    with blas.limited(2), blas.one_part():
        assert blas.workers() == 1  # the user's 2 threads are already both at work
