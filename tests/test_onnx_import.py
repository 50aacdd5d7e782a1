"""ONNX import follows the graph by tensor names: it reproduces a chain exactly, or refuses naming the node.

Each graph here passes `onnx.checker`; where import succeeds, netspec's scores are compared with
onnxruntime's, and where it refuses, the exact NS503 line is asserted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx_graphs import (
    KERNEL,
    KERNEL2,
    RNG,
    B,
    W,
    helper,
    imports_as_onnxruntime_runs,
    invoke,
    model,
    numpy_helper,
    onnx,
    refusal,
    save,
    torch_export,
)

import netspec


def gemm(source: str, out: str, name: str = "gemm", weights: str = "W", bias: str = "B"):
    return helper.make_node("Gemm", [source, weights, bias], [out], transB=1, name=name)


# Graphs the chain-reading importer turned into wrong networks (exit 0): now refused, naming the node.


def test_a_dead_side_branch_is_refused_not_applied(tmp_path):
    # y = Gemm(x); a Relu of y that nothing reads. The old importer applied the Relu anyway.
    path = save(model([gemm("x", "y"), helper.make_node("Relu", ["y"], ["unused"], name="relu")]), tmp_path)
    assert refusal(path) == (
        "NS503 node 'relu' (Relu): its output 'unused' is not used on the way to the graph output 'y'; netspec maps "
        "every node from the input to the output, so remove the unused ones (or export the model without them)"
    )


def test_a_relu_of_the_graph_input_after_a_gemm_is_refused(tmp_path):
    # y = Relu(x), listed after a Gemm of x whose result nothing reads: the old importer gave Relu(Gemm(x)).
    path = save(model([gemm("x", "h"), helper.make_node("Relu", ["x"], ["y"], name="relu")]), tmp_path)
    assert refusal(path) == (
        "NS503 node 'gemm' (Gemm): its output 'h' is not used on the way to the graph output 'y'; netspec maps "
        "every node from the input to the output, so remove the unused ones (or export the model without them)"
    )


def test_a_softmax_over_the_batch_is_refused(tmp_path):
    path = save(model([gemm("x", "h"), helper.make_node("Softmax", ["h"], ["y"], axis=0, name="softmax")]), tmp_path)
    assert refusal(path) == (
        "NS503 node 'softmax' (Softmax): a Softmax over axis 0 of a tensor of shape (batch, 4); netspec's softmax "
        "is over the class scores, axis 1 of (batch, classes)"
    )


@pytest.mark.parametrize("axis", [1, -1, None])
def test_a_softmax_over_the_class_scores_imports(tmp_path, axis):
    attributes = {} if axis is None else {"axis": axis}
    for opset in (11, 17):  # the default axis was 1 before opset 13, -1 since: the same on (batch, classes)
        softmax = helper.make_node("Softmax", ["h"], ["y"], name="softmax", **attributes)
        path = save(model([gemm("x", "h"), softmax], opset=opset), tmp_path, f"softmax{opset}")
        network = imports_as_onnxruntime_runs(path, RNG.normal(size=(5, 4)).astype(np.float32))
        assert network.layers[-1].spec.activation == "softmax"


def test_a_node_reading_the_data_as_its_weights_is_refused(tmp_path):
    # W @ x, not x @ W: the data is MatMul's second input.
    path = save(model([helper.make_node("MatMul", ["W", "x"], ["y"], name="matmul")], inputs=("x", [4, 4])), tmp_path)
    assert (
        refusal(path) == "NS503 node 'matmul' (MatMul): it reads 'x' as its input 1, not as its first input (the data)"
    )


def test_a_residual_connection_imports_as_an_add_layer(tmp_path):
    # y = h + Relu(h): h is read twice, so the Relu is a layer of its own, not the Gemm's activation.
    nodes = [
        gemm("x", "h"),
        helper.make_node("Relu", ["h"], ["r"], name="relu"),
        helper.make_node("Add", ["h", "r"], ["y"], name="add"),
    ]
    network = imports_as_onnxruntime_runs(save(model(nodes), tmp_path), RNG.normal(size=(5, 4)).astype(np.float32))
    assert [(layer.name, layer.spec.type, layer.inputs) for layer in network.layers] == [
        ("dense_0", "dense", ["input"]),
        ("relu", "activation", ["dense_0"]),
        ("add", "add", ["dense_0", "relu"]),
    ]
    assert network.layers[0].spec.activation == "linear"
    text = (tmp_path / "model.yaml").read_text()
    # One layer a line, and a chain's layers name no inputs.
    assert "  - {name: add, type: add, inputs: [dense_0, relu]}\n" in text and text.count("inputs") == 1


def test_a_layer_reading_the_graph_input_in_the_middle_reads_input(tmp_path):
    # y = Relu(Gemm(x)) + Gemm2(x): the second Gemm reads the graph input after another layer.
    nodes = [
        gemm("x", "h"),
        helper.make_node("Relu", ["h"], ["r"], name="relu"),
        gemm("x", "z", name="gemm2"),
        helper.make_node("Add", ["r", "z"], ["y"], name="add"),
    ]
    network = imports_as_onnxruntime_runs(save(model(nodes), tmp_path), RNG.normal(size=(5, 4)).astype(np.float32))
    assert [(layer.name, layer.inputs) for layer in network.layers] == [
        ("dense_0", ["input"]),
        ("dense_1", ["input"]),
        ("add", ["dense_0", "dense_1"]),
    ]
    assert network.layers[0].spec.activation == "relu"  # the Relu is the only reader of h: folded
    assert "inputs: input" in (tmp_path / "model.yaml").read_text()


@pytest.mark.parametrize(
    "nodes, message",
    [
        (
            [
                gemm("x", "h"),
                gemm("x", "g", name="g2", weights="W1", bias="B1"),
                helper.make_node("Add", ["h", "g"], ["y"], name="add"),
            ],
            "NS503 node 'add' (Add): it adds tensors of shapes (4,), (1,); netspec's add adds tensors of one shape",
        ),
        (
            [
                gemm("x", "h"),
                gemm("x", "g", name="g2"),
                helper.make_node("Concat", ["h", "g"], ["y"], axis=0, name="join"),
            ],
            "NS503 node 'join' (Concat): a Concat along axis 0 of tensors of shapes (4,), (4,); netspec's concat "
            "joins channels (or the features of vectors), axis 1, of tensors alike in the other axes",
        ),
        (
            [gemm("x", "h"), gemm("x", "g", name="g2"), helper.make_node("Sum", ["h", "g", "B"], ["y"], name="sum")],
            "NS503 node 'sum' (Sum): it reads the stored array 'B' besides 2 tensors computed from the input; "
            "netspec's merge layers read layers only",
        ),
        (
            [
                gemm("x", "h"),
                helper.make_node("Relu", ["x"], ["r"], name="relu"),
                helper.make_node("PRelu", ["h", "r"], ["y"], name="prelu"),
            ],
            "NS503 node 'prelu' (PRelu): its input 1 ('r') is computed from the graph input too; netspec's layers "
            "read one computed tensor, and stored arrays besides: only Add, Sum, Concat and Mul merge computed "
            "tensors",
        ),
    ],
    ids=["add-broadcast", "concat-batch", "sum-constant", "two-computed"],
)
def test_merges_netspec_cannot_reproduce_are_refused(tmp_path, nodes, message):
    stored = {"W": W, "B": B, "W1": W[:1].copy(), "B1": B[:1].copy()}  # W1: one output, which Add broadcasts
    assert refusal(save(model(nodes, constants=stored), tmp_path)) == message


def test_a_graph_with_two_outputs_is_refused(tmp_path):
    nodes = [gemm("x", "y"), helper.make_node("Relu", ["y"], ["z"], name="relu")]
    path = save(model(nodes, outputs=(("y", ["batch", "scores"]), ("z", ["batch", "scores"]))), tmp_path)
    assert refusal(path) == "NS503 the graph has 2 outputs; netspec networks have one, the class scores"


def test_an_add_that_is_no_bias_is_refused(tmp_path):
    nodes = [gemm("x", "h"), helper.make_node("Add", ["h", "B"], ["y"], name="shift")]
    assert refusal(save(model(nodes), tmp_path)) == (
        "NS503 node 'shift' (Add): an Add of a stored array of shape (4,) is netspec's only as the bias of a MatMul "
        "before it, or as one value per channel folded into the BatchNormalization before it (Caffe's Scale layer); "
        "an Add of two layers' outputs is an add layer; fold it into the weights of the layer next to it before exporting"
    )


@pytest.mark.parametrize(
    "nodes, message",
    [
        (
            [helper.make_node("Relu", ["W"], ["y"], name="relu")],
            "NS503 the graph output 'y' does not depend on its input 'x'",
        ),
        (
            [
                gemm("x", "h"),
                helper.make_node("Constant", [], ["training"], value=numpy_helper.from_array(np.array(True)), name="t"),
                helper.make_node("Dropout", ["h", "", "training"], ["y"], name="drop"),
            ],
            "NS503 node 'drop' (Dropout): a Dropout in training mode drops values when the model runs; export the "
            "model in eval mode",
        ),
        (
            [gemm("x", "h"), helper.make_node("Selu", ["h"], ["y"], name="selu")],
            "NS503 node 'selu' (Selu): this operator is not one netspec has (docs/onnx.md lists what import maps)",
        ),
    ],
    ids=["input-unused", "dropout-training", "unknown-operator"],
)
def test_what_netspec_cannot_reproduce_is_refused(tmp_path, nodes, message):
    assert refusal(save(model(nodes), tmp_path)) == message


# Constants reached another way than as initializers.


def test_a_bias_shared_through_identity_is_a_constant(tmp_path):
    # PyTorch stores one zero bias and points the other layers at it: Identity ['0.bias'] -> ['2.bias'].
    nodes = [
        helper.make_node("Identity", ["B"], ["B again"], name="share"),
        gemm("x", "h", "first"),
        helper.make_node("Relu", ["h"], ["r"], name="relu"),
        gemm("r", "y", "second", bias="B again"),
    ]
    network = imports_as_onnxruntime_runs(save(model(nodes), tmp_path), RNG.normal(size=(5, 4)).astype(np.float32))
    np.testing.assert_array_equal(network.layers[1].params["bias"], B)


def test_constant_and_constant_of_shape_nodes_are_constants(tmp_path):
    shape = numpy_helper.from_array(np.array([4], np.int64), "shape")
    nodes = [
        helper.make_node("Constant", [], ["weights"], value=numpy_helper.from_array(W, "w"), name="c1"),
        helper.make_node("Constant", [], ["four"], value_ints=[4], name="c2"),
        helper.make_node(
            "ConstantOfShape", ["four"], ["bias"], value=numpy_helper.from_array(np.array([0.5], np.float32)), name="c3"
        ),
        helper.make_node("MatMul", ["x", "weights"], ["h"], name="matmul"),
        helper.make_node("Add", ["bias", "h"], ["y"], name="add"),
    ]
    path = save(model(nodes, constants={"shape": np.array([4], np.int64)}), tmp_path)
    del shape
    network = imports_as_onnxruntime_runs(path, RNG.normal(size=(5, 4)).astype(np.float32))
    np.testing.assert_array_equal(network.layers[0].params["bias"], np.full(4, 0.5, np.float32))


def test_a_constant_of_shape_past_the_limit_is_refused_before_it_is_made(tmp_path):
    nodes = [
        helper.make_node("Constant", [], ["size"], value_ints=[100_000, 100_000], name="size"),
        helper.make_node("ConstantOfShape", ["size"], ["huge"], name="fill"),
        helper.make_node("MatMul", ["x", "huge"], ["y"], name="matmul"),
    ]
    assert refusal(save(model(nodes, inputs=("x", ["batch", 100_000]), constants={}), tmp_path)) == (
        "NS208 node 'fill' (ConstantOfShape): it makes 10,000,000,000 values, more than the limit of 50,000,000 "
        "parameters; raise the limit (--max-params, or max_params= in Python) if the model is that large"
    )


def test_weights_computed_by_another_node_are_refused_naming_it(tmp_path):
    # Arithmetic on stored arrays is evaluated at import (tests/test_onnx_folding.py); an operator it does not
    # evaluate is refused, naming the node that computes the weights.
    nodes = [
        helper.make_node("Sqrt", ["W"], ["Wt"], name="root"),
        helper.make_node("MatMul", ["x", "Wt"], ["y"], name="matmul"),
    ]
    assert refusal(save(model(nodes), tmp_path)) == (
        "NS503 node 'root' (Sqrt): it computes 'Wt' from stored arrays and shapes alone, with an operator import "
        "does not evaluate; netspec evaluates Constant, ConstantOfShape, Identity, Shape, Gather, Unsqueeze, "
        "Squeeze, Concat, Reshape, Transpose, Div, Mul, Add, Sub, Cast, Slice, Floor"
    )


# Padding, as PyTorch's exporters write it.

IMAGE = ("x", ["batch", 3, 5, 6])


def conv(auto_pad: str | None = None, pads=None, kernel: str = "K", strides=(1, 1)):
    attributes = {"strides": list(strides)}
    if auto_pad is not None:
        attributes["auto_pad"] = auto_pad
    if pads is not None:
        attributes["pads"] = pads
    return helper.make_node("Conv", ["x", kernel], ["c"], name="conv", **attributes)


@pytest.mark.parametrize(
    "auto_pad, pads, kernel, strides, padding",
    [
        ("NOTSET", [1, 1, 1, 1], "K", (1, 1), 1),  # torch.onnx.export's default exporter writes NOTSET
        (None, [0, 0, 0, 0], "K", (1, 1), "valid"),
        ("VALID", None, "K", (1, 1), "valid"),
        ("SAME_UPPER", None, "K2", (1, 1), "same"),
        ("SAME_UPPER", None, "K", (2, 2), "same"),
        ("SAME_LOWER", None, "K", (1, 1), 1),  # an even total: the same on both sides
        ("NOTSET", [0, 0, 1, 1], "K2", (1, 1), "same"),
        # Pads netspec writes per axis ([height, width]) or per side ([top, bottom, left, right]).
        ("NOTSET", [1, 0, 1, 0], "K", (1, 1), [1, 0]),
        ("NOTSET", [0, 1, 2, 1], "K", (1, 1), [0, 2, 1, 1]),
        ("SAME_LOWER", None, "K2", (1, 1), [1, 0, 1, 0]),  # a 2×2 kernel: the odd pixel before, at the top and left
    ],
)
def test_auto_pad_and_pads_import_as_onnxruntime_runs(tmp_path, auto_pad, pads, kernel, strides, padding):
    nodes = [conv(auto_pad, pads, kernel, strides), helper.make_node("Flatten", ["c"], ["y"], name="flat")]
    made = model(nodes, inputs=IMAGE, constants={"K": KERNEL, "K2": KERNEL2})
    network = imports_as_onnxruntime_runs(save(made, tmp_path), RNG.normal(size=(2, 3, 5, 6)).astype(np.float32))
    assert network.layers[0].spec.padding == padding


def test_a_reshape_to_the_batch_size_is_a_flatten_but_one_that_mixes_samples_is_not(tmp_path):
    # torch.onnx.export(dynamo=True) fixes the batch size and writes Reshape(allowzero=1) to (2, values).
    # (the target shape, allowzero, the values per row it makes of a (2, 2, 5, 6) tensor, accepted)
    for target, allowzero, row, accepted in [([2, 60], 1, 60, True), ([0, -1], 0, 60, True), ([4, -1], 0, 30, False)]:
        nodes = [
            conv("NOTSET", [1, 1, 1, 1]),
            helper.make_node("Reshape", ["c", "target"], ["flat"], allowzero=allowzero, name="reshape"),
            helper.make_node("Gemm", ["flat", "D"], ["y"], transB=1, name="dense"),
        ]
        constants = {"K": KERNEL, "target": np.array(target, np.int64), "D": RNG.normal(size=(3, row)).astype("f4")}
        path = save(model(nodes, inputs=("x", [2, 3, 5, 6]), constants=constants), tmp_path, "-".join(map(str, target)))
        if accepted:
            imports_as_onnxruntime_runs(path, RNG.normal(size=(2, 3, 5, 6)).astype(np.float32))
        else:
            assert refusal(path) == (
                "NS503 node 'reshape' (Reshape): a Reshape to [4, -1] is not a flatten to (batch, 60); netspec "
                "reads a Reshape as a flatten, or as part of a channel shuffle"
            )


# Grouped convolutions and ceil_mode pooling.


def test_grouped_and_depthwise_convs_import_as_onnxruntime_runs(tmp_path):
    rng = np.random.default_rng(3)
    constants = {
        "D": rng.normal(size=(6, 1, 3, 3)).astype(np.float32),  # depthwise, 2 filters per channel
        "G": rng.normal(size=(4, 3, 2, 2)).astype(np.float32),  # 2 groups of 3 channels
        "GB": rng.normal(size=4).astype(np.float32),
    }
    nodes = [
        helper.make_node("Conv", ["x", "D"], ["d"], name="depthwise", group=3, pads=[1, 0, 0, 1], strides=[2, 1]),
        helper.make_node("Conv", ["d", "G", "GB"], ["g"], name="grouped", group=2, dilations=[2, 1]),
        helper.make_node("Flatten", ["g"], ["y"], name="flat"),
    ]
    path = save(model(nodes, inputs=("x", ["batch", 3, 9, 6]), constants=constants), tmp_path)
    network = imports_as_onnxruntime_runs(path, rng.normal(size=(5, 3, 9, 6)).astype(np.float32))
    depthwise, grouped = (layer.spec for layer in network.layers[:2])
    assert (depthwise.groups, depthwise.padding, grouped.groups) == (3, [1, 0, 0, 1], 2)
    np.testing.assert_array_equal(network.layers[1].params["weights"], constants["G"])


def test_a_group_that_does_not_fit_the_weights_is_refused(tmp_path):
    nodes = [
        helper.make_node("Conv", ["x", "K"], ["c"], name="conv", group=3),
        helper.make_node("Flatten", ["c"], ["y"], name="flat"),
    ]
    made = model(nodes, inputs=IMAGE, constants={"K": KERNEL})
    assert refusal(save(made, tmp_path)) == (
        "NS503 node 'conv' (Conv): group 3 with weights of shape (2, 3, 3, 3) on 3 channels; a convolution's weights "
        "are (filters, channels / group, kernel height, kernel width), and group divides the filters"
    )


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
@pytest.mark.parametrize(
    "pads, kernel, strides, padding",
    [
        ([0, 0, 0, 0], 3, 2, "valid"),  # 5 → ceil((5 - 3) / 2) + 1 = 2; 6 → ceil(3 / 2) + 1 = 3
        ([1, 1, 1, 1], 2, 2, 1),  # 5 → ceil(5 / 2) + 1 = 4, but the 4th window would start in the padding: 3
        ([1, 0, 0, 1], 2, 2, [1, 0, 0, 1]),
    ],
)
def test_ceil_mode_pooling_imports_as_onnxruntime_runs(tmp_path, op, pads, kernel, strides, padding):
    attributes = {"count_include_pad": 0} if op == "AveragePool" else {}
    pool = helper.make_node(
        op,
        ["x"],
        ["p"],
        name="pool",
        kernel_shape=[kernel] * 2,
        strides=[strides] * 2,
        pads=pads,
        ceil_mode=1,
        **attributes,
    )
    made = model([pool, helper.make_node("Flatten", ["p"], ["y"], name="flat")], inputs=IMAGE, constants={})
    network = imports_as_onnxruntime_runs(save(made, tmp_path), RNG.normal(size=(2, 3, 5, 6)).astype(np.float32))
    assert (network.layers[0].spec.ceil_mode, network.layers[0].spec.padding) == (True, padding)


def test_pytorch_grouped_convs_and_ceil_mode_pools_import_and_predict_as_pytorch_does(tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Conv2d(3, 6, 3, padding=1, groups=3),  # depthwise, 2 filters per channel
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2, stride=2, padding=1, ceil_mode=True),  # 9 → 5 rows (the 6th is dropped), 10 → 6
        torch.nn.Conv2d(6, 12, 3, padding=(1, 0), groups=2, dilation=(1, 2)),  # 12 × 5 × 2
        torch.nn.AvgPool2d(2, stride=2, ceil_mode=True, count_include_pad=False),  # 12 × 3 × 1
        torch.nn.Flatten(),
        torch.nn.Linear(12 * 3 * 1, 3),
    )
    x = torch.randn(5, 3, 9, 10)
    path = tmp_path / "grouped.onnx"
    torch_export(torch, module, x, path, dynamo=False)
    network = imports_as_onnxruntime_runs(path, x.numpy())
    with torch.no_grad():
        np.testing.assert_allclose(network.forward(x.numpy()), module(x).numpy(), rtol=1e-5, atol=1e-6)
    assert [layer.spec.groups for layer in network.layers if layer.type == "conv2d"] == [3, 2]
    assert [layer.spec.ceil_mode for layer in network.layers if layer.type.endswith("pool2d")] == [True, True]


# Real exports from PyTorch.


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_pytorch_exports_with_shared_zero_biases_import_and_predict_as_pytorch_does(tmp_path, kind):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    if kind == "mlp":
        module, x = (
            torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8)),
            torch.randn(4, 6),
        )
    else:
        module = torch.nn.Sequential(
            torch.nn.Conv2d(3, 4, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(4, 4, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.Flatten(),
            torch.nn.Linear(64, 3),
        )
        x = torch.randn(4, 3, 8, 8)
    for layer in module:  # as torchvision does: the exporter then stores one zero bias for layers of one size
        if hasattr(layer, "bias"):
            torch.nn.init.zeros_(layer.bias)
    path = tmp_path / f"{kind}.onnx"
    torch_export(torch, module, x, path, dynamo=False)
    assert "Identity" in [node.op_type for node in onnx.load(str(path)).graph.node]  # the shared bias
    network = imports_as_onnxruntime_runs(path, x.numpy())
    with torch.no_grad():
        np.testing.assert_allclose(network.forward(x.numpy()), module(x).numpy(), rtol=1e-5, atol=1e-6)


def test_a_view_of_the_batch_size_imports_as_a_flatten(tmp_path):
    torch = pytest.importorskip("torch")

    class Viewed(torch.nn.Module):  # the classic forward: x.view(x.size(0), -1) before the classifier
        def __init__(self):
            super().__init__()
            self.conv, self.fc = torch.nn.Conv2d(1, 2, 3), torch.nn.Linear(8, 2)

        def forward(self, x):
            x = self.conv(x)
            return self.fc(x.view(x.size(0), -1))

    path, module, x = tmp_path / "viewed.onnx", Viewed(), torch.randn(3, 1, 4, 4)
    torch_export(torch, module, x, path, dynamo=False, input_names=["input"], dynamic_axes={"input": {0: "b"}})
    assert "Shape" in [node.op_type for node in onnx.load(str(path)).graph.node]  # the shape computed from the data
    network = imports_as_onnxruntime_runs(path, x.numpy())
    assert [layer.spec.type for layer in network.layers] == ["conv2d", "flatten", "dense"]
    with torch.no_grad():
        np.testing.assert_allclose(network.forward(x.numpy()), module(x).numpy(), rtol=1e-5, atol=1e-6)


def test_the_default_pytorch_exporter_with_onnxscript_imports(tmp_path):
    """torch.onnx.export's default (dynamo) exporter writes auto_pad NOTSET and a Reshape to the fixed batch."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxscript", reason="torch's default ONNX exporter needs onnxscript")
    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(64, 2),
        torch.nn.Softmax(dim=1),
    )
    x = torch.randn(2, 3, 8, 8)
    path = tmp_path / "dynamo.onnx"
    torch_export(torch, module, x, path)
    assert b"NOTSET" in path.read_bytes()
    network = imports_as_onnxruntime_runs(path, x.numpy())
    with torch.no_grad():
        np.testing.assert_allclose(network.forward(x.numpy()), module(x).numpy(), rtol=1e-5, atol=1e-6)


