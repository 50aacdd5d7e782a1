"""ONNX import evaluates what a graph computes without its data: constants, shapes, and Caffe's Scale.

Each graph is checked against onnxruntime (and the folded arrays against onnx's reference
evaluator); each pattern was refused, or imported wrongly, before folding. Refusals are asserted
with their exact line.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from onnx.reference import ReferenceEvaluator  # noqa: E402 - after onnx_graphs skips without onnx
from onnx_graphs import (
    KERNEL,
    RNG,
    B,
    W,
    helper,
    imports_as_onnxruntime_runs,
    invoke,
    model,
    numpy_helper,
    onnx,
    ort,
    refusal,
    save,
    torch_export,
)

import netspec

IMAGE = ("x", ["batch", 3, 5, 6])
FOLDED = (
    "Constant, ConstantOfShape, Identity, Shape, Gather, Unsqueeze, Squeeze, Concat, Reshape, Transpose, Div, Mul, "
    "Add, Sub, Cast, Slice, Floor"
)


def node(op: str, inputs, out: str, **attributes):
    return helper.make_node(op, list(inputs), [out], name=out, **attributes)


def const(out: str, values, dtype=np.int64):
    return helper.make_node("Constant", [], [out], value=numpy_helper.from_array(np.array(values, dtype)), name=out)


def image(batch: int = 2) -> np.ndarray:
    return RNG.normal(size=(batch, 3, 5, 6)).astype(np.float32)


# Arithmetic on stored arrays: the folded weights are onnx's reference evaluator's, and the scores onnxruntime's.

WEIGHTS = {  # subgraphs computing the dense layer's weights 'w' (4, 4) from W (4, 4) and B (4,)
    "transpose-reshape": [
        const("s1", [2, 2, 4]),
        node("Reshape", ["W", "s1"], "r1"),
        node("Transpose", ["r1"], "t", perm=[1, 0, 2]),
        const("s2", [4, -1]),
        node("Reshape", ["t", "s2"], "w"),
    ],
    "reshape-zero-copies": [
        const("s", [2, 0, 2]),
        node("Reshape", ["W", "s"], "r"),
        const("f", [4, 4]),
        node("Reshape", ["r", "f"], "w"),
    ],
    "slice-backwards": [
        node("Concat", ["W", "W"], "c", axis=0),
        const("starts", [7]),
        const("ends", [-100]),
        const("axes", [0]),
        const("steps", [-2]),
        node("Slice", ["c", "starts", "ends", "axes", "steps"], "w"),
    ],
    "gather-columns": [const("i", [3, 1, 2, 0]), node("Gather", ["W", "i"], "w", axis=1)],
    "squeeze-unsqueeze": [
        const("a", [0, -1]),
        node("Unsqueeze", ["W", "a"], "u"),
        node("Squeeze", ["u", "a"], "w"),
    ],
    "arithmetic": [
        node("Add", ["W", "B"], "a"),
        node("Sub", ["a", "B"], "s"),
        const("three", 3.0, np.float32),
        node("Mul", ["s", "three"], "m"),
        const("two", 2.0, np.float32),
        node("Div", ["m", "two"], "d"),
        node("Floor", ["d"], "f"),
        node("Cast", ["f"], "c", to=onnx.TensorProto.DOUBLE),
        node("Cast", ["c"], "w", to=onnx.TensorProto.FLOAT),
    ],
    "constant-of-shape": [
        node("Shape", ["W"], "s"),
        helper.make_node(
            "ConstantOfShape", ["s"], ["w"], value=numpy_helper.from_array(np.array([0.5], np.float32)), name="w"
        ),
    ],
    "identity": [node("Identity", ["W"], "i"), node("Transpose", ["i"], "w")],
}


@pytest.mark.parametrize("nodes", WEIGHTS.values(), ids=WEIGHTS.keys())
def test_weights_computed_from_stored_arrays_are_folded(tmp_path, nodes):
    made = model([*nodes, helper.make_node("Gemm", ["x", "w", "B"], ["y"], transB=1, name="gemm")])
    network = imports_as_onnxruntime_runs(save(made, tmp_path), RNG.normal(size=(5, 4)).astype(np.float32))
    oracle = ReferenceEvaluator(model(nodes, outputs=(("w", [4, 4]),)))
    np.testing.assert_array_equal(network.layers[0].params["weights"], oracle.run(None, {"x": np.zeros((1, 4))})[0])


def test_integers_divide_truncating_toward_zero_as_onnxruntime_does(tmp_path):
    nodes = [
        const("n", [-7, 7, -5, 9]),
        const("d", [2, 2, 3, -4]),
        node("Div", ["n", "d"], "q"),
        node("Cast", ["q"], "bias", to=onnx.TensorProto.FLOAT),
        helper.make_node("Gemm", ["x", "W", "bias"], ["y"], transB=1, name="gemm"),
    ]
    network = imports_as_onnxruntime_runs(save(model(nodes), tmp_path), RNG.normal(size=(5, 4)).astype(np.float32))
    np.testing.assert_array_equal(network.layers[0].params["bias"], [-3, 3, -1, -2])


def test_caffe_classifier_weights_reshaped_at_opset_9_are_folded(tmp_path):
    # light_inception_v1: Reshape n141 ['loss3/classifier_w_0', 'OC2_DUMMY_3'] -> the Gemm's weights.
    flat = W.reshape(-1)
    nodes = [node("Reshape", ["flat", "shape"], "w"), helper.make_node("Gemm", ["x", "w", "B"], ["y"], transB=1)]
    made = model(nodes, constants={"flat": flat, "shape": np.array([4, 4], np.int64), "B": B}, opset=9)
    network = imports_as_onnxruntime_runs(save(made, tmp_path), RNG.normal(size=(5, 4)).astype(np.float32))
    np.testing.assert_array_equal(network.layers[0].params["weights"], W)


def test_an_operator_not_evaluated_on_shapes_is_refused_naming_it(tmp_path):
    nodes = [
        node("Shape", ["x"], "s"),
        node("Abs", ["s"], "a"),
        node("Reshape", ["x", "a"], "y"),
    ]
    assert refusal(save(model(nodes), tmp_path)) == (
        f"NS503 node 'a' (Abs): it computes 'a' from stored arrays and shapes alone, with an operator import does "
        f"not evaluate; netspec evaluates {FOLDED}"
    )


def test_a_folded_array_past_the_limit_is_refused_before_it_is_made(tmp_path):
    nodes = [
        const("column", np.ones((100_000, 1)), np.float32),
        const("row", np.ones((1, 100_000)), np.float32),
        node("Mul", ["column", "row"], "outer"),
        helper.make_node("MatMul", ["x", "outer"], ["y"], name="matmul"),
    ]
    path = save(model(nodes, inputs=("x", ["batch", 100_000]), constants={}), tmp_path)
    result = invoke("import", path, "-o", tmp_path / "out.yaml")
    assert result.exit_code == 1 and result.stderr == (
        f"{path}: NS208 node 'outer' (Mul): it makes 10,000,000,000 values, more than the limit of 50,000,000 "
        "parameters; raise the limit (--max-params, or max_params= in Python) if the model is that large\n"
    )


# Shapes computed from the data: evaluated at two batch sizes; the batch size is kept as a Reshape's 0.


def test_a_shape_of_the_data_becomes_a_reshape_that_copies_the_batch(tmp_path):
    nodes = [
        helper.make_node("Conv", ["x", "K"], ["c"], name="conv"),
        node("Shape", ["c"], "s"),
        const("zero", 0),
        node("Gather", ["s", "zero"], "batch"),
        const("axis", [0]),
        node("Unsqueeze", ["batch", "axis"], "b"),
        const("rest", [-1]),
        node("Concat", ["b", "rest"], "target", axis=0),
        node("Reshape", ["c", "target"], "y"),
    ]
    made = model(nodes, inputs=IMAGE, constants={"K": KERNEL})
    network = imports_as_onnxruntime_runs(save(made, tmp_path), image(3))
    assert [layer.spec.type for layer in network.layers] == ["conv2d", "flatten"]


@pytest.mark.parametrize(
    "nodes, message",
    [
        (
            [  # x.view(x.size(0) * 2, -1): the batch size mixed into another axis
                node("Shape", ["x"], "s"),
                const("zero", [0]),
                node("Gather", ["s", "zero"], "batch"),
                const("two", [2]),
                node("Mul", ["batch", "two"], "twice"),
                const("rest", [-1]),
                node("Concat", ["twice", "rest"], "target", axis=0),
                node("Reshape", ["x", "target"], "y"),
            ],
            "NS503 node 'y' (Reshape): its input 1 ('target') is computed from the batch size: (?, -1); netspec's "
            "layers are the same for every batch size, so a shape may hold the batch size only as the first entry of "
            "a Reshape's target (x.view(x.size(0), ...))",
        ),
        (
            [  # x.view(-1, x.size(0)): the batch size in the place of the values
                node("Shape", ["x"], "s"),
                const("zero", [0]),
                node("Gather", ["s", "zero"], "batch"),
                const("first", [-1]),
                node("Concat", ["first", "batch"], "target", axis=0),
                node("Reshape", ["x", "target"], "y"),
            ],
            "NS503 node 'y' (Reshape): its input 1 ('target') is computed from the batch size: (-1, batch); netspec's "
            "layers are the same for every batch size, so a shape may hold the batch size only as the first entry of "
            "a Reshape's target (x.view(x.size(0), ...))",
        ),
        (
            [  # torch.zeros(x.size(0), 4) added to the data
                node("Shape", ["x"], "s"),
                helper.make_node("ConstantOfShape", ["s"], ["zeros"], name="zeros"),
                node("Add", ["x", "zeros"], "y"),
            ],
            "NS503 node 'zeros' (ConstantOfShape): its input 0 ('s') is computed from the batch size: (batch, 4); "
            "netspec's layers are the same for every batch size, so a shape may hold the batch size only as the "
            "first entry of a Reshape's target (x.view(x.size(0), ...))",
        ),
    ],
    ids=["batch-times-two", "batch-last", "zeros-of-the-batch"],
)
def test_a_value_that_depends_on_the_batch_size_otherwise_is_refused(tmp_path, nodes, message):
    assert refusal(save(model(nodes, constants={}), tmp_path)) == message


def test_the_shape_of_a_global_average_is_onnx_s_not_netspec_s_vector(tmp_path):
    # netspec's global_avgpool gives a vector; ONNX's GlobalAveragePool (batch, C, 1, 1), whose axis 3 is 1.
    nodes = [
        helper.make_node("Conv", ["x", "K"], ["c"], name="conv"),
        node("GlobalAveragePool", ["c"], "g"),
        node("Shape", ["g"], "s"),
        *(const(f"at{axis}", [axis]) for axis in (0, 1, 3)),
        *(node("Gather", ["s", f"at{axis}"], f"size{axis}") for axis in (0, 1, 3)),
        node("Mul", ["size1", "size3"], "values"),
        node("Concat", ["size0", "values"], "target", axis=0),
        node("Reshape", ["g", "target"], "y"),
    ]
    network = imports_as_onnxruntime_runs(save(model(nodes, inputs=IMAGE, constants={"K": KERNEL}), tmp_path), image())
    assert [layer.spec.type for layer in network.layers] == ["conv2d", "global_avgpool"]


def test_pytorch_view_of_sizes_after_a_global_average_imports(tmp_path):
    torch = pytest.importorskip("torch")

    class Pooled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.fc = torch.nn.Conv2d(3, 4, 3), torch.nn.Linear(4, 2)

        def forward(self, x):
            x = torch.nn.functional.adaptive_avg_pool2d(self.conv(x), 1)
            return self.fc(x.view(x.size(0), x.size(1) * x.size(2) * x.size(3)))

    path, module, x = tmp_path / "pooled.onnx", Pooled(), torch.randn(3, 3, 5, 6)
    torch_export(torch, module, x, path, dynamo=False, input_names=["input"], dynamic_axes={"input": {0: "b"}})
    network = imports_as_onnxruntime_runs(path, x.numpy())
    assert [layer.spec.type for layer in network.layers] == ["conv2d", "global_avgpool", "dense"]
    with torch.no_grad():
        np.testing.assert_allclose(network.forward(x.numpy()), module(x).numpy(), rtol=1e-5, atol=1e-6)


def channel_shuffle(x, groups: int):
    """torchvision's (torchvision/models/shufflenetv2.py), which reads its sizes from x.size()."""
    batchsize, num_channels, height, width = x.size()
    channels_per_group = num_channels // groups
    x = x.view(batchsize, groups, channels_per_group, height, width)
    x = x.transpose(1, 2).contiguous()
    return x.view(batchsize, -1, height, width)


