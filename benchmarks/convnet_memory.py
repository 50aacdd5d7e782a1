"""Peak memory for benchmarks.convnets: one forward pass or training step of one engine in a fresh process."""

from __future__ import annotations

import gc
import json
import os
import resource
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import netspec
from benchmarks.convnet_models import (
    ROOT,
    export,
    images,
    netspec_step,
    session,
    side,
    torch_model,
    torch_module,
    torch_step,
)

MEMORY = {"memory-resnet18": ("resnet18", 8), "memory-resnet20": ("resnet20", 64)}
MEMORY_TARGET = 1.5


CHILD = """
import json, sys
from benchmarks import convnet_memory
print(json.dumps(convnet_memory.child_peak(*sys.argv[1:])))
"""


def child_peak(engine: str, name: str, batch: str, folder: str, mode: str) -> dict:
    """In a fresh process: the high-water mark's rise (MB) over one forward pass or training step of one engine."""
    batch, folder = int(batch), Path(folder)
    x = images(batch, side(name))
    y = np.random.default_rng(0).integers(0, 10, batch)
    if engine == "netspec":
        network = netspec.load(folder / f"{name}.yaml", max_params=200_000_000)
        work = (lambda: network.forward(x, threads=1)) if mode == "forward" else None
    elif engine == "onnxruntime":
        runtime = session(folder / f"{name}.onnx", "1")
        work = lambda: runtime.run(None, {"input": x})  # noqa: E731
    else:
        torch = torch_module()
        torch.set_num_threads(1)
        model = torch_model(name)
        tx = torch.from_numpy(x)

        def work():
            with torch.no_grad():
                return model(tx)

    gc.collect()
    _trim()
    reset = _reset_high_water_mark()
    before = high_water_kb()
    if mode == "train":  # the optimizer's state is the step's memory too: made after the mark
        work = netspec_step(network, x, y, 0.001, "1") if engine == "netspec" else torch_step(model, x, y, 0.001)
    work()
    return {"baseline_mb": before / 1024, "rise_mb": (high_water_kb() - before) / 1024, "reset": reset}


def high_water_kb() -> int:
    """The process's peak resident set in KiB: Linux's VmHWM, else ru_maxrss.

    VmHWM first: a process started by a large one (this benchmark's parent) inherits the parent's size as
    its ru_maxrss through fork and exec, which would hide the child's own rise; VmHWM is the child's own.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _trim() -> None:
    """Hand the memory freed while loading back to the system (glibc's malloc_trim), so that the call measured
    cannot reuse it unseen: its pages would count in the baseline and not in the rise."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _reset_high_water_mark() -> bool:
    """Linux resets a process's peak resident set (ru_maxrss's source) to its current one on "5" into clear_refs."""
    try:
        with open("/proc/self/clear_refs", "w") as control:
            control.write("5")
        return True
    except OSError:
        return False


@dataclass
class Memory:
    case: str
    mode: str
    mb: dict[str, float] = field(default_factory=dict)
    reset: bool = True

    @property
    def met(self) -> bool:
        return self.mb["netspec"] <= MEMORY_TARGET * self.mb["PyTorch"]


def memory_case(case: str, folder: Path) -> list[Memory]:
    name, batch = MEMORY[case]
    if not (folder / f"{name}.yaml").exists():
        export(torch_model(name), name, folder)
    rows = []
    for mode in ("forward", "train") if name == "resnet20" else ("forward",):
        row = Memory(f"{name} batch {batch}", mode)
        for engine in ("netspec", "onnxruntime", "PyTorch") if mode == "forward" else ("netspec", "PyTorch"):
            done = subprocess.run(
                [sys.executable, "-c", CHILD, engine, name, str(batch), str(folder), mode],
                capture_output=True,
                text=True,
                cwd=ROOT,
                env={
                    **os.environ,
                    "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
                },
            )
            if done.returncode:
                raise RuntimeError(f"{engine} {mode} of {name}: {done.stderr.strip().splitlines()[-1]}")
            found = json.loads(done.stdout.strip().splitlines()[-1])
            row.mb[engine], row.reset = found["rise_mb"], row.reset and found["reset"]
        rows.append(row)
        print(
            f"  {row.case:<24} {mode:<8}  "
            + "  ".join(f"{engine} {mb:8.1f} MB" for engine, mb in row.mb.items())
            + f"   netspec {row.mb['netspec'] / row.mb['PyTorch']:5.2f}× PyTorch"
            + ("" if row.met or mode == "train" else "   [target not met]"),
            flush=True,
        )
    return rows
