"""ONNX import of the patterns of MobileNet V2/V3, EfficientNet, ShuffleNet v2, GoogLeNet and DenseNet.

A global average read as (C, 1, 1) (squeeze-and-excitation's 1×1 Convs, Softmax and Flatten of it),
ReduceMean over height and width, Split along channels, and the activations PyTorch writes as
Clip, HardSigmoid and HardSwish. Each graph passes `onnx.checker`; netspec's scores are compared
with onnxruntime's (and PyTorch's for torch modules); each refusal is its exact NS503 line.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx_graphs import helper, imports_as_onnxruntime_runs, model, numpy_helper, onnx, refusal, save, torch_export

RNG = np.random.default_rng(14)
IMAGE = ("x", ["batch", 3, 5, 6])


def array(*shape) -> np.ndarray:
    return RNG.normal(0, 0.5, size=shape).astype(np.float32)  # scores about 1: float32 agrees to 1e-6 there


def conv(source: str, out: str, weights: str = "K", name: str = "conv", **attributes):
    return helper.make_node("Conv", [source, weights], [out], name=name, **attributes)


def images(count: int = 4) -> np.ndarray:
    return array(count, 3, 5, 6)


def activation(layer) -> str | None:
    return getattr(layer.spec, "activation", None)  # None for a layer that takes none


def wiring(network) -> list[tuple]:
    """Each layer's type, activation and the layers it reads, by position (-1: the input): names aside."""
    at = {layer.name: index for index, layer in enumerate(network.layers)} | {"input": -1}
    return [(layer.type, activation(layer), [at[name] for name in layer.inputs]) for layer in network.layers]


# ReduceMean over height and width: a global_avgpool.


@pytest.mark.parametrize(
    "axes, keepdims, opset",
    [([2, 3], 0, 17), ([-2, -1], 0, 17), ([3, 2], 1, 17), ([2, 3], 1, 18), ([-1, -2], 0, 18)],
    ids=["attribute", "negative", "keepdims", "input-opset-18", "input-negative"],
)
def test_a_reduce_mean_over_height_and_width_is_a_global_avgpool(tmp_path, axes, keepdims, opset):
    # conv → ReduceMean (→ Flatten of the (batch, 8, 1, 1) it keeps) → Gemm, as x.mean((2, 3)) exports.
    reduce = (
        helper.make_node("ReduceMean", ["c", "axes"], ["m"], name="mean", keepdims=keepdims)
        if opset >= 18
        else helper.make_node("ReduceMean", ["c"], ["m"], name="mean", axes=axes, keepdims=keepdims)
    )
    nodes = [conv("x", "c", pads=[1, 1, 1, 1]), reduce]
    if keepdims:
        nodes.append(helper.make_node("Flatten", ["m"], ["f"], name="flat"))
    nodes.append(helper.make_node("Gemm", ["f" if keepdims else "m", "D", "b"], ["y"], transB=1, name="dense"))
    constants = {"K": array(8, 3, 3, 3), "D": array(4, 8), "b": array(4), "axes": np.array(axes, np.int64)}
    path = save(model(nodes, inputs=IMAGE, constants=constants, opset=opset), tmp_path)
    network = imports_as_onnxruntime_runs(path, images())
    assert [layer.type for layer in network.layers] == ["conv2d", "global_avgpool", "dense"]


def test_an_output_of_shape_batch_classes_1_1_is_the_scores(tmp_path):
    # SqueezeNet's head: a conv to the classes, Relu, the global average as the output (batch, classes, 1, 1).
    for op in ("GlobalAveragePool", "ReduceMean"):
        average = helper.make_node(op, ["r"], ["y"], name="pool", **({"axes": [2, 3]} if op == "ReduceMean" else {}))
        nodes = [conv("x", "c"), helper.make_node("Relu", ["c"], ["r"], name="relu"), average]
        made = model(nodes, inputs=IMAGE, outputs=(("y", ["batch", 5, 1, 1]),), constants={"K": array(5, 3, 1, 1)})
        network = imports_as_onnxruntime_runs(save(made, tmp_path, op), images())
        assert [(layer.type, layer.spec.activation) for layer in network.layers[:1]] == [("conv2d", "relu")]
        assert network.layers[-1].output_shape == (5,) and len(network.classes) == 5