def test_a_pytorch_resnet_block_with_squeeze_excitation_and_silu_imports_as_a_graph(tmp_path):
    """torch.onnx.export (TorchScript, opset 17) of a shortcut and an SE gate: netspec's scores are torch's."""
    torch = pytest.importorskip("torch")
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
            self.conv1, self.bn1 = nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
            self.conv2, self.bn2 = nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
            self.squeeze, self.excite = nn.Linear(8, 4), nn.Linear(4, 8)
            self.head = nn.Linear(8, 3)

        def forward(self, x):
            # The squeeze as GlobalAveragePool + Flatten: y.mean((2, 3)) exports as ReduceMean, not read yet.
            pool = nn.functional.adaptive_avg_pool2d
            x = self.stem(x)
            y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
            gate = torch.sigmoid(self.excite(nn.functional.silu(self.squeeze(torch.flatten(pool(y, 1), 1)))))
            y = torch.relu(y * gate.unsqueeze(-1).unsqueeze(-1) + x)
            return torch.softmax(self.head(torch.flatten(pool(y, 1), 1)), dim=1)

    torch.manual_seed(0)
    module = Block()
    for norm in (module.stem[1], module.bn1, module.bn2):  # statistics and scales that are not the identity
        norm.running_mean.uniform_(-0.5, 0.5), norm.running_var.uniform_(0.5, 2), norm.weight.data.uniform_(0.5, 2)
    x = torch.randn(4, 3, 6, 6)
    path = tmp_path / "block.onnx"
    torch_export(torch, module, x, path, dynamo=False)
    network = imports_as_onnxruntime_runs(path, x.numpy())
    with torch.no_grad():
        np.testing.assert_allclose(network.forward(x.numpy()), module(x).numpy(), rtol=1e-5, atol=1e-6)
    types = [layer.spec.type for layer in network.layers]
    assert types.count("add") == 1 and types.count("multiply") == 1
    assert [layer.spec.activation for layer in network.layers if layer.spec.type == "dense"][:1] == ["silu"]
    add = next(layer for layer in network.layers if layer.spec.type == "add")
    assert add.spec.activation == "relu" and len(add.inputs) == 2


