"""netspec's benchmark suite: `python -m benchmarks` runs every case below, side by side in one run.

  1. forward of 784-256-128-10, float32 and float64, at batch 1, 64 and 4096: netspec, a plain NumPy
     chain, onnxruntime and PyTorch (when installed);
  2. the rose/lotus-shaped 768-4-4-2 net at batch 1;
  3. `netspec run` on one image as a whole process, next to the bare imports;
  4. `netspec run` over 1,000 PNG images of 224×224 into a 32×32 input: images per second, 1 thread and all;
  5. loading a spec with 200,000 inline weights, next to the same weights in a .npy;
  6. validating 1,000 small specs, next to only parsing them with libyaml (in one process and as processes);
  7. one training epoch of dense networks, plain NumPy, netspec and PyTorch (also python -m benchmarks.train_epoch);
     the small CNN is python -m benchmarks.cnn;
  8. `netspec train` of specs/digits.yaml and specs/digits-cnn.yaml, default settings next to
     OPENBLAS_NUM_THREADS=1, idle and with another process keeping one core busy (also
     python -m benchmarks.threads, which with --products times the products behind netspec.threads' rule).
Convolutional networks at real sizes, next to onnxruntime and PyTorch (forward, training step, memory): python -m benchmarks.convnets.
Medians; the machine is shared, so the ratios within one run are the figures that count.
"""

from __future__ import annotations

import compileall
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml

import netspec
from benchmarks import threads, train_epoch
from benchmarks.shared import dense_network, median_seconds, medians_taking_turns

ROOT = Path(__file__).resolve().parent.parent


def chain(network: netspec.Network):
    """The same network as a plain chain of NumPy operations."""
    params = [(layer.params["weights"], layer.params["bias"]) for layer in network.layers]

    def forward(x):
        for w, b in params[:-1]:
            x = np.maximum(x @ w.T + b, 0)
        z = x @ params[-1][0].T + params[-1][1]
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    return forward


def others(network: netspec.Network, folder: Path):
    """onnxruntime and PyTorch runners of the same network, where installed."""
    runners = {}
    try:
        import onnxruntime

        from netspec.interop.export import export

        path = export(network, folder / f"net-{network.dtype}.onnx")
        session = onnxruntime.InferenceSession(str(path))
        runners["onnxruntime"] = lambda x: session.run(None, {"input": x})
    except Exception:  # noqa: BLE001 - a missing or failing runtime is left out of the table
        pass
    try:
        import torch

        modules = []
        for layer in network.layers:
            linear = torch.nn.Linear(*layer.params["weights"].shape[::-1]).to(getattr(torch, str(network.dtype)))
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(layer.params["weights"]))
                linear.bias.copy_(torch.from_numpy(layer.params["bias"]))
            modules += [linear, torch.nn.ReLU()]
        model = torch.nn.Sequential(*modules[:-1], torch.nn.Softmax(dim=1)).eval()

        def run(x):
            with torch.no_grad():
                return model(torch.from_numpy(x))

        runners["PyTorch CPU"] = run
    except ImportError:
        pass
    return runners


def forward_cases(folder: Path) -> None:
    for dtype in ("float32", "float64"):
        network = dense_network([784, 256, 128, 10], dtype)
        runners = {"netspec": network.forward, "plain NumPy": chain(network), **others(network, folder)}
        print(f"\n1. forward 784-256-128-10, {dtype} (µs per call; × plain NumPy)")
        for batch in (1, 64, 4096):
            x = np.random.default_rng(0).random((batch, 784)).astype(dtype)
            repeats = 2000 if batch == 1 else 300 if batch == 64 else 20
            times = {label: median_seconds(lambda run=run, x=x: run(x), repeats) for label, run in runners.items()}
            base = times["plain NumPy"]
            print(
                f"   batch {batch:>4}: "
                + "   ".join(f"{label} {t * 1e6:9.1f} ({t / base:4.2f}×)" for label, t in times.items())
            )
    network = dense_network([768, 4, 4, 2])
    runners = {"netspec": network.forward, "plain NumPy": chain(network), **others(network, folder)}
    x = np.random.default_rng(0).random((1, 768), dtype=np.float32)
    times = {label: median_seconds(lambda run=run: run(x), 3000) for label, run in runners.items()}
    print("\n2. forward 768-4-4-2 at batch 1 (µs per call)")
    print("   " + "   ".join(f"{label} {t * 1e6:6.1f}" for label, t in times.items()))


