"""Read parameter arrays from .npy and .npz files beside a spec, checking before trusting.

Shapes and dtypes are read from each array's header and checked against what the spec
expects before any data is read, and pickles are never loaded. A problem is raised as
netspec.errors.Unlocated: the builder knows which layer and parameter it concerns.
"""

from __future__ import annotations

import contextlib
import zipfile
from pathlib import Path
from typing import BinaryIO

import numpy as np

from netspec.errors import Unlocated


class ShapeMismatch(Unlocated):
    """A stored array whose shape differs from the one the spec needs."""

    def __init__(self, label: str, shape: tuple[int, ...], expected: tuple[int, ...]):
        super().__init__("NS204", f"{label} has shape {shape}, expected {expected}")  # the builder words it better
        self.label, self.shape = label, shape


def resolve_inside(base_dir: Path, name: str, kinds: str = ".npy or .npz file", files: str = "weight files") -> Path:
    """The path of `name` relative to `base_dir`, refusing any that leaves it (`kinds`: what it should be;
    `files`: what the messages call such files, kept beside the spec).

    Absolute paths, `..` that climbs out and symlinks that point out are all refused;
    `sub/../w.npy` stays inside and is fine.
    """
    base = base_dir.resolve()
    if "\0" in name:
        raise Unlocated("NS207", f"{name!r} holds a NUL character; give a plain file name")
    if Path(name).is_absolute():
        raise Unlocated("NS207", f"{name!r} is an absolute path; {_relative_fix(base, Path(name))}")
    try:
        path = (base / name).resolve()
    except (OSError, RuntimeError) as err:  # a symlink loop, a name too long
        raise Unlocated("NS203", f"cannot follow {name!r}: {err}") from None
    if not path.is_relative_to(base):
        raise Unlocated("NS207", f"{name!r} leads outside the spec's folder ({base}); keep {files} beside the spec")
    if not path.exists():
        raise Unlocated("NS202", f"weight file {name!r} not found in {base}")
    if not path.is_file():
        # A pipe or a device would be read until it ends (never, for /dev/zero): refused as a folder is.
        what = "a folder" if path.is_dir() else "not a plain file (a pipe or a device)"
        raise Unlocated("NS203", f"{name!r} is {what}, not a {kinds}")
    return path


def _relative_fix(base: Path, path: Path) -> str:
    """What to write instead of an absolute `path`: the same file relative to `base`, or where to put the file."""
    try:
        inside = path.resolve().relative_to(base)
    except (OSError, RuntimeError, ValueError):
        return f"copy {path.name} into the spec's folder ({base}) and write {path.name!r}"
    return f"write {inside.as_posix()!r}, relative to the spec's folder"


def open_npz(path: Path) -> zipfile.ZipFile:
    """A .npz file opened for reading its arrays, or NS203."""
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise Unlocated("NS203", f"cannot read {path.name} as a .npz file: {reason(err)}") from None


def array_names(archive: zipfile.ZipFile) -> list[str]:
    """Names of the arrays in an open .npz file."""
    return [n[:-4] for n in archive.namelist() if n.endswith(".npy")]


def npz_keys(path: Path) -> list[str]:
    """Names of the arrays in a .npz file."""
    with open_npz(path) as archive:
        return array_names(archive)


