"""A small CNN, forward and one training step: netspec next to PyTorch CPU.

    python -m benchmarks.cnn [--repeats 10]

A batch of 256 RGB 32×32 images through conv(16, 3×3, same, relu) → maxpool 2 → conv(32, 3×3,
same, relu) → maxpool 2 → flatten → dense(10, softmax), float32. A training step is forward,
backward and an Adam update. Reports medians and netspec's time as a multiple of PyTorch's.
"""

from __future__ import annotations

import argparse

import numpy as np

import netspec
from benchmarks.shared import median_seconds
from netspec.spec import Training
from netspec.train.fit import _epoch, _optimizer, logits_of

BATCH = 256
SPEC = {
    "netspec": 1,
    "classes": [str(i) for i in range(10)],
    "input": {"image": {"width": 32, "height": 32}},
    "layers": [
        {"name": "conv1", "type": "conv2d", "filters": 16, "kernel": 3, "padding": "same", "activation": "relu"},
        {"name": "pool1", "type": "maxpool2d", "size": 2},
        {"name": "conv2", "type": "conv2d", "filters": 32, "kernel": 3, "padding": "same", "activation": "relu"},
        {"name": "pool2", "type": "maxpool2d", "size": 2},
        {"name": "flatten", "type": "flatten"},
        {"name": "output", "type": "dense", "neurons": 10, "activation": "softmax"},
    ],
}


def netspec_cases(x, y, repeats):
    network = netspec.build(netspec.Spec.model_validate(SPEC))
    options = Training(batch_size=BATCH, learning_rate=0.001, val_split=0, seed=0)
    params, decayed = [layer.params for layer in network.layers], [layer.kind.decayed for layer in network.layers]
    optimizer = _optimizer(options, params, decayed)
    order = np.arange(BATCH)
    noise = np.random.default_rng(0)
    forward = median_seconds(lambda: network.forward(x), repeats)
    step = median_seconds(lambda: _epoch(logits_of(network), x, y, order, options, optimizer, None, noise), repeats)
    return forward, step


def torch_cases(x, y, repeats):
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(16, 32, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(32 * 8 * 8, 10),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    loss_fn = torch.nn.CrossEntropyLoss()
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def forward():
        with torch.no_grad():
            torch.softmax(model(tx), dim=1)

    def step():
        optimizer.zero_grad()
        loss_fn(model(tx), ty).backward()
        optimizer.step()

    return median_seconds(forward, repeats), median_seconds(step, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    repeats = parser.parse_args().repeats
    rng = np.random.default_rng(0)
    x = rng.random((BATCH, 3, 32, 32), dtype=np.float32)
    y = rng.integers(0, 10, BATCH)
    ours = netspec_cases(x, y, repeats)
    theirs = torch_cases(x, y, repeats)
    print(f"batch of {BATCH} 3×32×32 images, conv(16)-pool-conv(32)-pool-dense(10), median of {repeats}")
    for label, index in (("forward", 0), ("training step", 1)):
        line = f"  {label:<14} netspec {ours[index] * 1000:8.1f} ms"
        if theirs:
            line += (
                f"   PyTorch CPU {theirs[index] * 1000:8.1f} ms   netspec / PyTorch {ours[index] / theirs[index]:5.2f}×"
            )
        print(line)


if __name__ == "__main__":
    main()