# Options: what the graph does not say.


def small(tmp_path: Path, shape=("batch", 3, 2, 2), name: str = "small") -> Path:
    """A dense layer of 3 scores on an image of 3×2×2 values (39 parameters)."""
    weights = RNG.normal(size=(3, 12)).astype(np.float32)
    nodes = [
        helper.make_node("Flatten", ["x"], ["flat"], name="flat"),
        helper.make_node("Gemm", ["flat", "D", "b"], ["y"], transB=1, name="dense"),
    ]
    constants = {"D": weights, "b": np.zeros(3, np.float32)}
    return save(model(nodes, inputs=("x", list(shape)), constants=constants), tmp_path, name)


def test_max_params_is_an_option_of_import(tmp_path):
    path = small(tmp_path)
    result = invoke("import", path, "-o", tmp_path / "under.yaml", "--max-params", 38)
    assert (result.exit_code, result.stderr) == (
        1,
        f"{path}: NS208 layers[0]: the network has 39 parameters, more than the limit of 38 (layer 'dense_0' alone "
        "has 39); make layers smaller or raise the limit (--max-params, or max_params= in Python)\n",
    )
    assert invoke("import", path, "-o", tmp_path / "at.yaml", "--max-params", 39).exit_code == 0
    assert "--max-params" in invoke("import", "--help").output
    from netspec.errors import SpecError
    from netspec.interop.importer import import_model

    with pytest.raises(SpecError, match="more than the limit of 38"):
        import_model(path, tmp_path / "python.yaml", max_params=38)
    import_model(path, tmp_path / "python.yaml", max_params=39, name="py", classes=["a", "b", "c"])
    assert netspec.load(tmp_path / "python.yaml").spec.name == "py"
    with pytest.raises(TypeError, match="a Path to a file of them; got the text 'labels.txt'"):
        import_model(path, tmp_path / "python.yaml", classes="labels.txt")


