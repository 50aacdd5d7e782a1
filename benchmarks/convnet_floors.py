"""The floors under issue 15's unmet forward targets, for `python -m benchmarks.convnets floors`: what NumPy on
this machine's BLAS cannot go below, next to netspec and onnxruntime, all on one thread, medians taking turns.

- resnet18, squeezenet1_1 (batch 1 and 8) and resnet20 (batch 1 and 64): the sum over the convolutions of
  the bare `np.matmul` of each one's unrolled product, (batch · out_h · out_w) × (kh · kw · channels) @
  (kh · kw · channels) × filters in float32, in the row blocks netspec cuts it into, the operands made
  beforehand (no unrolling, padding, bias or activation), against netspec's convolutions (each step
  timed; a batch norm folded into its convolution counts in it) and onnxruntime's Conv nodes (its
  profiler; it folds the batch norms too), and both engines' whole forward pass.
- mobilenet_v2 (batch 1 and 8): also its depthwise convolutions' floor as netspec computes them, one
  multiply and one add a kernel tap over the output (`np.multiply(out=)`, `np.add(out=)`) on contiguous
  operands in blocks that stay in cache; and as the bytes they must move (input read once, output
  written once) ÷ the memory bandwidth of a 64 MB copy.
- resnet20 at batch 1: also the per-layer fixed costs, the operations netspec's own code executes in a
  forward pass (calls, subscripts, operators: a bytecode trace) × the measured cost of the smallest NumPy
  call of each kind on 1-element arrays.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

import netspec
from benchmarks.convnet_models import export, images, session, side, torch_model
from benchmarks.convnet_steps import ProfiledSession, StepTimes, conv_kind, netspec_kinds
from benchmarks.shared import medians_taking_turns
from netspec import threads as blas
from netspec.layers.conv_forward import BLOCK_BYTES, BLOCK_PER_WEIGHT
from netspec.layers.depthwise import DEPTHWISE_BLOCK_BYTES

FLOORS = {"resnet18": (1, 8), "mobilenet_v2": (1, 8), "squeezenet1_1": (1, 8), "resnet20": (1, 64)}
"""The forward cases whose target was not met in the last full run (docs/performance.md)."""


# --- NumPy's floors ----------------------------------------------------------------------------------------


def product_shapes(network: netspec.Network, batch: int) -> list[tuple[str, int, int, int, int]]:
    """(kind, groups, M, K, N) of each ordinary (not depthwise) convolution's unrolled product at `batch`."""
    shapes = []
    for layer in network.layers:
        spec = layer.spec
        if spec.type != "conv2d":
            continue
        channels, groups = layer.input_shape[0], spec.groups
        if groups > 1 and groups == channels:
            continue
        filters, out_h, out_w = layer.output_shape
        kh, kw = spec.kernel
        kind = conv_kind(spec.kernel, channels, groups)
        shapes.append((kind, groups, batch * out_h * out_w, kh * kw * channels // groups, filters // groups))
    return shapes


def products_floor(shapes, rng) -> dict[str, object]:
    """A function per kind running every product of that kind as netspec cuts it at inference: rows of the
    unrolled windows in blocks of at most max(BLOCK_BYTES, BLOCK_PER_WEIGHT × the weights' bytes), each
    block np.matmul(a, w.T, out=rows of c) as netspec calls it, the block's operand made beforehand (one
    buffer a layer, as netspec reuses one): the products alone, no unrolling, padding, bias or
    activation. Blocks are faster than one whole product at batch 8 (they stay in cache)."""
    by_kind: dict[str, list] = defaultdict(list)
    for kind, groups, m, k, n in shapes:
        step = max(1, min(m, max(BLOCK_BYTES, int(BLOCK_PER_WEIGHT * k * n * 4)) // (k * 4)))
        a = rng.standard_normal((step, k), dtype=np.float32)
        b = rng.standard_normal(
            (n, k), dtype=np.float32
        ).T  # the weights as netspec holds them: (filters, k), read transposed
        c = np.empty((m, n), np.float32)
        blocks = [(a[: min(step, m - top)], c[top : top + step]) for top in range(0, m, step)]
        by_kind[kind] += [(b, blocks)] * groups

    def run(operands):
        for b, blocks in operands:
            for a, c in blocks:
                np.matmul(a, b, out=c)

    return {kind: (lambda operands=operands: run(operands)) for kind, operands in by_kind.items()}


def winograd_layers(network: netspec.Network, batch: int) -> int:
    """How many of the network's convolutions netspec's runner takes through Winograd at `batch`."""
    from netspec.layers import conv_forward, winograd

    count = 0
    for layer in network.layers:
        spec = layer.spec
        if spec.type == "conv2d":
            shape = (batch, *layer.input_shape)
            p = conv_forward.plan(
                shape, spec.kernel, spec.stride, spec.dilation, spec.padding, spec.groups, 4, spec.filters
            )
            count += winograd.eligible(p, spec.filters)
    return count


def depthwise_shapes(network: netspec.Network, batch: int) -> list[tuple[int, int, int, int]]:
    """(rows = batch · out_h, row = out_w · channels, kernel taps, input numbers) of each depthwise layer."""
    found = []
    for layer in network.layers:
        spec = layer.spec
        channels = layer.input_shape[0]
        if spec.type == "conv2d" and spec.groups > 1 and spec.groups == channels and spec.filters == channels:
            _, out_h, out_w = layer.output_shape
            taps = spec.kernel[0] * spec.kernel[1]
            found.append((batch * out_h, out_w * channels, taps, batch * int(np.prod(layer.input_shape))))
    return found


def depthwise_floor(shapes, rng):
    """Two passes a kernel tap over each depthwise layer's output, as netspec makes them, but on contiguous
    operands: np.multiply into the output (first tap), then np.multiply into a spare and np.add into the
    output, in blocks of DEPTHWISE_BLOCK_BYTES so that they stay in cache."""
    layers = []
    for rows, row, taps, _ in shapes:
        step = max(1, DEPTHWISE_BLOCK_BYTES // (row * 4))
        pixels = rng.standard_normal((rows, row), dtype=np.float32)
        layers.append(
            (
                pixels,
                np.empty_like(pixels),
                np.empty((step, row), np.float32),
                rng.random((taps, row), np.float32),
                step,
            )
        )

    def run():
        for pixels, out, spare, tap, step in layers:
            for top in range(0, len(pixels), step):
                o, p = out[top : top + step], pixels[top : top + step]
                t = spare[: len(o)]
                np.multiply(p, tap[0], out=o)
                for k in range(1, len(tap)):
                    np.multiply(p, tap[k], out=t)
                    np.add(o, t, out=o)

    return run


def bandwidth(megabytes: int = 64, rounds: int = 7) -> float:
    """Bytes a second that a copy of `megabytes` moves (read and written counted)."""
    src = np.ones(megabytes << 18, np.float32)
    dst = np.empty_like(src)
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        np.copyto(dst, src)
        times.append(time.perf_counter() - start)
    return 2 * src.nbytes / statistics.median(times)


# --- fixed costs -------------------------------------------------------------------------------------------


def operations(network: netspec.Network, x: np.ndarray) -> dict[str, int]:
    """What netspec's own code executes in one forward pass, counted from a bytecode trace of its frames:
    calls (of Python functions, NumPy functions, ufuncs and methods), subscripts (views and slice
    writes) and operators (+=, * … on arrays and on numbers)."""
    folder = os.path.dirname(netspec.__file__)
    counts = {"calls": 0, "subscripts": 0, "operators": 0}
    names = {"CALL": "calls", "BINARY_SUBSCR": "subscripts", "STORE_SUBSCR": "subscripts", "BINARY_OP": "operators"}
    import dis

    def tracer(frame, event, arg):
        if not frame.f_code.co_filename.startswith(folder):
            return None
        frame.f_trace_opcodes = True
        if event == "opcode":
            name = names.get(dis.opname[frame.f_code.co_code[frame.f_lasti]])
            if name:
                counts[name] += 1
        return tracer

    network.forward(x, threads=1)
    sys.settrace(tracer)
    try:
        network.forward(x, threads=1)
    finally:
        sys.settrace(None)
    return counts


def smallest_calls(rounds: int = 20000) -> dict[str, float]:
    """µs of the smallest NumPy work of each kind, on 1-element arrays (best of 5 medians)."""
    a, b, out = np.ones((1, 1), np.float32), np.ones((1, 1), np.float32), np.empty((1, 1), np.float32)
    work = {
        "calls": lambda: np.multiply(a, b, out=out),
        "subscripts": lambda: a[0:1, 0:1],
        "operators": lambda: out.__iadd__(a),
        "matmul": lambda: np.matmul(a, b, out=out),
        "python call": lambda: None,
    }
    found = {}
    for label, run in work.items():
        best = []
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(rounds):
                run()
            best.append((time.perf_counter() - start) / rounds)
        found[label] = min(best) * 1e6
    # A call timed through a lambda pays one Python call as well: take it out of the others.
    empty = found.pop("python call")
    return {label: max(us - empty, 0.0) for label, us in found.items()} | {"python call": empty}


# --- the case ----------------------------------------------------------------------------------------------


def load_line() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} (uptime)"


def floors_case(folder: Path, rounds: int) -> list[str]:
    """The floors of each model and batch of FLOORS: printed, and returned as markdown tables."""
    tables = []
    rng = np.random.default_rng(0)
    speed = bandwidth()
    print(f"  memory bandwidth (a 64 MB copy, read + written): {speed / 1e9:.1f} GB/s; {load_line()}", flush=True)
    with blas.limited(1):
        for name, batches in FLOORS.items():
            model = torch_model(name)
            onnx_path, spec = export(model, name, folder)
            network = netspec.load(spec, max_params=200_000_000)
            runtime = session(onnx_path, "1")
            for batch in batches:
                x = images(batch, side(name))
                table = floors_of(name, network, runtime, onnx_path, x, rounds, rng, speed, folder)
                print(f"\n{table}\n", flush=True)
                tables.append(table)
    return tables


def floors_of(name, network, runtime, onnx_path, x, rounds, rng, speed, folder) -> str:
    batch = len(x)
    shapes = product_shapes(network, batch)
    floors = products_floor(shapes, rng)
    timed, profiled = StepTimes(network, x), ProfiledSession(onnx_path, x, folder)
    # Every measure taken in the same rounds, in turn, so that the machine's drifting load falls on all.
    work = {
        "netspec": lambda: network.forward(x, threads=1),
        "onnxruntime": lambda: runtime.run(None, {"input": x}),
        "netspec's steps": timed.run,
        "onnxruntime profiled": profiled.run,
        **{f"NumPy {kind}": run for kind, run in floors.items()},
    }
    dw = depthwise_shapes(network, batch)
    if dw:
        work["NumPy depthwise"] = depthwise_floor(dw, rng)
    for run in work.values():
        run()
    timed.clear()
    ms = {label: t * 1000 for label, t in medians_taking_turns(work, rounds).items()}
    steps = timed.medians()
    ours: dict[str, float] = defaultdict(float)
    for kind, t in zip(netspec_kinds(network), steps):
        ours[kind] += t
    theirs = profiled.kinds()
    title = f"{name} batch {batch}, float32, 1 thread"
    lines = [
        f"| {title} | NumPy floor ms | netspec ms | onnxruntime ms | netspec ÷ floor | onnxruntime ÷ floor |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]

    def row(label: str, floor: float | None, mine: float, other: float) -> None:
        cells = (f"{floor:,.2f}", f"{mine / floor:.2f}×", f"{other / floor:.2f}×") if floor else ("—", "—", "—")
        lines.append(f"| {label} | {cells[0]} | {mine:,.2f} | {other:,.2f} | {cells[1]} | {cells[2]} |")

    counts = {kind: sum(g for k, g, *_ in shapes if k == kind) for kind in floors}
    for kind in sorted(floors):
        row(
            f"{kind} ({counts[kind]}): bare matmuls of the unrolled products, in netspec's blocks",
            ms[f"NumPy {kind}"],
            ours[kind],
            theirs.get(kind, 0.0),
        )
    if dw:
        depth_kind = conv_kind((3, 3), 2, 2)
        moved = sum((rows * row_ + inputs) * 4 for rows, row_, _, inputs in dw)
        row(
            f"conv 3×3 depthwise ({len(dw)}): a multiply and an add a tap, in cache",
            ms["NumPy depthwise"],
            ours[depth_kind],
            theirs.get(depth_kind, 0.0),
        )
        row(
            f"conv 3×3 depthwise: {moved / 1e6:.1f} MB moved ÷ {speed / 1e9:.1f} GB/s",
            moved / speed * 1000,
            ours[depth_kind],
            theirs.get(depth_kind, 0.0),
        )
    convs = set(floors) | ({conv_kind((3, 3), 2, 2)} if dw else set())
    row(
        "everything else (batch norms not folded, adds, pools, dense …)",
        None,
        sum(t for k, t in ours.items() if k not in convs),
        sum(t for k, t in theirs.items() if k not in convs),
    )
    floor = sum(ms[f"NumPy {kind}"] for kind in floors) + (ms["NumPy depthwise"] if dw else 0.0)
    row("whole forward pass (floor: the sum above)", floor, ms["netspec"], ms["onnxruntime"])
    lines.append(
        f"\nnetspec's steps timed one by one sum to {sum(steps):,.2f} ms, onnxruntime's nodes (profiler) to "
        f"{sum(theirs.values()):,.2f} ms; {load_line()}."
    )
    winograd = winograd_layers(network, batch)
    if winograd:
        lines.append(
            f"{winograd} of the 3×3 convolutions run in netspec as Winograd F(2×2, 3×3) (2.25× fewer multiplies "
            "than the direct product whose floor is above)."
        )
    if name == "resnet20" and batch == 1:
        lines.append(fixed_costs(network, x, steps, shapes))
    return "\n".join(lines)


def fixed_costs(network, x, steps, shapes) -> str:
    """netspec's operations per forward × the smallest call of each kind, against its time beyond the products."""
    count = operations(network, x)
    cost = smallest_calls()
    estimate = sum(count[kind] * cost[kind] for kind in count) / 1000
    parts = ", ".join(f"{count[kind]:,} {kind} × {cost[kind]:.2f} µs" for kind in count)
    return (
        f"\nPer forward pass netspec's own code executes {parts} (the smallest NumPy call of each kind, on "
        f"1-element arrays; a Python call costs {cost['python call']:.2f} µs, a 1×1 matmul {cost['matmul']:.2f} µs): "
        f"{estimate:,.2f} ms if every one were a NumPy call, for {len(steps)} steps "
        f"({sum(steps) / len(steps) * 1000:,.0f} µs a step on average)."
    )