@pytest.mark.parametrize("dynamic", [True, False], ids=["batch-open", "batch-fixed"])
def test_torchvision_s_channel_shuffle_imports_as_a_channel_shuffle(tmp_path, dynamic):
    torch = pytest.importorskip("torch")

    class Shuffled(torch.nn.Module):  # ShuffleNet v2's unit: a concat of two branches, shuffled, twice
        def __init__(self):
            super().__init__()
            self.left, self.right = torch.nn.Conv2d(3, 2, 1), torch.nn.Conv2d(3, 4, 3, padding=1)
            self.fc = torch.nn.Linear(6 * 5 * 6, 3)

        def forward(self, x):
            x = channel_shuffle(torch.cat((self.left(x), torch.relu(self.right(x))), dim=1), 2)
            x = channel_shuffle(x, 3)
            return self.fc(torch.flatten(x, 1))

    path, module, x = tmp_path / "shuffled.onnx", Shuffled(), torch.randn(2, 3, 5, 6)
    options = {"input_names": ["input"], "dynamic_axes": {"input": {0: "b"}}} if dynamic else {}
    torch_export(torch, module, x, path, dynamo=False, **options)
    ops = [each.op_type for each in onnx.load(str(path)).graph.node]
    assert ("Shape" in ops and "Div" in ops) == dynamic
    network = imports_as_onnxruntime_runs(path, x.numpy())
    shuffles = [layer.spec.groups for layer in network.layers if layer.spec.type == "channel_shuffle"]
    assert shuffles == [2, 3]
    with torch.no_grad():
        np.testing.assert_allclose(network.forward(x.numpy()), module(x).numpy(), rtol=1e-5, atol=1e-6)


