"""Import an ONNX graph made of netspec's operators as a spec and its arrays."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from netspec.errors import Problem, SpecError
from netspec.interop.export import ONNX_ACTIVATIONS, onnx_module
from netspec.layers import windows

# ONNX activations that become the `activation` of the layer before them.
_ACTIVATIONS = {operator: name for name, operator in ONNX_ACTIVATIONS.items()}
_NAME = re.compile(r"[A-Za-z0-9_-]+")
_SUPPORTED = (
    "Gemm, MatMul+Add, Relu, LeakyRelu, Sigmoid, Tanh, Softmax, Conv, MaxPool, AveragePool, GlobalAveragePool, "
    "Flatten, Reshape to a vector, BatchNormalization, Dropout, Identity"
)


def read_model(path: Path):
    """Load an ONNX file, following external-data paths only inside the model's folder.

    Raises:
        SpecError: not an ONNX file (NS502), or external data outside the model's folder (NS504).
    """
    onnx = onnx_module()
    name = str(path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as err:  # noqa: BLE001 - onnx raises DecodeError and friends for any bad file
        raise SpecError(Problem("NS502", f"not a readable ONNX model ({type(err).__name__})", file=name)) from None
    base = path.parent.resolve()
    for tensor in model.graph.initializer:
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        location = next((entry.value for entry in tensor.external_data if entry.key == "location"), "")
        target = (base / location).resolve()
        if Path(location).is_absolute() or not target.is_relative_to(base) or not target.is_file():
            message = f"tensor {tensor.name!r} keeps its data in {location!r}, outside the model's folder or missing"
            raise SpecError(Problem("NS504", message, file=name))
    onnx.external_data_helper.load_external_data_for_model(model, str(base))
    return model


def to_spec(model, source: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The spec (as plain data) and the arrays ("<layer>.<param>") of an ONNX model.

    Raises:
        SpecError: an operator or pattern netspec cannot map, naming the node (NS503).
    """
    onnx = onnx_module()
    numpy_helper = onnx.numpy_helper
    graph = model.graph
    arrays = {tensor.name: numpy_helper.to_array(tensor) for tensor in graph.initializer}
    metadata = {prop.key: prop.value for prop in model.metadata_props}
    inputs = [value for value in graph.input if value.name not in arrays]
    if len(inputs) != 1:
        raise SpecError(Problem("NS503", f"the graph has {len(inputs)} inputs; netspec networks have one", file=source))
    shape = [d.dim_value for d in inputs[0].type.tensor_type.shape.dim][1:]
    layers: list[dict[str, Any]] = []
    params: dict[str, np.ndarray] = {}
    shape_now = list(shape)
    nodes = list(graph.node)
    index = 0

    def fail(node, why: str):
        message = f"node {node.name or node.op_type!r} ({node.op_type}): {why}; netspec maps {_SUPPORTED}"
        raise SpecError(Problem("NS503", message, file=source))

    def constant(node, position: int) -> np.ndarray:
        if position >= len(node.input) or node.input[position] not in arrays:
            fail(node, f"input {position} must be a stored array (an initializer)")
        return arrays[node.input[position]]

    def attributes(node) -> dict[str, Any]:
        return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}

    def add(layer: dict[str, Any], arrays_of_layer: dict[str, np.ndarray], hint: str = "") -> None:
        # Keep the names netspec's export gave ("hidden1.weights", node "pool1"); invent the rest.
        taken = {existing["name"] for existing in layers}
        name = hint if _NAME.fullmatch(hint or "") and hint not in taken else f"{layer['type']}_{len(layers)}"
        layer = {"name": name, **layer}
        layers.append(layer)
        for key, value in arrays_of_layer.items():
            params[f"{layer['name']}.{key}"] = value

    node = None
    try:
        while index < len(nodes):
            node = nodes[index]
            op, attrs = node.op_type, attributes(node)
            if op == "Identity":
                pass
            elif op in ("Flatten", "Reshape"):
                if op == "Flatten" and attrs.get("axis", 1) != 1:
                    fail(node, "only Flatten with axis 1 keeps the batch apart")
                if op == "Reshape" and list(constant(node, 1)) not in ([0, -1], [-1, int(np.prod(shape_now))]):
                    fail(node, "only a Reshape to (batch, values) is a flatten")
                after_global_pool = layers and layers[-1]["type"] == "global_avgpool"
                # A dense layer reads the input image flattened by itself, as netspec specs write it.
                before_dense = not layers and index + 1 < len(nodes) and nodes[index + 1].op_type in ("Gemm", "MatMul")
                if len(shape_now) > 1 and not after_global_pool and not before_dense:
                    add({"type": "flatten"}, {}, node.name)
                shape_now = [int(np.prod(shape_now))]
            elif op == "Gemm":
                if attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0 or attrs.get("transA", 0):
                    fail(node, "only Gemm with alpha 1, beta 1 and no transA is a dense layer")
                weights = constant(node, 1)
                weights = weights if attrs.get("transB", 0) else weights.T
                bias = constant(node, 2) if len(node.input) > 2 else np.zeros(len(weights), weights.dtype)
                _dense(layers, add, shape_now, weights, bias, _prefix(node.input[1]))
                shape_now = [len(weights)]
            elif op == "MatMul":
                weights = constant(node, 1).T
                following = nodes[index + 1] if index + 1 < len(nodes) else None
                bias = np.zeros(len(weights), weights.dtype)
                if following is not None and following.op_type == "Add" and node.output[0] in following.input:
                    other = [name for name in following.input if name != node.output[0]]
                    bias = arrays.get(other[0]) if other else None
                    if bias is None:
                        fail(following, "the Add after a MatMul must add a stored bias")
                    index += 1
                _dense(
                    layers,
                    add,
                    shape_now,
                    weights,
                    np.broadcast_to(bias, (len(weights),)).copy(),
                    _prefix(node.input[1]),
                )
                shape_now = [len(weights)]
            elif op == "Conv":
                weights = constant(node, 1)
                if attrs.get("group", 1) != 1:
                    fail(node, "grouped convolutions are not supported")
                kernel = list(weights.shape[2:])
                stride, dilation = list(attrs.get("strides", [1, 1])), list(attrs.get("dilations", [1, 1]))
                padding = _padding(node, attrs, shape_now, kernel, stride, dilation, fail)
                bias = constant(node, 2) if len(node.input) > 2 else np.zeros(len(weights), weights.dtype)
                add(
                    {
                        "type": "conv2d",
                        "filters": int(len(weights)),
                        "kernel": kernel,
                        "stride": stride,
                        "padding": padding,
                        "dilation": dilation,
                    },
                    {"weights": weights, "bias": bias},
                    _prefix(node.input[1]),
                )
                shape_now = _spatial(shape_now, len(weights), kernel, stride, dilation, padding)
            elif op in ("MaxPool", "AveragePool"):
                size, stride = list(attrs["kernel_shape"]), list(attrs.get("strides", [1, 1]))
                if attrs.get("dilations", [1, 1]) != [1, 1] or attrs.get("ceil_mode", 0):
                    fail(node, "dilated or ceil-mode pooling is not supported")
                padding = _padding(node, attrs, shape_now, size, stride, [1, 1], fail)
                if op == "AveragePool" and attrs.get("count_include_pad", 0) and padding not in ("valid", 0):
                    fail(node, "an average that counts padding cells is not supported (count_include_pad must be 0)")
                add(
                    {
                        "type": "maxpool2d" if op == "MaxPool" else "avgpool2d",
                        "size": size,
                        "stride": stride,
                        "padding": padding,
                    },
                    {},
                    node.name,
                )
                shape_now = _spatial(shape_now, shape_now[0], size, stride, [1, 1], padding)
            elif op == "GlobalAveragePool":
                add({"type": "global_avgpool"}, {}, node.name.removesuffix(".pool"))
                shape_now = [shape_now[0], 1, 1]  # a Flatten normally follows; global_avgpool gives the vector already
            elif op == "BatchNormalization":
                values = {
                    key: constant(node, position)
                    for position, key in enumerate(("scale", "shift", "mean", "var"), start=1)
                }
                epsilon, momentum = (
                    _decimal(attrs.get("epsilon", 1e-5)),
                    _decimal(1 - _decimal(attrs.get("momentum", 0.9))),
                )
                add({"type": "batchnorm", "epsilon": epsilon, "momentum": momentum}, values, node.name)
            elif op == "Dropout":
                rate = _decimal(constant(node, 1) if len(node.input) > 1 and node.input[1] else attrs.get("ratio", 0.5))
                add({"type": "dropout", "rate": rate}, {}, node.name)
            elif op in _ACTIVATIONS:
                previous = layers[-1] if layers else None
                if (
                    previous is None
                    or previous["type"] not in ("dense", "conv2d")
                    or previous.get("activation", "linear") != "linear"
                ):
                    fail(node, "an activation must follow a dense or convolution layer that has none yet")
                previous["activation"] = _ACTIVATIONS[op]
                if op == "LeakyRelu":
                    previous["alpha"] = _decimal(attrs.get("alpha", 0.01))
            else:
                fail(node, "this operator is not one netspec has")
            index += 1
    except (KeyError, ValueError, TypeError, IndexError) as err:  # a node lacking an attribute or input it needs
        if node is None:  # pragma: no cover - every such error is raised while mapping a node
            raise
        cause = f"{type(err).__name__}: {err}"
        message = f"node {node.name or node.op_type!r} ({node.op_type}) is malformed: it lacks what it needs ({cause})"
        raise SpecError(Problem("NS502", message, file=source)) from None
    if shape_now == [shape_now[0], 1, 1] and layers and layers[-1]["type"] == "global_avgpool":
        shape_now = [shape_now[0]]
    return _document(model, shape, layers, metadata, shape_now, source), params


