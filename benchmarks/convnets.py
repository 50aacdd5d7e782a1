"""Convolutional networks at real sizes (issue 15): netspec next to onnxruntime and PyTorch, forward, training, memory.

    python -m benchmarks.convnets [cases...] [--threads 1|default|both] [--rounds 3] [--markdown FILE] [--profile]

Cases (default: all of them; a group name runs its cases):

- forward (float32): resnet18, mobilenet_v2 and squeezenet1_1 at 224×224, batch 1 and 8; vgg11 at
  batch 1; resnet20 (the classic CIFAR ResNet: a 3×3 stem of 16 filters, 3 stages of 3 basic
  blocks of 16/32/64 filters, 1×1-conv shortcuts where the shape changes, global average pool,
  dense 10) at 32×32, batch 1 and 64. torchvision's definitions (0.28.0) or that module, random
  seeded weights and random batch-norm statistics (as benchmarks.onnx_models makes them), exported
  by `torch.onnx.export` at opset 17 with `dynamo=False`, the batch left open, and
  `training=TrainingMode.PRESERVE`: the batch norms are KEPT as layers of their own (not folded into
  the convolutions), so netspec runs them as it would a user's model; onnxruntime folds them itself
  at its default graph optimisations, PyTorch (eager, eval) runs them. Imported with
  `netspec.interop.importer.import_model`. Timed: `Network.forward` against an onnxruntime session
  and the PyTorch module under `torch.no_grad()`, medians of `--rounds` taking turns, on "1 thread"
  (netspec `forward(x, threads=1)`, onnxruntime `intra_op_num_threads=1, inter_op_num_threads=1`,
  `torch.set_num_threads(1)`) and on "default" (netspec `forward(x)`, which chooses; onnxruntime's
  default session options; PyTorch's default thread count). Each setting first compares the scores
  of the three: |a − PyTorch| / max |PyTorch| at most 1e-4, so that a fast path that breaks shows.
- train (group): one training step, forward, backward and Adam, of resnet20 at batch 64 (the
  imported spec: its batch norms train on the batch's statistics) and of specs/digits-cnn.yaml at
  its batch size (32), netspec (`netspec.train.fit._epoch` over one batch, as `fit` runs it) next to
  the same architecture in PyTorch; for resnet20 the first step's loss and first convolution's
  gradient are compared first (the same weights in both).
- memory (group): the resident set's high-water mark of one forward pass (and, for resnet20, of one
  training step, Adam's state included) in a fresh process for each engine, minus the same process's
  mark after its imports, the model and the input are loaded. On Linux the mark is VmHWM, reset there
  through /proc/self/clear_refs after glibc's malloc_trim (so loading's own peak, and memory it freed,
  are not counted); `resource.getrusage(...).ru_maxrss` elsewhere, which a child inherits from a
  large parent through fork and exec, hence not first.
  resnet18 at batch 8, resnet20 at batch 64; all engines on one thread.
- dense: the 784-256-128-10 chain's forward at batch 1 and 64, float32, next to the plain NumPy chain
  (case 1 of `python -m benchmarks`, whose functions it reuses), on the default threads.

Targets (issue 15): forward at most 1.3× the faster of onnxruntime and PyTorch and at most 1.0×
PyTorch; training step at most 1.5× PyTorch; forward memory at most 1.5× PyTorch's; the dense chain
as docs/performance.md states (batch 1 at most 1.2× plain NumPy, batch 64 at most 1.0×).

--profile: where netspec's forward time goes for each forward case's batch-1 model (time by layer
kind, conv split by kernel, depthwise and stride; and cProfile's functions), and of resnet20's
training step (cProfile's functions, the layer's backward being the `backprop` of its module).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import pstats
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import netspec
from benchmarks.onnx_models import torchvision_module, versions
from benchmarks.shared import dense_network, medians_taking_turns

ROOT = Path(__file__).resolve().parent.parent
TOLERANCE = 1e-4
FORWARD = {"resnet18": (1, 8), "mobilenet_v2": (1, 8), "squeezenet1_1": (1, 8), "vgg11": (1,), "resnet20": (1, 64)}
TRAIN = {"train-resnet20": 64, "train-digits-cnn": 32}
MEMORY = {"memory-resnet18": ("resnet18", 8), "memory-resnet20": ("resnet20", 64)}
GROUPS = {"forward": tuple(FORWARD), "train": tuple(TRAIN), "memory": tuple(MEMORY), "dense": ("dense",)}
CASES = (*FORWARD, *TRAIN, *MEMORY, "dense")
FORWARD_TARGET, TORCH_TARGET, TRAIN_TARGET, MEMORY_TARGET = 1.3, 1.0, 1.5, 1.5
LABELS = {"1": "1 thread", "default": "default"}


# --- the models -----------------------------------------------------------------------------------


def torch_module():
    import torch

    return torch


def resnet20():
    """The classic CIFAR-10 ResNet-20 (He et al. 2016, section 4.2), with 1×1-conv shortcuts where the shape changes."""
    torch = torch_module()
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self, inputs: int, filters: int, stride: int):
            super().__init__()
            self.conv1 = nn.Conv2d(inputs, filters, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(filters)
            self.conv2 = nn.Conv2d(filters, filters, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(filters)
            self.shortcut = nn.Sequential()
            if stride != 1 or inputs != filters:
                self.shortcut = nn.Sequential(
                    nn.Conv2d(inputs, filters, 1, stride, bias=False), nn.BatchNorm2d(filters)
                )

        def forward(self, x):
            y = torch.relu(self.bn1(self.conv1(x)))
            return torch.relu(self.bn2(self.conv2(y)) + self.shortcut(x))

    class ResNet20(nn.Module):
        def __init__(self, classes: int = 10):
            super().__init__()
            self.conv = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
            self.bn = nn.BatchNorm2d(16)
            blocks, inputs = [], 16
            for filters, stride in ((16, 1), (32, 2), (64, 2)):
                for index in range(3):
                    blocks.append(Block(inputs, filters, stride if index == 0 else 1))
                    inputs = filters
            self.blocks = nn.Sequential(*blocks)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(64, classes)

        def forward(self, x):
            y = self.blocks(torch.relu(self.bn(self.conv(x))))
            return self.fc(torch.flatten(self.pool(y), 1))

    return ResNet20()


def torch_model(name: str):
    """`name` (torchvision's or resnet20) with seeded random weights and random batch-norm statistics, in eval mode."""
    torch = torch_module()
    torch.manual_seed(0)
    model = resnet20() if name == "resnet20" else getattr(torchvision_module().models, name)(weights=None)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):  # a fresh batch norm is an identity: it would hide a mistake
                module.running_mean.normal_(0.0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0.0, 0.1)
    return model.eval()


