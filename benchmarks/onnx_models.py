"""The classic ImageNet classifiers through `netspec import`: does each import, validate, and give onnxruntime's scores?

    python -m benchmarks.onnx_models [names...] [--markdown FILE] [--keep DIR] [--rounds 3] [--dynamic-batch]

Two sources, 22 graphs of the 19 architectures of issue 14:

- torchvision's definitions (0.28.0) with random weights, seeded, their batch norms' running means
  and variances and affine weights made random too (a fresh batch norm is an identity, which would
  hide a mistake in mapping it), exported by `torch.onnx.export` at opset 17 with `dynamo=False`
  and `training=TrainingMode.PRESERVE`: on a module in eval mode, that keeps each BatchNormalization
  node (in inference mode) where the default, `TrainingMode.EVAL`, folds it into the Conv before it,
  so the spec's parameter count can be compared with torchvision's `sum(p.numel() for p in
  model.parameters())` (ResNet-18: 11,689,512). The input is (1, 3, 224, 224), the batch fixed as
  `torch.onnx.export` writes it unless told otherwise (`--dynamic-batch`: `dynamic_axes` on it);
- the Caffe-era graphs the onnx package ships in its backend test data (`light_*.onnx`, Caffe2's
  exports of the ONNX model zoo at opset 9), whose weights are `ConstantOfShape` fills of 0.02:
  each fill becomes a random initializer of its shape, and the few weights stored as initializers
  are made random too (ShuffleNet's keeps variances of 5e-14), so that the scores show exactness;
  weights are scaled to keep activations in range (He's rule), variances are positive, and the
  layer before the last Softmax is scaled so that its logits spread by about 2 on the image
  compared (else the Softmax of a deep random network gives one class 1 and the others 0, scores
  that hide any difference). The reference count is the values of the float arrays the nodes read
  (a batch norm's running statistics among them, so it is compared with netspec's total count).
  Caffe's Scale after a batch norm (Inception v2's and DenseNet-121's: a Mul and an Add of one value
  per channel) has arrays of its own there, which import folds into the batch norm's scale and
  shift: those rows say "= after folding N Scale values" where netspec's count is the reference
  less the Scale's arrays, and "≠" only where the counts differ otherwise.

For each: import (the Python API, as `netspec import` does; a refusal prints its NS503 line and the
next model follows), `netspec validate` on the spec written (as a process), the summary's parameter
count, then `Network.forward` on one seeded random image, normalised as ImageNet's are, next to
onnxruntime on the same graph: the largest difference of the scores relative to the largest score
(|netspec − onnxruntime| / max |onnxruntime|; the target is 1e-4), whether the top-1 class agrees, the
same difference for the spec exported again (`netspec export`) and run by onnxruntime, and the median time of one forward of each, taking turns. Both run on one thread: netspec's BLAS held at
1 (`Network.forward(x, threads=1)`), onnxruntime with `intra_op_num_threads=1` and
`inter_op_num_threads=1` and its default graph optimisations; PyTorch too, while it exports.
One model at a time, its files in a temporary folder (or `--keep DIR`), freed before the next.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import netspec
from benchmarks.model_graphs import image, one_thread_session, torchvision_graph, torchvision_module, zoo_graph
from benchmarks.shared import medians_taking_turns
from netspec.errors import SpecError

MAX_PARAMS = 200_000_000
"""Above VGG-19's 143,667,240 parameters: the size limit is not what this checks."""
TARGET = 1e-4

TORCHVISION = (
    "alexnet",
    "vgg11",
    "vgg19",
    "resnet18",
    "resnet50",
    "squeezenet1_0",
    "squeezenet1_1",
    "googlenet",
    "densenet121",
    "mobilenet_v2",
    "mobilenet_v3_small",
    "shufflenet_v2_x1_0",
    "efficientnet_b0",
)
ZOO = (
    "bvlc_alexnet",
    "zfnet512",
    "vgg19",
    "resnet50",
    "squeezenet",
    "inception_v1",
    "inception_v2",
    "densenet121",
    "shufflenet",
)
"""The stems of the onnx package's light_*.onnx; named zoo-<stem> here (zoo-vgg19 next to torchvision's vgg19)."""
NAMES = TORCHVISION + tuple(f"zoo-{stem}" for stem in ZOO)


