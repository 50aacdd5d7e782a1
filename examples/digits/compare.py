"""netspec next to scikit-learn's MLPClassifier on the digits, same hidden layers, same split.

    python examples/digits/make_digits.py && python examples/digits/compare.py

Trains specs/digits.yaml with netspec (its `training:` settings) and MLPClassifier((256, 128)),
both on examples/digits/data/train, and specs/digits-cnn.yaml with netspec, and prints each one's
test accuracy and training time.
"""

from __future__ import annotations

import time
from pathlib import Path

from sklearn.neural_network import MLPClassifier

import netspec
from netspec.train.data import read_dataset

ROOT = Path(__file__).resolve().parent.parent.parent
DATA = Path(__file__).parent / "data"


def train_spec(name: str, train, test) -> tuple[float, float, int]:
    """Test accuracy, training seconds and epochs of a spec trained with its own `training:` settings."""
    network = netspec.load(ROOT / "specs" / name)
    start = time.perf_counter()
    history = network.fit(train.x, train.y)
    seconds = time.perf_counter() - start
    return network.evaluate(test.x, test.y).accuracy, seconds, len(history.epochs)


def main() -> None:
    network = netspec.load(ROOT / "specs" / "digits.yaml")
    train, test = read_dataset(DATA / "train", network), read_dataset(DATA / "test", network)
    hidden = tuple(layer.spec.neurons for layer in network.layers[:-1])
    rows = [(f"netspec {name}", *train_spec(name, train, test)) for name in ("digits.yaml", "digits-cnn.yaml")]

    flat_train, flat_test = train.x.reshape(len(train.x), -1), test.x.reshape(len(test.x), -1)
    start = time.perf_counter()
    mlp = MLPClassifier(hidden, random_state=0, max_iter=500).fit(flat_train, train.y)
    rows.insert(1, (f"MLPClassifier{hidden}", mlp.score(flat_test, test.y), time.perf_counter() - start, mlp.n_iter_))

    print(f"{'':<28}{'test accuracy':>14}{'training time':>15}")
    for label, accuracy, seconds, epochs in rows:
        print(f"{label:<28}{accuracy:>14.2%}{seconds:>14.2f}s  ({epochs} epochs)")


if __name__ == "__main__":
    main()