def test_name_classes_and_image_options_describe_the_spec(tmp_path):
    path = small(tmp_path)
    out = tmp_path / "described.yaml"
    options = ["--name", "tiny", "--classes", "cat, dog,bird", "--image", "2,2,rgb", "--scale", "-1,1"]
    result = invoke("import", path, "-o", out, *options, "--mean", "0.5", "--std", "0.2,0.3,0.4")
    assert result.exit_code == 0, result.stderr
    spec = netspec.load(out).spec
    assert (spec.name, spec.classes) == ("tiny", ["cat", "dog", "bird"])
    image = spec.input.image
    assert (image.width, image.height, image.color, image.scale) == (2, 2, "rgb", [-1, 1])
    assert (image.mean, image.std) == ([0.5, 0.5, 0.5], [0.2, 0.3, 0.4])
    # Without options: the graph's name and '0', '1', ... as before.
    invoke("import", path, "-o", tmp_path / "plain.yaml")
    plain = netspec.load(tmp_path / "plain.yaml").spec
    assert (plain.name, plain.classes, plain.input.image.mean) == ("g", ["0", "1", "2"], None)


def test_resize_crop_and_interpolation_options_describe_the_preprocessing(tmp_path):
    path = small(tmp_path)
    out = tmp_path / "sized.yaml"
    result = invoke("import", path, "-o", out, "--resize", "3", "--crop", "2", "--interpolation", "bicubic")
    assert result.exit_code == 0, result.stderr
    image = netspec.load(out).spec.input.image
    assert (image.resize, image.crop, image.interpolation, image.width, image.height) == (3, 2, "bicubic", 2, 2)
    result = invoke("import", path, "-o", tmp_path / "cut.yaml", "--crop", "2,2")
    assert result.exit_code == 0, result.stderr
    assert netspec.load(tmp_path / "cut.yaml").spec.input.image.crop == [2, 2]
    for written in ("0", "2,2,2", "two"):
        result = invoke("import", path, "-o", tmp_path / "bad.yaml", "--crop", written)
        assert result.exit_code == 2 and "expected N (a square) or HEIGHT,WIDTH, such as 224" in result.stderr
    assert not (tmp_path / "bad.yaml").exists()