@dataclass
class Row:
    """What one model gave; `refusal` (the NS5xx line) or `error` when it stopped before the scores."""

    name: str
    source: str
    reference_params: int = 0
    folded_params: int = 0
    """Of the reference, the values of Caffe's Scale arrays that import folds into the batch norm before them."""
    imported: bool = False
    import_seconds: float = 0.0
    valid: str = ""
    params: int = 0
    trainable: int = 0
    relative_error: float | None = None
    round_trip_error: float | None = None
    """netspec's export of the imported spec, run by onnxruntime, against the original graph's scores."""
    same_top1: bool | None = None
    netspec_ms: float | None = None
    onnxruntime_ms: float | None = None
    top_score: float = 0.0
    """onnxruntime's largest score: far below 1 for a softmax, the scores are not one class's alone."""
    refusal: str = ""
    error: str = ""


def check(name: str, folder: Path, rounds: int, dynamic_batch: bool) -> Row:
    """Export or rewrite `name`, import it, and compare netspec's scores and time with onnxruntime's."""
    from netspec.interop.importer import import_model

    zoo = name.startswith("zoo-")
    row = Row(name, "onnx zoo (Caffe2), opset 9" if zoo else "torchvision, opset 17")
    path = folder / f"{name}.onnx"
    if zoo:
        row.reference_params, row.folded_params = zoo_graph(name[4:], path)
    else:
        row.reference_params = torchvision_graph(name, path, dynamic_batch)
    spec = folder / f"{name}.yaml"
    start = time.perf_counter()
    try:
        import_model(path, spec, max_params=MAX_PARAMS)
    except SpecError as err:
        # without the file's name: a temporary folder's, the same for every model
        row.refusal = "; ".join(f"{problem.code} {problem.message}" for problem in err.problems)
        return row
    row.import_seconds = time.perf_counter() - start
    row.imported = True
    validated = subprocess.run(
        [sys.executable, "-m", "netspec", "validate", str(spec), "--max-params", str(MAX_PARAMS)],
        capture_output=True,
        text=True,
    )
    row.valid = "yes" if validated.returncode == 0 else (validated.stdout + validated.stderr).strip().splitlines()[0]
    network = netspec.load(spec, max_params=MAX_PARAMS)
    summary = network.summary()
    row.params, row.trainable = summary.params, summary.trainable_params
    x = image()
    session = one_thread_session(path)
    feed = {session.get_inputs()[0].name: x}
    ours = network.forward(x, threads=1)
    theirs = session.run(None, feed)[0].reshape(len(x), -1)
    row.relative_error = float(np.max(np.abs(ours - theirs)) / np.max(np.abs(theirs)))
    row.same_top1 = bool(np.argmax(ours) == np.argmax(theirs))
    row.top_score = float(np.max(theirs))
    from netspec.interop.export import export

    exported = export(network, folder / f"{name}.netspec.onnx")
    again = one_thread_session(exported).run(None, {"input": x})[0].reshape(len(x), -1)
    row.round_trip_error = float(np.max(np.abs(again - theirs)) / np.max(np.abs(theirs)))
    times = medians_taking_turns(
        {"netspec": lambda: network.forward(x, threads=1), "onnxruntime": lambda: session.run(None, feed)}, rounds
    )
    row.netspec_ms, row.onnxruntime_ms = times["netspec"] * 1000, times["onnxruntime"] * 1000
    return row


def params_cell(row: Row) -> str:
    """netspec's count next to the reference: trainable for torchvision (whose parameters() leave the running
    statistics out), all for the zoo's graphs (whose arrays hold them). Equal once Caffe's Scale arrays, folded into
    the batch norms, are left out of the reference, it says so: those values are in netspec's batch norms."""
    ours = row.params if row.name.startswith("zoo-") else row.trainable
    if not row.imported:
        return f"— / {row.reference_params:,}"
    if ours == row.reference_params:
        return f"{ours:,} / {row.reference_params:,}"
    if row.folded_params and ours == row.reference_params - row.folded_params:
        return f"{ours:,} / {row.reference_params:,} = after folding {row.folded_params:,} Scale values"
    return f"{ours:,} / {row.reference_params:,} ≠"