def read_array(
    path: Path, key: str | None, expected: tuple[int, ...], archive: zipfile.ZipFile | None = None
) -> np.ndarray:
    """The float64 array stored in `path` (under `key` for a .npz), which must have shape `expected`.

    `archive`, the .npz at `path` already open, spares reopening it for each of many arrays.

    Raises:
        Unlocated: unreadable file, missing key, wrong shape, non-numeric or non-finite values.
    """
    label = f"{path.name}[{key!r}]" if key is not None else path.name
    try:
        if archive is not None or path.suffix == ".npz" or zipfile.is_zipfile(path):
            if key is None:
                keys = ", ".join(npz_keys(path)) or "none"
                raise Unlocated("NS206", f"{path.name} is a .npz file; say which array with 'key' (it has: {keys})")
            with contextlib.nullcontext(archive) if archive is not None else zipfile.ZipFile(path) as opened:
                if f"{key}.npy" not in opened.NameToInfo:
                    keys = ", ".join(npz_keys(path)) or "none"
                    raise Unlocated("NS206", f"{path.name} has no array {key!r}; it has: {keys}")
                with opened.open(f"{key}.npy") as stream:
                    array = _read_checked(stream, label, expected)
        else:
            if key is not None:
                raise Unlocated("NS206", f"{path.name} is a .npy file holding one array; remove 'key: {key}'")
            with open(path, "rb") as stream:
                array = _read_checked(stream, label, expected)
    except Unlocated:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, RuntimeError, NotImplementedError) as err:
        # RuntimeError: an encrypted member; NotImplementedError: a compression zipfile does not know
        message = f"cannot read {label}: {reason(err)}; write it with numpy.save or numpy.savez"
        raise Unlocated("NS203", message) from None
    return finite(array, label)


def finite(array: np.ndarray, label: str) -> np.ndarray:
    """`array` itself if every value is finite, else NS209 saying how many are not."""
    if not np.isfinite(array).all():
        bad = int(np.size(array) - np.isfinite(array).sum())
        raise Unlocated("NS209", f"{label} holds {bad} NaN or infinite value(s); every value must be finite")
    return array


def read_npy_header(stream: BinaryIO) -> tuple[tuple[int, ...], bool, np.dtype]:
    """The shape, Fortran order and dtype an .npy stream declares, read without reading its data."""
    version = np.lib.format.read_magic(stream)
    header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran_order, dtype = header(stream)
    if any(n < 0 for n in shape):  # numpy reads (-2, 3) without a word: a damaged or forged header
        raise ValueError(f"its header declares shape {tuple(shape)}; sizes are whole numbers ≥ 0")
    return shape, fortran_order, dtype


MAX_REASON = 200
"""Characters of a library's message shown at most: numpy quotes a whole damaged header (up to 10 kB)."""


def reason(err: BaseException) -> str:
    """`err`'s message, cut to MAX_REASON characters, for a one-line problem."""
    text = str(err)
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"


def _read_checked(stream: BinaryIO, label: str, expected: tuple[int, ...]) -> np.ndarray:
    shape, fortran_order, dtype = read_npy_header(stream)
    if dtype.kind not in "fiu":
        raise Unlocated("NS205", f"{label} holds {dtype} values; weight arrays must hold numbers (float or int)")
    if tuple(shape) != tuple(expected):
        raise ShapeMismatch(label, tuple(shape), tuple(expected))
    count = int(np.prod(shape))
    data = stream.read(count * dtype.itemsize)
    if len(data) != count * dtype.itemsize:
        raise Unlocated("NS203", f"{label} is truncated: its header promises {count} values")
    array = np.frombuffer(data, dtype=dtype)
    array = array.reshape(shape[::-1]).T if fortran_order else array.reshape(shape)
    return array.astype(np.float64)


class NpzFile:
    """An open .npz weight file, read as a SafetensorsFile is: names, shapes from headers, arrays on demand."""

    def __init__(self, path: Path):
        self.path, self.name = path, path.name
        self.archive = open_npz(path)  # opened once: reopening it per array made many arrays slow

    def __enter__(self) -> NpzFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.archive.close()

    def keys(self) -> list[str]:
        return array_names(self.archive)

    def shape(self, key: str) -> tuple[int, ...]:
        """The shape `key`'s header declares, without reading its data."""
        try:
            with self.archive.open(f"{key}.npy") as stream:
                return tuple(read_npy_header(stream)[0])
        except (OSError, ValueError, zipfile.BadZipFile, EOFError, RuntimeError, NotImplementedError) as err:
            raise Unlocated("NS203", f"cannot read {self.name}[{key!r}]: {reason(err)}") from None

    def read(self, key: str, expected: tuple[int, ...]) -> np.ndarray:
        return read_array(self.path, key, expected, self.archive)
