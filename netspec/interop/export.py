"""Export a built network as a standard ONNX model computing the same scores."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from netspec.errors import Problem, SpecError
from netspec.files import atomic_write
from netspec.layers import windows
from netspec.layers.common import DEFAULT_ALPHA

if TYPE_CHECKING:
    from netspec.network import Network

OPSET = 17
INPUT, OUTPUT = "input", "scores"

ONNX_ACTIVATIONS = {  # the ONNX operator each activation is exported as; the importer reads them back
    "relu": "Relu",
    "leaky_relu": "LeakyRelu",
    "sigmoid": "Sigmoid",
    "tanh": "Tanh",
    "softmax": "Softmax",
}


def onnx_module():
    """The onnx package, or a clear error saying how to install it."""
    try:
        import onnx
    except ImportError:
        raise SpecError(
            Problem(
                "NS501",
                "ONNX support needs the onnx package: "
                "pip install 'onnx>=1.16' 'onnxruntime>=1.18' (netspec's onnx extra)",
            )
        ) from None
    return onnx


def export(network: Network, path: Path) -> Path:
    """Write `network` to `path` as an ONNX model (opset 17) with its classes and preprocessing in metadata.

    Raises:
        SpecError: onnx is not installed (NS501).
    """
    onnx = onnx_module()
    model = to_model(network)
    onnx.checker.check_model(model, full_check=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as stream:
        stream.write(model.SerializeToString())
    return path


def to_model(network: Network):
    """The ONNX ModelProto of a network."""
    onnx = onnx_module()
    helper, numpy_helper = onnx.helper, onnx.numpy_helper
    element = onnx.helper.np_dtype_to_tensor_dtype(network.dtype)
    nodes, initializers = [], []
    current = INPUT

    def node(op: str, inputs: list[str], name: str, **attributes) -> str:
        nodes.append(helper.make_node(op, inputs, [name], name=name, **attributes))
        return name

    def constant(name: str, array: np.ndarray) -> str:
        initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    for layer in network.layers:
        spec, name, params = layer.spec, layer.name, layer.params
        if spec.type == "dense":
            if len(layer.input_shape) > 1:  # the input image, read flattened
                current = node("Flatten", [current], f"{name}.flatten", axis=1)
            current = node(
                "Gemm",
                [current, constant(f"{name}.weights", params["weights"]), constant(f"{name}.bias", params["bias"])],
                f"{name}.gemm",
                transB=1,
            )
        elif spec.type == "conv2d":
            (top, bottom), (left, right) = _pads(spec, spec.kernel, spec.stride, spec.dilation, layer.input_shape)
            current = node(
                "Conv",
                [current, constant(f"{name}.weights", params["weights"]), constant(f"{name}.bias", params["bias"])],
                f"{name}.conv",
                kernel_shape=list(spec.kernel),
                strides=list(spec.stride),
                dilations=list(spec.dilation),
                pads=[top, left, bottom, right],
            )
        elif spec.type in ("maxpool2d", "avgpool2d"):
            (top, bottom), (left, right) = _pads(spec, spec.size, spec.stride, (1, 1), layer.input_shape)
            attributes = {
                "kernel_shape": list(spec.size),
                "strides": list(spec.stride),
                "pads": [top, left, bottom, right],
            }
            if spec.type == "avgpool2d":
                attributes["count_include_pad"] = 0
            current = node("MaxPool" if spec.type == "maxpool2d" else "AveragePool", [current], name, **attributes)
        elif spec.type == "global_avgpool":
            current = node("Flatten", [node("GlobalAveragePool", [current], f"{name}.pool")], name, axis=1)
        elif spec.type == "flatten":
            current = node("Flatten", [current], name, axis=1)
        elif spec.type == "dropout":
            ratio = constant(f"{name}.ratio", np.array(spec.rate, dtype=network.dtype))
            current = node("Dropout", [current, ratio], name)
        elif spec.type == "batchnorm":
            inputs = [current] + [constant(f"{name}.{key}", params[key]) for key in ("scale", "shift", "mean", "var")]
            # ONNX's momentum weighs the running value: running = running·momentum + batch·(1 − momentum).
            current = node("BatchNormalization", inputs, name, epsilon=spec.epsilon, momentum=1 - spec.momentum)
        activation = getattr(spec, "activation", "linear")
        if activation != "linear":
            attributes = (
                {"alpha": spec.alpha if spec.alpha is not None else DEFAULT_ALPHA} if activation == "leaky_relu" else {}
            )
            if activation == "softmax":
                attributes = {"axis": -1 if len(layer.output_shape) == 1 else 1}
            current = node(ONNX_ACTIVATIONS[activation], [current], f"{name}.{activation}", **attributes)
    nodes[-1].output[0] = OUTPUT
    graph = helper.make_graph(
        nodes,
        network.spec.name,
        [helper.make_tensor_value_info(INPUT, element, ["batch", *network.input_shape])],
        [helper.make_tensor_value_info(OUTPUT, element, ["batch", len(network.classes)])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="netspec")
    model.doc_string = network.spec.description
    helper.set_model_props(model, _metadata(network))
    return model


def _pads(spec, kernel, stride, dilation, input_shape) -> tuple[tuple[int, int], tuple[int, int]]:
    pads, _ = windows.geometry(input_shape, tuple(kernel), tuple(stride), tuple(dilation), spec.padding)
    return pads


def _metadata(network: Network) -> dict[str, str]:
    """What an ONNX runtime cannot know from the graph: the labels and how inputs are prepared."""
    spec = network.spec
    preprocessing = spec.input.model_dump(mode="json", exclude_none=True)
    return {
        "netspec.format": str(spec.netspec),
        "netspec.name": spec.name,
        "netspec.classes": json.dumps(spec.classes, ensure_ascii=False),
        "netspec.input": json.dumps(preprocessing, ensure_ascii=False),
    }
