"""Where netspec's time goes, for benchmarks.convnets --profile: by layer kind, convolutions next to their bare
matrix products, and cProfile's functions; forward passes and ResNet-20's training step."""

from __future__ import annotations

import cProfile
import pstats
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

import netspec
from benchmarks.convnet_models import netspec_step, training_setup


def layer_kind(spec, channels: int) -> str:
    """A layer's kind as the profiles group them: convolutions by kernel, depthwise and stride."""
    if spec.type != "conv2d":
        return spec.type
    kh, kw = spec.kernel
    depthwise = spec.groups > 1 and spec.groups == channels
    what = "depthwise" if depthwise else (f"{spec.groups} groups" if spec.groups > 1 else "")
    stride = " stride " + "×".join(map(str, spec.stride)) if tuple(spec.stride) != (1, 1) else ""
    return f"conv {kh}×{kw}{' ' + what if what else ''}{stride}"


def forward_profile(network: netspec.Network, x: np.ndarray, rounds: int = 5) -> None:
    """netspec's forward time on one thread by layer kind, then cProfile's costliest functions."""
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    kinds = [layer_kind(layer.spec, layer.input_shape[0]) for layer in network.layers]

    def timed(step, kind):
        def run(*inputs):
            start = time.perf_counter()
            y = step(*inputs)
            totals[kind][0] += time.perf_counter() - start
            return y

        return run

    saved = (network._steps, network._program)
    # A step stands for a layer; a convolution's step runs the batch norm folded into it (netspec.fusion).
    step_kinds = [kinds[index] for index in network._step_layers]
    network._steps = [timed(step, kind) for step, kind in zip(network._steps, step_kinds)]
    network._program = [(timed(step, kind), *rest) for (step, *rest), kind in zip(network._program, step_kinds)]
    try:
        network.forward(x, threads=1)
        totals.clear()
        start = time.perf_counter()
        for _ in range(rounds):
            network.forward(x, threads=1)
        whole = (time.perf_counter() - start) / rounds
    finally:
        network._steps, network._program = saved
    counts = defaultdict(int)
    for kind in step_kinds:
        counts[kind] += 1
    print(f"    profile of {network.spec.name} batch {len(x)}, 1 thread: {whole * 1000:.1f} ms a forward pass")
    for kind, (seconds, _) in sorted(totals.items(), key=lambda item: -item[1][0]):
        share = seconds / rounds
        print(f"      {kind:<28} {counts[kind]:>3} layers  {share * 1000:8.1f} ms  {share / whole:6.1%}")
    conv_floor(network, x)
    print("      cProfile, time in the function itself (a matrix product counts in the function that writes `@`):")
    cprofile(lambda: network.forward(x, threads=1), 3)


def conv_floor(network: netspec.Network, x: np.ndarray, rounds: int = 5) -> None:
    """Each convolution's layer time next to its bare matrix product (the unrolled windows made beforehand,
    contiguous): the product is the floor a convolution done as one product reaches; the rest is unrolling the
    windows (im2col, with the NCHW → NHWC change in it), padding, bias, activation and the layout views."""
    from netspec import threads as blas
    from netspec.layers.conv2d import _Depthwise, _products

    inputs: dict[int, np.ndarray] = {}

    def keep(step, index):
        def run(*values):
            inputs[index] = values[0]
            return step(*values)

        return run

    saved = (network._steps, network._program)
    network._steps = [keep(step, i) for i, step in enumerate(network._steps)]
    network._program = [(keep(step, i), *rest) for i, (step, *rest) in enumerate(network._program)]
    try:
        network.forward(x, threads=1)
    finally:
        network._steps, network._program = saved
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    with blas.limited(1):
        for at, index in enumerate(network._step_layers):
            layer = network.layers[index]
            if layer.type != "conv2d":
                continue
            value, step = inputs[at], network._steps[at]
            kind = layer_kind(layer.spec, layer.input_shape[0])
            totals[kind][0] += _best(lambda step=step, value=value: step(value), rounds)
            done = _products(layer.spec, layer.params, value)
            if isinstance(done, _Depthwise):
                continue
            columns = [np.ascontiguousarray(part) for part in done.columns]
            matrices = [np.ascontiguousarray(part.T) for part in done.matrix]
            totals[kind][1] += _best(lambda c=columns, m=matrices: [a @ b for a, b in zip(c, m)], rounds)
    print("      convolutions, 1 thread, best of 5 each: layer time / its bare matrix product (the floor)")
    for kind, (layer_seconds, product) in sorted(totals.items(), key=lambda item: -item[1][0]):
        floor = (
            f"{product * 1000:8.1f} ms product ({product / layer_seconds:4.0%})"
            if product
            else "no product (depthwise)"
        )
        print(f"        {kind:<28} {layer_seconds * 1000:8.1f} ms layer  {floor}")


def _best(work, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


class _Timed:
    """A layer kind whose forward and backprop add their time to `totals[kind] = [forward, backward]`."""

    def __init__(self, kind, totals):
        self._kind, self._totals = kind, totals

    def __getattr__(self, name):
        return getattr(self._kind, name)

    def forward(self, layer, params, inputs, train=False, rng=None):
        label = layer_kind(layer, inputs[0].shape[1] if inputs[0].ndim == 4 else 0)
        start = time.perf_counter()
        y, backprop = self._kind.forward(layer, params, inputs, train, rng)
        self._totals[label][0] += time.perf_counter() - start

        def timed(dy, preactivation=False, input_grad=True):
            start = time.perf_counter()
            done = backprop(dy, preactivation=preactivation, input_grad=input_grad)
            self._totals[label][1] += time.perf_counter() - start
            return done

        return y, timed


def cprofile(work, calls: int, top: int = 14) -> None:
    """cProfile's functions by time spent in themselves (a matrix product counts in the function that writes `@`)."""
    profiler = cProfile.Profile()
    work()
    profiler.enable()
    for _ in range(calls):
        work()
    profiler.disable()
    stats = pstats.Stats(profiler).stats
    rows = sorted(((own, key) for key, (_, _, own, _, _) in stats.items()), reverse=True)[:top]
    total = sum(own for _, _, own, _, _ in stats.values())
    for own, (filename, line, function) in rows:
        where = f"{Path(filename).parent.name}/{Path(filename).name}:{line} {function}" if line else function
        print(f"        {own / calls * 1000:8.1f} ms  {own / total:6.1%}  {where}")


def train_profile(folder: Path) -> None:
    network, model, x, y, rate = training_setup("train-resnet20", folder)
    step = netspec_step(network, x, y, rate, "1")
    start = time.perf_counter()
    step()
    print(
        f"    profile of resnet20's training step, batch {len(x)}, 1 thread ({(time.perf_counter() - start) * 1000:.0f} ms):"
    )
    from netspec.layers import KINDS

    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    saved = dict(KINDS)
    KINDS.update({name: _Timed(kind, totals) for name, kind in KINDS.items()})  # Node.kind looks them up here
    try:
        start = time.perf_counter()
        for _ in range(2):
            step()
        whole = (time.perf_counter() - start) / 2
    finally:
        KINDS.update(saved)
    print(f"      by layer kind, forward (training) / backward, of {whole * 1000:.0f} ms a step (the rest: loss, Adam)")
    for kind, (ahead, back) in sorted(totals.items(), key=lambda item: -sum(item[1])):
        print(
            f"        {kind:<28} {ahead / 2 * 1000:8.1f} ms / {back / 2 * 1000:8.1f} ms  {(ahead + back) / 2 / whole:6.1%}"
        )
    print("      cProfile, time in the function itself:")
    cprofile(step, 2, top=20)