BARE_IMPORTS = "import numpy, yaml, pydantic, click, PIL.Image"
ONE_MODEL = (
    BARE_IMPORTS + "\nfrom pydantic import BaseModel\nclass M(BaseModel):\n    x: int\nM.model_validate({'x': 1})"
)
"""The bare imports do not load pydantic's models (pydantic imports them on first use); this does."""


def cold_start() -> None:
    # pip writes netspec's bytecode when it installs it; an editable install (or PYTHONDONTWRITEBYTECODE,
    # set on some machines) leaves none, and compiling netspec's modules would add some 35 ms to every run.
    compileall.compile_dir(Path(netspec.__file__).parent, quiet=1)
    commands = {
        "run": [
            sys.executable,
            "-m",
            "netspec",
            "run",
            str(ROOT / "specs" / "rose-vs-lotus.yaml"),
            str(ROOT / "examples" / "images" / "red-rose.png"),
        ],
        "bare": [sys.executable, "-c", BARE_IMPORTS],
        "model": [sys.executable, "-c", ONE_MODEL],
    }
    times = medians_taking_turns(
        {
            label: lambda command=command: subprocess.run(command, check=True, capture_output=True)
            for label, command in commands.items()
        },
        7,
    )
    run, bare, model = (times[label] * 1000 for label in commands)
    print(
        f"\n3. cold start, medians of 7: netspec run on one image {run:.0f} ms; bare imports {bare:.0f} ms "
        f"(ratio {run / bare:.2f}×); bare imports and one pydantic model validating one value {model:.0f} ms "
        f"({model / bare:.2f}× the bare imports; netspec run is {run / model:.2f}× this)"
    )
    first = {"narrow": [], "full": []}
    for _ in range(7):
        for model_kind in first:
            done = subprocess.run(
                [sys.executable, "-c", FIRST_VALIDATION, str(ROOT / "specs" / "rose-vs-lotus.yaml"), model_kind],
                check=True,
                capture_output=True,
                text=True,
            )
            first[model_kind].append(float(done.stdout))
    narrow, full = (statistics.median(first[kind]) * 1000 for kind in ("narrow", "full"))
    print(
        f"   the spec's first validation in a fresh process, medians of 7: {narrow:.1f} ms with the model for its "
        f"layer types (spec.model_for), {full:.1f} ms with the model for all of them"
    )


FIRST_VALIDATION = """
import sys, time, yaml
from netspec.spec import Spec, model_for
data = yaml.safe_load(open(sys.argv[1]))
start = time.perf_counter()
(model_for(data) if sys.argv[2] == "narrow" else Spec).model_validate(data)
print(time.perf_counter() - start)
"""
"""Building pydantic's validator is most of a first validation: how much the narrow models save of it."""


