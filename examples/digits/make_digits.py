"""Write scikit-learn's bundled handwritten digits as image folders: train/ and test/, one folder per digit.

    python examples/digits/make_digits.py [OUT_DIR]      (default: examples/digits/data)

The 1,797 8×8 grayscale digits of `sklearn.datasets.load_digits` (no download) are split 80/20,
stratified by digit with a fixed seed, and written as PNGs to OUT_DIR/train/<digit>/ and
OUT_DIR/test/<digit>/: the layout `netspec train` and `netspec eval` read.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

SPLIT_SEED = 0


def split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The digits as 8×8 uint8 images (0..255) and their labels: x_train, x_test, y_train, y_test."""
    digits = load_digits()
    # The data holds 0..16 ink levels; spread them over the 0..255 of an 8-bit image.
    images = np.rint(digits.images * (255 / 16)).astype(np.uint8)
    return train_test_split(images, digits.target, test_size=0.2, stratify=digits.target, random_state=SPLIT_SEED)


def write(out: Path) -> None:
    x_train, x_test, y_train, y_test = split()
    for part, images, labels in (("train", x_train, y_train), ("test", x_test, y_test)):
        for index, (image, label) in enumerate(zip(images, labels)):
            folder = out / part / str(label)
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image, "L").save(folder / f"{index:04d}.png")
    shown = out.resolve().relative_to(Path.cwd()) if out.resolve().is_relative_to(Path.cwd()) else out
    print(f"wrote {len(x_train)} training and {len(x_test)} test digits to {shown}/train and {shown}/test")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=Path(__file__).parent / "data")
    write(parser.parse_args().out)


if __name__ == "__main__":
    main()
