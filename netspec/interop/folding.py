"""Evaluate at import what an ONNX graph computes without its data: constants, and the shapes of tensors.

Before the walk, every node that reads stored arrays alone (Constant, ConstantOfShape, Identity,
and arithmetic on arrays and shapes) is evaluated, so a layer reads its weights as stored arrays
however the exporter wrote them. During the walk, a `Shape` of a mapped tensor is evaluated from
the shape ONNX gives that tensor, twice: with two batch sizes no model has. What agrees is a
constant; what differs depends on the batch size, which netspec's layers leave open, so it is kept
only as the first entry of a Reshape's target (written 0: copy the batch), and refused elsewhere.
A per-channel Mul and Add after a batch norm (Caffe's Scale layer) fold into its scale and shift.
"""

from __future__ import annotations

import math

import numpy as np

from netspec.interop.operators import _fail, _other

BATCHES = (1_000_003, 1_000_033)  # two batch sizes no model has: a value that differs between them depends on it
FOLDED = (
    "Constant",
    "ConstantOfShape",
    "Identity",
    "Shape",
    "Gather",
    "Unsqueeze",
    "Squeeze",
    "Concat",
    "Reshape",
    "Transpose",
    "Div",
    "Mul",
    "Add",
    "Sub",
    "Cast",
    "Slice",
    "Floor",
)
"""The operators import evaluates when they read stored arrays and shapes alone."""