def side(name: str) -> int:
    return 32 if name == "resnet20" else 224


def export(model, name: str, folder: Path) -> tuple[Path, Path]:
    """The model as ONNX (batch norms kept, the batch left open) and as the spec netspec imports from it."""
    from netspec.interop.importer import import_model

    torch = torch_module()
    onnx_path, spec = folder / f"{name}.onnx", folder / f"{name}.yaml"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on TorchScript's deprecation
        torch.onnx.export(
            model,
            (torch.zeros(1, 3, side(name), side(name)),),
            str(onnx_path),
            dynamo=False,
            opset_version=17,
            training=torch.onnx.TrainingMode.PRESERVE,
            input_names=["input"],
            output_names=["scores"],
            dynamic_axes={"input": {0: "batch"}},
        )
    import_model(onnx_path, spec, max_params=200_000_000)
    return onnx_path, spec


def session(path: Path, threads: str):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if threads == "1":
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def images(batch: int, size: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((batch, 3, size, size), dtype=np.float32)


def relative(ours: np.ndarray, reference: np.ndarray) -> float:
    return float(np.max(np.abs(ours - reference)) / np.max(np.abs(reference)))


# --- forward --------------------------------------------------------------------------------------


@dataclass
class Forward:
    case: str
    threads: str
    ms: dict[str, float] = field(default_factory=dict)
    error: dict[str, float] = field(default_factory=dict)
    """max |engine − PyTorch| / max |PyTorch| for netspec and onnxruntime."""

    @property
    def faster(self) -> float:
        return min(self.ms["onnxruntime"], self.ms["PyTorch"])

    @property
    def met(self) -> bool:
        scores = all(value <= TOLERANCE for value in self.error.values())
        netspec_ms = self.ms["netspec"]
        return scores and netspec_ms <= FORWARD_TARGET * self.faster and netspec_ms <= TORCH_TARGET * self.ms["PyTorch"]


def forward_case(name: str, folder: Path, settings: list[str], rounds: int, profile: bool) -> list[Forward]:
    torch = torch_module()
    model = torch_model(name)
    onnx_path, spec = export(model, name, folder)
    network = netspec.load(spec, max_params=200_000_000)
    rows = []
    for batch in FORWARD[name]:
        x = images(batch, side(name))
        tx = torch.from_numpy(x)
        for threads in settings:
            torch.set_num_threads(1 if threads == "1" else DEFAULT_TORCH_THREADS)
            runtime = session(onnx_path, threads)
            given = 1 if threads == "1" else None

            def pytorch(tx=tx):
                with torch.no_grad():
                    return model(tx)

            work = {
                "netspec": lambda x=x, given=given: network.forward(x, threads=given),
                "onnxruntime": lambda x=x, runtime=runtime: runtime.run(None, {"input": x}),
                "PyTorch": pytorch,
            }
            reference = pytorch().numpy()
            row = Forward(f"{name} batch {batch}", threads)
            row.error = {
                "netspec": relative(work["netspec"](), reference),
                "onnxruntime": relative(work["onnxruntime"]()[0], reference),
            }
            row.ms = {label: t * 1000 for label, t in medians_taking_turns(work, rounds).items()}
            rows.append(row)
            print(forward_line(row), flush=True)
        if profile and batch == 1:
            forward_profile(network, x)
    torch.set_num_threads(DEFAULT_TORCH_THREADS)
    return rows


def forward_line(row: Forward) -> str:
    ms = row.ms
    errors = ", ".join(f"{label} {value:.1e}" for label, value in row.error.items())
    return (
        f"  {row.case:<24} {LABELS[row.threads]:<8}  netspec {ms['netspec']:9.1f} ms  onnxruntime {ms['onnxruntime']:9.1f} ms"
        f"  PyTorch {ms['PyTorch']:9.1f} ms   {ms['netspec'] / row.faster:5.2f}× the faster, "
        f"{ms['netspec'] / ms['PyTorch']:5.2f}× PyTorch   (score error vs PyTorch: {errors})"
        + ("" if row.met else "   [target not met]")
    )


# --- training -------------------------------------------------------------------------------------


@dataclass
class Train:
    case: str
    threads: str
    ms: dict[str, float] = field(default_factory=dict)
    check: str = ""

    @property
    def met(self) -> bool:
        return self.ms["netspec"] <= TRAIN_TARGET * self.ms["PyTorch"]


def digits_torch(network: netspec.Network):
    """specs/digits-cnn.yaml written in PyTorch, with the network's starting weights."""
    torch = torch_module()
    nn = torch.nn
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(0.25),
        nn.Linear(256, 10),
    )
    layers = {layer.name: layer.params for layer in network.layers}
    with torch.no_grad():
        for module, name in ((model[0], "conv1"), (model[3], "conv2"), (model[8], "output")):
            module.weight.copy_(torch.from_numpy(layers[name]["weights"]))
            module.bias.copy_(torch.from_numpy(layers[name]["bias"]))
    return model


