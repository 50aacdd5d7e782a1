"""Fuzz the spec loader: any bytes give a spec or a NetspecError, never another exception.

    pip install atheris && python fuzz/fuzz_loader.py -max_total_time=600 -rss_limit_mb=2048 fuzz/corpus/specs

Each input is written as a spec file beside a small weight file and loaded with netspec.check;
anything but a list of problems (a crash, another exception, more than 1 s) is a finding.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import atheris

with atheris.instrument_imports():
    import numpy as np

    import netspec
    from netspec.loader import check

FOLDER = Path(tempfile.mkdtemp(prefix="netspec-fuzz-"))
np.save(FOLDER / "w.npy", np.ones((2, 3)))
np.savez(FOLDER / "all.npz", **{"h.weights": np.ones((2, 3)), "h.bias": np.zeros(2)})
SPEC = FOLDER / "spec.yaml"


def one_input(data: bytes) -> None:
    SPEC.write_bytes(data)
    start = time.perf_counter()
    try:
        problems = check(SPEC, max_params=100_000)
    except netspec.NetspecError:
        return
    assert isinstance(problems, list)
    assert time.perf_counter() - start < 1.0, "took more than a second"


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
