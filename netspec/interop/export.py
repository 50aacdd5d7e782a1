"""Export a built network as a standard ONNX model computing the same scores."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from netspec.errors import MissingExtra, Problem
from netspec.files import atomic_write
from netspec.graph import INPUT as NETWORK_INPUT

if TYPE_CHECKING:
    from netspec.network import Network

OPSET = 17
INPUT, OUTPUT = "input", "scores"


class _Emitter:
    """The nodes and initializers of a graph, written by each layer kind (netspec.layers.kind.Emitter)."""

    def __init__(self, helper, numpy_helper, dtype: np.dtype):
        self.helper, self.numpy_helper, self.dtype = helper, numpy_helper, dtype
        self.nodes, self.initializers = [], []
        self.used = {INPUT}  # every tensor name written, each once (ONNX's graphs are single assignment)
        self.layers: set[str] = set()  # the layers' names, which their own nodes keep
        self.layer = ""  # the layer being written

    def node(self, op: str, inputs: list[str], name: str, **attributes) -> str:
        name = self._unused(name)
        self.nodes.append(self.helper.make_node(op, inputs, [name], name=name, **attributes))
        return name

    def constant(self, name: str, array: np.ndarray) -> str:
        name = self._unused(name)
        self.initializers.append(self.numpy_helper.from_array(np.asarray(array), name))
        return name

    def _unused(self, name: str) -> str:
        """`name`, or `name_2`, `name_3`... if it is written already or names another layer: a dotted layer
        name can be another layer's inner name (layer `block` writes its activation as `block.relu`, which may
        name a layer too); the layer keeps its name, which import reads back."""
        fresh, number = name, 2
        while fresh in self.used or (fresh in self.layers and fresh != self.layer):
            fresh, number = f"{name}_{number}", number + 1
        self.used.add(fresh)
        return fresh


def onnx_module():
    """The onnx package, or a clear error saying how to install it."""
    try:
        import onnx
    except ImportError:
        raise MissingExtra(
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
        MissingExtra: onnx is not installed (NS501).
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
    emit = _Emitter(helper, numpy_helper, network.dtype)
    tensors = {NETWORK_INPUT: INPUT}  # each layer's output tensor, by the layer's name
    emit.layers = {layer.name for layer in network.layers}
    for layer in network.layers:
        emit.layer = layer.name
        tensors[layer.name] = layer.kind.to_onnx(layer, [tensors[name] for name in layer.inputs], emit)
    nodes, initializers = emit.nodes, emit.initializers
    nodes[-1].output[0] = OUTPUT  # the last layer is the output, and no layer reads it
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
