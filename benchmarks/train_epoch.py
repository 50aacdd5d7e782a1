"""One training epoch: netspec next to the same step written directly in NumPy (and PyTorch CPU).

    python -m benchmarks.train_epoch [--repeats 3]

Cases: 784-256-128-10 on 60,000 random samples, and the digits spec (64-256-128-10) on 1,437
samples; batch 64, Adam, softmax cross-entropy, float32. Reports the median seconds of an epoch
and the ratio to plain NumPy; this machine is shared, so the ratios within one run are what count.
The plain NumPy step runs on the BLAS threads netspec chooses for the same batch (netspec.threads),
so that the ratio is netspec's own cost; what the choice gains is benchmarks/threads.py's to show.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np

from benchmarks.shared import dense_network
from netspec.spec import Training
from netspec.threads import limited
from netspec.train import fit

BATCH = 64


def netspec_epoch(sizes, x, y) -> float:
    network = dense_network(sizes, weights="he_uniform")
    options = Training(epochs=1, batch_size=BATCH, val_split=0, learning_rate=0.001, seed=0)
    start = time.perf_counter()
    fit(network, x, y, options)
    return time.perf_counter() - start


def numpy_epoch(sizes, x, y) -> float:
    """The same epoch as straight-line NumPy: forward, softmax cross-entropy, backward, Adam (in place)."""
    network = dense_network(sizes, weights="he_uniform")
    ws = [layer.params["weights"] for layer in network.layers]
    bs = [layer.params["bias"] for layer in network.layers]
    params = ws + bs
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    scratch = [np.empty_like(p) for p in params]
    rng = np.random.default_rng(0)
    with limited(network.threads_for(BATCH)):
        return _numpy_epoch(x, y, ws, bs, params, m, v, scratch, rng)


def _numpy_epoch(x, y, ws, bs, params, m, v, scratch, rng) -> float:
    step = 0
    start = time.perf_counter()
    order = rng.permutation(len(x))
    for s in range(0, len(x), BATCH):
        idx = order[s : s + BATCH]
        acts = [x[idx]]
        for w, b in zip(ws[:-1], bs[:-1]):
            acts.append(np.maximum(acts[-1] @ w.T + b, 0))
        z = acts[-1] @ ws[-1].T + bs[-1]
        e = np.exp(z - z.max(axis=1, keepdims=True))
        p = e / e.sum(axis=1, keepdims=True)
        p[np.arange(len(idx)), y[idx]] -= 1
        dz = p / len(idx)
        grads_w, grads_b = [None] * len(ws), [None] * len(ws)
        for i in range(len(ws) - 1, -1, -1):
            grads_w[i] = dz.T @ acts[i]
            grads_b[i] = dz.sum(axis=0)
            if i:
                dz = (dz @ ws[i]) * (acts[i] > 0)
        step += 1
        c1, c2 = 1 - 0.9**step, 1 - 0.999**step
        size, eps = float(0.001 * np.sqrt(c2) / c1), float(1e-8 * np.sqrt(c2))
        for p_, g, m_, v_, b_ in zip(params, grads_w + grads_b, m, v, scratch):
            m_ *= 0.9
            np.multiply(g, 0.1, out=b_)
            m_ += b_
            v_ *= 0.999
            np.multiply(g, g, out=b_)
            b_ *= 0.001
            v_ += b_
            np.sqrt(v_, out=b_)
            b_ += eps
            np.divide(m_, b_, out=b_)
            b_ *= size
            p_ -= b_
    return time.perf_counter() - start


def torch_epoch(sizes, x, y) -> float | None:
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(0)
    modules = []
    for a, b in zip(sizes[:-2], sizes[1:-1]):
        modules += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    model = torch.nn.Sequential(*modules, torch.nn.Linear(sizes[-2], sizes[-1]))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    loss_fn = torch.nn.CrossEntropyLoss()
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    order = torch.randperm(len(x))
    start = time.perf_counter()
    for s in range(0, len(x), BATCH):
        idx = order[s : s + BATCH]
        optimizer.zero_grad()
        loss_fn(model(tx[idx]), ty[idx]).backward()
        optimizer.step()
    return time.perf_counter() - start


def cases():
    rng = np.random.default_rng(0)
    yield (
        "784-256-128-10, 60,000 random samples",
        [784, 256, 128, 10],
        rng.random((60_000, 784), dtype=np.float32),
        rng.integers(0, 10, 60_000),
    )
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        return
    digits = load_digits()
    x = (digits.data[:1437] / 16).astype(np.float32)
    yield "digits 64-256-128-10, 1,437 samples", [64, 256, 128, 10], x, digits.target[:1437]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    repeats = parser.parse_args().repeats
    python = f"{platform.python_implementation()} {platform.python_version()}"
    print(f"machine: {platform.machine()}, {python}, numpy {np.__version__}")
    report(repeats)


def report(repeats: int) -> None:
    """One epoch of each case in plain NumPy, netspec and PyTorch: medians, and each as a multiple of NumPy's."""
    for name, sizes, x, y in cases():
        times = {}
        for label, run in (("plain NumPy", numpy_epoch), ("netspec", netspec_epoch), ("PyTorch CPU", torch_epoch)):
            runs = [run(sizes, x, y) for _ in range(repeats)]
            if runs[0] is not None:
                times[label] = statistics.median(runs)
        base = times["plain NumPy"]
        print(f"\n{name} (batch {BATCH}, median of {repeats})")
        for label, seconds in times.items():
            print(f"  {label:<12} {seconds * 1000:9.1f} ms   {seconds / base:5.2f}× plain NumPy")


if __name__ == "__main__":
    main()