def training_setup(case: str, folder: Path):
    """(netspec network, PyTorch model, x, y, learning rate) for a training case."""
    torch = torch_module()
    batch = TRAIN[case]
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, batch)
    if case == "train-resnet20":
        model = torch_model("resnet20")
        spec = folder / "resnet20.yaml"
        if not spec.exists():
            export(model, "resnet20", folder)
        network = netspec.load(spec)
        x = images(batch, 32)
        return network, model, x, y, 0.001
    network = netspec.load(ROOT / "specs" / "digits-cnn.yaml")
    x = rng.random((batch, 1, 8, 8), dtype=np.float32)
    torch.manual_seed(0)
    return network, digits_torch(network), x, y, 0.002


def netspec_step(network: netspec.Network, x: np.ndarray, y: np.ndarray, rate: float, threads: str):
    """One call of fit's epoch over one batch: forward, backward and Adam, as `netspec train` runs a step."""
    from netspec import threads as blas
    from netspec.spec import Training
    from netspec.train.fit import _epoch, _optimizer, logits_of

    options = Training(batch_size=len(x), learning_rate=rate, val_split=0, seed=0)
    params = [layer.params for layer in network.layers]
    optimizer = _optimizer(options, params, [layer.kind.decayed for layer in network.layers])
    scorer, order, noise = logits_of(network), np.arange(len(x)), np.random.default_rng(0)
    limit = 1 if threads == "1" else network.threads_for(len(x))

    def step():
        with blas.limited(limit):
            return _epoch(scorer, x, y, order, options, optimizer, None, noise)

    return step