@pytest.mark.parametrize(
    "axes, message",
    [
        (
            [1],
            "NS503 node 'mean' (ReduceMean): a ReduceMean over axes [1] of a tensor of shape (batch, 2, 3, 4); netspec "
            "averages an image over its height and width only (global_avgpool): axes [2, 3] (or [-2, -1]) of (batch, "
            "channels, height, width)",
        ),
        (
            None,
            "NS503 node 'mean' (ReduceMean): a ReduceMean over every axis (the batch too) of a tensor of shape (batch, "
            "2, 3, 4); netspec averages an image over its height and width only (global_avgpool): axes [2, 3] (or "
            "[-2, -1]) of (batch, channels, height, width)",
        ),
        (
            [-1],
            "NS503 node 'mean' (ReduceMean): a ReduceMean over axes [-1] of a tensor of shape (batch, 2, 3, 4); "
            "netspec averages an image over its height and width only (global_avgpool): axes [2, 3] (or [-2, -1]) of "
            "(batch, channels, height, width)",
        ),
    ],
    ids=["channels", "every-axis", "width"],
)
def test_a_reduce_mean_over_other_axes_is_refused(tmp_path, axes, message):
    attributes = {} if axes is None else {"axes": axes}
    nodes = [
        conv("x", "c", pads=[1, 1, 1, 1]),
        helper.make_node("ReduceMean", ["c"], ["y"], name="mean", keepdims=0, **attributes),
    ]
    shape = {None: [], 1: ["batch", 3, 4], -1: ["batch", 2, 3]}[axes and axes[0]]
    made = model(nodes, inputs=("x", ["batch", 3, 3, 4]), outputs=(("y", shape),), constants={"K": array(2, 3, 3, 3)})
    assert refusal(save(made, tmp_path)) == message


# Squeeze-and-excitation as torchvision writes it: 1×1 Convs of the global average.


def se_graph(tmp_path, reader=None, output=("y", ["batch", 3]), fc1=(4, 8, 1, 1)):
    """conv → GlobalAveragePool → fc1 (1×1 Conv) → Relu → fc2 → HardSigmoid → Mul with the conv's image → head;
    or conv → GlobalAveragePool → `reader`, the output."""
    nodes = [
        conv("x", "c", pads=[1, 1, 1, 1]),
        helper.make_node("GlobalAveragePool", ["c"], ["g"], name="avgpool"),
        conv("g", "s1", "F1", name="fc1"),
        helper.make_node("Relu", ["s1"], ["a"], name="relu"),
        conv("a", "s2", "F2", name="fc2"),
        helper.make_node("HardSigmoid", ["s2"], ["scale"], name="hsig", alpha=1 / 6),
        helper.make_node("Mul", ["scale", "c"], ["se"], name="mul"),
        helper.make_node("GlobalAveragePool", ["se"], ["p"], name="head_pool"),
        helper.make_node("Flatten", ["p"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "D"], ["y"], transB=1, name="dense"),
    ]
    if reader is not None:
        nodes[2:] = [reader]
    constants = {"K": array(8, 3, 3, 3), "F1": array(*fc1), "F2": array(8, 4, 1, 1), "D": array(3, 8)}
    return save(model(nodes, inputs=IMAGE, outputs=(output,), constants=constants), tmp_path)


def test_the_1x1_convs_of_a_squeeze_excitation_are_dense_layers(tmp_path):
    network = imports_as_onnxruntime_runs(se_graph(tmp_path), images())
    assert wiring(network) == [
        ("conv2d", "linear", [-1]),
        ("global_avgpool", None, [0]),
        ("dense", "relu", [1]),  # fc1
        ("dense", "hard_sigmoid", [2]),  # fc2
        ("multiply", None, [3, 0]),
        ("global_avgpool", None, [4]),
        ("dense", "linear", [5]),
    ]
    assert network.layers[2].params["weights"].shape == (4, 8)


