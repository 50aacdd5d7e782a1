"""What each engine spends by kind of layer, for benchmarks/convnet_floors.py: netspec's steps timed one by one
(`StepTimes`), onnxruntime's nodes from its profiler (`ProfiledSession`), both grouped by the same kinds."""

from __future__ import annotations

import json
import statistics
import time
from bisect import bisect_right
from collections import defaultdict
from pathlib import Path

import numpy as np

import netspec


def conv_kind(kernel, channels: int, groups: int) -> str:
    """Convolutions grouped as both engines can be: by kernel, depthwise or not."""
    depthwise = groups > 1 and groups == channels
    return f"conv {kernel[0]}×{kernel[1]}" + (" depthwise" if depthwise else "")


def netspec_kinds(network: netspec.Network) -> list[str]:
    """Each step's kind: a convolution's by conv_kind (with the batch norm folded into it), else the layer's type."""
    kinds = []
    for index in network._step_layers:
        layer = network.layers[index]
        spec = layer.spec
        kinds.append(conv_kind(spec.kernel, layer.input_shape[0], spec.groups) if spec.type == "conv2d" else spec.type)
    return kinds


class StepTimes:
    """netspec's forward on one thread with each step timed: `run()` is one pass, `medians()` each step's
    median ms over the passes since the last `clear()`."""

    def __init__(self, network: netspec.Network, x: np.ndarray):
        self.network, self.x = network, x
        self.times: list[list[float]] = [[] for _ in network._steps]
        self.steps = [self._timed(step, at) for at, step in enumerate(network._steps)]
        self.program = [(self._timed(step, at), *rest) for at, (step, *rest) in enumerate(network._program)]

    def _timed(self, step, at: int):
        times = self.times[at]

        def run(*inputs):
            start = time.perf_counter()
            y = step(*inputs)
            times.append(time.perf_counter() - start)
            return y

        return run

    def run(self) -> None:
        network = self.network
        saved = (network._steps, network._program)
        network._steps, network._program = self.steps, self.program
        try:
            network.forward(self.x, threads=1)
        finally:
            network._steps, network._program = saved

    def clear(self) -> None:
        for found in self.times:
            found.clear()

    def medians(self) -> list[float]:
        return [statistics.median(found) * 1000 for found in self.times]


class ProfiledSession:
    """An onnxruntime session on one thread, at its default graph optimisations, with its profiler on
    (SessionOptions.enable_profiling): `kinds()` is the median ms a run of each node kind (convolutions by
    conv_kind, from the weight's shape the profiler records), the first run left out."""

    def __init__(self, onnx_path: Path, x: np.ndarray, folder: Path):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        options.enable_profiling = True
        options.profile_file_prefix = str(folder / "ort-profile")
        self.session = onnxruntime.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        self.x = x

    def run(self) -> None:
        self.session.run(None, {"input": self.x})

    def kinds(self) -> dict[str, float]:
        events = json.loads(Path(self.session.end_profiling()).read_text())
        runs = sorted(e["ts"] for e in events if e.get("name") == "model_run")
        per_run: list[dict[str, float]] = [defaultdict(float) for _ in runs]
        for event in events:
            if event.get("cat") != "Node" or not event.get("name", "").endswith("_kernel_time"):
                continue
            at = bisect_right(runs, event["ts"]) - 1
            if at < 1:  # the first run warms up
                continue
            args = event.get("args", {})
            kind = args.get("op_name", "?")
            if kind in ("Conv", "FusedConv"):
                shapes = [next(iter(shape.values())) for shape in args.get("input_type_shape", [])]
                (_, channels, *_), (_, per_group, kh, kw) = shapes[0], shapes[1]
                kind = conv_kind((kh, kw), channels, channels // per_group)
            per_run[at][kind] += event["dur"] / 1000
        kept = per_run[1:]
        return {kind: statistics.median(run.get(kind, 0.0) for run in kept) for kind in {k for r in kept for k in r}}
