"""What the benchmark scripts share: timing a piece of work, and a dense network of given sizes."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import netspec


def median_seconds(work, repeats: int) -> float:
    """The median wall time of `repeats` calls of work(), after one call to warm up."""
    work()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def medians_taking_turns(work: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """The median wall time of each piece of work, the pieces run in turn `rounds` times.

    Taking turns spreads the machine's drifting load over all of them, so their ratios hold.
    """
    times: dict[str, list[float]] = {label: [] for label in work}
    for _ in range(rounds):
        for label, run in work.items():
            start = time.perf_counter()
            run()
            times[label].append(time.perf_counter() - start)
    return {label: statistics.median(found) for label, found in times.items()}


def dense_network(sizes: list[int], dtype: str = "float32", weights: str = "glorot_uniform") -> netspec.Network:
    """sizes[0] inputs, relu hidden layers of sizes[1:-1] neurons and a softmax output of sizes[-1]."""
    layers = [
        {"name": f"dense{i}", "type": "dense", "neurons": n, "activation": "relu", "weights": weights}
        for i, n in enumerate(sizes[1:-1])
    ]
    layers.append({"name": "output", "type": "dense", "neurons": sizes[-1], "activation": "softmax"})
    spec = {
        "netspec": 1,
        "classes": [str(i) for i in range(sizes[-1])],
        "input": {"features": sizes[0]},
        "dtype": dtype,
        "seed": 0,
        "layers": layers,
    }
    return netspec.build(netspec.Spec.model_validate(spec))
