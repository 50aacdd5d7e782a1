"""How many BLAS threads netspec holds for its work: the policy, and the limit seen inside forward, fit and evaluate."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import threadpoolctl

import netspec
from netspec import threads as blas
from netspec.layers import dense


def blas_threads() -> set[int]:
    """The thread counts of the BLAS libraries loaded, as threadpoolctl reads them."""
    return {info["num_threads"] for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas"}


@pytest.fixture(autouse=True)
def two_threads(monkeypatch):
    """BLAS at 2 threads around each test (as on the 2-core machines), whatever this machine or CI set."""
    monkeypatch.delenv(blas.ENVVAR, raising=False)
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        assert blas_threads() == {2}
        yield
    assert blas._depth == 0  # no limit left held by a test


def network(inputs: int, neurons: int, dtype: str = "float32") -> netspec.Network:
    spec = {
        "netspec": 1,
        "classes": ["a", "b"],
        "input": {"features": inputs},
        "dtype": dtype,
        "layers": [
            {"name": "hidden", "type": "dense", "neurons": neurons, "activation": "relu"},
            {"name": "output", "type": "dense", "neurons": 2, "activation": "softmax"},
        ],
    }
    return netspec.build(netspec.Spec.model_validate(spec))


def spying_on_steps(net: netspec.Network, seen: list) -> None:
    """Record the BLAS threads when the network's first layer runs."""
    first = net._steps[0]

    def step(x):
        seen.append(blas_threads())
        return first(x)

    net._steps[0] = step


