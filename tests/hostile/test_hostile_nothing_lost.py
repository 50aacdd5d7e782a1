"""Threat 8: a process killed while writing leaves the earlier file whole, and no stray file."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

WRITER = """
import sys, time, numpy as np, netspec
from pathlib import Path
network = netspec.load(sys.argv[1])
original = np.lib.format.write_array

def slow(stream, array, **kwargs):  # a write long enough to be killed in the middle of
    original(stream, array, **kwargs)
    stream.flush()
    print("writing", flush=True)
    time.sleep(30)

np.lib.format.write_array = slow
network.save(Path(sys.argv[2]))
"""


def test_sigkill_during_save_keeps_the_earlier_files(tmp_path):
    spec = Path(__file__).parents[2] / "specs" / "rose-vs-lotus.yaml"
    out = tmp_path / "out" / "saved.yaml"
    out.parent.mkdir()
    out.write_text("earlier spec\n")
    out.with_suffix(".npz").write_bytes(b"earlier arrays")
    process = subprocess.Popen([sys.executable, "-c", WRITER, str(spec), str(out)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "writing"  # in the middle of the .npz
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    time.sleep(0.1)
    assert out.read_text() == "earlier spec\n" and out.with_suffix(".npz").read_bytes() == b"earlier arrays"
    assert sorted(p.name for p in out.parent.iterdir()) == ["saved.npz", "saved.yaml"]  # no temporary file left