def test_a_classes_file_gives_one_label_a_line(tmp_path):
    path = small(tmp_path)
    labels = tmp_path / "synset.txt"
    labels.write_text("n01440764 tench, Tinca tinca\n n01443537 goldfish \r\nn01484850 great white shark\n\n")
    result = invoke("import", path, "-o", tmp_path / "fish.yaml", "--classes-file", labels)
    assert result.exit_code == 0, result.stderr
    assert netspec.load(tmp_path / "fish.yaml").classes == [
        "n01440764 tench, Tinca tinca",
        "n01443537 goldfish",
        "n01484850 great white shark",
    ]


def test_a_bad_classes_file_is_refused_at_its_lines(tmp_path):
    path = small(tmp_path)
    bad = tmp_path / "bad.txt"
    bad.write_text("cat\n\ncat\ntab\there\n")
    result = invoke("import", path, "-o", tmp_path / "out.yaml", "--classes-file", bad)
    assert (result.exit_code, result.stderr) == (
        1,
        f"{bad}:2:1: NS109 the label is empty; give every class a label\n"
        f"{bad}:3:1: NS122 the label 'cat' is listed twice (also line 1); keep one\n"
        f"{bad}:4:1: NS103 the label 'tab\\there' holds a tab or other control character; labels are printable text\n",
    )
    short = tmp_path / "short.txt"
    short.write_text("cat\ndog\n")
    result = invoke("import", path, "-o", tmp_path / "out.yaml", "--classes-file", short)
    assert (result.exit_code, result.stderr) == (
        1,
        f"{short}: NS123 the file holds 2 labels but the model gives 3 scores; write one label a line for each "
        "score, in the order of the scores\n",
    )
    result = invoke("import", path, "-o", tmp_path / "out.yaml", "--classes", "a,b")
    assert (result.exit_code, result.stderr) == (
        1,
        f"{path}: NS123 classes: 2 labels given but the model gives 3 scores; give one label for each score, in the "
        "order of the scores\n",
    )
    result = invoke("import", path, "-o", tmp_path / "out.yaml", "--classes", "a", "--classes-file", short)
    assert result.exit_code == 2 and "give the labels with --classes or with --classes-file, not both" in result.stderr
    assert not (tmp_path / "out.yaml").exists()


