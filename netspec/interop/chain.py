"""Map an ONNX graph, node by node along its tensor names, to netspec's layers, or refuse a node.

The walk starts at the graph input and maps each node once every tensor it reads is mapped,
remembering which layer computes each tensor: a layer reading another than the one above it gets
`inputs:`, and Add/Sum, Concat and Mul of computed tensors become add, concat and multiply layers.
Every node must lie on the path to the graph output. A node that netspec cannot reproduce exactly
is refused, naming it, never mapped approximately. What the graph computes without its data
(constants, and the shapes of tensors) is evaluated instead of mapped: netspec.interop.folding.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np

from netspec.interop.activations import Activations
from netspec.interop.folding import Folding
from netspec.interop.naming import blocks, layer_name, unique
from netspec.interop.operators import _TAKES_ACTIVATION, Operators, Refusal, _fail
from netspec.interop.patterns import ONE_PIXEL_READERS, Patterns
from netspec.layers.common import NETWORK_INPUT as INPUT

_MERGES = ("add", "concat", "multiply")


class Chain(Folding, Patterns, Activations, Operators):
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
        self.dependent: set[str] = set()  # the tensors computed from the graph input
        self.tensors: dict[str, tuple[str, list[int]]] = {}  # tensor name -> (the layer computing it, its shape)
        self.layer_shapes: dict[str, list[int]] = {}  # layer name -> the shape of its output (without the batch)
        self.primary: dict[str, str] = {}  # layer name -> the tensor its values leave by, for an activation to fold
        self.sources: list[str] = [INPUT]  # the layers the next layer reads
        self.shapes: list[list[int]] = []  # the shapes of what the node being mapped reads
        self.fold: dict[str, Any] | None = None  # the layer the activation being mapped folds into, if any
        self.folded = False
        self.done: set[int] = set()  # the nodes mapped (ids)
        self.input_shape, self.input_type = list(shape), 1  # the graph input's shape (without the batch), type
        self.batched: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # tensor name -> its values at BATCHES
        self.onnx_types: dict[str, Any] = {}  # tensor name -> the type (and shape) ONNX infers for it

    def attributes(self, node) -> dict[str, Any]:
        values = {a.name: self.onnx.helper.get_attribute_value(a) for a in node.attribute}
        # String attributes come back as bytes (b'NOTSET'); they are ASCII names.
        return {key: value.decode() if isinstance(value, bytes) else value for key, value in values.items()}

    def constant(self, node, position: int) -> np.ndarray:
        """The stored array a node reads at `position` (its weights, bias, ratio, new shape)."""
        return self.stored(node, position)

    def run(self, start: str, end: str) -> None:
        """Map the graph from the tensor `start` to the tensor `end`, each node once all it reads is mapped."""
        self.nodes = self.fold_constants()  # what is left reads the data, or is refused below
        for node in self.nodes:
            for name in dict.fromkeys(node.input):  # a node reading one tensor twice is one reader
                if name:
                    self.readers.setdefault(name, []).append(node)
        self._all_on_the_path(end)
        self.dependent = self._dependent(start)
        if end not in self.dependent:  # every node leads to the output: only an input that nothing reads gets here
            raise Refusal(None, f"the graph output {end!r} does not depend on its input {start!r}")
        self.refuse_unevaluated()  # an operator on stored arrays alone that import does not evaluate
        self.input_type = next(value.type.tensor_type.elem_type for value in self.graph.input if value.name == start)
        self.tensors[start] = (INPUT, list(self.shape))
        pending = [node for node in self.nodes if any(name in self.dependent for name in node.input)]
        while pending:
            # Among the nodes whose data is mapped, the one listed first: the order layers are written in; but
            # shapes first, so that a pattern of nodes (a channel shuffle) finds the shapes it reads evaluated.
            ready = [
                node for node in pending if all(name in self.tensors for name in node.input if name in self.dependent)
            ]
            node = next((node for node in ready if self.evaluable(node)), ready[0] if ready else None)
            if node is None:  # pragma: no cover - a graph whose nodes read each other in a cycle
                raise Refusal(pending[0], "it reads a tensor computed from its own output: the graph has a cycle")
            if not self.evaluated(node):  # a Shape, or arithmetic on shapes: evaluated, not mapped
                self.visit(node)
            pending = [other for other in pending if id(other) not in self.done]
        if end not in self.tensors:  # every node leads to the output: only an input that nothing reads gets here
            raise Refusal(None, f"the graph output {end!r} does not depend on its input {start!r}")
        layer, shape = self.tensors[end]
        if layer == INPUT:  # no layer at all: the spec made of it is refused as empty
            self.shape = shape
            return
        if shape != self.layer_shapes[layer] and not self.one_pixel_view(end):  # (batch, classes, 1, 1) is the scores
            self.node = next((node for node in self.nodes if end in node.output), None)
            _fail(self.node, f"the graph output {end!r} is not the output of a layer netspec can compute")
        self.shape = self.layer_shapes[layer]
        if layer != self.layers[-1]["name"]:  # pragma: no cover - the output's node is the last one a walk maps
            raise Refusal(None, f"the graph output {end!r} is not computed last")
        if len(self.shape) > 1 and all(n == 1 for n in self.shape[1:]):  # a layer's (classes, 1, 1): made a vector
            self.sources = [layer]
            self.add({"type": "flatten"}, {})
            self.shape = [self.shape[0]]
        if len(self.shape) != 1:
            self.node = next((node for node in self.nodes if end in node.output), None)
            _fail(
                self.node,
                f"the graph output {end!r} has shape (batch, {', '.join(map(str, shape))}); a netspec network "
                "gives one score per class, (batch, classes): end the graph with a Flatten of it",
            )

    def _dependent(self, start: str) -> set[str]:
        """The tensors computed from the graph input (the rest are stored arrays or computed from them alone)."""
        found, waiting = {start}, [start]
        while waiting:
            for node in self.readers.get(waiting.pop(), []):
                for name in node.output:
                    if name and name not in found:
                        found.add(name)
                        waiting.append(name)
        return found

    def _read(self, name: str, allow_view: bool = False) -> tuple[str, list[int]]:
        """The layer that computed tensor `name`, and the tensor's shape (without the batch)."""
        layer, shape = self.tensors[name]
        if not allow_view and layer != INPUT and shape != self.layer_shapes[layer]:
            if self.one_pixel_view(name):
                _fail(
                    self.node,
                    f"it reads {name!r}, of shape {tuple(shape)}: the vector of layer {layer!r} seen as an image of "
                    "one pixel, which netspec reads only in a 1×1 Conv (as a dense layer), an activation, a "
                    "Flatten, Reshape or Squeeze back to the vector, or a Mul scaling an image's channels",
                )
            _fail(
                self.node,
                f"it reads {name!r}, of shape {tuple(shape)}: an Unsqueeze of a vector of shape "
                f"{tuple(self.layer_shapes[layer])}, which netspec keeps only as one value per channel for a Mul",
            )
        return layer, list(shape)

    def visit(self, node) -> None:
        """Map one node (and the nodes of a pattern that starts with it) to layers."""
        self.node, self.one_pixel = node, False
        if node.domain not in ("", "ai.onnx"):
            _fail(node, f"an operator of the domain {node.domain!r}; netspec maps standard ONNX operators only")
        for name in node.output[1:] if node.op_type != "Split" else []:  # a Split's outputs are slice layers
            if name in self.readers:
                _fail(node, f"its output {name!r} is used too; netspec keeps a node's first output only")
        data = [name for name in node.input if name in self.dependent]
        op = node.op_type
        before = len(self.layers)
        pattern = self._silu(node) or self._gelu(node)
        if pattern is not None:
            name, nodes = pattern
            self._start(node, [node.input[0]], nodes)
            self._activate(nodes[-1], name, {})  # named as its last node ("act.silu"), as netspec's export names it
            last = nodes[-1]
        elif op in ("Add", "Sum", "Mul", "Concat") and len(data) >= 2:
            self._merge(node, data)
            last = node
        elif data and (op == "Identity" or op == "Unsqueeze" and self._of_vector(data[0])):
            self._view(node, data[0])
            return
        elif op in ("Concat", "Sum") and list(node.input) == data[:1]:  # of one tensor (DenseNet's first cat)
            self._view(node, data[0])
            return
        elif data and op == "Split":
            self._single(node, data)
            self.split(node)
            return
        else:
            self._single(node, data)
            self.fold = self._foldable(node.input[0], [node])
            last = self._last(node, self.map_pattern(node) or self.map(node))
        out = last.output[0]
        seen = [*self.shape, 1, 1] if self.one_pixel else list(self.shape)  # ONNX's (C, 1, 1) of netspec's vector
        if len(self.layers) > before or pattern is not None or self.folded:
            layer = self.sources[0] if pattern is not None or self.folded else self.layers[-1]["name"]
            self.layer_shapes[layer] = list(self.shape)
            self.primary[layer] = out
            self.tensors[out] = (layer, seen)
        else:  # a Flatten of a vector, a Dropout-free pass: the same values under another name
            self.tensors[out] = (self.sources[0], seen)
            if self.sources[0] != INPUT and self.shape != self.layer_shapes[self.sources[0]]:
                _fail(node, "it changes the shape of its input without a netspec layer to do it")
        self.folded = False

    def _last(self, node, out: str):
        """The last node a mapping took (a MatMul's Add, a channel shuffle's Reshape), marking them all done."""
        self.done.add(id(node))
        while out not in node.output:
            node = self.following(node)
            self.done.add(id(node))
        return node

    def _start(self, node, data: list[str], nodes) -> None:
        """Read the layers that computed `data` as the sources of the next layer, and mark `nodes` done."""
        self.sources, shapes = [], []
        # A vector seen as (C, 1, 1) is read as the vector by the nodes that take it so; Mul reads it as it is.
        self.one_pixel = len(data) == 1 and self.one_pixel_view(data[0])
        self.one_pixel &= bool(nodes) or node.op_type in ONE_PIXEL_READERS
        for name in data:
            layer, shape = self._read(name, allow_view=node.op_type == "Mul" or self.one_pixel)
            shape = self.layer_shapes[layer] if self.one_pixel else shape
            self.sources.append(layer)
            shapes.append(shape)
        self.shape = shapes[0]
        self.fold = self._foldable(data[0], nodes) if len(data) == 1 else None
        self.done.update(id(each) for each in nodes)
        self.shapes = shapes

    def _single(self, node, data: list[str]) -> None:
        """A node of one data input, its first; the others stored arrays."""
        current = data[0]
        if node.op_type in ("Add", "Mul") and len(data) == 1:  # of a stored array, either way round
            _fail(node, self.unscaled(node))
        if node.input[0] != current:
            position = list(node.input).index(current)
            _fail(node, f"it reads {current!r} as its input {position}, not as its first input (the data)")
        if len(data) > 1:
            other = next((name for name in data if name != current), None)
            if other is None:
                _fail(node, f"it reads {current!r} more than once; netspec's layers read their input once")
            _fail(
                node,
                f"its input {list(node.input).index(other)} ({other!r}) is computed from the graph input too; "
                "netspec's layers read one computed tensor, and stored arrays besides: only Add, Sum, Concat "
                "and Mul merge computed tensors",
            )
        for position, name in enumerate(node.input):
            if name and name != current and name not in self.constants:
                self.constant(node, position)  # refused, naming the node that computes it
        self._start(node, data, [])

    def _foldable(self, name: str, nodes) -> dict[str, Any] | None:
        """The layer an activation reading `name` folds into: the one computing it, read by `nodes` alone."""
        layer, shape = self.tensors[name]
        if layer == INPUT or self.primary.get(layer) != name:
            return None
        if shape != self.layer_shapes[layer] and not self.one_pixel_view(name):  # the same values seen as (C, 1, 1)
            return None
        if {id(reader) for reader in self.readers.get(name, [])} - {id(each) for each in nodes}:
            return None  # read by other nodes too: they read its values before the activation
        found = next(existing for existing in self.layers if existing["name"] == layer)
        if found["type"] in _TAKES_ACTIVATION and found.get("activation", "linear") == "linear":
            return found
        return None

    def _of_vector(self, name: str) -> bool:
        """Whether tensor `name` holds a layer's vector output (perhaps unsqueezed already)."""
        layer = self.tensors[name][0]
        return layer != INPUT and len(self.layer_shapes[layer]) == 1

    def _view(self, node, current: str) -> None:
        """Identity, a Concat or Sum of one tensor, or an Unsqueeze of a vector to (C, 1, 1): the same values."""
        self.done.add(id(node))
        layer, shape = self.tensors[current]
        if node.op_type == "Unsqueeze":
            axes = self.attributes(node).get("axes") if self.opset < 13 else self.constant(node, 1)
            dims = [None, *shape]
            for axis in sorted(int(a) + (len(dims) + len(axes) if int(a) < 0 else 0) for a in axes):
                dims.insert(axis, 1)
            if dims[0] is not None:
                _fail(node, f"an Unsqueeze of axes {list(map(int, axes))} moves the batch from axis 0")
            shape = dims[1:]
        self.tensors[node.output[0]] = (layer, shape)
        if layer != INPUT and self.primary.get(layer) == current and len(self.readers.get(current, [])) == 1:
            self.primary[layer] = node.output[0]  # still the layer's only way out: an activation may fold in

    def _merge(self, node, data: list[str]) -> None:
        """Add and Sum, Concat along channels and Mul of tensors computed from the input: a merge layer."""
        op = node.op_type
        stored = [name for name in node.input if name and name not in self.dependent]
        if stored:
            _fail(
                node,
                f"it reads the stored array {stored[0]!r} besides {len(data)} tensors computed from the input; "
                "netspec's merge layers read layers only",
            )
        self._start(node, data, [node])
        shapes = self.shapes
        if op in ("Add", "Sum", "Concat"):
            for name in data:
                self._read(name)  # no views: netspec adds and joins whole layers
        if op in ("Add", "Sum"):
            if any(shape != shapes[0] for shape in shapes):
                _fail(node, f"it adds tensors of shapes {_shapes(shapes)}; netspec's add adds tensors of one shape")
            self.add({"type": "add"}, {}, node.name)
        elif op == "Concat":
            axis = int(self.attributes(node).get("axis", 1))
            axis += len(shapes[0]) + 1 if axis < 0 else 0
            if axis != 1 or any(len(shape) != len(shapes[0]) or shape[1:] != shapes[0][1:] for shape in shapes):
                _fail(
                    node,
                    f"a Concat along axis {axis} of tensors of shapes {_shapes(shapes)}; netspec's concat joins "
                    "channels (or the features of vectors), axis 1, of tensors alike in the other axes",
                )
            self.add({"type": "concat"}, {}, node.name)
            self.shape = [sum(shape[0] for shape in shapes), *shapes[0][1:]]
        else:
            if len(data) != 2:  # pragma: no cover - ONNX's Mul has two inputs
                _fail(node, "a Mul of more than two tensors")
            a, b = shapes
            per_channel = len(a) == 3 and b == [a[0], 1, 1] or len(b) == 3 and a == [b[0], 1, 1]
            views = [  # the input image is no view
                self.tensors[name][0] != INPUT and self.tensors[name][1] != self.layer_shapes[self.tensors[name][0]]
                for name in data
            ]
            if all(views):  # two vectors made (C, 1, 1): netspec's multiply would give (C,), not (C, 1, 1)
                _fail(node, f"it multiplies two vectors made {tuple(a)} by Unsqueeze; netspec's multiply keeps vectors")
            if a != b and not per_channel:
                _fail(
                    node,
                    f"it multiplies tensors of shapes {_shapes(shapes)}; netspec's multiply takes tensors of one "
                    "shape, or an image and one value per channel (C, 1, 1)",
                )
            self.add({"type": "multiply"}, {}, node.name)
            self.shape = a if len(a) >= len(b) and a != [b[0], 1, 1] else b
            self.shape = [int(n) for n in self.shape]

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

    def add(self, layer: dict[str, Any], arrays: dict[str, np.ndarray], hint: str = "") -> None:
        # Keep the names netspec's export gave ("hidden1.weights", node "pool1") and PyTorch's module paths
        # (node "/layer1/layer1.0/conv1/Conv" is layer1.0.conv1: netspec.interop.naming); invent the rest.
        taken = {existing["name"] for existing in self.layers}
        what = layer["activation"] if layer["type"] == "activation" else layer["type"]
        name = layer_name(hint, what, self.blocks, taken) or unique(f"{layer['type']}_{len(self.layers)}", taken)
        entry = {"name": name, "type": layer["type"]}
        previous = self.layers[-1]["name"] if self.layers else INPUT
        if layer["type"] in _MERGES:
            entry["inputs"] = list(self.sources)
        elif self.sources != [previous]:  # a chain reads the layer before it: `inputs` only where it does not
            entry["inputs"] = self.sources[0]
        self.layers.append(entry | layer)
        for key, value in arrays.items():
            self.params[f"{name}.{key}"] = value
        self.sources = [name]
        self.layer_shapes[name] = list(self.shape)

    @cached_property
    def blocks(self) -> set[str]:
        """PyTorch's modules that hold others, for naming what they compute themselves ("layer1.0.add")."""
        return blocks(node.name for node in self.graph.node)

    def following(self, node):
        """The one node that reads `node`'s output, or None."""
        readers = self.readers.get(node.output[0], [])
        return readers[0] if len(readers) == 1 else None


def _shapes(shapes: list[list[int]]) -> str:
    return ", ".join(str(tuple(shape)) for shape in shapes)
