"""ONNX: export computes the same scores in onnxruntime; import maps graphs back, from netspec and PyTorch."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import netspec
from netspec.cli import main

onnx = pytest.importorskip("onnx", reason="pip install 'onnx>=1.16' 'onnxruntime>=1.18' (netspec's onnx extra)")
ort = pytest.importorskip("onnxruntime", reason="pip install 'onnx>=1.16' 'onnxruntime>=1.18' (netspec's onnx extra)")

ROOT = Path(__file__).resolve().parent.parent

EVERY_LAYER = """\
netspec: 1
classes: [a, b, c]
input: {image: {width: 9, height: 7, color: rgb, scale: [-1, 1], mean: [0.1, 0.2, 0.3], std: [1, 2, 3]}}
dtype: DTYPE
layers:
  - {name: conv1, type: conv2d, filters: 4, kernel: [3, 2], padding: same, activation: leaky_relu, alpha: 0.2}
  - {name: norm1, type: batchnorm, mean: {init: normal, seed: 1}, var: 2.0, scale: {init: uniform, seed: 2}}
  - {name: pool1, type: maxpool2d, size: 3, stride: 2, padding: 1}
  - {name: conv2, type: conv2d, filters: 5, kernel: 2, stride: 2, dilation: 1, padding: 1, activation: tanh}
  - {name: avg, type: avgpool2d, size: 2, stride: 1, padding: 1}
  - {name: drop, type: dropout, rate: 0.3}
  - {name: flat, type: flatten}
  - {name: norm2, type: batchnorm, shift: 0.5}
  - {name: hidden, type: dense, neurons: 6, activation: sigmoid}
  - {name: output, type: dense, neurons: 3, activation: softmax}
"""
GLOBAL_POOL = """\
netspec: 1
classes: [a, b]
input: {image: {width: 8, height: 8, color: grayscale}}
layers:
  - {name: conv, type: conv2d, filters: 3, kernel: 3, activation: relu}
  - {name: gap, type: global_avgpool}
  - {name: output, type: dense, neurons: 2}
"""
# Grouped and depthwise convolutions, padding per side, ceil_mode: pool1's last column of windows would
# start in the padding (7 + 2 - 2 = 7 → ceil(7 / 2) + 1 = 5 windows, the 5th starting at 8 = 7 + 1: 4),
# which ONNX's shape rule for ceil_mode keeps; pool2 and pool3 round up as ONNX does.
GROUPED = """\
netspec: 1
classes: [a, b, c]
input: {image: {width: 11, height: 9, color: rgb}}
layers:
  - {name: conv1, type: conv2d, filters: 6, kernel: 3, padding: [1, 0, 2, 1], activation: relu}
  - {name: grouped, type: conv2d, filters: 4, kernel: [3, 2], groups: 2, stride: 2, dilation: [1, 2], padding: [1, 2]}
  - {name: depthwise, type: conv2d, filters: 8, kernel: 3, groups: 4, padding: same, activation: tanh}
  - {name: pool1, type: maxpool2d, size: 2, stride: 2, padding: 1, ceil_mode: true}
  - {name: pool2, type: avgpool2d, size: 2, stride: 2, padding: [0, 1, 1, 0], ceil_mode: true}
  - {name: pool3, type: maxpool2d, size: 2, ceil_mode: true}
  - {type: flatten}
  - {name: out, type: dense, neurons: 3}
