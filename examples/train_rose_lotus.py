"""Train the weights of specs/rose-vs-lotus.yaml on generated flower pictures, reproducibly.

    python examples/train_rose_lotus.py

Draws 400 pictures per class with examples/make_flowers.py (seed 0), starts from the initial
weights the spec's layers describe, trains with minibatch gradient descent on the cross-entropy
of the softmax output, and writes the learned arrays to specs/rose-vs-lotus.npz (the spec's
`weights_file`). It then reports the accuracy on 200 fresh pictures per class (seed 1).
The same run gives the same arrays bit for bit. `netspec train` will replace this script.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import netspec
from netspec.images import to_array
from netspec.saving import save_arrays

sys.path.insert(0, str(Path(__file__).parent))
from make_flowers import draw_lotus, draw_rose  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "specs" / "rose-vs-lotus.yaml"


def pictures(network: netspec.Network, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` pictures per class as network inputs (preprocessed as `netspec run` does) and labels."""
    image_input = network.spec.input.image
    x, y = [], []
    for label, draw in enumerate((draw_rose, draw_lotus)):
        for index in range(count):
            rng = np.random.default_rng([seed, label, index])
            x.append(to_array(draw(rng, 64), image_input))
            y.append(label)
    return np.stack(x).astype(network.dtype), np.array(y)


def train(network: netspec.Network, x: np.ndarray, y: np.ndarray, epochs: int, rate: float, seed: int) -> None:
    """Minibatch gradient descent with momentum, updating the network's arrays in place."""
    rng = np.random.default_rng(seed)
    velocity = {(i, k): np.zeros_like(a) for i, layer in enumerate(network.layers) for k, a in layer.params.items()}
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for start in range(0, len(x), 32):
            batch = order[start : start + 32]
            out, backprops = x[batch], []
            for layer in network.layers:
                out, backprop = layer.forward(out)
                backprops.append(backprop)
            # d(mean cross-entropy)/d(probabilities): -1/p at the true class, 0 elsewhere.
            grad = np.zeros_like(out)
            rows = np.arange(len(batch))
            grad[rows, y[batch]] = -1.0 / (np.maximum(out[rows, y[batch]], 1e-12) * len(batch))
            for i in reversed(range(len(network.layers))):
                grad, grads = backprops[i](grad)
                for key, g in grads.items():
                    v = velocity[(i, key)]
                    v *= 0.9
                    v -= rate * g
                    network.layers[i].params[key] += v


def accuracy(network: netspec.Network, x: np.ndarray, y: np.ndarray) -> float:
    return float((network.forward(x).argmax(axis=1) == y).mean())


def main() -> None:
    spec, _ = netspec.read_spec(SPEC)
    # Start from the layers' own initial values, not from a previous run's arrays.
    network = netspec.build(spec.model_copy(update={"weights_file": None}), base_dir=SPEC.parent)
    x, y = pictures(network, 400, seed=0)
    x_test, y_test = pictures(network, 200, seed=1)
    train(network, x, y, epochs=30, rate=0.05, seed=0)
    save_arrays(network, SPEC.with_suffix(".npz"))
    print(f"train accuracy {accuracy(network, x, y):.1%} on {len(x)} pictures")
    print(f"test accuracy {accuracy(network, x_test, y_test):.1%} on {len(x_test)} fresh pictures")
    print(f"wrote {SPEC.with_suffix('.npz').relative_to(ROOT)}")


if __name__ == "__main__":
    main()