def _decimal(value) -> float:
    """A setting stored as float32 (as ONNX stores attributes) back as the decimal it was written as."""
    return float(f"{float(value):.7g}")


def _prefix(name: str) -> str:
    """'hidden1' from 'hidden1.weights', the way netspec's export names arrays."""
    return name.rsplit(".", 1)[0] if name.endswith(".weights") else ""


def _dense(layers, add, shape_now, weights, bias, hint: str) -> None:
    # A dense layer reads a vector: the input image it flattens itself, a global average pool gives
    # one already, and any other image-shaped output needs a flatten layer before it.
    if len(shape_now) > 1 and layers and layers[-1]["type"] != "global_avgpool":
        add({"type": "flatten"}, {})
    add(
        {"type": "dense", "neurons": int(len(weights))},
        {"weights": weights.reshape(len(weights), -1), "bias": bias},
        hint,
    )


def _padding(node, attrs, shape_now, kernel, stride, dilation, fail):
    if attrs.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID", "SAME_UPPER"):
        fail(node, f"auto_pad {attrs['auto_pad']} is not supported")
    if attrs.get("auto_pad") == "SAME_UPPER":
        return "same"
    top, left, bottom, right = attrs.get("pads", [0, 0, 0, 0])
    if top == left == bottom == right:
        return "valid" if top == 0 else int(top)
    same = [windows.pads(size, k, s, d, "same") for size, k, s, d in zip(shape_now[1:], kernel, stride, dilation)]
    if [(top, bottom), (left, right)] == same:
        return "same"
    fail(node, f"pads {[top, left, bottom, right]} are neither equal on every side nor netspec's 'same'")