def test_image_options_must_fit_the_models_input(tmp_path):
    path = small(tmp_path)
    cases = [
        (
            ["--image", "3,2,rgb"],
            "NS505 an image of 3×2 pixels in rgb is read as (3, 2, 3), but the model reads (3, 2, 2); give the width, "
            "height and color the model was made for",
        ),
        (
            ["--image", "2,2,grayscale"],
            "NS505 an image of 2×2 pixels in grayscale is read as (1, 2, 2), but the model reads (3, 2, 2); give the "
            "width, height and color the model was made for",
        ),
        (
            ["--mean", "0.1,0.2"],
            "NS108 input.image.mean: has 2 values but rgb images have 3 channels; give one value per channel",
        ),
        (["--std", "0"], "NS104 input.image.std: must be above 0, got 0.0"),
    ]
    for options, message in cases:
        result = invoke("import", path, "-o", tmp_path / "out.yaml", *options)
        assert (result.exit_code, result.stderr) == (1, f"{path}: {message}\n"), options
    for written in ("224x224", "²,2,rgb"):  # '²' is a digit to str.isdigit, not to int()
        result = invoke("import", path, "-o", tmp_path / "out.yaml", "--image", written)
        assert result.exit_code == 2 and "expected WIDTH,HEIGHT,COLOR (COLOR rgb or grayscale)" in result.stderr