# Caffe's Scale layer after a batch norm, as the zoo graphs write it: folded into the batch norm.

SCALE, SHIFT = RNG.uniform(0.5, 1.5, 2).astype(np.float32), RNG.normal(size=2).astype(np.float32)
NORM = {
    "K": KERNEL,
    "scale": RNG.uniform(0.5, 1.5, 2).astype(np.float32),
    "shift": RNG.normal(size=2).astype(np.float32),
    "mean": RNG.normal(size=2).astype(np.float32),
    "var": RNG.uniform(0.5, 1.5, 2).astype(np.float32),
    "m": SCALE,
    "a": SHIFT,
}


def norm(after=()):
    conv = helper.make_node("Conv", ["x", "K"], ["c"], name="conv")
    batchnorm = node("BatchNormalization", ["c", "scale", "shift", "mean", "var"], "bn")
    return [conv, batchnorm, *after]


@pytest.mark.parametrize("opset", [9, 17])
def test_a_scale_after_a_batch_norm_folds_into_it(tmp_path, opset):
    # light_densenet121 and light_inception_v2: Unsqueeze n2 ['conv1/bn_w_0'] -> Mul n3, then Add n5, then Relu.
    axes = {"axes": [1, 2]} if opset < 13 else {}
    unsqueezed = [] if opset < 13 else [const("axes", [1, 2])]
    nodes = norm(
        [
            *unsqueezed,
            helper.make_node("Unsqueeze", ["m", *(["axes"] if unsqueezed else [])], ["mm"], name="um", **axes),
            node("Mul", ["bn", "mm"], "scaled"),
            helper.make_node("Unsqueeze", ["a", *(["axes"] if unsqueezed else [])], ["aa"], name="ua", **axes),
            node("Add", ["scaled", "aa"], "shifted"),
            node("Relu", ["shifted"], "r"),
            node("Flatten", ["r"], "y"),
        ]
    )
    network = imports_as_onnxruntime_runs(
        save(model(nodes, inputs=IMAGE, constants=NORM, opset=opset), tmp_path), image()
    )
    assert [layer.spec.type for layer in network.layers] == ["conv2d", "batchnorm", "flatten"]
    batchnorm = network.layers[1]
    assert batchnorm.spec.activation == "relu"
    np.testing.assert_allclose(batchnorm.params["scale"], NORM["scale"] * SCALE, rtol=1e-7)
    np.testing.assert_allclose(batchnorm.params["shift"], NORM["shift"] * SCALE + SHIFT, rtol=1e-6)