@pytest.mark.parametrize(
    ("multiply_adds", "itemsize", "expected"),
    [
        (blas.NOT_WORTH_A_LIMIT - 1, 4, None),  # OpenBLAS runs it on one thread anyway
        (blas.NOT_WORTH_A_LIMIT, 4, 1),
        (64 * 784 * 256, 4, 1),  # the product of the issue: 0.5 ms on one thread, 24 ms on two
        (blas.ONE_THREAD_BELOW - 1, 4, 1),
        (blas.ONE_THREAD_BELOW, 4, None),  # large enough for BLAS's own setting
        (4096 * 784 * 256, 4, None),
        (blas.ONE_THREAD_BELOW // 2, 8, None),  # float64: twice the work per multiply-add
        (blas.ONE_THREAD_BELOW // 2 - 1, 8, 1),
    ],
)
def test_small_work_runs_on_one_thread_large_work_as_blas_is_set(multiply_adds, itemsize, expected):
    assert blas.for_work(multiply_adds, itemsize) == expected


def test_the_users_choice_wins_the_argument_over_the_variable(monkeypatch):
    assert blas.for_work(4096 * 784 * 256, threads=1) == 1
    assert blas.for_work(10, threads=3) == 3
    monkeypatch.setenv(blas.ENVVAR, "3")
    assert blas.for_work(64 * 784 * 256) == 3
    assert blas.for_work(4096 * 784 * 256) == 3
    assert blas.for_work(64 * 784 * 256, threads=1) == 1
    monkeypatch.setenv(blas.ENVVAR, "")  # set but empty: as if unset
    assert blas.for_work(64 * 784 * 256) == 1


@pytest.mark.parametrize("value", ["0", "two", "-1", "1.5"])
def test_a_bad_variable_is_refused_with_its_value(monkeypatch, value):
    monkeypatch.setenv(blas.ENVVAR, value)
    with pytest.raises(ValueError) as raised:
        network(64, 256).forward(np.zeros((64, 64), np.float32))
    assert str(raised.value) == (
        f"NETSPEC_NUM_THREADS={value!r}: expected a whole number of threads, at least 1; unset it or fix it"
    )
    assert blas_threads() == {2}


@pytest.mark.parametrize("value", [0, -2, 1.5, "2", True])
def test_a_bad_argument_is_refused_with_its_value(value):
    with pytest.raises(ValueError) as raised:
        network(64, 256).forward(np.zeros((1, 64), np.float32), threads=value)
    assert str(raised.value) == (
        f"threads={value!r}: expected a whole number of threads, at least 1, or None (automatic)"
    )


@pytest.mark.parametrize(
    ("inputs", "neurons", "batch", "dtype", "inside"),
    [
        (64, 256, 64, "float32", {1}),  # 1M multiply-adds
        (784, 256, 64, "float32", {1}),  # the 64×784 @ 784×256
        (784, 256, 2048, "float32", {2}),  # 411M: BLAS's own setting
        (784, 256, 1024, "float64", {2}),  # 205M float64 numbers: as much work as 411M float32 ones
        (784, 4, 1, "float32", {2}),  # too small for a limit to matter: none is set
    ],
)
def test_forward_holds_the_policys_limit_and_restores_it(inputs, neurons, batch, dtype, inside):
    net, seen = network(inputs, neurons, dtype), []
    spying_on_steps(net, seen)
    net.forward(np.zeros((batch, inputs), dtype))
    assert seen == [inside]
    assert blas_threads() == {2}


def test_forward_predict_and_scores_take_the_users_threads(monkeypatch):
    net, seen = network(784, 256), []
    spying_on_steps(net, seen)
    x = np.zeros((2048, 784), np.float32)
    net.forward(x, threads=1)
    net.scores(x[:64], threads=3)
    net.predict(x[:1], threads=1)
    monkeypatch.setenv(blas.ENVVAR, "1")
    net.predict(x)
    assert seen == [{1}, {3}, {1}, {1}]
    assert blas_threads() == {2}


def test_the_limit_is_restored_after_an_error():
    net = network(784, 256)

    def failing(x):
        assert blas_threads() == {1}
        raise RuntimeError("a layer failed")

    net._steps[0] = failing
    with pytest.raises(RuntimeError, match="a layer failed"):
        net.forward(np.zeros((64, 784), np.float32))
    assert blas_threads() == {2}
    assert blas._depth == 0


def test_a_limit_inside_another_keeps_the_outer_one_until_the_last_leaves():
    outer, inner = blas.limited(1), blas.limited(3)
    outer.__enter__()
    inner.__enter__()
    assert blas_threads() == {1}
    outer.__exit__(None, None, None)  # another thread's limit still held: not restored yet
    assert blas_threads() == {1}
    inner.__exit__(None, None, None)
    assert blas_threads() == {2}


def test_threads_limiting_at_once_leave_blas_as_it_was():
    net = network(784, 256)
    x = np.zeros((64, 784), np.float32)
    errors = []

    def work():
        try:
            for _ in range(30):
                net.forward(x)
                net.forward(x, threads=3)
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    workers = [threading.Thread(target=work) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    assert blas_threads() == {2}


def test_fit_holds_one_thread_for_small_batches_through_training_and_validation(monkeypatch):
    net = network(64, 256)
    seen = {"train": set(), "validate": set()}
    real_forward = dense.forward

    def forward(layer, params, x, train=False, rng=None):
        seen["train"] |= blas_threads()
        return real_forward(layer, params, x, train, rng)

    monkeypatch.setattr(dense, "forward", forward)
    real_runner, validated = dense.runner, []

    def runner(layer, params):  # validation runs the network (a copy giving logits), not its training forward
        run = real_runner(layer, params)

        def spied(x):
            validated.append(blas_threads())
            return run(x)

        return spied

    monkeypatch.setattr(dense, "runner", runner)
    rng = np.random.default_rng(0)
    x, y = rng.random((200, 64), dtype=np.float32), rng.integers(0, 2, 200)
    net.fit(x, y, epochs=1, batch_size=64, val_split=0.5)
    assert seen["train"] == {1}
    assert validated and all(found == {1} for found in validated)
    assert blas_threads() == {2}
    net.fit(x, y, epochs=1, batch_size=64, val_split=0, threads=3)
    assert seen["train"] == {1, 3}
    assert blas_threads() == {2}


def test_fit_restores_the_limit_after_an_error(monkeypatch):
    net = network(64, 256)

    def failing(*args, **kwargs):
        assert blas_threads() == {1}
        raise RuntimeError("a layer failed")

    monkeypatch.setattr(dense, "forward", failing)
    with pytest.raises(RuntimeError, match="a layer failed"):
        net.fit(np.zeros((100, 64), np.float32), np.zeros(100, int), epochs=1, batch_size=64, val_split=0)
    assert blas_threads() == {2}


def test_evaluate_holds_the_limit_for_its_chunks():
    net, seen = network(784, 256), []
    spying_on_steps(net, seen)
    x, y = np.zeros((300, 784), np.float32), np.zeros(300, int)
    net.evaluate(x, y)
    net.evaluate(x, y, threads=3)
    assert seen == [{1}, {3}]
    assert blas_threads() == {2}


def test_a_blas_library_loaded_after_the_first_limit_is_limited_too():
    """SciPy brings an OpenBLAS of its own; loaded after netspec first limited BLAS, it is limited as well."""
    import subprocess
    import sys

    pytest.importorskip("scipy")
    script = """
import json
import numpy as np, threadpoolctl
from threadpoolctl import threadpool_limits
import netspec
spec = {"netspec": 1, "classes": ["a", "b"], "input": {"features": 784},
        "layers": [{"type": "dense", "neurons": 256}, {"type": "dense", "neurons": 2}]}
net = netspec.build(netspec.Spec.model_validate(spec))
x = np.zeros((64, 784), np.float32)
def seen():
    return sorted(i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas")
first = net._steps[0]
inside = []
net._steps[0] = lambda x: inside.append(seen()) or first(x)
with threadpool_limits(limits=2, user_api="blas"):
    net.forward(x)
    import scipy.linalg  # noqa: F401 - loads SciPy's own OpenBLAS
with threadpool_limits(limits=2, user_api="blas"):
    net.forward(x)
    after = seen()
print(json.dumps({"inside": inside, "after": after}))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    found = json.loads(done.stdout)
    assert len(found["after"]) >= 2  # SciPy's BLAS is loaded beside NumPy's
    assert found["inside"] == [[1], [1] * len(found["after"])]  # before SciPy came, then with it
    assert found["after"] == [2] * len(found["after"])
