"""Rows of numbers for a vector input, read from a .csv, .npy or .npz file (`netspec run` on numbers).

Each sample is named as people find it again: `iris.csv:3` is line 3 of the file as an editor or a
spreadsheet numbers it (the header, if any, is line 1); `test.npz[3]` and `test.npy[3]` are x[3],
counted from 0 as NumPy counts. Every problem is one line naming the file (and the line and column
of a CSV cell) and the fix.
"""

from __future__ import annotations

import csv
import io
import math
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from netspec.errors import InputError, Problem, plural
from netspec.weights import read_npy_header

SUFFIXES = (".csv", ".npy", ".npz")
"""The files of numbers `netspec run` reads for a vector input (matched in any case)."""

MAX_DATA_BYTES = 8 * 2**30
"""Largest array a .npy or .npz may declare (8 GiB): its header is read, and checked, before its data."""


@dataclass
class Samples:
    """The rows of a file, shaped (n, features), and where each came from."""

    x: np.ndarray
    positions: list[int]
    """CSV: each row's line number (1-based, the header counted); arrays: each row's index in x."""
    by_line: bool
    """Whether positions are CSV lines (`file:line`) rather than array indices (`file[index]`)."""

    def row(self, file: str | Path, i: int) -> Row:
        """Where the i-th sample came from, in file `file`."""
        where = {"line" if self.by_line else "index": self.positions[i]}
        return Row(Path(file), **where)


@dataclass(frozen=True)
class Row:
    """Where one sample came from: its file, and its line (a CSV) or its index (an array).

    Shown as `iris.csv:3` or `test.npz[3]`.
    """

    file: Path
    line: int | None = None
    """The line of a CSV file, as an editor numbers it (the header, if any, is line 1)."""
    index: int | None = None
    """The index in an array, counted from 0."""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line is not None else f"{self.file}[{self.index}]"


def is_samples_file(path: str | Path) -> bool:
    """Whether the name says .csv, .npy or .npz (in any case)."""
    return Path(path).suffix.lower() in SUFFIXES


def read(path: str | Path, features: int) -> Samples:
    """The rows of numbers in a .csv, .npy (one array) or .npz (array x), each of `features` values.

    Raises:
        InputError: NS307 for a file that is missing or cannot be read as numbers (located to the
        line and column of a CSV cell), NS305 for rows of the wrong length.
    """
    name = str(path)
    suffix = Path(path).suffix.lower()
    try:
        if suffix == ".csv":
            return _read_csv(Path(path), name, features)
        fail = _failing(name)
        if suffix == ".npz":
            x = open_npz(Path(path), ("x",), fail, "numpy.savez(path, x=samples)")["x"]
        else:
            x = _read_npy(Path(path), fail)
    except FileNotFoundError:
        raise InputError(Problem("NS307", "file not found", file=name)) from None
    except IsADirectoryError:
        raise InputError(Problem("NS307", "is a folder, not a file of numbers", file=name)) from None
    except PermissionError as err:
        raise InputError(Problem("NS307", f"cannot read the file: {err.strerror}", file=name)) from None
    x = _checked_array(x, name, features, "x" if suffix == ".npz" else "the array")
    if not len(x):
        raise InputError(
            Problem("NS307", f"has no rows; save at least one sample of {plural(features, 'number')}", file=name)
        )
    return Samples(x, list(range(len(x))), by_line=False)


def _failing(name: str) -> Callable[[str], InputError]:
    return lambda message: InputError(Problem("NS307", message, file=name))


def open_npz(
    path: Path, keys: tuple[str, ...], fail: Callable[[str], Exception], write_hint: str
) -> dict[str, np.ndarray]:
    """The arrays `keys` of a .npz, each header checked for its declared size before its data is read.

    A .npz is compressed: a small file can declare (and unpack to) gigabytes. Nothing in it is
    unpickled. Problems are raised as `fail(message)`; `write_hint` says how to write a good file.
    """
    if path.exists() and not path.is_dir() and not zipfile.is_zipfile(path):
        raise fail(f"not a .npz file; write one with {write_hint}")
    found = _npz_arrays(path, keys, write_hint)
    if isinstance(found, str):
        raise fail(found)
    return found


def _npz_arrays(path: Path, keys: tuple[str, ...], write_hint: str) -> dict[str, np.ndarray] | str:
    """The arrays, or what is wrong with the file (missing files and folders raise as themselves)."""
    try:
        with np.load(path, allow_pickle=False) as arrays:
            missing = [key for key in keys if key not in arrays.files]
            if missing:
                has = ", ".join(arrays.files) or "none"
                needs = f"arrays {' and '.join(keys)}" if len(keys) > 1 else f"an array {keys[0]}"
                return f"needs {needs}; missing {' and '.join(missing)} (it has: {has})"
            members = {member.removesuffix(".npy"): member for member in arrays.zip.namelist()}
            for key in keys:
                with arrays.zip.open(members[key]) as stream:
                    too_large = _too_large(key, *read_npy_header(stream))
                if too_large:
                    return too_large
            return {key: arrays[key] for key in keys}
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except (OSError, ValueError) as err:
        return _PICKLED if "allow_pickle" in str(err) else f"cannot read the .npz file: {err}"
    except Exception as err:  # noqa: BLE001 - a damaged archive fails deep in zipfile, zlib or NumPy's header parser
        return f"cannot read the .npz file ({type(err).__name__}: {err}); write it again with {write_hint}"


_PICKLED = "holds Python objects (a pickled array), which netspec never unpickles; save numbers: x.astype('float32')"