@pytest.mark.parametrize(
    "after",
    [
        [node("Add", ["bn", "a3"], "shifted"), node("Flatten", ["shifted"], "y")],  # a shift alone, (1, C, 1, 1)
        [node("Mul", ["bn", "two"], "doubled"), node("Flatten", ["doubled"], "y")],  # one value for every channel
    ],
    ids=["shift", "single-value"],
)
def test_a_shift_or_a_single_factor_after_a_batch_norm_folds_into_it(tmp_path, after):
    constants = NORM | {"a3": SHIFT.reshape(1, 2, 1, 1), "two": np.array(2.0, np.float32)}
    network = imports_as_onnxruntime_runs(
        save(model(norm(after), inputs=IMAGE, constants=constants), tmp_path), image()
    )
    assert [layer.spec.type for layer in network.layers] == ["conv2d", "batchnorm", "flatten"]


@pytest.mark.parametrize(
    "nodes, message",
    [
        (
            norm([node("Mul", ["bn", "per_value"], "scaled"), node("Flatten", ["scaled"], "y")]),
            "NS503 node 'scaled' (Mul): a Mul by a stored array of shape (2, 3, 4) after a batch norm: its array is "
            "not one value per channel; netspec folds a Mul and an Add of one value per channel into the batch norm "
            "before them (Caffe's Scale layer) when nothing else reads the batch norm's output",
        ),
        (
            norm(
                [
                    node("Mul", ["bn", "m3"], "scaled"),
                    node("Add", ["scaled", "bn"], "sum"),  # the batch norm's output read twice
                    node("Flatten", ["sum"], "y"),
                ]
            ),
            "NS503 node 'scaled' (Mul): a Mul by a stored array of shape (2, 1, 1) after a batch norm: the batch "
            "norm's output is read by another node too; netspec folds a Mul and an Add of one value per channel into "
            "the batch norm before them (Caffe's Scale layer) when nothing else reads the batch norm's output",
        ),
        (
            [
                helper.make_node("Conv", ["x", "K"], ["c"], name="conv"),
                node("Mul", ["c", "m3"], "scaled"),
                node("Flatten", ["scaled"], "y"),
            ],
            "NS503 node 'scaled' (Mul): a Mul by a stored array of shape (2, 1, 1) is netspec's only as one value per "
            "channel folded into the BatchNormalization before it (Caffe's Scale layer); a Mul of two layers' outputs "
            "is a multiply layer; fold it into the weights of the layer next to it before exporting",
        ),
    ],
    ids=["not-per-channel", "read-twice", "after-a-convolution"],
)
def test_other_constant_arithmetic_on_the_data_is_refused_with_its_reason(tmp_path, nodes, message):
    constants = NORM | {"per_value": RNG.normal(size=(2, 3, 4)).astype(np.float32), "m3": SCALE.reshape(2, 1, 1)}
    assert refusal(save(model(nodes, inputs=IMAGE, constants=constants), tmp_path)) == message