def _spatial(shape_now, channels, kernel, stride, dilation, padding) -> list[int]:
    (_, (out_h, out_w)) = windows.geometry(tuple(shape_now), tuple(kernel), tuple(stride), tuple(dilation), padding)
    return [int(channels), out_h, out_w]


def _document(model, shape, layers, metadata, out_shape, source) -> dict[str, Any]:
    classes = (
        json.loads(metadata["netspec.classes"])
        if "netspec.classes" in metadata
        else [str(i) for i in range(out_shape[0])]
    )
    if "netspec.input" in metadata:
        network_input = json.loads(metadata["netspec.input"])
    elif len(shape) == 3:
        if shape[0] not in (1, 3):
            raise SpecError(
                Problem(
                    "NS503",
                    f"an image input with {shape[0]} channels; netspec reads 1 (grayscale) or 3 (rgb)",
                    file=source,
                )
            )
        network_input = {
            "image": {"width": shape[2], "height": shape[1], "color": "rgb" if shape[0] == 3 else "grayscale"}
        }
    elif len(shape) == 1:
        network_input = {"features": shape[0]}
    else:
        raise SpecError(
            Problem(
                "NS503",
                f"an input of shape {shape}; netspec reads (features) or (channels, height, width)",
                file=source,
            )
        )
    document = {
        "netspec": 1,
        "name": metadata.get("netspec.name") or model.graph.name or Path(source).stem,
        "classes": classes,
        "input": network_input,
        "layers": layers,
    }
    if model.doc_string:
        document["description"] = model.doc_string
    return document


def import_model(path: Path, out: Path) -> tuple[Path, Path]:
    """Write the ONNX model at `path` as a spec (`out`) and its arrays (`out` with suffix .npz).

    Raises:
        SpecError: the model cannot be read or mapped (NS502–NS504), naming the node concerned.
    """
    from pydantic import ValidationError

    from netspec.builder import build
    from netspec.spec import Spec
    from netspec.validation import problems_from

    onnx = onnx_module()
    model = read_model(path)
    try:
        document, arrays = to_spec(model, str(path))
    except (KeyError, ValueError, TypeError, IndexError) as err:  # a node or metadata lacking what it must hold
        message = f"the model is malformed: a node or its metadata lacks what it needs ({type(err).__name__}: {err})"
        raise SpecError(Problem("NS502", message, file=str(path))) from None
    initialized = {tensor.name for tensor in model.graph.initializer}  # older files list weights as inputs too
    graph_input = next(value for value in model.graph.input if value.name not in initialized)
    element = graph_input.type.tensor_type.elem_type
    dtype = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.DOUBLE: "float64"}.get(element)
    if dtype is None:
        raise SpecError(Problem("NS503", "the model's input is neither float32 nor float64", file=str(path)))
    document["dtype"] = dtype
    try:
        spec = Spec.model_validate(document)
    except ValidationError as err:
        found = "; ".join(f"{p.dotted_path}: {p.message}" for p in problems_from(err, Spec))
        raise SpecError(Problem("NS503", f"the graph does not make a valid spec ({found})", file=str(path))) from None
    try:
        network = build(spec, arrays=arrays)  # the same checks as a spec's own weight files
    except SpecError as err:
        raise SpecError([problem.located(str(path), None, None) for problem in err.problems]) from None
    return network.save(out)
