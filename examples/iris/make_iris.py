"""Write scikit-learn's bundled iris flowers as numbers: train.npz, test.npz and test.csv.

    python examples/iris/make_iris.py [OUT_DIR]      (default: examples/iris/data)

The 150 flowers of `sklearn.datasets.load_iris` (no download), four measurements each, are split
80/20, stratified by species with a fixed seed, and written to OUT_DIR as
  train.npz  x (120, 4) and y, the species names: what `netspec train` reads;
  test.npz   the same arrays for the 30 held-out flowers: what `netspec eval` reads (it needs labels);
  test.csv   the same 30 flowers without their species, a header line of the measurements' names
             and one flower a line: what `netspec run` reads, as a spreadsheet would export it.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split

SPLIT_SEED = 0


def split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """The measurements (cm) and species names: x_train, x_test, y_train, y_test, and the column names."""
    iris = load_iris()
    species = iris.target_names[iris.target]  # labels as text, the spec's classes: setosa, versicolor, virginica
    parts = train_test_split(iris.data, species, test_size=0.2, stratify=iris.target, random_state=SPLIT_SEED)
    return (*parts, list(iris.feature_names))


def write(out: Path) -> None:
    x_train, x_test, y_train, y_test, columns = split()
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "train.npz", x=x_train, y=y_train)
    np.savez(out / "test.npz", x=x_test, y=y_test)
    with open(out / "test.csv", "w", newline="") as stream:
        rows = csv.writer(stream)
        rows.writerow(columns)
        # The data holds one decimal; repr writes 5.1, not 5.1000000000000005, and reads back exactly.
        rows.writerows([repr(float(value)) for value in sample] for sample in x_test)
    shown = out.resolve().relative_to(Path.cwd()) if out.resolve().is_relative_to(Path.cwd()) else out
    print(
        f"wrote {len(x_train)} training and {len(x_test)} test flowers to "
        f"{shown}/train.npz, {shown}/test.npz and {shown}/test.csv"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=Path(__file__).parent / "data")
    write(parser.parse_args().out)


if __name__ == "__main__":
    main()