# An output of shape (batch, classes, 1, 1), as SqueezeNet's zoo graph ends.


@pytest.mark.parametrize(
    "opset, softmax",
    [(17, None), (9, {}), (17, {"axis": 1}), (17, {"axis": -3})],
    ids=["global-average", "softmax-opset-9", "softmax-axis-1", "softmax-axis-minus-3"],
)
def test_an_output_of_shape_batch_classes_1_1_imports(tmp_path, opset, softmax):
    nodes = [helper.make_node("Conv", ["x", "K"], ["c"], name="conv"), node("GlobalAveragePool", ["c"], "g")]
    nodes += [] if softmax is None else [helper.make_node("Softmax", ["g"], ["s"], name="softmax", **softmax)]
    nodes[-1].output[0] = "y"
    made = model(nodes, inputs=IMAGE, outputs=(("y", ["batch", 2, 1, 1]),), constants={"K": KERNEL}, opset=opset)
    network = imports_as_onnxruntime_runs(save(made, tmp_path), image())
    assert network.forward(image()).shape == (2, 2)


@pytest.mark.parametrize(
    "softmax, kinds",
    [(None, ["conv2d", "flatten"]), ({"axis": 1}, ["conv2d", "flatten", "activation"])],
    ids=["convolution", "convolution-softmax"],
)
def test_a_convolution_over_a_1x1_image_at_the_end_gives_the_scores_as_a_vector(tmp_path, softmax, kinds):
    # A classifier that is all convolutions: the last one over a 1×1 image gives (batch, classes, 1, 1).
    nodes = [helper.make_node("Conv", ["x", "K"], ["c"], name="conv")]
    nodes += [] if softmax is None else [helper.make_node("Softmax", ["c"], ["s"], name="softmax", **softmax)]
    nodes[-1].output[0] = "y"
    made = model(nodes, inputs=("x", ["batch", 3, 3, 3]), outputs=(("y", ["batch", 2, 1, 1]),), constants={"K": KERNEL})
    network = imports_as_onnxruntime_runs(save(made, tmp_path), RNG.normal(size=(2, 3, 3, 3)).astype(np.float32))
    assert [layer.spec.type for layer in network.layers] == kinds