class Folding:
    """The constant folding of the graph importer (mixed into netspec.interop.chain.Chain)."""

    def fold_constants(self) -> list:
        """Evaluate every node that reads stored arrays alone; the nodes left (those reading the data)."""
        left, progress = list(self.graph.node), True
        while progress:  # nodes are listed in order, but the walk never relies on it: repeat until none is left
            progress, waiting = False, []
            for node in left:
                if all(not name or name in self.constants for name in node.input) and node.op_type in FOLDED:
                    self.node = node
                    for name, value in zip(node.output, self._evaluate(node, self.constants.get)):
                        self.constants[name] = value
                    progress = True
                else:
                    waiting.append(node)
            left = waiting
        return left

    def evaluated(self, node) -> bool:
        """Evaluate a node the walk reaches that computes no data: a Shape of a mapped tensor, or what reads shapes.

        Its outputs are no longer tensors of the data: the nodes reading them read stored arrays.
        """
        if not self.evaluable(node):
            return False
        self.node = node
        if node.op_type not in FOLDED:
            _fail(node, _unknown(node))
        if node.op_type == "ConstantOfShape" and node.input[0] in self.batched:
            self.stored(node, 0)  # an array as large as the batch: refused, not made at two sentinel sizes
        values = [self._evaluate(node, lambda name, k=k: self._at(name, k), BATCHES[k]) for k in range(2)]
        for name, first, second in zip(node.output, *values):
            self.dependent.discard(name)
            if first.shape == second.shape and np.array_equal(first, second):
                self.constants[name] = first
            else:
                self.batched[name] = (first, second)
        self.done.add(id(node))
        return True

    def evaluable(self, node) -> bool:
        """Whether the walk evaluates `node` rather than maps it: a Shape, or a node reading no data."""
        return node.op_type == "Shape" or all(not name or name not in self.dependent for name in node.input)

    def _at(self, name: str, k: int) -> np.ndarray | None:
        """Tensor `name` at the k-th sentinel batch size: a shape, or a value computed from shapes and arrays."""
        if name in self.batched:
            return self.batched[name][k]
        if name in self.constants:
            return self.constants[name]
        return None  # a tensor of the data: only a Shape reads it, and reads its shape instead

    def _evaluate(self, node, value, batch: int | None = None) -> list[np.ndarray]:
        """What `node` computes from the arrays `value(name)` gives, by ONNX's rules, `batch` the batch size."""
        op, attrs = node.op_type, self.attributes(node)
        inputs = [value(name) if name else None for name in node.input]
        if op == "Constant":
            return [self._constant_value(node, attrs)]
        if op == "ConstantOfShape":
            size = [int(n) for n in inputs[0]]
            self._limit(node, math.prod(size))
            fill = self.onnx.numpy_helper.to_array(attrs["value"]) if "value" in attrs else np.zeros(1, np.float32)
            return [np.full(size, fill.reshape(-1)[0], dtype=fill.dtype)]
        if op == "Shape":
            shape = self._shape_of(node, batch) if inputs[0] is None else list(inputs[0].shape)
            return [np.array(shape, np.int64)[attrs.get("start", 0) : attrs.get("end", None)]]
        if op in ("Add", "Sub", "Mul", "Div"):
            a, b = inputs
            self._limit(node, math.prod(np.broadcast_shapes(a.shape, b.shape)))
            return [np.asarray(_ARITHMETIC[op](a, b)).astype(np.result_type(a, b))]
        axes = _axes(node, attrs, inputs, self.opset)
        result = _OTHERS[op](inputs, attrs, axes, self.onnx)
        self._limit(node, result.size)
        return [result]

    def _limit(self, node, size: int) -> None:
        if size > self.max_params:
            _fail(
                node,
                f"it makes {size:,} values, more than the limit of {self.max_params:,} parameters; raise the "
                "limit (--max-params, or max_params= in Python) if the model is that large",
                "NS208",
            )

    def _constant_value(self, node, attrs) -> np.ndarray:
        if "value" in attrs:
            return self.onnx.numpy_helper.to_array(attrs["value"])
        for key, dtype in (("value_float", np.float32), ("value_floats", np.float32)):
            if key in attrs:
                return np.array(attrs[key], dtype=dtype)
        for key in ("value_int", "value_ints"):
            if key in attrs:
                return np.array(attrs[key], dtype=np.int64)
        _fail(node, f"a constant given as {', '.join(attrs) or 'nothing'}; netspec reads numeric constants only")

    def _shape_of(self, node, batch: int) -> list[int]:
        """The shape of the data tensor a Shape node reads, with `batch` for the batch size."""
        name = node.input[0]
        dims = self.onnx_shape(name)
        if dims is None:
            _fail(node, f"it reads the shape of {name!r}, which netspec cannot know without the data")
        for axis, dim in enumerate(dims):
            if dim is None:
                _fail(
                    node,
                    f"it reads the shape of {name!r}, whose axis {axis} netspec cannot know without the data "
                    f"(its shape as ONNX infers it: {_written(dims)})",
                )
        return [batch if dim == "batch" else dim for dim in dims]

    def onnx_shape(self, name: str) -> list | None:
        """The shape ONNX infers for data tensor `name`: "batch" for the batch size, None for a size not known."""
        made_by = {out: node for node in self.nodes for out in node.output if out}
        known = (self.onnx_types, self.constants, self.batched)
        waiting = [name]
        while waiting:
            top = waiting[-1]
            if top in self.onnx_types:
                waiting.pop()
                continue
            node = made_by.get(top)
            missing = [] if node is None else [n for n in node.input if n and not any(n in each for each in known)]
            if missing:
                waiting.extend(missing)
                continue
            waiting.pop()
            self._infer(node, top)
        found = self.onnx_types.get(name)
        if found is None or not found.tensor_type.HasField("shape"):
            return None
        return [
            d.dim_value if d.HasField("dim_value") else "batch" if d.dim_param == "batch" else None
            for d in found.tensor_type.shape.dim
        ]

    def _infer(self, node, name: str) -> None:
        """Record the types ONNX's shape inference gives `node`'s outputs, from what it reads."""
        helper = self.onnx.helper
        if node is None:  # a tensor no node computes, that is no stored array: the graph input
            self.onnx_types[name] = helper.make_tensor_type_proto(self.input_type, ["batch", *self.input_shape])
            return
        types, data = {}, {}
        for position, each in enumerate(node.input):
            array = self.constants.get(each)
            if each in self.batched:
                array = self._batch_free(node, position)
            if each in self.onnx_types:
                types[each] = self.onnx_types[each]
            elif array is not None:
                types[each] = helper.make_tensor_type_proto(helper.np_dtype_to_tensor_dtype(array.dtype), array.shape)
                if array.size <= 64:  # shapes, axes and the like: what the shape of an output may depend on
                    data[each] = self.onnx.numpy_helper.from_array(np.asarray(array), each)
        try:
            schema = self.onnx.defs.get_schema(node.op_type, self.opset, node.domain)
            inferred = self.onnx.shape_inference.infer_node_outputs(
                schema, node, types, data, opset_imports=[helper.make_opsetid("", self.opset)]
            )
        except Exception:  # noqa: BLE001 - onnx raises its own errors for what it cannot infer
            inferred = {}
        for out in node.output:
            self.onnx_types[out] = inferred.get(out)

    def stored(self, node, position: int) -> np.ndarray:
        """The stored array a node reads at `position`; a shape that depends on the batch size only as a Reshape's
        batch, written 0."""
        name = node.input[position] if position < len(node.input) else ""
        if name in self.batched:
            target = self._batch_free(node, position)
            if target is None:
                first, second = self.batched[name]
                entries = [
                    "batch" if a == BATCHES[0] and b == BATCHES[1] else "?" if a != b else str(a)
                    for a, b in zip(first.reshape(-1).tolist(), second.reshape(-1).tolist())
                ]
                _fail(
                    node,
                    f"its input {position} ({name!r}) is computed from the batch size: ({', '.join(entries)}); "
                    "netspec's layers are the same for every batch size, so a shape may hold the batch size only "
                    "as the first entry of a Reshape's target (x.view(x.size(0), ...))",
                )
            return target
        if name not in self.constants:
            made = next((other for other in self.nodes if name in other.output), None)
            origin = f", computed by node {made.name or made.op_type!r} ({made.op_type})" if made else ""
            _fail(node, f"input {position} ({name!r}{origin}) must be a stored array (an initializer or a constant)")
        return self.constants[name]

    def _batch_free(self, node, position: int) -> np.ndarray | None:
        """A Reshape's target holding the batch size as its first entry, with 0 there (copy it); else None."""
        first, second = self.batched[node.input[position]]
        if node.op_type != "Reshape" or position != 1 or first.ndim != 1 or self.attributes(node).get("allowzero", 0):
            return None
        if len(first) != len(second) or (first[0], second[0]) != BATCHES or not np.array_equal(first[1:], second[1:]):
            return None
        return np.concatenate([[0], first[1:]]).astype(first.dtype)

    def refuse_unevaluated(self) -> None:
        """Refuse a node left reading stored arrays alone: an operator import does not evaluate."""
        for node in self.nodes:
            if all(not name or name not in self.dependent for name in node.input):
                _fail(node, _unknown(node))

    def scaled(self, node, values: dict[str, np.ndarray]):
        """A batch norm's values with the per-channel Mul and Add after it (Caffe's Scale) folded in, and the last
        node folded."""
        while True:
            after = self.following(node)
            if after is None or after.op_type not in ("Mul", "Add") or list(after.input).count(node.output[0]) != 1:
                return values, node
            other = _other(after, node.output[0])
            factor = self._per_channel(self.constants[other]) if other in self.constants else None
            if factor is None:
                return values, node
            factor = factor.astype(values["scale"].dtype)
            if after.op_type == "Mul":  # (x̂·scale + shift)·m = x̂·(scale·m) + shift·m
                values = values | {"scale": values["scale"] * factor, "shift": values["shift"] * factor}
            else:
                values = values | {"shift": values["shift"] + factor}
            node = after

    def _per_channel(self, array: np.ndarray) -> np.ndarray | None:
        """One value per channel of the current tensor (batch, C, ...), from an array broadcast to it; or None."""
        rank = len(self.shape) + 1
        if array.ndim > rank:
            return None
        dims = (1,) * (rank - array.ndim) + array.shape
        if any(n != 1 for i, n in enumerate(dims) if i != 1) or dims[1] not in (1, self.shape[0]):
            return None
        return np.broadcast_to(array.reshape(-1), (self.shape[0],)).copy()

    def unscaled(self, node) -> str:
        """Why a Mul or Add of the data and a stored array is refused."""
        data = next(name for name in node.input if name in self.dependent)
        other = _other(node, data)
        array = np.asarray(self.constants[other]) if other in self.constants else None
        what = f"{'an Add of' if node.op_type == 'Add' else 'a Mul by'} a stored array"
        what += f" of shape {tuple(array.shape)}" if array is not None else ""
        made = next((each for each in self.nodes if data in each.output), None)
        if made is not None and made.op_type == "BatchNormalization" and array is not None:
            reason = (
                "its array is not one value per channel"
                if self._per_channel(array) is None
                else "the batch norm's output is read by another node too"
            )
            return (
                f"{what} after a batch norm: {reason}; netspec folds a Mul and an Add of one value per channel into "
                "the batch norm before them (Caffe's Scale layer) when nothing else reads the batch norm's output"
            )
        bias = "the bias of a MatMul before it, or as " if node.op_type == "Add" else ""
        merge = "an Add of two layers' outputs is an add layer"
        if node.op_type == "Mul":
            merge = "a Mul of two layers' outputs is a multiply layer"
        if made is None:  # arithmetic on the graph input: preprocessing, which a spec says in its input
            fix = "scaling the input image is preprocessing: give it to import as --scale, --mean and --std"
        else:
            fix = "fold it into the weights of the layer next to it before exporting"
        return (
            f"{what} is netspec's only as {bias}one value per channel folded into the BatchNormalization before it "
            f"(Caffe's Scale layer); {merge}; {fix}"
        )