"""


def invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert "Traceback" not in result.output + result.stderr, result.output + result.stderr
    return result


def specs(tmp_path) -> list[Path]:
    (tmp_path / "every.yaml").write_text(EVERY_LAYER.replace("DTYPE", "float32"))
    # onnxruntime runs float64 dense layers but has no float64 convolution: this one is dense only.
    (tmp_path / "every64.yaml").write_text(
        "netspec: 1\nclasses: [a, b]\ninput: {features: 5}\ndtype: float64\nlayers:\n"
        "  - {name: h, type: dense, neurons: 4, activation: tanh}\n  - {name: n, type: batchnorm}\n"
        "  - {name: d, type: dropout, rate: 0.1}\n  - {name: o, type: dense, neurons: 2, activation: softmax}\n"
    )
    (tmp_path / "gap.yaml").write_text(GLOBAL_POOL)
    (tmp_path / "grouped.yaml").write_text(GROUPED)
    return [
        *sorted((ROOT / "specs").glob("*.yaml")),
        ROOT / "examples" / "residual-block.yaml",
        *(tmp_path / n for n in ("every.yaml", "every64.yaml", "gap.yaml", "grouped.yaml")),
    ]


def test_exported_models_give_netspecs_scores_in_onnxruntime(tmp_path):
    for spec in specs(tmp_path):
        out = tmp_path / "onnx" / f"{spec.stem}.onnx"
        assert invoke("export", spec, "-o", out).stdout == f"wrote {out}\n"
        model = onnx.load(str(out))
        onnx.checker.check_model(model, full_check=True)
        network = netspec.load(spec)
        x = np.random.default_rng(0).normal(size=(5, *network.input_shape)).astype(network.dtype)
        scores = ort.InferenceSession(str(out)).run(None, {"input": x})[0]
        np.testing.assert_allclose(scores, network.forward(x), rtol=1e-5, atol=1e-6, err_msg=spec.name)
        metadata = {p.key: p.value for p in model.metadata_props}
        assert metadata["netspec.classes"] == __import__("json").dumps(network.classes)
        assert "netspec.input" in metadata and model.opset_import[0].version >= 17


def test_export_then_import_gives_identical_arrays(tmp_path):
    # Graph specs too (specs/digits-resnet.yaml, examples/residual-block.yaml): their add layers come back.
    for spec in specs(tmp_path):
        model = tmp_path / "onnx" / f"{spec.stem}.onnx"
        invoke("export", spec, "-o", model)
        back = tmp_path / "back" / f"{spec.stem}.yaml"
        assert invoke("import", model, "-o", back).stdout == f"wrote {back} and {back.with_suffix('.npz')}\n"
        before, after = netspec.load(spec), netspec.load(back)
        assert [layer.name for layer in after.layers] == [layer.name for layer in before.layers]
        assert [layer.inputs for layer in after.layers] == [layer.inputs for layer in before.layers]
        assert [layer.spec.activation for layer in after.layers if hasattr(layer.spec, "activation")] == [
            layer.spec.activation for layer in before.layers if hasattr(layer.spec, "activation")
        ]
        assert after.classes == before.classes and after.spec.input == before.spec.input
        befores = {f"{layer.name}.{k}": a for layer in before.layers for k, a in layer.params.items()}
        afters = {f"{layer.name}.{k}": a for layer in after.layers for k, a in layer.params.items()}
        assert befores.keys() == afters.keys()
        for key in befores:
            np.testing.assert_array_equal(afters[key], befores[key], err_msg=key)
        x = np.random.default_rng(1).normal(size=(3, *before.input_shape)).astype(before.dtype)
        np.testing.assert_array_equal(after.forward(x), before.forward(x))


def test_groups_and_ceil_mode_are_written_so_that_onnx_shapes_agree(tmp_path):
    (tmp_path / "grouped.yaml").write_text(GROUPED)
    out = tmp_path / "grouped.onnx"
    invoke("export", tmp_path / "grouped.yaml", "-o", out)
    model = onnx.load(str(out))
    attributes = {
        node.name: {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute} for node in model.graph.node
    }
    assert [attributes[f"{name}.conv"]["group"] for name in ("conv1", "grouped", "depthwise")] == [1, 2, 4]
    assert attributes["conv1.conv"]["pads"] == [1, 2, 0, 1]  # ONNX's order: top, left, bottom, right
    # pool1: ONNX would round up to 5 columns; written as the 4 windows it has, without ceil_mode.
    assert attributes["pool1"]["pads"] == [1, 1, 1, 1] and attributes["pool1"].get("ceil_mode", 0) == 0
    assert attributes["pool2"] == {
        "ceil_mode": 1,
        "count_include_pad": 0,
        "kernel_shape": [2, 2],
        "pads": [0, 1, 1, 0],
        "strides": [2, 2],
    }
    assert attributes["pool3"]["ceil_mode"] == 1
    # onnx's shape inference and netspec agree on every tensor's shape.
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True).graph.value_info
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim][1:] for v in inferred}
    network = netspec.load(tmp_path / "grouped.yaml")
    for layer in network.layers[:6]:
        assert tuple(shapes[layer.name if layer.type.endswith("pool2d") else f"{layer.name}.conv"]) == (
            layer.output_shape
        )
    for batch in (1, 5):
        x = np.random.default_rng(batch).normal(size=(batch, *network.input_shape)).astype(np.float32)
        scores = ort.InferenceSession(str(out)).run(None, {"input": x})[0]
        np.testing.assert_allclose(scores, network.forward(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_a_model_pytorch_exported_predicts_as_pytorch_does(tmp_path, kind):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    if kind == "mlp":
        model = torch.nn.Sequential(
            torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3), torch.nn.Softmax(dim=1)
        )
        x = torch.randn(10, 6)
    else:
        model = torch.nn.Sequential(
            torch.nn.Conv2d(1, 4, 3, padding=1),
            torch.nn.BatchNorm2d(4),
            torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(4, 6, 3),
            torch.nn.Tanh(),
            torch.nn.Flatten(),
            torch.nn.Dropout(0.2),
            torch.nn.Linear(24, 3),
        )
        x = torch.randn(10, 1, 8, 8)
    model.eval()
    path = tmp_path / f"{kind}.onnx"
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (x,), str(path), dynamo=False, opset_version=17, input_names=["input"], output_names=["scores"]
        )
    out = tmp_path / f"{kind}.yaml"
    invoke("import", path, "-o", out)
    network = netspec.load(out)
    with torch.no_grad():
        expected = model(x).numpy()
    np.testing.assert_allclose(network.forward(x.numpy()), expected, rtol=1e-4, atol=1e-5)
    assert network.predict(x.numpy()) == [str(i) for i in expected.argmax(axis=1)]


def test_an_unmappable_operator_is_named(tmp_path):
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Exp", ["input"], ["scores"], name="exp1")],
        "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 2])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", 2])],
    )
    path = tmp_path / "exp.onnx"
    onnx.save(helper.make_model(graph), str(path))
    result = invoke("import", path, "-o", tmp_path / "exp.yaml")
    assert result.exit_code == 1
    assert result.stderr == (
        f"{path}: NS503 node 'exp1' (Exp): this operator is not one netspec has (docs/onnx.md lists what import maps)\n"
    )
    (tmp_path / "junk.onnx").write_text("not onnx")
    result = invoke("import", tmp_path / "junk.onnx", "-o", tmp_path / "junk.yaml")
    assert result.exit_code == 1 and "NS502 not a readable ONNX model" in result.stderr


def test_a_model_missing_what_its_nodes_need_is_one_line_not_a_crash(tmp_path):
    from onnx import TensorProto, helper

    scores = helper.make_tensor_value_info("scores", TensorProto.FLOAT, None)
    image = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, 4, 4])
    no_kernel = helper.make_model(
        helper.make_graph([helper.make_node("MaxPool", ["input"], ["scores"], name="pool")], "g", [image], [scores])
    )
    numbers = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3])
    bad_metadata = helper.make_model(
        helper.make_graph([helper.make_node("Identity", ["input"], ["scores"])], "g", [numbers], [scores])
    )
    helper.set_model_props(bad_metadata, {"netspec.classes": "[not json"})
    for name, model, message in [
        (
            "no-kernel",
            no_kernel,
            "node 'pool' (MaxPool) is malformed: it lacks what it needs (KeyError: 'kernel_shape')",
        ),
        (
            "bad-metadata",
            bad_metadata,
            "the model is malformed: a node or its metadata lacks what it needs "
            "(JSONDecodeError: Expecting value: line 1 column 2 (char 1))",
        ),
    ]:
        path = tmp_path / f"{name}.onnx"
        onnx.save(model, str(path))
        result = invoke("import", path, "-o", tmp_path / f"{name}.yaml")
        assert (result.exit_code, result.stderr) == (1, f"{path}: NS502 {message}\n")
        assert not (tmp_path / f"{name}.yaml").exists()


def test_imported_arrays_get_the_checks_of_a_specs_own_weight_files(tmp_path):
    from onnx import TensorProto, helper, numpy_helper

    stored = {
        "s": np.ones(1),
        "b": np.zeros(1),
        "m": np.zeros(1),
        "v": -np.ones(1),
        "W": np.ones((2, 16)),
        "B": np.zeros(2),
    }
    nodes = [
        helper.make_node("BatchNormalization", ["input", "s", "b", "m", "v"], ["normed"], name="norm"),
        helper.make_node("Flatten", ["normed"], ["flat"]),
        helper.make_node("Gemm", ["flat", "W", "B"], ["scores"], transB=1, name="out"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, 4, 4])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(a.astype(np.float32), name) for name, a in stored.items()],
    )
    path = tmp_path / "negative-variance.onnx"
    onnx.save(helper.make_model(graph), str(path))
    result = invoke("import", path, "-o", tmp_path / "imported.yaml")
    assert (result.exit_code, result.stderr) == (
        1,
        f"{path}: NS104 layers[0].var: layer 'norm': var holds negative values; a variance is never below 0\n",
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["negative-variance.onnx"]


def test_external_data_outside_the_models_folder_is_refused(tmp_path):
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(np.ones((2, 2), dtype=np.float32), "w.weights")
    weights.data_location = TensorProto.EXTERNAL
    entry = weights.external_data.add()
    entry.key, entry.value = "location", "../../etc/passwd"
    weights.ClearField("raw_data")
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["input", "w.weights"], ["scores"], transB=1)],
        "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 2])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", 2])],
        [weights],
    )
    path = tmp_path / "model" / "ext.onnx"
    path.parent.mkdir()
    path.write_bytes(helper.make_model(graph).SerializeToString())
    result = invoke("import", path, "-o", tmp_path / "ext.yaml")
    assert result.exit_code == 1
    assert (
        result.stderr
        == f"{path}: NS504 tensor 'w.weights' keeps its data in '../../etc/passwd', outside the model's folder or missing\n"
    )


def test_an_external_data_file_cut_short_is_refused_saying_so(tmp_path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(np.ones((64, 64), dtype=np.float32), "w.weights")
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["input", "w.weights"], ["scores"], transB=1)],
        "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 64])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", 64])],
        [weights],
    )
    path = tmp_path / "ext.onnx"
    onnx.save(
        helper.make_model(graph), str(path), save_as_external_data=True, location="ext.onnx.data", size_threshold=0
    )
    data = tmp_path / "ext.onnx.data"
    data.write_bytes(data.read_bytes()[:1000])  # 16,384 bytes written, 1,000 left
    result = invoke("import", path, "-o", tmp_path / "ext.yaml")
    assert result.exit_code == 1 and not (tmp_path / "ext.yaml").exists()
    assert result.stderr.startswith(f"{path}: NS504 the model's external data cannot be read (")
    assert result.stderr.endswith("); copy the model's data file again\n") and result.stderr.count("\n") == 1
    assert "16384" in result.stderr  # onnx's words: the length the tensor needs


def test_an_empty_file_is_no_model(tmp_path):
    (tmp_path / "empty.onnx").write_bytes(b"")
    result = invoke("import", tmp_path / "empty.onnx", "-o", tmp_path / "x.yaml")
    assert (result.exit_code, result.stderr) == (
        1,
        f"{tmp_path / 'empty.onnx'}: NS502 the file is empty; give a model exported to ONNX\n",
    )


def test_run_does_not_import_onnx(tmp_path):
    import subprocess
    import sys

    code = (
        "import sys, netspec.cli; from click.testing import CliRunner; "
        f"CliRunner().invoke(netspec.cli.main, ['run', {str(ROOT / 'specs' / 'rose-vs-lotus.yaml')!r}, {str(ROOT / 'examples' / 'images' / 'red-rose.png')!r}]); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('onnx', 'onnxruntime', 'torch', 'sklearn', 'matplotlib')))"
    )
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout.strip() == "[]"
    )


def test_without_onnx_the_commands_say_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if it were not installed
    result = invoke("export", ROOT / "specs" / "rose-vs-lotus.yaml", "-o", tmp_path / "net.onnx")
    assert (result.exit_code, result.stderr) == (
        1,
        "NS501 ONNX support needs the onnx package: pip install 'onnx>=1.16' 'onnxruntime>=1.18' (netspec's onnx extra)\n",
    )
    assert not (tmp_path / "net.onnx").exists()


def test_the_input_dtype_is_read_from_the_input_not_from_a_weight_listed_among_the_inputs(tmp_path):
    """Files from older exporters list their weights in graph.input too, sometimes before the input."""
    from onnx import TensorProto, helper, numpy_helper

    shape = numpy_helper.from_array(np.array([0, -1], dtype=np.int64), "shape")
    weights = numpy_helper.from_array(np.ones((2, 3), dtype=np.float32), "out.weights")
    graph = helper.make_graph(
        [
            helper.make_node("Reshape", ["input", "shape"], ["flat"], name="flatten"),
            helper.make_node("Gemm", ["flat", "out.weights"], ["scores"], name="out", transB=1),
        ],
        "g",
        [
            helper.make_tensor_value_info("shape", TensorProto.INT64, [2]),
            helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3]),
        ],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", 2])],
        initializer=[shape, weights],
    )
    path = tmp_path / "old.onnx"
    onnx.save(helper.make_model(graph), str(path))
    result = invoke("import", path, "-o", tmp_path / "old.yaml")
    assert result.exit_code == 0, result.stderr
    assert netspec.load(tmp_path / "old.yaml").spec.dtype == "float32"