def table(rows: list[Row]) -> str:
    lines = [
        "| model | source | imports? | validate | params netspec / reference | max rel err | top-1 same "
        "| export→onnxruntime err | netspec ms | onnxruntime ms |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        if row.error or row.refusal:
            # the line up to its first clause: the node, its operator and what is wrong (the console has it whole)
            why = (row.refusal or row.error).split("; ")[0].replace("|", "\\|")
            lines.append(f"| {row.name} | {row.source} | no: {why} | | {params_cell(row)} | | | | | |")
            continue
        error = f"{row.relative_error:.1e}" + ("" if row.relative_error <= TARGET else " ✗")
        trip = f"{row.round_trip_error:.1e}" + ("" if row.round_trip_error <= TARGET else " ✗")
        lines.append(
            f"| {row.name} | {row.source} | yes ({row.import_seconds:.1f} s) | {row.valid} | {params_cell(row)} | "
            f"{error} | {'yes' if row.same_top1 else 'NO'} | {trip} | {row.netspec_ms:,.0f} | {row.onnxruntime_ms:,.0f} |"
        )
    return "\n".join(lines)


def versions() -> str:
    import onnx
    import onnxruntime
    import torch

    return (
        f"netspec {netspec.__version__}, numpy {np.__version__}, torch {torch.__version__}, "
        f"torchvision {torchvision_module().__version__}, onnx {onnx.__version__}, onnxruntime {onnxruntime.__version__}, "
        f"python {sys.version.split()[0]}, {os.cpu_count()} cores"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"models to check (default: all): {', '.join(NAMES)}")
    parser.add_argument("--markdown", type=Path, metavar="FILE", help="also write the table to FILE")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="keep the .onnx, specs and .npz in DIR")
    parser.add_argument("--rounds", type=int, default=3, help="forward passes timed per model (medians)")
    parser.add_argument(
        "--dynamic-batch", action="store_true", help="export torchvision's models with a batch left open"
    )
    args = parser.parse_args()
    unknown = [name for name in args.names if name not in NAMES]
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; choose among {', '.join(NAMES)}")
    import torch

    torch.set_num_threads(1)
    header = (
        f"{versions()}\nthreads: netspec forward(threads=1) (BLAS held at 1); onnxruntime intra_op_num_threads=1, "
        f"inter_op_num_threads=1, default graph optimisations; torch.set_num_threads(1); medians of {args.rounds} "
        f"forward passes on one 224×224 image, taking turns; "
        f"{'batch left open' if args.dynamic_batch else 'batch fixed at 1'} in torchvision's exports"
    )
    print(header, flush=True)
    rows = []
    for name in args.names or NAMES:
        folder = Path(tempfile.mkdtemp(prefix=f"netspec-{name}-"))
        try:
            try:
                row = check(name, folder, args.rounds, args.dynamic_batch)
            except Exception as err:  # noqa: BLE001 - one model's failure is a result of the run, not its end
                row = Row(
                    name, "onnx zoo" if name.startswith("zoo-") else "torchvision", error=f"{type(err).__name__}: {err}"
                )
            if args.keep:
                args.keep.mkdir(parents=True, exist_ok=True)
                for made in folder.iterdir():
                    shutil.move(str(made), args.keep / made.name)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
            gc.collect()
        rows.append(row)
        if row.refusal or row.error:
            print(f"{name}: {row.refusal or row.error}", flush=True)
        else:
            print(
                f"{name}: imports, validate {row.valid}, params {params_cell(row)}, max rel err {row.relative_error:.1e}, "
                f"exported again {row.round_trip_error:.1e}, "
                f"top-1 {'same' if row.same_top1 else 'DIFFERENT'} (top score {row.top_score:.3g}), netspec {row.netspec_ms:,.0f} ms, "
                f"onnxruntime {row.onnxruntime_ms:,.0f} ms",
                flush=True,
            )
    text = table(rows)
    imported = sum(
        row.imported and row.relative_error is not None and max(row.relative_error, row.round_trip_error) <= TARGET
        for row in rows
    )
    footer = f"{imported} of {len(rows)} import and give onnxruntime's scores to {TARGET:g}, exported again too"
    print(f"\n{text}\n\n{footer}")
    if args.markdown:
        args.markdown.write_text(f"{header}\n\n{text}\n\n{footer}\n")


if __name__ == "__main__":
    main()
