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

floors (only when named; benchmarks/convnet_floors.py): for each forward target not met, the floor that
NumPy on this machine's BLAS sets (bare matrix products of the convolutions' unrolled shapes, depthwise
multiply-adds, per-call costs), next to netspec's and onnxruntime's time for the same layers and whole
forward pass, all on one thread: a markdown table per model and batch.

--profile: where netspec's forward time goes for each forward case's batch-1 model, on 1 thread (time
by layer kind, convolutions split by kernel, depthwise and stride; each convolution kind next to its
bare matrix product; cProfile's functions), and of resnet20's training step (forward and backward
time by layer kind; cProfile's functions, a layer's backward being the `backprop` of its module).

The models and the steps timed are in benchmarks/convnet_models.py, the memory measure in
convnet_memory.py, the profiles in convnet_profile.py.
"""

from __future__ import annotations

import argparse
import gc
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import netspec
from benchmarks.convnet_memory import MEMORY, memory_case
from benchmarks.convnet_models import (
    TRAIN,
    export,
    images,
    netspec_step,
    relative,
    session,
    side,
    torch_model,
    torch_module,
    torch_step,
    training_setup,
)
from benchmarks.convnet_report import LABELS, TOLERANCE, markdown
from benchmarks.onnx_models import versions
from benchmarks.shared import dense_network, medians_taking_turns

FORWARD = {"resnet18": (1, 8), "mobilenet_v2": (1, 8), "squeezenet1_1": (1, 8), "vgg11": (1,), "resnet20": (1, 64)}
GROUPS = {"forward": tuple(FORWARD), "train": tuple(TRAIN), "memory": tuple(MEMORY), "dense": ("dense",)}
CASES = (*FORWARD, *TRAIN, *MEMORY, "dense")
ON_REQUEST = ("floors",)
"""Cases run only when named: `floors` (benchmarks/convnet_floors.py) is the floors under the unmet targets."""
FORWARD_TARGET, TORCH_TARGET, TRAIN_TARGET = 1.3, 1.0, 1.5


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
            from benchmarks.convnet_profile import forward_profile

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


def chosen_cases(names: list[str], parser) -> list[str]:
    picked = []
    for name in names or CASES:
        found = GROUPS.get(name, (name,))
        unknown = [case for case in found if case not in CASES + ON_REQUEST]
        if unknown:
            parser.error(
                f"unknown case {name!r}; choose among {', '.join(CASES + ON_REQUEST)}, or a group: {', '.join(GROUPS)}"
            )
        picked += [case for case in found if case not in picked]
    return picked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "cases",
        nargs="*",
        metavar="CASE",
        help=f"cases (default: all): {', '.join(CASES)}; groups: {', '.join(GROUPS)}; named only: floors",
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
            from benchmarks.convnet_profile import train_profile

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
        floors = []
        if "floors" in cases:
            from benchmarks.convnet_floors import floors_case

            print("\nfloors: what NumPy on this BLAS cannot go below, next to netspec and onnxruntime, 1 thread")
            floors = floors_case(folder, args.rounds)
    table = "\n\n".join(part for part in (markdown(forward, train, memory, dense), *floors) if part)
    print(f"\n{table}\n\n({time.perf_counter() - started:,.0f} s)")
    if args.markdown:
        args.markdown.write_text(f"{text}\n\n{table}\n")


DEFAULT_TORCH_THREADS = torch_module().get_num_threads()
"""PyTorch's own choice at start (one per core), before any case holds it at 1."""

if __name__ == "__main__":
    main()