@pytest.mark.parametrize(
    "kernel, pads, message",
    [
        (
            (3, 3),
            [1, 1, 1, 1],
            "NS503 node 'fc1' (Conv): a 3×3 Conv with pads [1, 1, 1, 1] and group 1 of 'g', the 8 values of a vector "
            "seen as a (8, 1, 1) image; netspec reads a Conv of it only as a dense layer: a 1×1 kernel, no padding, "
            "group 1",
        ),
        (
            (1, 1),
            [1, 0, 1, 0],
            "NS503 node 'fc1' (Conv): a 1×1 Conv with pads [1, 0, 1, 0] and group 1 of 'g', the 8 values of a vector "
            "seen as a (8, 1, 1) image; netspec reads a Conv of it only as a dense layer: a 1×1 kernel, no padding, "
            "group 1",
        ),
    ],
    ids=["3x3", "padded"],
)
def test_a_conv_of_a_global_average_that_is_no_dense_layer_is_refused(tmp_path, kernel, pads, message):
    fc1 = conv("g", "y", "F1", name="fc1", pads=pads)
    size = [2 + pads[axis] + pads[axis + 2] - kernel[axis] for axis in (0, 1)]  # ONNX's pads: starts, then ends
    made = se_graph(tmp_path, fc1, ("y", ["batch", 4, *size]), (4, 8, *kernel))
    assert refusal(made) == message


def test_a_global_average_read_by_an_image_layer_is_refused(tmp_path):
    pool = helper.make_node("MaxPool", ["g"], ["y"], name="maxpool", kernel_shape=[1, 1])
    assert refusal(se_graph(tmp_path, pool, ("y", ["batch", 8, 1, 1]))) == (
        "NS503 node 'maxpool' (MaxPool): it reads 'g', of shape (8, 1, 1): the vector of layer 'avgpool' "
        "seen as an image of one pixel, which netspec reads only in a 1×1 Conv (as a dense layer), an activation, "
        "a Flatten, Reshape or Squeeze back to the vector, or a Mul scaling an image's channels"
    )


@pytest.mark.parametrize("opset", [11, 17])
def test_a_squeeze_or_reshape_of_a_global_average_is_its_vector(tmp_path, opset):
    squeeze = (
        helper.make_node("Squeeze", ["s", "sq"], ["v"], name="squeeze")
        if opset >= 13
        else helper.make_node("Squeeze", ["s"], ["v"], name="squeeze", axes=[2, 3])
    )
    nodes = [
        conv("x", "c", pads=[1, 1, 1, 1]),
        helper.make_node("GlobalAveragePool", ["c"], ["g"], name="avgpool"),
        helper.make_node("Softmax", ["g"], ["s"], name="softmax", axis=1),  # over the channels of (batch, 8, 1, 1)
        squeeze,
        helper.make_node("Reshape", ["v", "shape"], ["y"], name="reshape"),
    ]
    constants = {"K": array(8, 3, 3, 3), "sq": np.array([2, 3], np.int64), "shape": np.array([0, 8], np.int64)}
    network = imports_as_onnxruntime_runs(
        save(model(nodes, inputs=IMAGE, constants=constants, opset=opset), tmp_path), images()
    )
    assert [(layer.type, activation(layer)) for layer in network.layers] == [
        ("conv2d", "linear"),
        ("global_avgpool", None),
        ("activation", "softmax"),
    ]


@pytest.mark.parametrize("axis", [None, 0])
def test_a_softmax_of_a_global_average_over_another_axis_than_channels_is_refused(tmp_path, axis):
    # Opset 13's default axis, -1, is the width of (batch, C, 1, 1): a softmax of one value, all ones.
    softmax = helper.make_node("Softmax", ["g"], ["y"], name="softmax", **({} if axis is None else {"axis": axis}))
    assert refusal(se_graph(tmp_path, softmax, ("y", ["batch", 8, 1, 1]))) == (
        f"NS503 node 'softmax' (Softmax): a Softmax over axis {-1 if axis is None else axis} of a tensor of shape "
        "(batch, 8, 1, 1); netspec's softmax is over the class scores, axis 1 of (batch, classes)"
    )


def torch_modules(torch):
    """MobileNet V3's and EfficientNet's blocks, with squeeze-and-excitation written as torchvision writes it."""
    nn = torch.nn

    class SqueezeExcitation(nn.Module):  # torchvision.ops.misc.SqueezeExcitation
        def __init__(self, channels, squeezed, activation, scale_activation, mean=False):
            super().__init__()
            self.avgpool, self.mean = nn.AdaptiveAvgPool2d(1), mean
            self.fc1, self.fc2 = nn.Conv2d(channels, squeezed, 1), nn.Conv2d(squeezed, channels, 1)
            self.activation, self.scale_activation = activation(), scale_activation()

        def forward(self, x):
            scale = x.mean((2, 3), keepdim=True) if self.mean else self.avgpool(x)
            return self.scale_activation(self.fc2(self.activation(self.fc1(scale)))) * x

    class Block(nn.Module):  # expand (relu6), depthwise, SE, project, shortcut; the head averages with mean
        def __init__(self, activation, se_activation, scale_activation, mean):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU6())
            self.expand = nn.Sequential(nn.Conv2d(8, 16, 1), nn.BatchNorm2d(16), activation())
            self.depthwise = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.BatchNorm2d(16), activation())
            self.se = SqueezeExcitation(16, 4, se_activation, scale_activation, mean)
            self.project = nn.Sequential(nn.Conv2d(16, 8, 1), nn.BatchNorm2d(8))
            self.head = nn.Linear(8, 5)

        def forward(self, x):
            x = self.stem(x)
            y = self.project(self.se(self.depthwise(self.expand(x)))) + x
            return self.head(y.mean((2, 3)))

    return Block


