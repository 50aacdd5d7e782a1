"""Read and write .safetensors files (the format of Hugging Face's safetensors): header first, no pickle.

The format is small enough to read here rather than through the safetensors package: 8 bytes giving
the header's length (little-endian), a JSON header naming each array with its dtype, shape and byte
offsets, then the arrays' raw little-endian bytes. Reading it ourselves lets every header be checked
whole before any array is read (each array's size against its shape, every offset inside the file),
says what is wrong with a file in netspec's terms rather than a Rust error's name, reads bfloat16
(which NumPy has no type for) exactly as float32, and maps nothing into memory. The tests check this
reader and writer against the safetensors package itself.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from math import prod
from pathlib import Path
from typing import BinaryIO

import numpy as np

from netspec.errors import Unlocated
from netspec.weights import ShapeMismatch, finite

MAX_HEADER_BYTES = 100_000_000
"""The largest header read, as the safetensors package allows: a length beyond it is a damaged file."""

DTYPES: dict[str, np.dtype] = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),  # read as bits, widened to float32 exactly (see _values)
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U64": np.dtype("<u8"),
    "U32": np.dtype("<u4"),
    "U16": np.dtype("<u2"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
"""The dtypes netspec reads, by their safetensors names, as they lie in the file."""

METADATA = "__metadata__"
"""The key a .safetensors header keeps for free-form text (str → str), never a tensor."""

NOT_NUMBERS = frozenset({"BOOL"})
"""Dtypes the format knows whose values are not weights (netspec refuses them, as .npz's bool arrays)."""


@dataclass(frozen=True)
class Entry:
    """One array as the header declares it."""

    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int


class SafetensorsFile:
    """An open .safetensors file whose header has been read and checked; arrays are read on demand."""

    def __init__(self, path: Path):
        self.path, self.name = path, path.name
        try:
            self._stream: BinaryIO = open(path, "rb")  # noqa: SIM115 - closed by close() / the with block
        except OSError as err:
            raise Unlocated("NS203", f"cannot read {path.name}: {err.strerror or err}") from None
        try:
            self.entries, self._data_start = _header(self._stream, path.name, path.stat().st_size)
        except BaseException:
            self._stream.close()
            raise

    def __enter__(self) -> SafetensorsFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stream.close()

    def keys(self) -> list[str]:
        """The array names, in the order of their bytes in the file."""
        return list(self.entries)

    def shape(self, key: str) -> tuple[int, ...]:
        """The shape the header declares for `key`; NS205 if its dtype holds no weights netspec can read."""
        entry = self.entries[key]
        if entry.dtype not in DTYPES or entry.dtype in NOT_NUMBERS:
            raise Unlocated("NS205", _unusable(f"{self.name}[{key!r}]", entry.dtype))
        return entry.shape

    def read(self, key: str, expected: tuple[int, ...]) -> np.ndarray:
        """The float64 array `key`, which must have shape `expected` and hold finite numbers.

        Raises:
            ShapeMismatch: its shape is not `expected` (nothing read).
            Unlocated: NS205 for a dtype that holds no weights, NS209 for NaN or infinite values.
        """
        entry, label = self.entries[key], f"{self.name}[{key!r}]"
        if self.shape(key) != tuple(expected):
            raise ShapeMismatch(label, entry.shape, tuple(expected))
        try:
            self._stream.seek(self._data_start + entry.begin)
            data = self._stream.read(entry.end - entry.begin)
        except OSError as err:  # a disk or network file system failing mid-read
            raise Unlocated("NS203", f"cannot read {label}: {err.strerror or err}") from None
        if len(data) != entry.end - entry.begin:  # the file shrank since its header was checked
            raise Unlocated("NS203", f"{label} is cut short: the file changed while it was read")
        return finite(_values(data, entry), label)


def _unusable(label: str, dtype: str) -> str:
    if dtype in NOT_NUMBERS:
        return f"{label} holds {dtype} values; weight arrays must hold numbers (float or int)"
    return (
        f"{label} holds {dtype} values, which netspec cannot read; "
        "convert the tensor to float32 before saving it (tensor.float() in PyTorch)"
    )


def _values(data: bytes, entry: Entry) -> np.ndarray:
    raw = np.frombuffer(data, dtype=DTYPES[entry.dtype])
    if entry.dtype == "BF16":  # bfloat16 is the top half of a float32: widening it is exact
        raw = (raw.astype(np.uint32) << 16).view(np.float32)
    return raw.reshape(entry.shape).astype(np.float64)


def _header(stream: BinaryIO, name: str, size: int) -> tuple[dict[str, Entry], int]:
    """Every array the header declares, checked against each other and the file's size; and where data starts."""
    if size < 8:
        what = "is empty (0 bytes)" if size == 0 else f"is {size} bytes long"
        raise Unlocated("NS203", f"{name} {what}; a .safetensors file begins with 8 bytes giving its header's length")
    (length,) = struct.unpack("<Q", stream.read(8))
    if length > MAX_HEADER_BYTES:
        raise Unlocated(
            "NS203", f"{name} declares a header of {length:,} bytes, more than {MAX_HEADER_BYTES:,}; it is damaged"
        )
    if 8 + length > size:
        raise Unlocated(
            "NS203", f"{name} is cut short: its header should take {length:,} bytes but the file has {size - 8:,} more"
        )
    question = "is it a .safetensors file?"
    try:
        header = json.loads(stream.read(length).decode("utf-8"), object_pairs_hook=_once_each)
    except _Twice as err:
        raise Unlocated("NS203", f"the header of {name} is wrong: it names array {err.args[0]!r} twice") from None
    except RecursionError:  # lists in lists, thousands deep: no header has them, and json would overflow
        raise Unlocated("NS203", f"the header of {name} nests lists or objects too deeply; {question}") from None
    except UnicodeDecodeError as err:
        raise Unlocated("NS203", f"the header of {name} is not UTF-8 text ({err.reason}); {question}") from None
    except json.JSONDecodeError as err:
        raise Unlocated("NS203", f"the header of {name} is not valid JSON ({err}); {question}") from None
    except ValueError:  # the text of a number is thousands of digits long (Python's int limit)
        raise Unlocated("NS203", f"the header of {name} holds a number too long to be a size; {question}") from None
    if not isinstance(header, dict):
        raise Unlocated("NS203", f"the header of {name} is JSON but not an object of arrays; {question}")
    header.pop(METADATA, None)  # free-form text (the framework's name, say): nothing netspec uses
    entries = {key: _entry(name, key, value) for key, value in header.items()}
    _check_offsets(name, entries, size - 8 - length)
    return dict(sorted(entries.items(), key=lambda item: item[1].begin)), 8 + length


class _Twice(Exception):
    """A key given twice in one JSON object (json keeps the last silently; its twin's bytes would be lost)."""


def _once_each(pairs: list[tuple[str, object]]) -> dict:
    found: dict = {}
    for key, value in pairs:
        if key in found:
            raise _Twice(key)
        found[key] = value
    return found


def _entry(name: str, key: str, value: object) -> Entry:
    wrong = f"the header of {name} is wrong: array {key!r}"
    if not isinstance(value, dict) or not {"dtype", "shape", "data_offsets"} <= value.keys():
        raise Unlocated("NS203", f"{wrong} lacks its dtype, shape or data_offsets")
    dtype, shape, offsets = value["dtype"], value["shape"], value["data_offsets"]
    if not isinstance(dtype, str):
        raise Unlocated("NS203", f"{wrong} has dtype {dtype!r}, which is not a name")
    if not isinstance(shape, list) or not all(type(n) is int and n >= 0 for n in shape):
        raise Unlocated("NS203", f"{wrong} has shape {shape!r}; a shape is a list of whole numbers ≥ 0")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(n) is int and n >= 0 for n in offsets)):
        raise Unlocated("NS203", f"{wrong} has data_offsets {offsets!r}; they are [begin, end], whole numbers ≥ 0")
    begin, end = offsets
    if end < begin:
        raise Unlocated("NS203", f"{wrong} ends (byte {end:,}) before it begins (byte {begin:,})")
    if dtype in DTYPES and end - begin != prod(shape) * DTYPES[dtype].itemsize:
        need = prod(shape) * DTYPES[dtype].itemsize
        raise Unlocated(
            "NS203",
            f"{wrong} is {tuple(shape)} of {dtype} ({need:,} bytes) but its offsets span {end - begin:,} bytes",
        )
    return Entry(dtype, tuple(shape), begin, end)


