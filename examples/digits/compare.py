"""netspec next to scikit-learn's MLPClassifier on the digits, same hidden layers, same split.

    python examples/digits/make_digits.py && python examples/digits/compare.py

Trains specs/digits.yaml with netspec (its `training:` settings) and MLPClassifier((256, 128)),
both on examples/digits/data/train, and prints each one's test accuracy and training time.
"""

from __future__ import annotations

import time
from pathlib import Path

from sklearn.neural_network import MLPClassifier

import netspec
from netspec.train.data import read_dataset

ROOT = Path(__file__).resolve().parent.parent.parent
DATA = Path(__file__).parent / "data"


def main() -> None:
    network = netspec.load(ROOT / "specs" / "digits.yaml")
    train, test = read_dataset(DATA / "train", network), read_dataset(DATA / "test", network)
    hidden = tuple(layer.spec.neurons for layer in network.layers[:-1])

    start = time.perf_counter()
    history = network.fit(train.x, train.y)
    netspec_seconds = time.perf_counter() - start
    netspec_accuracy = network.evaluate(test.x, test.y).accuracy

    flat_train, flat_test = train.x.reshape(len(train.x), -1), test.x.reshape(len(test.x), -1)
    start = time.perf_counter()
    mlp = MLPClassifier(hidden, random_state=0, max_iter=500).fit(flat_train, train.y)
    sklearn_seconds = time.perf_counter() - start
    sklearn_accuracy = mlp.score(flat_test, test.y)

    print(f"{'':<28}{'test accuracy':>14}{'training time':>15}")
    print(f"{'netspec train':<28}{netspec_accuracy:>14.2%}{netspec_seconds:>14.2f}s  ({len(history.epochs)} epochs)")
    print(f"{f'MLPClassifier{hidden}':<28}{sklearn_accuracy:>14.2%}{sklearn_seconds:>14.2f}s  ({mlp.n_iter_} epochs)")


if __name__ == "__main__":
    main()