@pytest.mark.parametrize(
    "kind",
    ["mobilenet_v3", "efficientnet", "mean"],
)
def test_pytorch_blocks_with_squeeze_excitation_import_and_predict_as_pytorch_does(tmp_path, kind):
    torch = pytest.importorskip("torch")
    nn = torch.nn
    settings = {
        "mobilenet_v3": (nn.Hardswish, nn.ReLU, nn.Hardsigmoid, False),
        "efficientnet": (nn.SiLU, nn.SiLU, nn.Sigmoid, False),
        "mean": (nn.Hardswish, nn.ReLU, nn.Hardsigmoid, True),  # the average as x.mean((2, 3), keepdim=True)
    }[kind]
    torch.manual_seed(0)
    module = torch_modules(torch)(*settings)
    for norm in (m for m in module.modules() if isinstance(m, nn.BatchNorm2d)):
        norm.running_mean.uniform_(-0.5, 0.5), norm.running_var.uniform_(0.5, 2), norm.weight.data.uniform_(0.5, 2)
    x = torch.randn(3, 3, 7, 7) * 3
    path = tmp_path / f"{kind}.onnx"
    torch_export(torch, module, x, path, dynamo=False)
    network = imports_as_onnxruntime_runs(path, x.numpy())
    with torch.no_grad():
        np.testing.assert_allclose(network.forward(x.numpy()), module(x).numpy(), rtol=1e-5, atol=1e-5)
    conv_activation = {nn.Hardswish: "hard_swish", nn.SiLU: "silu"}[settings[0]]
    se_activation, scale_activation = {"mobilenet_v3": ("relu", "hard_sigmoid")}.get(kind, ("silu", "sigmoid"))
    if kind == "mean":
        se_activation, scale_activation = "relu", "hard_sigmoid"
    # Every activation folds into the layer before it: Clip(0, 6) of Constant nodes, HardSwish, HardSigmoid.
    assert [(layer.type, activation(layer)) for layer in network.layers] == [
        ("conv2d", "relu6"),
        ("conv2d", conv_activation),
        ("conv2d", conv_activation),
        ("global_avgpool", None),
        ("dense", se_activation),
        ("dense", scale_activation),
        ("multiply", None),
        ("conv2d", "linear"),
        ("add", "linear"),
        ("global_avgpool", None),
        ("dense", "linear"),
    ]


# Split along channels: one slice layer for each output read.


def shuffled(tmp_path, split, opset: int = 17, constants=None, name: str = "split"):
    """ShuffleNet v2's block of stride 1: Split the conv's channels in two, convolve one half, Concat, shuffle."""
    nodes = [
        conv("x", "c", pads=[1, 1, 1, 1]),
        split,
        conv("b", "d", "K2", name="branch", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["d"], ["r"], name="relu"),
        helper.make_node("Concat", ["a", "r"], ["j"], name="join", axis=1),
        helper.make_node("Reshape", ["j", "grouped"], ["g"], name="group"),
        helper.make_node("Transpose", ["g"], ["t"], name="swap", perm=[0, 2, 1, 3, 4]),
        helper.make_node("Reshape", ["t", "back"], ["s"], name="shuffle"),
        helper.make_node("Flatten", ["s"], ["y"], name="flat"),
    ]
    stored = {
        "K": array(8, 3, 3, 3),
        "K2": array(4, 4, 3, 3),
        "grouped": np.array([-1, 2, 4, 5, 6], np.int64),
        "back": np.array([-1, 8, 5, 6], np.int64),
        **(constants or {}),
    }
    made = model(nodes, inputs=IMAGE, outputs=(("y", ["batch", 240]),), constants=stored, opset=opset)
    return save(made, tmp_path, name)


