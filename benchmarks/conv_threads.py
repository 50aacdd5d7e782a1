"""Convolutions split between the cores at inference: netspec's default with the split, without it, and
one thread, taking turns in one process; then the same while another process keeps a core busy.

    python -m benchmarks.conv_threads [model ...]     (BATCHES=1,8 to choose the batches)

Medians of 5, float32 ms; the models are torchvision's, imported through ONNX (the bench extra).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import netspec
from benchmarks.convnet_models import export, images, side, torch_model
from benchmarks.threads import one_core_busy
from netspec.layers import conv_forward

CASES = [("resnet18", [8]), ("mobilenet_v2", [8]), ("squeezenet1_1", [8]), ("resnet20", [64])]
ROUNDS = 5
SPLIT_FROM = conv_forward.THREADS_FROM


def medians(network: netspec.Network, x) -> dict[str, float]:
    def split() -> None:
        conv_forward.THREADS_FROM = SPLIT_FROM
        network.forward(x)

    def before() -> None:
        conv_forward.THREADS_FROM = 1 << 62  # never split: the default as it was
        network.forward(x)

    def one() -> None:
        conv_forward.THREADS_FROM = SPLIT_FROM
        network.forward(x, threads=1)

    work = {"default, split": split, "default, before": before, "threads=1": one}
    times: dict[str, list[float]] = {label: [] for label in work}
    for run in work.values():
        run()
    for _ in range(ROUNDS):
        for label, run in work.items():
            start = time.perf_counter()
            run()
            times[label].append(time.perf_counter() - start)
    conv_forward.THREADS_FROM = SPLIT_FROM
    return {label: statistics.median(values) * 1000 for label, values in times.items()}


def main(only: list[str]) -> None:
    folder = Path(tempfile.mkdtemp())
    print(f"load average {os.getloadavg()[0]:.2f}", flush=True)
    for name, batches in CASES:
        if only and name not in only:
            continue
        if os.environ.get("BATCHES"):
            batches = [int(batch) for batch in os.environ["BATCHES"].split(",")]
        _, spec = export(torch_model(name), name, folder)
        network = netspec.load(spec, max_params=200_000_000)
        for batch in batches:
            x = images(batch, side(name))
            idle = medians(network, x)
            with one_core_busy():
                busy = medians(network, x)
            shown = "  ".join(f"{label} {ms:.1f}" for label, ms in idle.items())
            shown_busy = "  ".join(f"{label} {ms:.1f}" for label, ms in busy.items())
            print(f"{name} batch {batch}: {shown} | a core busy: {shown_busy}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