_ARITHMETIC = {
    "Add": np.add,
    "Sub": np.subtract,
    "Mul": np.multiply,
    "Div": lambda a, b: (
        np.sign(a) * np.sign(b) * (np.abs(a) // np.abs(b)) if np.issubdtype(np.result_type(a, b), np.integer) else a / b
    ),  # integers divide truncating toward zero, as onnxruntime does
}


def _axes(node, attrs, inputs, opset: int) -> list[int] | None:
    """The axes of an Unsqueeze or Squeeze: an attribute until opset 13, an input from it on."""
    if node.op_type not in ("Unsqueeze", "Squeeze"):
        return None
    if opset < 13:
        return attrs.get("axes")
    return None if len(inputs) < 2 or inputs[1] is None else [int(a) for a in inputs[1]]


def _reshape(inputs, attrs, _axes, _onnx) -> np.ndarray:
    data = inputs[0]
    target = [int(n) for n in (inputs[1] if len(inputs) > 1 else attrs["shape"])]
    if not attrs.get("allowzero", 0):
        target = [data.shape[i] if n == 0 else n for i, n in enumerate(target)]
    return data.reshape(target)


def _slice(inputs, attrs, _axes, _onnx) -> np.ndarray:
    data = inputs[0]
    if len(inputs) > 1:  # starts, ends, axes and steps are inputs from opset 10 on
        starts, ends = inputs[1], inputs[2]
        axes = inputs[3] if len(inputs) > 3 and inputs[3] is not None else range(len(starts))
        steps = inputs[4] if len(inputs) > 4 and inputs[4] is not None else [1] * len(starts)
    else:
        starts, ends = attrs["starts"], attrs["ends"]
        axes, steps = attrs.get("axes", range(len(starts))), [1] * len(starts)
    index = [slice(None)] * data.ndim
    for start, end, axis, step in zip(*(map(int, values) for values in (starts, ends, axes, steps))):
        axis += data.ndim if axis < 0 else 0
        size = data.shape[axis]
        start, end = (n + size if n < 0 else n for n in (start, end))
        if step > 0:
            start, end = min(max(start, 0), size), min(max(end, 0), size)
        else:  # ONNX clamps a backward slice's end to -1: before the first element
            start, end = min(max(start, 0), size - 1), min(max(end, -1), size - 1)
        index[axis] = slice(start, None if end < 0 else end, step)
    return data[tuple(index)]


_OTHERS = {
    "Identity": lambda inputs, attrs, axes, onnx: inputs[0],
    "Gather": lambda inputs, attrs, axes, onnx: np.take(inputs[0], inputs[1], axis=int(attrs.get("axis", 0))),
    "Unsqueeze": lambda inputs, attrs, axes, onnx: np.expand_dims(inputs[0], tuple(axes)),
    "Squeeze": lambda inputs, attrs, axes, onnx: np.squeeze(inputs[0], None if axes is None else tuple(axes)),
    "Concat": lambda inputs, attrs, axes, onnx: np.concatenate(inputs, axis=int(attrs["axis"])),
    "Reshape": _reshape,
    "Transpose": lambda inputs, attrs, axes, onnx: np.transpose(inputs[0], attrs.get("perm")),
    "Cast": lambda inputs, attrs, axes, onnx: inputs[0].astype(onnx.helper.tensor_dtype_to_np_dtype(attrs["to"])),
    "Slice": _slice,
    "Floor": lambda inputs, attrs, axes, onnx: np.floor(inputs[0]),
}


def _unknown(node) -> str:
    return (
        f"it computes {node.output[0]!r} from stored arrays and shapes alone, with an operator import does not "
        f"evaluate; netspec evaluates {', '.join(FOLDED)}"
    )


def _written(dims) -> str:
    return "(" + ", ".join("batch" if d == "batch" else "?" if d is None else str(d) for d in dims) + ")"