def test_image_options_give_the_size_a_model_leaves_open(tmp_path):
    path = small(tmp_path, ("batch", 3, "height", "width"), "open")
    result = invoke("import", path, "-o", tmp_path / "open.yaml")
    assert (result.exit_code, result.stderr) == (
        1,
        f"{path}: NS505 the model's input (3, ?, ?) leaves the image's size open; give the image it reads "
        "(--image WIDTH,HEIGHT,COLOR, or image= in Python)\n",
    )
    assert invoke("import", path, "-o", tmp_path / "open.yaml", "--image", "2,2,rgb").exit_code == 0
    assert netspec.load(tmp_path / "open.yaml").input_shape == (3, 2, 2)


def test_a_vector_input_is_read_as_the_image_it_was_made_from(tmp_path):
    path = small(tmp_path, ("batch", 12), "vector")
    network = imports_as_onnxruntime_runs(path, RNG.normal(size=(2, 12)).astype(np.float32))
    assert network.spec.input.features == 12
    result = invoke("import", path, "-o", tmp_path / "as-image.yaml", "--image", "2,2,rgb")
    assert result.exit_code == 0, result.stderr
    assert netspec.load(tmp_path / "as-image.yaml").input_shape == (3, 2, 2)
    result = invoke("import", path, "-o", tmp_path / "no.yaml", "--mean", "0.5")
    assert (result.exit_code, result.stderr) == (
        1,
        f"{path}: NS505 the image settings given (mean) describe an image, but the model reads a vector of 12 "
        "numbers; give the image it reads (--image WIDTH,HEIGHT,COLOR, or image= in Python), or leave them out\n",
    )


def test_summary_of_a_thousand_classes_is_one_short_line(tmp_path):
    weights = RNG.normal(size=(1000, 4)).astype(np.float32)
    path = save(
        model([gemm("x", "y", bias="b", weights="D")], constants={"D": weights, "b": np.zeros(1000, "f4")}), tmp_path
    )
    labels = tmp_path / "labels.txt"
    labels.write_text("".join(f"class {i}\n" for i in range(1000)))
    assert invoke("import", path, "-o", tmp_path / "big.yaml", "--classes-file", labels).exit_code == 0
    line = invoke("summary", tmp_path / "big.yaml").output.splitlines()[1]
    assert line == "classes (1,000): class 0, class 1, class 2, class 3, class 4, class 5, class 6, … (993 more)"


# The activations PyTorch has: mapped back where ONNX writes them as one node.


def scalar(name: str, value: float) -> dict[str, np.ndarray]:
    return {name: np.array(value, np.float32)}


@pytest.mark.parametrize(
    "node, constants, opset, activation",
    [
        (
            helper.make_node("Clip", ["h", "zero", "six"], ["y"], name="clip"),
            {**scalar("zero", 0), **scalar("six", 6)},
            17,
            "relu6",
        ),
        (helper.make_node("Clip", ["h", "zero"], ["y"], name="clip"), scalar("zero", 0), 17, "relu"),
        (
            helper.make_node("Clip", ["h"], ["y"], name="clip", min=0.0, max=6.0),
            {},
            10,
            "relu6",
        ),  # bounds as attributes
        (helper.make_node("HardSigmoid", ["h"], ["y"], name="hs", alpha=1 / 6), {}, 17, "hard_sigmoid"),
        (helper.make_node("HardSwish", ["h"], ["y"], name="hswish"), {}, 17, "hard_swish"),
        (helper.make_node("Elu", ["h"], ["y"], name="elu"), {}, 17, "elu"),
        (helper.make_node("Gelu", ["h"], ["y"], name="gelu"), {}, 20, "gelu"),
    ],
    ids=["clip-0-6", "clip-0", "clip-attributes", "hard_sigmoid", "hard_swish", "elu", "gelu-opset-20"],
)
def test_activations_pytorch_exports_as_one_node_import(tmp_path, node, constants, opset, activation):
    path = save(model([gemm("x", "h"), node], constants={"W": W, "B": B, **constants}, opset=opset), tmp_path)
    network = imports_as_onnxruntime_runs(path, RNG.normal(0, 4, size=(50, 4)).astype(np.float32))
    assert [(layer.type, layer.spec.activation) for layer in network.layers] == [("dense", activation)]


