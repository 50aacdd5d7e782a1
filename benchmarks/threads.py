"""BLAS threads: `netspec train` with netspec's choice next to one thread, idle and with a core kept busy.

    python -m benchmarks.threads [--rounds 3] [--products]

Trains specs/digits.yaml and specs/digits-cnn.yaml on the bundled digits (scikit-learn's, written
as images) with each spec's own settings, as a whole process: with default settings (netspec
chooses the BLAS threads) and with OPENBLAS_NUM_THREADS=1, taking turns; first on a machine left
alone, then while another process keeps one core busy (`while True: pass`). The figure that counts
is the ratio default / one thread within one run (the target: at most 1.1×). The digits MLP trains
in about a second, so it runs at least 7 rounds, the CNN `--rounds`.

With --products, also the evidence for netspec.threads' rule: float32 products at the sizes
netspec makes (dense layers, convolutions unrolled), a run of each on 1 and on 2 threads, idle
and with a core busy.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SPECS = {"digits.yaml": 7, "digits-cnn.yaml": 0}
"""The specs trained, and the fewest rounds of each (a short run needs more to give a steady median)."""


@contextmanager
def one_core_busy():
    """Another process spinning on one core for as long as the block runs."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)  # under way before anything is timed
        yield
    finally:
        spinner.kill()
        spinner.wait()


def digits_folder(folder: Path) -> Path:
    """The digits' training images, written by examples/digits/make_digits.py."""
    subprocess.run(
        [sys.executable, str(ROOT / "examples" / "digits" / "make_digits.py"), str(folder)],
        check=True,
        capture_output=True,
    )
    return folder / "train"


def train_seconds(spec: str, data: Path, out: Path, one_thread: bool) -> float:
    env = {
        key: value for key, value in os.environ.items() if key not in ("OPENBLAS_NUM_THREADS", "NETSPEC_NUM_THREADS")
    }
    if one_thread:
        env["OPENBLAS_NUM_THREADS"] = "1"
    command = [sys.executable, "-m", "netspec", "train", str(ROOT / "specs" / spec), str(data), "-o", str(out)]
    start = time.perf_counter()
    subprocess.run([*command, "--quiet"], check=True, capture_output=True, env=env)
    return time.perf_counter() - start


def train_cases(rounds: int) -> None:
    """`netspec train` of each digits spec, default settings next to OPENBLAS_NUM_THREADS=1, idle and one core busy."""
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        data = digits_folder(folder / "digits")
        for condition in ("idle", "one core busy"):
            with one_core_busy() if condition == "one core busy" else _nothing():
                for spec, fewest in SPECS.items():
                    times: dict[str, list[float]] = {"default": [], "one thread": []}
                    for round_ in range(max(rounds, fewest)):
                        for label in sorted(times, reverse=round_ % 2 == 1):  # in turn first: no order favoured
                            out = folder / f"{spec}-{label.replace(' ', '-')}.yaml"
                            times[label].append(train_seconds(spec, data, out, label == "one thread"))
                    default, one = (statistics.median(times[label]) for label in times)
                    arrays = [np.load(folder / f"{spec}-{label.replace(' ', '-')}.npz") for label in times]
                    same = all(np.array_equal(arrays[0][key], arrays[1][key]) for key in arrays[0].files)
                    print(
                        f"   {condition:<13} netspec train {spec:<15} default {default:6.2f} s   "
                        f"OPENBLAS_NUM_THREADS=1 {one:6.2f} s   ratio {default / one:4.2f}×   "
                        f"(weights {'identical' if same else 'DIFFERENT'}; all runs: "
                        f"{', '.join(f'{t:.2f}' for t in times['default'])} / {', '.join(f'{t:.2f}' for t in times['one thread'])})",
                        flush=True,
                    )


@contextmanager
def _nothing():
    yield


PRODUCTS = [
    (32, 64, 256),  # digits: a training step's first layer
    (512, 288, 64),  # digits-cnn: the second convolution of a step
    (64, 784, 256),  # the product
    (256, 784, 256),
    (1024, 784, 256),  # an evaluation chunk of a 784-256 layer
    (4096, 256, 128),
    (2048, 784, 256),
    (16384, 256, 128),
    (4096, 784, 256),  # the forward pass at batch 4096
]
"""(m, k, n): an m×k by k×n product, from 2^19 to 2^30 multiply-adds."""


def product_cases(rounds: int) -> None:
    """Runs of each product (with the ReLU a layer applies between) on 1 and on 2 threads, taking turns."""
    from threadpoolctl import ThreadpoolController

    controller = ThreadpoolController()
    rng = np.random.default_rng(0)
    for condition in ("idle", "one core busy"):
        with one_core_busy() if condition == "one core busy" else _nothing():
            print(f"   {condition}: ms per product, median of {rounds} runs of each; 2 threads / 1 (median, worst)")
            for m, k, n in PRODUCTS:
                a, b = rng.random((m, k), dtype=np.float32), rng.random((k, n), dtype=np.float32)
                calls = max(4, min(400, int(2e9 / (m * k * n))))
                times: dict[int, list[float]] = {1: [], 2: []}
                for _ in range(rounds):
                    for threads in times:
                        with controller.limit(limits=threads, user_api="blas"):
                            start = time.perf_counter()
                            for _ in range(calls):
                                np.maximum(a @ b, 0)
                            times[threads].append((time.perf_counter() - start) / calls)
                one, two = statistics.median(times[1]), statistics.median(times[2])
                worst = max(t2 / t1 for t1, t2 in zip(times[1], times[2]))
                print(
                    f"   {f'{m}×{k} @ {k}×{n}':<20} {m * k * n:>13,} multiply-adds   1 thread {one * 1e3:8.3f}   "
                    f"2 threads {two * 1e3:8.3f}   {two / one:5.2f}×  worst {worst:5.2f}×",
                    flush=True,
                )


def report(rounds: int, products: bool = False) -> None:
    from threadpoolctl import threadpool_info

    blas = [info for info in threadpool_info() if info["user_api"] == "blas"]
    described = ", ".join(
        f"{info['internal_api']} {info.get('version')} ({info.get('architecture')} kernel, {info['num_threads']} threads)"
        for info in blas
    )
    print(f"   {os.cpu_count()} cores; BLAS: {described}; medians of runs taking turns")
    train_cases(rounds)
    if products:
        product_cases(max(rounds, 5))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--products", action="store_true", help="also time products at netspec's sizes")
    arguments = parser.parse_args()
    print(f"numpy {np.__version__}, python {sys.version.split()[0]}")
    report(arguments.rounds, arguments.products)


if __name__ == "__main__":
    main()