def test_a_softmax_over_the_last_of_batch_classes_1_1_is_refused(tmp_path):
    # Opset 13's default axis, -1: each score alone, all 1. netspec's vector would have given the class softmax.
    nodes = [
        helper.make_node("Conv", ["x", "K"], ["c"], name="conv"),
        node("GlobalAveragePool", ["c"], "g"),
        helper.make_node("Softmax", ["g"], ["y"], name="softmax"),
    ]
    made = model(nodes, inputs=IMAGE, outputs=(("y", ["batch", 2, 1, 1]),), constants={"K": KERNEL})
    assert refusal(save(made, tmp_path)) == (
        "NS503 node 'softmax' (Softmax): a Softmax over axis -1 of a tensor of shape (batch, 2, 1, 1); netspec's "
        "softmax is over the class scores, axis 1 of (batch, classes)"
    )


# A Caffe-era zoo graph, as the onnx package ships it, with random arrays for its constant fills.

LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light", "light_inception_v2.onnx")


@pytest.mark.skipif(not os.path.exists(LIGHT), reason="this onnx package ships no light zoo graphs")
def test_the_zoo_s_inception_v2_imports_with_its_scales_folded(tmp_path):
    made = onnx.load(LIGHT)
    graph, sizes = made.graph, {t.name: numpy_helper.to_array(t) for t in made.graph.initializer}
    norms = {name for each in graph.node if each.op_type == "BatchNormalization" for name in each.input[1::3]}
    fills = [each for each in graph.node if each.op_type == "ConstantOfShape"]
    for fill in fills:
        shape = tuple(int(n) for n in sizes[fill.input[0]])
        if len(shape) > 1:  # weights, scaled to keep the scores finite through 69 layers
            values = RNG.normal(size=shape) * np.sqrt(2 / np.prod(shape[1:]))
        else:  # scales and variances positive; Caffe's Scale factors too
            values = (
                RNG.uniform(0.5, 1.5, shape)
                if fill.output[0] in norms or "sc_w" in fill.output[0]
                else RNG.normal(0, 0.1, shape)
            )
        graph.initializer.append(numpy_helper.from_array(values.astype(np.float32), fill.output[0]))
        graph.node.remove(fill)
    softmax = graph.node[-1]
    graph.output[0].name = softmax.input[0]  # the scores before the softmax, which saturates with random weights
    graph.node.remove(softmax)
    path = tmp_path / "inception_v2.onnx"
    onnx.save(made, str(path))
    out = path.with_suffix(".yaml")
    assert invoke("import", path, "-o", out).exit_code == 0
    network = netspec.load(out)
    x = RNG.normal(size=(1, 3, 224, 224)).astype(np.float32)
    expected = ort.InferenceSession(str(path)).run(None, {"data_0": x})[0]
    scores = network.forward(x)
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())
    assert scores.argmax() == expected.argmax()
    kinds = [layer.spec.type for layer in network.layers]
    assert kinds.count("batchnorm") == 69 and "multiply" not in kinds