def torch_step(model, x: np.ndarray, y: np.ndarray, rate: float):
    torch = torch_module()
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=rate)
    loss_fn = torch.nn.CrossEntropyLoss()
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        optimizer.zero_grad()
        loss = loss_fn(model(tx), ty)
        loss.backward()
        optimizer.step()
        return loss

    return step


def first_step_agrees(network: netspec.Network, model, x: np.ndarray, y: np.ndarray) -> str:
    """The training-mode loss and every learned parameter's gradient of one step, netspec and PyTorch in float32
    (the same weights) against PyTorch in float64: float32's own error shows beside netspec's."""
    import copy

    from netspec.graph import needs_input_grads
    from netspec.train.fit import logits_of
    from netspec.train.loss import cross_entropy

    torch = torch_module()
    summary = network.summary()
    torch_params = sum(p.numel() for p in model.parameters())
    out, backward = logits_of(network).forward_with_backprop(x, train=True, rng=np.random.default_rng(0))
    loss, grad = cross_entropy(out, y)
    _, grads = backward(grad, False, needs_input_grads(network.layers))
    reference = {}
    for dtype, copied in ((torch.float32, model), (torch.float64, copy.deepcopy(model).double())):
        copied.train()
        copied.zero_grad()
        found = torch.nn.functional.cross_entropy(copied(torch.from_numpy(x).to(dtype)), torch.from_numpy(y))
        found.backward()
        reference[dtype] = (found.item(), {name: p.grad.numpy() for name, p in copied.named_parameters()})
    torch_name = {"weights": "weight", "bias": "bias", "scale": "weight", "shift": "bias"}
    errors: dict[str, list[float]] = {"netspec": [], "PyTorch": []}
    for layer, layer_grads in zip(network.layers, grads):
        for key, array in layer_grads.items():
            name = f"{layer.name}.{torch_name[key]}" if layer.name != "output" else f"fc.{torch_name[key]}"
            exact = reference[torch.float64][1][name]
            errors["netspec"].append(relative(array, exact))
            errors["PyTorch"].append(relative(reference[torch.float32][1][name], exact))
    trainable = "batch norms trainable" if summary.trainable_params == torch_params else "TRAINABLE COUNT DIFFERS"
    return (
        f"trainable {summary.trainable_params:,} / PyTorch {torch_params:,} ({trainable}); loss netspec {loss:.6f}, "
        f"PyTorch {reference[torch.float32][0]:.6f}, float64 {reference[torch.float64][0]:.6f}; gradients of "
        f"{len(errors['netspec'])} arrays against PyTorch's float64, median / worst: netspec "
        f"{np.median(errors['netspec']):.1e} / {max(errors['netspec']):.1e}, PyTorch float32 "
        f"{np.median(errors['PyTorch']):.1e} / {max(errors['PyTorch']):.1e}"
    )


