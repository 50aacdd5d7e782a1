"""Labelled examples from an image folder (one subfolder per class) or an .npz with arrays x and y."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from netspec.errors import DataError, InputError, Problem
from netspec.folders import IMAGE_SUFFIXES, files_below
from netspec.samples import open_npz

if TYPE_CHECKING:
    from netspec.network import Network


@dataclass
class Dataset:
    """Inputs shaped as the network reads them, and class indices."""

    x: np.ndarray
    y: np.ndarray
    skipped: int = 0
    """Images that could not be read and were left out."""


def read_dataset(
    path: Path,
    network: Network,
    strict: bool = False,
    warn: Callable[[Problem], None] | None = None,
    max_pixels: int | None = None,
) -> Dataset:
    """The examples at `path`, checked against the network's input and classes.

    Args:
        path: a folder with one subfolder per class label, or a .npz with arrays x and y.
        strict: fail on an unreadable image instead of skipping it.
        warn: called with the problem of each skipped image.

    Raises:
        DataError: missing or unknown class folders, empty classes, wrong arrays (all listed).
        InputError: an unreadable image, with `strict`.
    """
    path = Path(path)
    if path.is_dir():
        return _read_folder(path, network, strict, warn, max_pixels)
    if path.suffix == ".npz":
        return _read_npz(path, network)
    message = "data must be a folder of class folders or a .npz file with x and y"
    if path.suffix.lower() in (".csv", ".npy"):  # what `netspec run` reads: numbers without their labels
        message += f" (a {path.suffix.lower()} holds no labels; save x and y with numpy.savez)"
    raise DataError(Problem("NS406", message, file=str(path)))


def _read_folder(root: Path, network: Network, strict: bool, warn, max_pixels: int | None = None) -> Dataset:
    if network.spec.input.image is None:
        message = f"this spec reads {network.input_shape[0]} numbers, not images; give a .npz with arrays x and y"
        raise DataError(Problem("NS406", message, file=str(root)))
    folders = {p.name: p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")}
    if root.name in network.classes and not folders.keys() & set(network.classes):
        message = (
            f"this is the folder of class {root.name!r}; give the folder that holds the class folders ({root.parent})"
        )
        raise DataError(Problem("NS401", message, file=str(root)))
    problems = [
        Problem("NS401", f"no folder for class {label!r}; put its images in {root / label}", file=str(root))
        for label in network.classes
        if label not in folders
    ]
    lowered = {label.lower(): label for label in network.classes}
    for name in sorted(folders.keys() - set(network.classes)):
        close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
        hint = f"; did you mean {lowered[close[0]]!r}?" if close else ""
        message = f"folder {name!r} is not one of the classes ({', '.join(network.classes)}){hint}"
        problems.append(Problem("NS402", message, file=str(folders[name])))
    if problems:
        raise DataError(problems)
    xs, ys, skipped = [], [], 0
    for index, label in enumerate(network.classes):
        # Images may sit in subfolders of a class folder, as torchvision's ImageFolder allows; files
        # that are not named as images (a README, notes) and hidden ones are left alone, and broken
        # links are reported like unreadable images.
        files, unreadable = files_below(folders[label], IMAGE_SUFFIXES, "NS302", any_case=True, broken_links=True)
        if unreadable and strict:
            raise InputError(unreadable)
        for problem in unreadable:
            skipped += 1
            if warn:
                warn(problem)
        readable = 0
        for file in files:
            try:
                xs.append(network.inputs([file], max_pixels)[0])
            except InputError as err:
                if strict:
                    raise
                skipped += 1
                for problem in err.problems:
                    if warn:
                        warn(problem)
                continue
            ys.append(index)
            readable += 1
        if not readable:
            named = ", ".join(IMAGE_SUFFIXES)
            message = f"class {label!r} has no readable images (files named {named} are read)"
            problems.append(Problem("NS403", message, file=str(folders[label])))
    if problems:
        raise DataError(problems)
    return Dataset(np.stack(xs).astype(network.dtype, copy=False), np.array(ys, dtype=np.int64), skipped)


def _read_npz(path: Path, network: Network) -> Dataset:
    name = str(path)

    def fail(message: str) -> DataError:
        return DataError(Problem("NS404", message, file=name))

    try:
        arrays = open_npz(path, ("x", "y"), fail, "numpy.savez(path, x=inputs, y=labels)")
    except FileNotFoundError:
        raise DataError(Problem("NS406", "data file not found", file=name)) from None
    except OSError as err:
        raise DataError(Problem("NS404", f"cannot read the .npz file: {err.strerror}", file=name)) from None
    x, y = arrays["x"], arrays["y"]
    shape, flat = network.input_shape, int(np.prod(network.input_shape))
    if (
        x.dtype.kind not in "fiu"
        or x.ndim == 0
        or y.ndim == 0
        or len(x) != len(y)
        or (x.shape[1:] != shape and x.shape[1:] != (flat,))
    ):
        wanted = ", ".join(map(str, shape))
        flat_hint = f" or (n, {flat})" if len(shape) > 1 else ""
        got = f"x has shape {x.shape} ({x.dtype}) and y {y.shape}"
        message = f"{got}; x must be numbers shaped (n, {wanted}){flat_hint}, y (n,)"
        raise DataError(Problem("NS404", message, file=name))
    if not np.isfinite(x).all():
        bad = int(np.size(x) - np.isfinite(x).sum())
        raise DataError(
            Problem("NS404", f"x holds {bad} NaN or infinite value(s); every input must be finite", file=name)
        )
    indices = to_indices(y, network.classes, name)
    missing = [label for i, label in enumerate(network.classes) if not (indices == i).any()]
    if missing:
        shown = ", ".join(repr(m) for m in missing[:5])
        raise DataError(Problem("NS403", f"no examples of class(es) {shown}; every class needs some", file=name))
    return Dataset(network.inputs(x), indices)  # a vector input's mean and std applied


def feature_stats(x: np.ndarray, name: str | None = None) -> tuple[list[float], list[float]]:
    """Each feature's mean and standard deviation over examples x, shaped (n, features).

    The standard deviation is the population one (ddof=0, as scikit-learn's StandardScaler); a
    feature with the same value in every example has 0, and gets 1 instead: it is only centred.
    Each is written short enough to read well in a spec and exact enough to standardise: the std
    to 7 significant digits, the mean to a millionth of its feature's std (123456.78 with a std of
    0.001 keeps its decimals; 5.8575 with a std of 0.85 stays 5.8575).

    Raises:
        DataError: a feature whose values are too large for a finite mean and std (NS404).
    """
    values = np.asarray(x, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        mean = values.mean(axis=0)
        # Scaled by each column's largest magnitude first: squares of values near 1e200 would overflow.
        scale = np.abs(values).max(axis=0, initial=0.0)
        scale[scale == 0] = 1.0
        std = (values / scale).std(axis=0) * scale
    bad = np.flatnonzero(~(np.isfinite(mean) & np.isfinite(std)))
    if bad.size:
        message = f"feature {bad[0]} is too large to measure a finite mean and standard deviation; scale it down"
        raise DataError(Problem("NS404", message, file=name))
    std[std == 0] = 1.0
    means = [round(float(m), _decimals_for(float(s))) for m, s in zip(mean, std)]
    return means, [float(f"{s:.7g}") for s in std]


def _decimals_for(std: float) -> int:
    """Decimal places that put a rounded mean within a millionth of `std` of the true one."""
    return max(0, int(np.ceil(-np.log10(std * 1e-6))))


def to_indices(y, classes: list[str], name: str | None = None) -> np.ndarray:
    """Class indices from integer indices or label strings (lists or arrays)."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise DataError(
            Problem("NS404", f"y has shape {y.shape}; it must be one label per example, shape (n,)", file=name)
        )
    if y.dtype.kind in "US":
        lookup = {label: i for i, label in enumerate(classes)}
        unknown = sorted({str(v) for v in y.astype(str)} - lookup.keys())
        if unknown:
            shown = ", ".join(repr(u) for u in unknown[:5])
            raise DataError(
                Problem(
                    "NS405",
                    f"y holds labels that are not classes: {shown}; classes are {', '.join(classes)}",
                    file=name,
                )
            )
        return np.array([lookup[str(v)] for v in y.astype(str)], dtype=np.int64)
    if y.dtype.kind not in "iu":
        raise DataError(
            Problem("NS404", f"y holds {y.dtype} values; give class indices (integers) or labels (text)", file=name)
        )
    bad = y[(y < 0) | (y >= len(classes))]
    if bad.size:
        raise DataError(
            Problem("NS405", f"y holds class indices outside 0..{len(classes) - 1}, e.g. {int(bad[0])}", file=name)
        )
    return y.astype(np.int64)
