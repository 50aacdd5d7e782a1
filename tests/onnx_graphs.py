"""Building ONNX graphs for the import tests, and checking what netspec makes of them.

`model` makes a checked graph of hand-written nodes, `imports_as_onnxruntime_runs` imports it and
compares netspec's scores with onnxruntime's, `refusal` gives the one line an import that fails
prints, and `torch_export` writes a PyTorch module as the TorchScript exporter does.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import netspec
from netspec.cli import main

onnx = pytest.importorskip("onnx", reason="pip install 'onnx>=1.16' 'onnxruntime>=1.18' (netspec's onnx extra)")
ort = pytest.importorskip("onnxruntime", reason="pip install 'onnx>=1.16' 'onnxruntime>=1.18' (netspec's onnx extra)")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402 - after the skip above

RNG = np.random.default_rng(0)
W = RNG.normal(size=(4, 4)).astype(np.float32)
W2 = RNG.normal(size=(3, 4)).astype(np.float32)
B = RNG.normal(size=4).astype(np.float32)
KERNEL = RNG.normal(size=(2, 3, 3, 3)).astype(np.float32)
KERNEL2 = RNG.normal(size=(2, 3, 2, 2)).astype(np.float32)


def invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert "Traceback" not in result.output + result.stderr, result.output + result.stderr
    return result


def model(nodes, inputs=("x", ["batch", 4]), outputs=(("y", ["batch", "scores"]),), constants=None, opset=17):
    """A checked model of `nodes` reading one float tensor."""
    stored = {"W": W, "B": B, "W2": W2} if constants is None else constants
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(inputs[0], TensorProto.FLOAT, inputs[1])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape) for name, shape in outputs],
        [numpy_helper.from_array(array, name) for name, array in stored.items()],
    )
    made = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(made, full_check=True)
    return made


def save(made, tmp_path: Path, name: str = "model") -> Path:
    path = tmp_path / f"{name}.onnx"
    onnx.save(made, str(path))
    return path


def imports_as_onnxruntime_runs(path: Path, x: np.ndarray, *options) -> netspec.Network:
    """Import `path`, and check that netspec's scores are onnxruntime's for `x`."""
    out = path.with_suffix(".yaml")
    result = invoke("import", path, "-o", out, *options)
    assert result.exit_code == 0, result.stderr
    network = netspec.load(out)
    session = ort.InferenceSession(str(path))
    expected = session.run(None, {session.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(network.forward(x), expected.reshape(len(x), -1), rtol=1e-5, atol=1e-6)
    return network


def refusal(path: Path) -> str:
    """The one line import prints for a model it refuses; nothing is written."""
    result = invoke("import", path, "-o", path.with_suffix(".yaml"))
    assert result.exit_code == 1 and not path.with_suffix(".yaml").exists()
    assert result.stderr.count("\n") == 1, result.stderr
    return result.stderr.removeprefix(f"{path}: ").rstrip("\n")


def torch_export(torch, module, x, path: Path, **options) -> None:
    module.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (x,), str(path), opset_version=17, **options)