def train_case(case: str, folder: Path, settings: list[str], rounds: int) -> list[Train]:
    torch = torch_module()
    rows = []
    for threads in settings:
        torch.set_num_threads(1 if threads == "1" else DEFAULT_TORCH_THREADS)
        network, model, x, y, rate = training_setup(case, folder)
        check = first_step_agrees(network, model, x, y) if case == "train-resnet20" else ""
        work = {"netspec": netspec_step(network, x, y, rate, threads), "PyTorch": torch_step(model, x, y, rate)}
        for run in work.values():
            run()  # the first step allocates Adam's state
        row = Train(f"{case[6:]} batch {len(x)}", threads, check=check)
        row.ms = {label: t * 1000 for label, t in medians_taking_turns(work, rounds).items()}
        rows.append(row)
        ms = row.ms
        print(
            f"  {row.case:<24} {LABELS[threads]:<8}  netspec {ms['netspec']:9.1f} ms  PyTorch {ms['PyTorch']:9.1f} ms"
            f"   {ms['netspec'] / ms['PyTorch']:5.2f}× PyTorch" + ("" if row.met else "   [target not met]"),
            flush=True,
        )
        if check:
            print(f"    first step: {check}", flush=True)
    torch.set_num_threads(DEFAULT_TORCH_THREADS)
    return rows


# --- memory ---------------------------------------------------------------------------------------


CHILD = """
import gc, json, resource, sys
import numpy as np
from benchmarks import convnets
print(json.dumps(convnets.child_peak(*sys.argv[1:])))
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


# --- the dense chain ------------------------------------------------------------------------------


def dense_case(folder: Path, rounds: int) -> list[tuple[int, dict[str, float]]]:
    from benchmarks.__main__ import chain, others

    network = dense_network([784, 256, 128, 10], "float32")
    runners = {"netspec": network.forward, "plain NumPy": chain(network), **others(network, folder)}
    rows = []
    for batch, turns in ((1, max(rounds, 1) * 300), (64, max(rounds, 1) * 60)):
        x = np.random.default_rng(0).random((batch, 784)).astype(np.float32)
        for run in runners.values():
            run(x)
        times = medians_taking_turns({label: lambda run=run, x=x: run(x) for label, run in runners.items()}, turns)
        base = times["plain NumPy"]
        rows.append((batch, {label: t * 1e6 for label, t in times.items()}))
        print(
            f"  784-256-128-10 batch {batch:>3}  "
            + "  ".join(f"{label} {t * 1e6:8.1f} µs ({t / base:4.2f}×)" for label, t in times.items()),
            flush=True,
        )
    return rows


DENSE_TARGETS = {1: 1.2, 64: 1.0}
"""docs/performance.md: batch 1 at most 1.2× the plain NumPy chain, batch 64 no slower than it."""


# --- profiles -------------------------------------------------------------------------------------


def layer_kind(spec, channels: int) -> str:
    """A layer's kind as the profiles group them: convolutions by kernel, depthwise and stride."""
    if spec.type != "conv2d":
        return spec.type
    kh, kw = spec.kernel
    depthwise = spec.groups > 1 and spec.groups == channels
    what = "depthwise" if depthwise else (f"{spec.groups} groups" if spec.groups > 1 else "")
    stride = " stride " + "×".join(map(str, spec.stride)) if tuple(spec.stride) != (1, 1) else ""
    return f"conv {kh}×{kw}{' ' + what if what else ''}{stride}"


def forward_profile(network: netspec.Network, x: np.ndarray, rounds: int = 5) -> None:
    """netspec's forward time on one thread by layer kind, then cProfile's costliest functions."""
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    kinds = [layer_kind(layer.spec, layer.input_shape[0]) for layer in network.layers]

    def timed(step, kind):
        def run(*inputs):
            start = time.perf_counter()
            y = step(*inputs)
            totals[kind][0] += time.perf_counter() - start
            return y

        return run

    saved = (network._steps, network._program)
    network._steps = [timed(step, kind) for step, kind in zip(network._steps, kinds)]
    network._program = [(timed(step, kind), *rest) for (step, *rest), kind in zip(network._program, kinds)]
    try:
        network.forward(x, threads=1)
        totals.clear()
        start = time.perf_counter()
        for _ in range(rounds):
            network.forward(x, threads=1)
        whole = (time.perf_counter() - start) / rounds
    finally:
        network._steps, network._program = saved
    counts = defaultdict(int)
    for kind in kinds:
        counts[kind] += 1
    print(f"    profile of {network.spec.name} batch {len(x)}, 1 thread: {whole * 1000:.1f} ms a forward pass")
    for kind, (seconds, _) in sorted(totals.items(), key=lambda item: -item[1][0]):
        share = seconds / rounds
        print(f"      {kind:<28} {counts[kind]:>3} layers  {share * 1000:8.1f} ms  {share / whole:6.1%}")
    conv_floor(network, x)
    print("      cProfile, time in the function itself (a matrix product counts in the function that writes `@`):")
    cprofile(lambda: network.forward(x, threads=1), 3)


