"""Threats 2 and 3: alias bombs and size bombs are refused with bounded memory.

Memory is what a bomb attacks, and what these tests bound; wall-clock time depends on the machine and its
load (a first call's start-up alone took 0.46 s on one), so no test here bounds it.
"""

from __future__ import annotations

import subprocess
import sys
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

import netspec


def problems(path):
    return [str(p) for p in netspec.check(path)]


def problems_and_peak_memory(path):
    """The problems, and the most memory Python held at once while checking (tracemalloc counts it)."""
    tracemalloc.start()
    try:
        return problems(path), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def peak_resident_bytes_of_checking(path) -> int:
    """The largest resident set of a fresh process that checks `path` (for work too slow under tracemalloc).

    Linux only, as /proc is; elsewhere the test is skipped.
    """
    if not Path("/proc/self/status").exists():
        pytest.skip("the resident set is read from /proc, which this system does not have")
    # VmHWM is this process's own high-water mark; getrusage's ru_maxrss would carry over the parent's
    # (pytest's, with torch loaded: 360 MB) through fork and exec.
    code = (
        "import sys, netspec\n"
        "netspec.check(sys.argv[1])\n"
        "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM:')))\n"  # kB
    )
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return int(done.stdout) * 1024


def test_nine_by_nine_alias_bomb(tmp_path):
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    assert path.stat().st_size < 500
    found, peak = problems_and_peak_memory(path)
    assert peak < 20 * 2**20  # expanded, the 9 levels would be 43 million values and gigabytes
    assert len(found) == 1 and found[0].startswith(f"{path}:7:") and "NS004" in found[0]


def test_one_big_list_referenced_fifty_times(tmp_path):
    text = "big: &big [" + ", ".join(["1.0"] * 200_000) + "]\nrefs:\n" + "".join("  - *big\n" for _ in range(50))
    path = tmp_path / "flat.yaml"
    path.write_text(text)
    found = problems(path)
    # The 200,000 numbers themselves take tens of MB; the 50 aliases expanded would be 10 million more values
    # (gigabytes once validated). A fresh Python with netspec and NumPy loaded holds about 60 MB.
    assert peak_resident_bytes_of_checking(path) < 300 * 2**20
    # Keys count too: 'big', its 200,000 numbers and the list make 200,002, 'refs' one more, and each
    # alias adds the 200,001 it stands for: the 24th passes 5,000,000; aliases start on line 3.
    assert len(found) == 1 and found[0].startswith(f"{path}:26:5: NS004 the document holds more than 5,000,000 values")


def test_a_compressed_array_that_would_unpack_to_a_gigabyte(tmp_path):
    # 1 GiB of zeros deflates to about 1 MiB; the header declares its shape, and that is checked first.
    with zipfile.ZipFile(tmp_path / "bomb.npz", "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("h.weights.npy", "w", force_zip64=True) as stream:
            header = {"descr": "<f4", "fortran_order": False, "shape": (16384, 16384)}
            np.lib.format.write_array_header_1_0(stream, header)
            block = bytes(64 * 2**20)
            for _ in range(16):
                stream.write(block)
    assert (tmp_path / "bomb.npz").stat().st_size < 2 * 2**20
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "netspec: 1\nclasses: [a, b]\ninput: {features: 3}\nweights_file: bomb.npz\nlayers:\n  - {name: h, type: dense, neurons: 2}\n  - {type: dense, neurons: 2}\n"
    )
    found, peak = problems_and_peak_memory(spec)
    assert peak < 20 * 2**20  # the header was read, not the gigabyte behind it
    assert found == [
        f"{spec}:6:5: NS204 layers[0]: layer 'h': bomb.npz['h.weights'] has 16,384 rows but the layer has 2 neurons (one row per neuron)"
    ]


def test_a_pickled_object_in_a_weight_file_runs_nothing(tmp_path):
    sentinel = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(sentinel), "w"))

    np.save(tmp_path / "evil.npy", np.array([Payload()], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(tmp_path / "evil.npz", "w") as archive:
        archive.writestr("h.bias.npy", (tmp_path / "evil.npy").read_bytes())
    for weights in ("{file: evil.npy}", "{file: evil.npz, key: h.bias}"):
        spec = tmp_path / "spec.yaml"
        spec.write_text(
            f"netspec: 1\nclasses: [a, b]\ninput: {{features: 3}}\nlayers:\n  - {{name: h, type: dense, neurons: 2, bias: {weights}}}\n  - {{type: dense, neurons: 2}}\n"
        )
        found = problems(spec)
        assert len(found) == 1 and "NS205" in found[0] and "object values" in found[0]
    assert not sentinel.exists()


def test_parameters_are_counted_before_anything_is_allocated(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "netspec: 1\nclasses: [a, b]\ninput: {features: 100000}\nlayers:\n  - {type: dense, neurons: 100000}\n  - {type: dense, neurons: 2}\n"
    )
    found, peak = problems_and_peak_memory(spec)
    assert "NS208" in found[0] and peak < 20 * 2**20  # 10 billion float32 weights would be 40 GB