def bulk(folder: Path) -> None:
    from PIL import Image

    from netspec.batches import classify

    images = folder / "bulk"
    images.mkdir()
    rng = np.random.default_rng(0)
    for index in range(1000):
        Image.fromarray(rng.integers(0, 255, (224, 224, 3), dtype=np.uint8)).save(
            images / f"{index:04d}.png", compress_level=1
        )
    spec = {
        "netspec": 1,
        "classes": ["a", "b"],
        "input": {"image": {"width": 32, "height": 32}},
        "layers": [{"type": "dense", "neurons": 2}],
    }
    network = netspec.build(netspec.Spec.model_validate(spec))
    paths = tuple(sorted(images.iterdir()))
    seconds = medians_taking_turns(
        {
            "one": lambda: sum(1 for _ in classify(network, paths, 64, 1)),
            "all": lambda: sum(1 for _ in classify(network, paths, 64, None)),
        },
        3,
    )
    one, every = len(paths) / seconds["one"], len(paths) / seconds["all"]
    print(
        f"\n4. bulk, medians of 3: 1,000 PNG 224×224 → 32×32: {one:,.0f} images/s on 1 thread, {every:,.0f} on all ({every / one:.2f}×)"
    )


def inline_weights(folder: Path) -> None:
    weights = np.random.default_rng(0).normal(size=(200, 1000)).round(4)
    inline = folder / "inline.yaml"
    head = "netspec: 1\nclasses: [a, b]\ninput: {features: 1000}\nlayers:\n"
    inline.write_text(
        head
        + f"  - {{name: h, type: dense, neurons: 200, weights: {weights.tolist()}}}\n  - {{type: dense, neurons: 2}}\n"
    )
    np.save(folder / "h.npy", weights)
    stored = folder / "stored.yaml"
    stored.write_text(
        head + "  - {name: h, type: dense, neurons: 200, weights: {file: h.npy}}\n  - {type: dense, neurons: 2}\n"
    )
    a, b = median_seconds(lambda: netspec.load(inline), 3), median_seconds(lambda: netspec.load(stored), 20)
    print(f"\n5. a spec with 200,000 weights: inline {a * 1000:,.0f} ms, in a .npy {b * 1000:,.1f} ms")


def many_specs(folder: Path) -> None:
    specs = folder / "specs"
    specs.mkdir()
    text = (ROOT / "examples" / "rose-vs-lotus.yaml").read_text()
    for index in range(1000):
        (specs / f"spec{index:04d}.yaml").write_text(text.replace("seed: 7", f"seed: {index}"))
    files = sorted(specs.iterdir())
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    parse_code = f"import yaml, pathlib; [yaml.load(p.read_text(), Loader=yaml.CSafeLoader) for p in sorted(pathlib.Path({str(specs)!r}).iterdir())]"
    work = {
        "parse": lambda: [yaml.load(p.read_text(), Loader=loader) for p in files],
        "validate": lambda: [netspec.check(p, warnings=[]) for p in files],  # what `netspec validate` does per file
        "parse process": lambda: subprocess.run([sys.executable, "-c", parse_code], check=True),
        "validate process": lambda: subprocess.run(
            [sys.executable, "-m", "netspec", "validate", str(specs)], check=True, capture_output=True
        ),
    }
    t = {label: seconds * 1000 for label, seconds in medians_taking_turns(work, 5).items()}
    print(
        f"\n6. validate 1,000 small specs, medians of 5: in one process {t['validate']:,.0f} ms, parsing them with "
        f"libyaml {t['parse']:,.0f} ms, ratio {t['validate'] / t['parse']:.2f}×; as processes (with Python's and the "
        f"imports' start) {t['validate process']:,.0f} ms and {t['parse process']:,.0f} ms, ratio "
        f"{t['validate process'] / t['parse process']:.2f}×"
    )


def main() -> None:
    print(f"netspec {netspec.__version__}, numpy {np.__version__}, python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        forward_cases(folder)
        cold_start()
        bulk(folder)
        inline_weights(folder)
        many_specs(folder)
    print("\n7. one training epoch (python -m benchmarks.train_epoch alone; a small CNN: python -m benchmarks.cnn)")
    train_epoch.report(repeats=3)
    print(
        "\n8. BLAS threads: netspec train, default settings / OPENBLAS_NUM_THREADS=1 (python -m benchmarks.threads alone)"
    )
    threads.report(rounds=3)


if __name__ == "__main__":
    main()