def conv_floor(network: netspec.Network, x: np.ndarray, rounds: int = 5) -> None:
    """Each convolution's layer time next to its bare matrix product (the unrolled windows made beforehand,
    contiguous): the product is the floor a convolution done as one product reaches; the rest is unrolling the
    windows (im2col, with the NCHW → NHWC change in it), padding, bias, activation and the layout views."""
    from netspec import threads as blas
    from netspec.layers.conv2d import _Depthwise, _products

    inputs: dict[int, np.ndarray] = {}

    def keep(step, index):
        def run(*values):
            inputs[index] = values[0]
            return step(*values)

        return run

    saved = (network._steps, network._program)
    network._steps = [keep(step, i) for i, step in enumerate(network._steps)]
    network._program = [(keep(step, i), *rest) for i, (step, *rest) in enumerate(network._program)]
    try:
        network.forward(x, threads=1)
    finally:
        network._steps, network._program = saved
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    with blas.limited(1):
        for index, layer in enumerate(network.layers):
            if layer.type != "conv2d":
                continue
            value, step = inputs[index], network._steps[index]
            kind = layer_kind(layer.spec, layer.input_shape[0])
            totals[kind][0] += _best(lambda step=step, value=value: step(value), rounds)
            done = _products(layer.spec, layer.params, value)
            if isinstance(done, _Depthwise):
                continue
            columns = [np.ascontiguousarray(part) for part in done.columns]
            matrices = [np.ascontiguousarray(part.T) for part in done.matrix]
            totals[kind][1] += _best(lambda c=columns, m=matrices: [a @ b for a, b in zip(c, m)], rounds)
    print("      convolutions, 1 thread, best of 5 each: layer time / its bare matrix product (the floor)")
    for kind, (layer_seconds, product) in sorted(totals.items(), key=lambda item: -item[1][0]):
        floor = (
            f"{product * 1000:8.1f} ms product ({product / layer_seconds:4.0%})"
            if product
            else "no product (depthwise)"
        )
        print(f"        {kind:<28} {layer_seconds * 1000:8.1f} ms layer  {floor}")