@pytest.mark.parametrize(
    "split, opset, constants",
    [
        (helper.make_node("Split", ["c", "sizes"], ["a", "b"], name="split", axis=1), 17, {"sizes": np.array([4, 4])}),
        (helper.make_node("Split", ["c"], ["a", "b"], name="split", axis=-3), 17, {}),
        (helper.make_node("Split", ["c"], ["a", "b"], name="split", axis=1, split=[4, 4]), 11, {}),
        (helper.make_node("Split", ["c"], ["a", "b"], name="split", axis=1, num_outputs=2), 18, {}),
    ],
    ids=["sizes-input", "equal", "sizes-attribute", "num-outputs"],
)
def test_a_split_along_channels_is_a_slice_layer_for_each_output(tmp_path, split, opset, constants):
    constants = {key: value.astype(np.int64) for key, value in constants.items()}
    network = imports_as_onnxruntime_runs(shuffled(tmp_path, split, opset, constants), images())
    assert wiring(network) == [
        ("conv2d", "linear", [-1]),
        ("slice", None, [0]),
        ("slice", None, [0]),
        ("conv2d", "relu", [2]),
        ("concat", "linear", [1, 3]),
        ("channel_shuffle", None, [4]),
        ("flatten", None, [5]),
    ]
    slices = [(layer.name, layer.spec.start, layer.spec.stop) for layer in network.layers[1:3]]
    assert slices == [("split_0", 0, 4), ("split_1", 4, 8)]  # named after the Split, numbered as its outputs


def test_a_split_of_unequal_parts_maps_only_the_outputs_read(tmp_path):
    # Three parts of 3, 1 and 4 channels; the middle one is read by nothing (a Split's other outputs may be).
    split = helper.make_node("Split", ["c", "sizes"], ["a", "unused", "b"], name="split", axis=1)
    nodes_path = shuffled(tmp_path, split, constants={"sizes": np.array([3, 1, 4], np.int64), "K2": array(4, 4, 3, 3)})
    # a has 3 channels and r 4: the Concat has 7, so the shuffle's shapes change too.
    made = onnx.load(str(nodes_path))
    for tensor in made.graph.initializer:
        if tensor.name in ("grouped", "back"):
            values = {"grouped": [-1, 7, 1, 5, 6], "back": [-1, 7, 5, 6]}[tensor.name]
            tensor.CopyFrom(numpy_helper.from_array(np.array(values, np.int64), tensor.name))
    made.graph.output[0].type.tensor_type.shape.dim[1].dim_value = 210
    network = imports_as_onnxruntime_runs(save(made, tmp_path, "unequal"), images())
    slices = [(layer.name, layer.spec.start, layer.spec.stop) for layer in network.layers if layer.type == "slice"]
    assert slices == [("split_0", 0, 3), ("split_2", 4, 8)]


@pytest.mark.parametrize(
    "axis, message",
    [
        (
            2,
            "NS503 node 'split' (Split): a Split along axis 2 of a tensor of shape (batch, 8, 5, 6); netspec splits "
            "channels (or the features of a vector), axis 1, as slice layers",
        ),
        (
            None,  # ONNX's default axis, 0: the samples of a batch
            "NS503 node 'split' (Split): a Split along axis 0 of a tensor of shape (batch, 8, 5, 6); netspec splits "
            "channels (or the features of a vector), axis 1, as slice layers",
        ),
    ],
    ids=["height", "batch"],
)
def test_a_split_along_another_axis_is_refused(tmp_path, axis, message):
    attributes = {} if axis is None else {"axis": axis}
    nodes = [
        conv("x", "c", pads=[1, 1, 1, 1]),
        helper.make_node("Split", ["c", "sizes"], ["a", "b"], name="split", **attributes),
        helper.make_node("Concat", ["b", "a"], ["j"], name="join", axis=attributes.get("axis", 0)),
        helper.make_node("Flatten", ["j"], ["y"], name="flat"),
    ]
    constants = {"K": array(8, 3, 3, 3), "sizes": np.array([2, 3] if axis else [1, 1], np.int64)}
    made = model(nodes, inputs=("x", [2, 3, 5, 6]), outputs=(("y", [2, 240]),), constants=constants)
    assert refusal(save(made, tmp_path)) == message


