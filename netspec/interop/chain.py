"""Map an ONNX graph, node by node along its tensor names, to netspec's layers, or refuse a node.

The walk starts at the graph input: each node must read the tensor the node before it wrote (plus
stored constants), and every node must lie on the path to the graph output. A node that netspec
cannot reproduce exactly is refused, naming it, never mapped approximately.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from netspec.interop.operators import CHAINS_ONLY, Operators, Refusal, _fail

_NAME = re.compile(r"[A-Za-z0-9_-]+")


class Chain(Operators):
    """Maps the nodes from the graph input to its output, one layer (or activation) at a time."""

    def __init__(self, onnx, graph, arrays, shape, batch: int, opset: int, max_params: int):
        self.onnx, self.opset, self.batch, self.max_params = onnx, opset, batch, max_params
        self.layers: list[dict[str, Any]] = []
        self.params: dict[str, np.ndarray] = {}
        self.shape = list(shape)  # the shape (without the batch) of the tensor read next
        self.node = None  # the node being read, for errors
        self.graph, self.constants = graph, dict(arrays)
        self.nodes: list = []  # the nodes that compute on the input, not on constants alone
        self.readers: dict[str, list] = {}  # tensor name -> those of self.nodes that read it

    def _constant(self, node) -> bool:
        """Record what a node computes from constants alone (PyTorch's shared biases); False for other nodes."""
        op = node.op_type
        if op == "Constant":
            self.node = node
            self.constants[node.output[0]] = self._constant_value(node)
        elif op == "Identity" and node.input[0] in self.constants:
            self.constants[node.output[0]] = self.constants[node.input[0]]
        elif op == "ConstantOfShape" and node.input[0] in self.constants:
            self.node = node
            size = [int(n) for n in self.constants[node.input[0]]]
            if math.prod(size) > self.max_params:
                _fail(
                    node,
                    f"it makes {math.prod(size):,} values, more than the limit of {self.max_params:,} "
                    "parameters; raise the limit (--max-params, or max_params= in Python) if the model is that large",
                    "NS208",
                )
            values = self.attributes(node).get("value")
            fill = self.onnx.numpy_helper.to_array(values) if values is not None else np.zeros(1, np.float32)
            self.constants[node.output[0]] = np.full(size, fill.reshape(-1)[0], dtype=fill.dtype)
        else:
            return False
        return True

    def _constant_value(self, node) -> np.ndarray:
        attrs = self.attributes(node)
        if "value" in attrs:
            return self.onnx.numpy_helper.to_array(attrs["value"])
        for key, dtype in (("value_float", np.float32), ("value_floats", np.float32)):
            if key in attrs:
                return np.array(attrs[key], dtype=dtype)
        for key in ("value_int", "value_ints"):
            if key in attrs:
                return np.array(attrs[key], dtype=np.int64)
        _fail(node, f"a constant given as {', '.join(attrs) or 'nothing'}; netspec reads numeric constants only")

    def attributes(self, node) -> dict[str, Any]:
        values = {a.name: self.onnx.helper.get_attribute_value(a) for a in node.attribute}
        # String attributes come back as bytes (b'NOTSET'); they are ASCII names.
        return {key: value.decode() if isinstance(value, bytes) else value for key, value in values.items()}

    def constant(self, node, position: int) -> np.ndarray:
        """The stored array a node reads at `position` (its weights, bias, ratio, new shape)."""
        name = node.input[position] if position < len(node.input) else ""
        if name not in self.constants:
            made = next((other for other in self.nodes if name in other.output), None)
            origin = f", computed by node {made.name or made.op_type!r} ({made.op_type})" if made else ""
            _fail(node, f"input {position} ({name!r}{origin}) must be a stored array (an initializer or a constant)")
        return self.constants[name]

    def run(self, start: str, end: str) -> None:
        """Map the graph from the tensor `start` to the tensor `end`."""
        self.nodes = [node for node in self.graph.node if not self._constant(node)]
        for node in self.nodes:
            for name in dict.fromkeys(node.input):  # a node reading one tensor twice is one reader
                if name:
                    self.readers.setdefault(name, []).append(node)
        self._all_on_the_path(end)
        current = start
        while current != end:
            following = self.readers.get(current, [])
            if not following:  # every node leads to the output: only an input that nothing reads gets here
                raise Refusal(None, f"the graph output {end!r} does not depend on its input {start!r}")
            node = following[0]
            if len(following) > 1:
                shape = next((reader for reader in following if reader.op_type == "Shape"), None)
                if shape is not None:  # PyTorch's x.view(x.size(0), -1): a chain that reads its own shape
                    _fail(
                        shape,
                        f"it reads the shape of {current!r} to compute a Reshape (as x.view(x.size(0), -1) "
                        "exports); netspec does not compute shapes from the data yet: export with "
                        "torch.flatten(x, 1) instead",
                    )
                other = following[1]
                _fail(
                    other,
                    f"it reads {current!r}, which node {node.name or node.op_type!r} ({node.op_type}) reads "
                    f"too: the graph branches there; netspec imports chains of layers, each reading the one "
                    f"before ({CHAINS_ONLY})",
                )
            self.node = node
            self._reads_only(node, current)
            current = self.map(node)

    def _all_on_the_path(self, end: str) -> None:
        """Refuse a node whose result never reaches the output: netspec would drop it without a word."""
        made_by = {name: node for node in self.nodes for name in node.output if name}
        needed, waiting = set(), [end]
        while waiting:
            node = made_by.get(waiting.pop())
            if node is not None and id(node) not in needed:
                needed.add(id(node))
                waiting.extend(node.input)
        for node in self.nodes:
            if id(node) not in needed:
                _fail(
                    node,
                    f"its output {node.output[0]!r} is not used on the way to the graph output {end!r}; "
                    "netspec maps every node from the input to the output, so remove the unused ones (or "
                    "export the model without them)",
                )

    def _reads_only(self, node, current: str) -> None:
        """A node reads the tensor before it, first (as its data), and otherwise constants only."""
        if node.domain not in ("", "ai.onnx"):
            _fail(node, f"an operator of the domain {node.domain!r}; netspec maps standard ONNX operators only")
        if node.input[0] != current and node.op_type != "Add":
            position = list(node.input).index(current)
            _fail(node, f"it reads {current!r} as its input {position}, not as its first input (the data)")
        for position, name in enumerate(node.input):
            if name and name != current and name not in self.constants:
                _fail(
                    node,
                    f"its input {position} ({name!r}) is neither the output of the node before ({current!r}) "
                    f"nor a stored array: the graph joins two branches there ({CHAINS_ONLY})",
                )
        if list(node.input).count(current) > 1:
            _fail(node, f"it reads {current!r} more than once; netspec's layers read their input once")
        for name in node.output[1:]:
            if name in self.readers:
                _fail(node, f"its output {name!r} is used too; netspec keeps a node's first output only")

    def add(self, layer: dict[str, Any], arrays: dict[str, np.ndarray], hint: str = "") -> None:
        # Keep the names netspec's export gave ("hidden1.weights", node "pool1"); invent the rest.
        taken = {existing["name"] for existing in self.layers}
        name = hint if _NAME.fullmatch(hint or "") and hint not in taken else f"{layer['type']}_{len(self.layers)}"
        self.layers.append({"name": name, **layer})
        for key, value in arrays.items():
            self.params[f"{name}.{key}"] = value

    def following(self, node):
        """The one node that reads `node`'s output, or None."""
        readers = self.readers.get(node.output[0], [])
        return readers[0] if len(readers) == 1 else None