def _too_large(key: str, shape: tuple[int, ...], _fortran: bool, dtype: np.dtype) -> str | None:
    """What is wrong with an array of this header's shape and dtype, if it declares too much data to read."""
    size = math.prod(shape) * dtype.itemsize
    if size > MAX_DATA_BYTES:
        return f"{key} declares {size:,} bytes of data ({shape}), more than the {MAX_DATA_BYTES:,} netspec reads"
    return None


def _read_npy(path: Path, fail) -> np.ndarray:
    with open(path, "rb") as stream:
        try:
            shape, fortran, dtype = read_npy_header(stream)
        except ValueError as err:
            raise fail(f"not a .npy file ({err}); write one with numpy.save(path, samples)") from None
        too_large = _too_large("the array", shape, fortran, dtype)
        if too_large:
            raise fail(too_large)
        stream.seek(0)
        try:
            return np.load(stream, allow_pickle=False)
        except ValueError as err:
            raise fail(_PICKLED if "allow_pickle" in str(err) else f"cannot read the .npy file: {err}") from None


def _checked_array(x: np.ndarray, name: str, features: int, called: str = "x") -> np.ndarray:
    """x (a .npz's array x, or a .npy's one array, `called` so) as samples: numbers, (n, features), all finite."""
    if x.dtype.kind not in "biuf":
        message = f"{called} holds {x.dtype} values; the samples must be numbers (save them with x.astype('float32'))"
        raise InputError(Problem("NS307", message, file=name))
    if x.ndim == 1 and len(x) == features:
        x = x[np.newaxis]  # one sample alone
    if x.ndim != 2 or x.shape[1] != features:
        wanted = plural(features, "number")
        message = f"{called} has shape {x.shape}; the spec reads {wanted} a sample: give shape (n, {features})"
        raise InputError(Problem("NS305", message, file=name))
    if not np.isfinite(x).all():
        row, column = (int(i) for i in np.argwhere(~np.isfinite(x))[0])
        count = int(x.size - np.isfinite(x).sum())
        where = f"x[{row}, {column}]" if called == "x" else f"the value at [{row}, {column}]"
        message = f"{where} is {x[row, column]} ({count} value(s) not finite); give finite numbers"
        raise InputError(Problem("NS307", message, file=name))
    return x.astype(np.float64, copy=False)


def _read_csv(path: Path, name: str, features: int) -> Samples:
    """Rows of a CSV file: comma-separated numbers, an optional header line, blank lines skipped."""
    with open(path, "rb") as stream:
        data = stream.read()
    try:
        text = data.decode("utf-8-sig")  # Excel writes a byte-order mark
    except UnicodeDecodeError as err:
        raise InputError(
            Problem("NS307", f"not a text file (byte {err.start} is not UTF-8); write the samples as CSV", file=name)
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    lines = io.StringIO(text, newline="").readlines()  # split as the reader splits, to count as it counts
    rows: list[list[float]] = []
    positions: list[int] = []
    header: list[str] | None = None
    try:
        for cells in reader:
            line = reader.line_num
            if not cells or all(not cell.strip() for cell in cells):
                continue
            values = [_number(cell) for cell in cells]
            if not rows and header is None and all(value is None for value in values):
                header = [cell.strip() for cell in cells]  # a first line of no numbers at all: column names
                if len(header) != features:
                    raise _columns(name, line, cells, features, "header ")
                continue
            if len(values) != features:
                raise _columns(name, line, cells, features)
            for column, (cell, value) in enumerate(zip(cells, values), start=1):
                if value is None or not math.isfinite(value):
                    called = f" ({header[column - 1]})" if header and header[column - 1] else ""
                    what = "not finite" if value is not None else "not a number"
                    message = f"column {column}{called} holds {cell.strip()!r}, {what}; give finite numbers only"
                    at = _offset(lines[line - 1] if line <= len(lines) else "", cells, column)
                    raise InputError(Problem("NS307", message, file=name, line=line, column=at))
            rows.append(values)
            positions.append(line)
    except csv.Error as err:
        raise InputError(Problem("NS307", f"not a CSV file ({err})", file=name, line=reader.line_num)) from None
    if not rows:
        what = "only a header line" if header else "no rows"
        raise InputError(
            Problem(
                "NS307", f"has {what}; write one sample a line, {plural(features, 'number')} split by commas", file=name
            )
        )
    return Samples(np.array(rows, dtype=np.float64), positions, by_line=True)


def _offset(line: str, cells: list[str], column: int) -> int:
    """The 1-based character column where cell `column` starts, as an editor counts (1 if quotes blur it)."""
    if '"' in line:
        return 1
    start = sum(len(cell) + 1 for cell in cells[: column - 1])
    return start + len(cells[column - 1]) - len(cells[column - 1].lstrip()) + 1


def _number(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


def _columns(name: str, line: int, cells: list[str], features: int, what: str = "") -> InputError:
    wanted = plural(features, "number")
    message = f"the {what}line has {plural(len(cells), 'column')}, but the spec reads {wanted} a sample"
    if len(cells) == 1 and any(mark in cells[0].strip() for mark in ("\t", ";", " ")):
        message += (
            "; netspec splits columns at commas, and this line has tabs, semicolons or spaces between its "
            "values: write it with commas"
        )
    elif len(cells) == features + 1 and not cells[-1].strip():
        message += "; the line ends with a comma, which starts an empty last column: remove it"
    else:
        message += "; give one column each"
    return InputError(Problem("NS305", message, file=name, line=line))