def test_a_split_into_parts_that_do_not_fit_is_refused(tmp_path):
    split = helper.make_node("Split", ["c", "sizes"], ["a", "b"], name="split", axis=1)
    made = shuffled(tmp_path, split, constants={"sizes": np.array([4, 4], np.int64)})
    loaded = onnx.load(str(made))
    loaded.graph.initializer[-1].CopyFrom(numpy_helper.from_array(np.array([3, 4], np.int64), "sizes"))
    assert refusal(save(loaded, tmp_path, "bad")) == (
        "NS503 node 'split' (Split): it splits 8 along axis 1 into parts of [3, 4] for 2 outputs; netspec needs one "
        "part of at least 1 for each output, adding up to 8"
    )


class _Shuffle:
    """ShuffleNet v2's InvertedResidual of stride 1, its channel shuffle written with constant shapes."""

    @staticmethod
    def module(torch, chunk: bool):
        nn = torch.nn

        class InvertedResidual(nn.Module):
            def __init__(self):
                super().__init__()
                self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
                self.fc = nn.Linear(8, 5)
                self.branch2 = nn.Sequential(
                    nn.Conv2d(4, 4, 1),
                    nn.BatchNorm2d(4),
                    nn.ReLU(inplace=True),
                    nn.Conv2d(4, 4, 3, padding=1, groups=4),
                    nn.BatchNorm2d(4),
                    nn.Conv2d(4, 4, 1),
                    nn.BatchNorm2d(4),
                    nn.ReLU(inplace=True),
                )

            def forward(self, x):
                x = self.stem(x)
                x1, x2 = x.chunk(2, dim=1) if chunk else torch.split(x, [4, 4], dim=1)
                out = torch.cat((x1, self.branch2(x2)), dim=1)
                out = out.view(-1, 2, 4, 5, 6).transpose(1, 2).reshape(-1, 8, 5, 6)
                return self.fc(out.mean([2, 3]))  # torchvision's head: ReduceMean

        return InvertedResidual()


@pytest.mark.parametrize("exporter", ["torchscript-split", "dynamo-chunk"])
def test_a_pytorch_shufflenet_v2_block_imports_and_predicts_as_pytorch_does(tmp_path, exporter):
    """torch.split exports as Split (TorchScript); x.chunk(2, dim=1) as Split with num_outputs (dynamo)."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    module = _Shuffle.module(torch, chunk=exporter == "dynamo-chunk")
    x = torch.randn(2, 3, 5, 6)
    path = tmp_path / "shuffle.onnx"
    torch_export(torch, module, x, path, dynamo=exporter.startswith("dynamo"))
    assert "Split" in {node.op_type for node in onnx.load(str(path)).graph.node}
    network = imports_as_onnxruntime_runs(path, x.numpy())
    with torch.no_grad():
        np.testing.assert_allclose(network.forward(x.numpy()), module(x).numpy(), rtol=1e-5, atol=1e-5)
    types = [layer.type for layer in network.layers]
    assert types.count("slice") == 2 and types[-4:] == ["concat", "channel_shuffle", "global_avgpool", "dense"]


# DenseNet: each dense layer concatenates all before it; the first one, torch.cat of a list of one tensor.


def test_a_concat_of_one_tensor_is_that_tensor(tmp_path):
    nodes = [
        conv("x", "c", pads=[1, 1, 1, 1]),
        helper.make_node("Concat", ["c"], ["one"], name="cat1", axis=1),
        helper.make_node("Relu", ["one"], ["r"], name="relu"),
        conv("r", "d", "K2", name="layer1", pads=[1, 1, 1, 1]),
        helper.make_node("Concat", ["c", "d"], ["two"], name="cat2", axis=1),
        helper.make_node("GlobalAveragePool", ["two"], ["g"], name="avgpool"),
        helper.make_node("Flatten", ["g"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "D"], ["y"], transB=1, name="dense"),
    ]
    constants = {"K": array(4, 3, 3, 3), "K2": array(2, 4, 3, 3), "D": array(3, 6)}
    network = imports_as_onnxruntime_runs(save(model(nodes, inputs=IMAGE, constants=constants), tmp_path), images())
    # The Relu reads the conv's output through the Concat of one, but so does cat2: an activation layer.
    assert wiring(network) == [
        ("conv2d", "linear", [-1]),
        ("activation", "relu", [0]),
        ("conv2d", "linear", [1]),
        ("concat", "linear", [0, 2]),
        ("global_avgpool", None, [3]),
        ("dense", "linear", [4]),
    ]