def _best(work, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


class _Timed:
    """A layer kind whose forward and backprop add their time to `totals[kind] = [forward, backward]`."""

    def __init__(self, kind, totals):
        self._kind, self._totals = kind, totals

    def __getattr__(self, name):
        return getattr(self._kind, name)

    def forward(self, layer, params, inputs, train=False, rng=None):
        label = layer_kind(layer, inputs[0].shape[1] if inputs[0].ndim == 4 else 0)
        start = time.perf_counter()
        y, backprop = self._kind.forward(layer, params, inputs, train, rng)
        self._totals[label][0] += time.perf_counter() - start

        def timed(dy, preactivation=False, input_grad=True):
            start = time.perf_counter()
            done = backprop(dy, preactivation=preactivation, input_grad=input_grad)
            self._totals[label][1] += time.perf_counter() - start
            return done

        return y, timed


def cprofile(work, calls: int, top: int = 14) -> None:
    """cProfile's functions by time spent in themselves (a matrix product counts in the function that writes `@`)."""
    profiler = cProfile.Profile()
    work()
    profiler.enable()
    for _ in range(calls):
        work()
    profiler.disable()
    stats = pstats.Stats(profiler).stats
    rows = sorted(((own, key) for key, (_, _, own, _, _) in stats.items()), reverse=True)[:top]
    total = sum(own for _, _, own, _, _ in stats.values())
    for own, (filename, line, function) in rows:
        where = f"{Path(filename).parent.name}/{Path(filename).name}:{line} {function}" if line else function
        print(f"        {own / calls * 1000:8.1f} ms  {own / total:6.1%}  {where}")


def train_profile(folder: Path) -> None:
    network, model, x, y, rate = training_setup("train-resnet20", folder)
    step = netspec_step(network, x, y, rate, "1")
    start = time.perf_counter()
    step()
    print(
        f"    profile of resnet20's training step, batch {len(x)}, 1 thread ({(time.perf_counter() - start) * 1000:.0f} ms):"
    )
    from netspec.layers import KINDS

    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    saved = dict(KINDS)
    KINDS.update({name: _Timed(kind, totals) for name, kind in KINDS.items()})  # Node.kind looks them up here
    try:
        start = time.perf_counter()
        for _ in range(2):
            step()
        whole = (time.perf_counter() - start) / 2
    finally:
        KINDS.update(saved)
    print(f"      by layer kind, forward (training) / backward, of {whole * 1000:.0f} ms a step (the rest: loss, Adam)")
    for kind, (ahead, back) in sorted(totals.items(), key=lambda item: -sum(item[1])):
        print(
            f"        {kind:<28} {ahead / 2 * 1000:8.1f} ms / {back / 2 * 1000:8.1f} ms  {(ahead + back) / 2 / whole:6.1%}"
        )
    print("      cProfile, time in the function itself:")
    cprofile(step, 2, top=20)


# --- the report -----------------------------------------------------------------------------------


def header(settings: list[str], rounds: int) -> str:
    from threadpoolctl import threadpool_info

    torch = torch_module()
    import onnxruntime

    blas = ", ".join(
        f"{info['internal_api']} {info.get('version')} ({info.get('architecture')} kernel, {info['num_threads']} threads) "
        f"in {Path(info['filepath']).name}"
        for info in threadpool_info()
        if info["user_api"] == "blas"
    )
    machine = os.uname()
    return (
        f"{versions()}\n{machine.sysname} {machine.machine}, onnxruntime {onnxruntime.get_device()}; BLAS: {blas}\n"
        f"threads: {', '.join(LABELS[s] for s in settings)}; 1 thread = netspec forward(x, threads=1), onnxruntime "
        f"intra_op_num_threads=1 inter_op_num_threads=1, torch.set_num_threads(1); default = netspec forward(x) "
        f"(netspec chooses; NETSPEC_NUM_THREADS={os.environ.get('NETSPEC_NUM_THREADS', 'unset')}), onnxruntime's "
        f"default session, torch's {DEFAULT_TORCH_THREADS} threads (torch {torch.__version__}); "
        f"medians of {rounds} runs taking turns; batch norms kept in the ONNX export (TrainingMode.PRESERVE)"
    )


def markdown(forward: list[Forward], train: list[Train], memory: list[Memory], dense) -> str:
    parts = []
    if forward:
        lines = [
            "| forward, float32 | threads | netspec ms | onnxruntime ms | PyTorch ms | ÷ faster (≤ 1.3×) | ÷ PyTorch (≤ 1.0×) | scores (≤ 1e-4) | target |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- |",
        ]
        for row in forward:
            ms, worst = row.ms, max(row.error.values())
            lines.append(
                f"| {row.case} | {LABELS[row.threads]} | {ms['netspec']:,.1f} | {ms['onnxruntime']:,.1f} | {ms['PyTorch']:,.1f} | "
                f"{ms['netspec'] / row.faster:.2f}× | {ms['netspec'] / ms['PyTorch']:.2f}× | "
                f"{'agree' if worst <= TOLERANCE else 'DIFFER'} ({worst:.0e}) | {'met' if row.met else 'not met'} |"
            )
        parts.append("\n".join(lines))
    if train:
        lines = [
            "| training step (forward, backward, Adam) | threads | netspec ms | PyTorch ms | ÷ PyTorch (≤ 1.5×) | target |",
            "| --- | --- | ---: | ---: | ---: | --- |",
        ]
        for row in train:
            ratio = row.ms["netspec"] / row.ms["PyTorch"]
            lines.append(
                f"| {row.case} | {LABELS[row.threads]} | {row.ms['netspec']:,.1f} | {row.ms['PyTorch']:,.1f} | "
                f"{ratio:.2f}× | {'met' if row.met else 'not met'} |"
            )
        parts.append("\n".join(lines))
    if memory:
        lines = [
            "| peak memory, 1 thread (rise of the resident set's high-water mark) | netspec MB | onnxruntime MB | PyTorch MB | ÷ PyTorch (≤ 1.5×) | target |",
            "| --- | ---: | ---: | ---: | ---: | --- |",
        ]
        for row in memory:
            ort = f"{row.mb['onnxruntime']:,.1f}" if "onnxruntime" in row.mb else "—"
            verdict = ("met" if row.met else "not met") if row.mode == "forward" else "stated"
            lines.append(
                f"| {row.case}, {'one forward pass' if row.mode == 'forward' else 'one training step'} | {row.mb['netspec']:,.1f} | "
                f"{ort} | {row.mb['PyTorch']:,.1f} | {row.mb['netspec'] / row.mb['PyTorch']:.2f}× | {verdict} |"
            )
        parts.append("\n".join(lines))
    if dense:
        lines = [
            "| dense 784-256-128-10, float32, default threads | netspec µs | plain NumPy µs | onnxruntime µs | PyTorch µs | ÷ plain NumPy | target |",
            "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
        ]
        for batch, us in dense:
            ratio = us["netspec"] / us["plain NumPy"]
            cells = " | ".join(f"{us[label]:,.1f}" if label in us else "—" for label in ("onnxruntime", "PyTorch CPU"))
            verdict = "met" if ratio <= DENSE_TARGETS[batch] else "not met"
            lines.append(
                f"| batch {batch} | {us['netspec']:,.1f} | {us['plain NumPy']:,.1f} | {cells} | {ratio:.2f}× "
                f"(≤ {DENSE_TARGETS[batch]}×) | {verdict} |"
            )
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def chosen_cases(names: list[str], parser) -> list[str]:
    picked = []
    for name in names or CASES:
        found = GROUPS.get(name, (name,))
        unknown = [case for case in found if case not in CASES]
        if unknown:
            parser.error(f"unknown case {name!r}; choose among {', '.join(CASES)}, or a group: {', '.join(GROUPS)}")
        picked += [case for case in found if case not in picked]
    return picked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "cases",
        nargs="*",
        metavar="CASE",
        help=f"cases (default: all): {', '.join(CASES)}; groups: {', '.join(GROUPS)}",
    )
    parser.add_argument("--threads", choices=("1", "default", "both"), default="both")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each engine taking turns (medians)")
    parser.add_argument("--markdown", type=Path, metavar="FILE", help="also write the header and tables to FILE")
    parser.add_argument(
        "--profile", action="store_true", help="where netspec's time goes (batch-1 forwards, resnet20's step)"
    )
    args = parser.parse_args()
    cases = chosen_cases(args.cases, parser)
    settings = ["1", "default"] if args.threads == "both" else [args.threads]
    text = header(settings, args.rounds)
    print(text, flush=True)
    started = time.perf_counter()
    forward, train, memory, dense = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="netspec-convnets-") as temporary:
        folder = Path(temporary)
        if any(case in FORWARD for case in cases):
            print(
                "\nforward, float32 (times are medians of one call; score error: max |engine − PyTorch| / max |PyTorch|)"
            )
        for case in (case for case in cases if case in FORWARD):
            forward += forward_case(case, folder, settings, args.rounds, args.profile)
            gc.collect()
        if any(case in TRAIN for case in cases):
            print("\none training step: forward, backward, Adam")
        for case in (case for case in cases if case in TRAIN):
            train += train_case(case, folder, settings, args.rounds)
        if args.profile and "train-resnet20" in cases:
            train_profile(folder)
        if any(case in MEMORY for case in cases):
            print(
                "\npeak memory: rise of the resident set's high-water mark over one call, each in a fresh process, 1 thread"
            )
        for case in (case for case in cases if case in MEMORY):
            memory += memory_case(case, folder)
        if "dense" in cases:
            print("\nthe dense chain, default threads (µs per call; × plain NumPy)")
            dense = dense_case(folder, args.rounds)
    table = markdown(forward, train, memory, dense)
    print(f"\n{table}\n\n({time.perf_counter() - started:,.0f} s)")
    if args.markdown:
        args.markdown.write_text(f"{text}\n\n{table}\n")


DEFAULT_TORCH_THREADS = torch_module().get_num_threads()
"""PyTorch's own choice at start (one per core), before any case holds it at 1."""

if __name__ == "__main__":
    main()