def _check_offsets(name: str, entries: dict[str, Entry], data_size: int) -> None:
    """Arrays must not share bytes and must lie inside the file; a file cut short is told from a lying header.

    A whole file's arrays follow each other from byte 0 (every writer lays them out so): if they do
    and the last ends past the file, the file lost its end; any other array past the end is a header
    that lies.
    """
    ordered = sorted(entries.items(), key=lambda item: (item[1].begin, item[1].end))
    for (key_a, a), (key_b, b) in zip(ordered, ordered[1:]):
        if b.begin < a.end:
            raise Unlocated(
                "NS203",
                f"the header of {name} is wrong: arrays {key_a!r} and {key_b!r} overlap (bytes {b.begin:,}–{a.end:,})",
            )
    past = [(key, entry) for key, entry in ordered if entry.end > data_size]
    if not past:
        return
    contiguous = all(a.end == b.begin for (_, a), (_, b) in zip(ordered, ordered[1:])) and ordered[0][1].begin == 0
    if contiguous:
        total = ordered[-1][1].end
        raise Unlocated(
            "NS203",
            f"{name} is cut short: its header declares {total:,} bytes of arrays but the file holds "
            f"{data_size:,} after the header (an interrupted download or copy?)",
        )
    key, entry = past[0]
    raise Unlocated(
        "NS203",
        f"the header of {name} is wrong: array {key!r} lies at bytes {entry.begin:,}–{entry.end:,}, "
        f"past the end of the data ({data_size:,} bytes)",
    )


def write(stream: BinaryIO, arrays: Mapping[str, tuple[str, tuple[int, ...], bytes]]) -> None:
    """Write `arrays` (name → safetensors dtype, shape, little-endian bytes) as a .safetensors file.

    The arrays follow each other in the order given; the header is padded with spaces to a multiple
    of 8 bytes, as the safetensors package writes it, so that each array starts aligned.
    """
    header, at = {}, 0
    for key, (dtype, shape, data) in arrays.items():
        header[key] = {"dtype": dtype, "shape": list(shape), "data_offsets": [at, at + len(data)]}
        at += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    stream.write(struct.pack("<Q", len(text)))
    stream.write(text)
    for _, _, data in arrays.values():
        stream.write(data)