def test_elu_keeps_its_alpha(tmp_path):
    path = save(model([gemm("x", "h"), helper.make_node("Elu", ["h"], ["y"], name="elu", alpha=0.25)]), tmp_path)
    network = imports_as_onnxruntime_runs(path, RNG.normal(0, 4, size=(50, 4)).astype(np.float32))
    assert network.layers[0].spec.alpha == 0.25


def test_an_activation_after_a_layer_that_takes_none_is_an_activation_layer(tmp_path):
    # Gemm → Relu → Relu6: the second has no layer of its own to join (the dense has an activation).
    nodes = [
        gemm("x", "h"),
        helper.make_node("Relu", ["h"], ["r"], name="relu"),
        helper.make_node("Clip", ["r", "zero", "six"], ["y"], name="clip"),
    ]
    constants = {"W": W, "B": B, **scalar("zero", 0), **scalar("six", 6)}
    network = imports_as_onnxruntime_runs(
        save(model(nodes, constants=constants), tmp_path), RNG.normal(0, 4, size=(50, 4)).astype(np.float32)
    )
    assert [(layer.type, layer.spec.activation) for layer in network.layers] == [
        ("dense", "relu"),
        ("activation", "relu6"),
    ]


def test_an_activation_after_a_batch_normalization_is_its_activation(tmp_path):
    stats = {key: RNG.uniform(0.5, 2, size=4).astype(np.float32) for key in ("scale", "shift", "mean", "var")}
    nodes = [
        helper.make_node("BatchNormalization", ["x", "scale", "shift", "mean", "var"], ["n"], name="norm"),
        helper.make_node("HardSwish", ["n"], ["y"], name="hswish"),
    ]
    network = imports_as_onnxruntime_runs(
        save(model(nodes, constants=stats), tmp_path), RNG.normal(0, 4, size=(50, 4)).astype(np.float32)
    )
    assert [(layer.type, layer.spec.activation) for layer in network.layers] == [("batchnorm", "hard_swish")]


@pytest.mark.parametrize(
    "node, constants, opset, message",
    [
        (
            helper.make_node("Clip", ["h", "low", "high"], ["y"], name="clip"),
            {**scalar("low", -1), **scalar("high", 1)},
            17,
            "NS503 node 'clip' (Clip): a Clip to [-1, 1]; netspec clips only as relu6, to [0, 6], and relu, to [0, ∞)",
        ),
        (
            helper.make_node("HardSigmoid", ["h"], ["y"], name="hs"),
            {},
            17,
            "NS503 node 'hs' (HardSigmoid): a HardSigmoid with alpha 0.2 and beta 0.5; netspec's hard_sigmoid is "
            "PyTorch's, relu6(x + 3)/6: alpha 1/6 and beta 0.5",
        ),
        (
            helper.make_node("Gelu", ["h"], ["y"], name="gelu", approximate="tanh"),
            {},
            20,
            "NS503 node 'gelu' (Gelu): a Gelu approximated by tanh; netspec's gelu is the exact one (erf)",
        ),
    ],
    ids=["clip-other-bounds", "hard_sigmoid-keras", "gelu-tanh"],
)
def test_activations_netspec_has_not_are_refused(tmp_path, node, constants, opset, message):
    assert (
        refusal(save(model([gemm("x", "h"), node], constants={"W": W, "B": B, **constants}, opset=opset), tmp_path))
        == message
    )


@pytest.mark.parametrize("activation", ["silu", "gelu"])
@pytest.mark.parametrize("readers", [1, 2])
def test_silu_and_gelu_as_netspec_exports_them_import(tmp_path, activation, readers):
    """x·Sigmoid(x) and x·(1 + Erf(x/√2))/2 read x twice: the conv's activation, or a layer when x has other readers."""
    from netspec.interop.export import export

    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "netspec: 1\nclasses: [a, b]\ninput: {image: {width: 3, height: 3, color: grayscale}}\nlayers:\n"
        + (
            f"  - {{name: conv, type: conv2d, filters: 2, kernel: 3, activation: {activation}}}\n"
            if readers == 1
            else "  - {name: conv, type: conv2d, filters: 2, kernel: 3}\n"
            f"  - {{name: act, type: activation, activation: {activation}}}\n"
            "  - {name: both, type: add, inputs: [act, conv]}\n"
        )
        + "  - {name: flat, type: flatten}\n"
    )
    path = export(netspec.load(spec), tmp_path / "model.onnx")
    network = imports_as_onnxruntime_runs(path, RNG.normal(size=(4, 1, 3, 3)).astype(np.float32))
    if readers == 1:
        assert [layer.name for layer in network.layers] == ["conv", "flat"]
        assert network.layers[0].spec.activation == activation
    else:
        assert [(layer.name, layer.inputs) for layer in network.layers] == [
            ("conv", ["input"]),
            ("act", ["conv"]),
            ("both", ["act", "conv"]),
            ("flat", ["both"]),
        ]
        assert network.layers[1].spec.activation == activation
