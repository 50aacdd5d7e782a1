"""Graphs built to break the ONNX importer: it reproduces each exactly, or refuses it in one NS503 line.

A property test draws small random graphs from the operators import handles, in combinations and
with parameters that stress its rules (pads per side, ceil_mode, groups, Softmax axes, Reshapes that
move the batch, branches that merge, nodes nobody reads). For each graph onnxruntime accepts, import
must either refuse it with one NS503 (or NS208) line, or give a network whose scores are
onnxruntime's, one sample at a time and for a batch of 3 (also when the model fixes its batch at 1),
and whose `netspec export` runs in onnxruntime with the same scores. Below it, each graph the search
found wrong, minimised, with its exact expected behaviour.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, given, note, settings
from hypothesis import strategies as st
from onnx_graphs import (
    TensorProto,
    helper,
    imports_as_onnxruntime_runs,
    invoke,
    model,
    numpy_helper,
    onnx,
    ort,
    refusal,
    save,
)

import netspec

EXPLORING = os.environ.get("NETSPEC_ONNX_EXAMPLES")
"""To search further than CI does: NETSPEC_ONNX_EXAMPLES=2000 (random, not the fixed 400 graphs), and
NETSPEC_ONNX_FOCUS=conv,pool,... to draw only those steps (see `step`); add --hypothesis-show-statistics."""
ACTIVATIONS = ("Relu", "Sigmoid", "Tanh", "HardSwish", "LeakyRelu", "Elu", "Clip", "HardSigmoid", "Softmax")


class Graph:
    """A graph drawn op by op; `shape` of a tensor is its full ONNX shape, "batch" for the open batch size."""

    def __init__(self, draw, opset: int, batch, input_shape: tuple[int, ...]):
        self.draw, self.opset, self.batch = draw, opset, batch
        self.nodes: list = []
        self.constants: dict[str, np.ndarray] = {}
        self.shapes: dict[str, tuple] = {"x": (batch, *input_shape)}
        self.rng = np.random.default_rng(draw(st.integers(0, 2**16)))

    def fresh(self, prefix: str) -> str:
        return f"{prefix}{len(self.nodes) + len(self.constants)}"

    def const(self, array) -> str:
        name = self.fresh("k")
        self.constants[name] = np.asarray(array)
        return name

    def weights(self, *shape, fan_in: int = 1) -> str:
        return self.const(self.rng.normal(0, 1 / math.sqrt(max(fan_in, 1)), size=shape).astype(np.float32))

    def node(self, op: str, inputs: list[str], outputs: int = 1, **attributes) -> list[str]:
        names = [self.fresh(op.lower()) + (f"_{i}" if outputs > 1 else "") for i in range(outputs)]
        made = helper.make_node(op, inputs, names, name=f"{op}{len(self.nodes)}", **attributes)
        self.nodes.append(made)
        inferred = self._infer(names)
        assume(inferred is not None)
        self.shapes.update(inferred)
        return names

    def model(self, output: str):
        shape = self.shapes.get(output)
        graph = helper.make_graph(
            self.nodes,
            "g",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(self.shapes["x"]))],
            [helper.make_tensor_value_info(output, TensorProto.FLOAT, None if shape is None else list(shape))],
            [numpy_helper.from_array(array, name) for name, array in self.constants.items()],
        )
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)])

    def _infer(self, names: list[str]) -> dict[str, tuple] | None:
        try:
            inferred = onnx.shape_inference.infer_shapes(self.model(names[0]), strict_mode=True, data_prop=True)
        except Exception:  # noqa: BLE001 - a drawn node ONNX itself rejects: not a graph to test
            return None
        found = {}
        for value in [*inferred.graph.value_info, *inferred.graph.output]:
            if value.name in names:
                dims = value.type.tensor_type.shape.dim
                shape = tuple(d.dim_value if d.HasField("dim_value") else d.dim_param or None for d in dims)
                if None in shape or any(d not in ("batch",) and not isinstance(d, int) for d in shape):
                    return None
                if any(isinstance(d, int) and d < 1 for d in shape) or not value.type.tensor_type.HasField("shape"):
                    return None
                found[value.name] = shape
        return found if len(found) == len(names) else None


def _sizes(shape) -> tuple[int, ...]:
    return tuple(1 if d == "batch" else d for d in shape)


def step(g: Graph, current: str, pool: list[str]) -> str:
    """One drawn operator reading `current` (and perhaps an earlier tensor); the tensor it leaves."""
    shape, draw = g.shapes[current], g.draw
    rank = len(shape)
    options = ["activation", "constant_arith", "merge", "dropout_identity", "reshape", "flatten", "transpose"]
    options += ["slice", "split", "batchnorm", "shape_reshape", "unused", "reduce_mean"]
    if rank == 4:
        options += ["conv", "conv", "pool", "pool", "global_pool", "shuffle", "branch", "excite"]
    if rank == 2:
        options += ["gemm", "gemm", "matmul"]
    if rank == 3:
        options += ["matmul"]
    options += ["activation"] * 2 + (["conv", "pool"] if rank == 4 else ["gemm", "flatten"] if rank == 2 else [])
    focus = [k for k in os.environ.get("NETSPEC_ONNX_FOCUS", "").split(",") if k in options]
    kind = draw(st.sampled_from(focus or options))
    if kind == "activation":
        op = draw(st.sampled_from(ACTIVATIONS))
        if op == "Clip":
            bounds = [draw(st.sampled_from([None, 0.0, -1.0, 0.5])), draw(st.sampled_from([None, 6.0, 1.0, 3.0]))]
            if g.opset < 11:
                attrs = {k: v for k, v in zip(("min", "max"), bounds) if v is not None}
                return g.node("Clip", [current], **attrs)[0]
            inputs = [current] + ["" if b is None else g.const(np.float32(b)) for b in bounds]
            while inputs[-1] == "":
                inputs.pop()
            return g.node("Clip", inputs)[0]
        if op == "HardSigmoid":
            alpha = draw(st.sampled_from([1 / 6, 0.2, 0.5]))
            beta = draw(st.sampled_from([0.5, 0.4]))
            return g.node(op, [current], alpha=alpha, beta=beta)[0]
        if op == "Softmax":
            axis = draw(st.integers(-rank, rank - 1))
            return g.node(op, [current], axis=axis)[0] if draw(st.booleans()) else g.node(op, [current])[0]
        if op in ("LeakyRelu", "Elu") and draw(st.booleans()):
            return g.node(op, [current], alpha=draw(st.sampled_from([0.1, 1.0, 0.3])))[0]
        return g.node(op, [current])[0]
    if kind == "constant_arith":
        op = draw(st.sampled_from(["Add", "Mul", "Sub", "Div"]))
        sizes = _sizes(shape)
        form = draw(st.sampled_from(["scalar", "channel", "channel4", "full", "last", "batchful"]))
        if form == "scalar":
            target = ()
        elif form == "channel":
            target = (sizes[1],) + (1,) * (rank - 2)
        elif form == "channel4":
            target = (1, sizes[1]) + (1,) * (rank - 2)
        elif form == "last":
            target = (sizes[-1],)
        elif form == "batchful":
            target = sizes
        else:
            target = sizes[1:]
        array = g.rng.uniform(0.5, 1.5, size=target).astype(np.float32)
        operands = [current, g.const(array)]
        return g.node(op, operands if draw(st.booleans()) or op in ("Sub", "Div") else operands[::-1])[0]
    if kind == "merge":
        other = draw(st.sampled_from(pool))
        op = draw(st.sampled_from(["Add", "Mul", "Concat", "Sum"]))
        if op == "Concat":
            axis = draw(st.integers(-rank, rank - 1))
            return g.node(op, [current, other] if draw(st.booleans()) else [other, current], axis=axis)[0]
        inputs = [current, other] if draw(st.booleans()) else [other, current]
        return g.node(op, inputs)[0]
    if kind == "dropout_identity":
        op = draw(st.sampled_from(["Dropout", "Identity"]))
        if op == "Dropout" and draw(st.booleans()):
            return g.node(op, [current, g.const(np.float32(0.3))])[0]
        return g.node(op, [current])[0]
    if kind in ("reshape", "shape_reshape"):
        sizes = _sizes(shape)
        values = math.prod(sizes[1:])
        rest = draw(st.sampled_from(_factorizations(values)))
        first = draw(st.sampled_from([0, -1, 1, 3]))
        target = [first, *rest]
        if draw(st.booleans()) and first != -1 and len(target) > 1:
            target[draw(st.integers(1, len(target) - 1))] = -1
        if kind == "reshape":
            return g.node("Reshape", [current, g.const(np.array(target, np.int64))])[0]
        # x.view(x.size(k), ...): the target from the tensor's own shape
        (whole,) = g.node("Shape", [current])
        index = draw(st.integers(0, rank - 1))
        (size,) = g.node("Gather", [whole, g.const(np.array(index, np.int64))], axis=0)
        if g.opset >= 13:
            (size,) = g.node("Unsqueeze", [size, g.const(np.array([0], np.int64))])
        else:
            (size,) = g.node("Unsqueeze", [size], axes=[0])
        (target_name,) = g.node("Concat", [size, g.const(np.array(target[1:] or [-1], np.int64))], axis=0)
        return g.node("Reshape", [current, target_name])[0]
    if kind == "flatten":
        return g.node("Flatten", [current], axis=draw(st.integers(-rank, rank)))[0]
    if kind == "transpose":
        perm = draw(st.permutations(range(rank)))
        return g.node("Transpose", [current], perm=list(perm))[0]
    if kind == "slice":
        axis = draw(st.integers(-rank, rank - 1))
        size = _sizes(shape)[axis]
        start = draw(st.integers(-size, size))
        end = draw(st.integers(-size - 1, size + 2))
        step_ = draw(st.sampled_from([1, 1, 2, -1]))
        inputs = [current] + [g.const(np.array([n], np.int64)) for n in (start, end, axis, step_)]
        return g.node("Slice", inputs)[0]
    if kind == "split":
        axis = draw(st.integers(-rank, rank - 1))
        size = _sizes(shape)[axis]
        assume(size >= 2)
        cut = draw(st.integers(1, size - 1))
        if g.opset >= 13:
            outs = g.node("Split", [current, g.const(np.array([cut, size - cut], np.int64))], 2, axis=axis)
        else:
            outs = g.node("Split", [current], 2, axis=axis, split=[cut, size - cut])
        pool.append(outs[1])
        return outs[0]
    if kind == "batchnorm":
        channels = _sizes(shape)[1]
        arrays = [
            g.rng.uniform(0.5, 1.5, channels),
            g.rng.normal(0, 0.5, channels),
            g.rng.normal(0, 0.5, channels),
            g.rng.uniform(0.5, 1.5, channels),
        ]
        (out,) = g.node("BatchNormalization", [current, *(g.const(a.astype(np.float32)) for a in arrays)])
        for op in draw(st.lists(st.sampled_from(["Mul", "Add"]), max_size=2)):
            per_channel = g.rng.uniform(0.5, 1.5, (channels,) + (1,) * (rank - 2)).astype(np.float32)
            (out,) = g.node(op, [out, g.const(per_channel)])
            if draw(st.booleans()):
                pool.append(out)  # read twice: by the next node and perhaps by a later merge
        return out
    if kind == "shuffle":
        return _shuffle(g, current, shape)
    if kind == "branch":  # two branches from one tensor, merged: a residual or inception block
        (left,) = g.node("Relu", [current]) if draw(st.booleans()) else [current]
        right = _conv(g, current, shape, same=True)
        op = draw(st.sampled_from(["Add", "Concat", "Mul", "Sum"]))
        inputs = [left, right] if draw(st.booleans()) else [right, left]
        return g.node(op, inputs, axis=1)[0] if op == "Concat" else g.node(op, inputs)[0]
    if kind == "excite":  # squeeze-and-excitation: channels scaled by 1×1 Convs of their global average
        channels = _sizes(shape)[1]
        if draw(st.booleans()):
            (scale,) = g.node("GlobalAveragePool", [current])
        elif g.opset >= 18:
            (scale,) = g.node("ReduceMean", [current, g.const(np.array([2, 3], np.int64))], keepdims=1)
        else:
            (scale,) = g.node("ReduceMean", [current], axes=draw(st.sampled_from([[2, 3], [-2, -1], [-1, -2]])))
        for filters in (draw(st.integers(1, 4)), channels):
            (scale,) = g.node("Conv", [scale, g.weights(filters, _sizes(g.shapes[scale])[1], 1, 1, fan_in=channels)])
            op = draw(st.sampled_from(["Relu", "Sigmoid", "HardSigmoid", "HardSwish"]))
            (scale,) = g.node(op, [scale], **({"alpha": 1 / 6} if op == "HardSigmoid" else {}))
        return g.node("Mul", [current, scale] if draw(st.booleans()) else [scale, current])[0]
    if kind == "unused":
        g.node("Relu", [current])  # a node nobody reads
        return current
    if kind == "reduce_mean":
        axes = sorted(set(draw(st.lists(st.integers(-rank, rank - 1), min_size=1, max_size=rank))))
        keepdims = draw(st.sampled_from([0, 1]))
        if g.opset >= 18:
            return g.node("ReduceMean", [current, g.const(np.array(axes, np.int64))], keepdims=keepdims)[0]
        return g.node("ReduceMean", [current], axes=axes, keepdims=keepdims)[0]
    if kind == "conv":
        return _conv(g, current, shape)
    if kind == "pool":
        return _pool(g, current)
    if kind == "global_pool":
        return g.node("GlobalAveragePool", [current])[0]
    if kind == "gemm":
        features = _sizes(shape)[1]
        neurons = draw(st.integers(1, 5))
        trans_a, trans_b = draw(st.sampled_from([0, 0, 0, 1])), draw(st.sampled_from([0, 1]))
        alpha, beta = draw(st.sampled_from([1.0, 1.0, 0.5])), draw(st.sampled_from([1.0, 1.0, 2.0]))
        rows = _sizes(shape)[0] if trans_a else features
        weights = g.weights(*((neurons, rows) if trans_b else (rows, neurons)), fan_in=rows)
        inputs = [current, weights]
        bias = draw(st.sampled_from(["none", "vector", "row", "scalar"]))
        if bias != "none":
            sizes = {"vector": (neurons,), "row": (1, neurons), "scalar": ()}[bias]
            inputs.append(g.const(g.rng.normal(0, 0.5, size=sizes).astype(np.float32)))
        return g.node("Gemm", inputs, transA=trans_a, transB=trans_b, alpha=alpha, beta=beta)[0]
    # matmul
    features = _sizes(shape)[-1]
    neurons = draw(st.integers(1, 5))
    (out,) = g.node("MatMul", [current, g.weights(features, neurons, fan_in=features)])
    if draw(st.booleans()):
        bias = g.rng.normal(0, 0.5, size=draw(st.sampled_from([(neurons,), (1, neurons), ()]))).astype(np.float32)
        (out,) = g.node("Add", [out, g.const(bias)] if draw(st.booleans()) else [g.const(bias), out])
    return out


def _factorizations(values: int) -> list[list[int]]:
    found = [[values], [values, 1, 1], [1, values]]
    for a in range(2, values):
        if values % a == 0:
            found += [[a, values // a]]
            for b in range(2, values // a):
                if (values // a) % b == 0:
                    found.append([a, b, values // a // b])
    return found


def _shuffle(g: Graph, current: str, shape) -> str:
    """A channel shuffle as ShuffleNet writes it, its batch written 0, -1, 1 or from Shape; sometimes not quite."""
    draw = g.draw
    _, channels, height, width = _sizes(shape)
    groups = draw(st.sampled_from([d for d in range(1, channels + 1) if channels % d == 0]))
    first = draw(st.sampled_from([0, -1, 1, "shape"]))
    perm = draw(st.sampled_from([[0, 2, 1, 3, 4], [0, 2, 1, 3, 4], [0, 1, 2, 4, 3], [1, 0, 2, 3, 4]]))
    targets = [[groups, channels // groups, height, width], [channels, height, width]]
    if draw(st.booleans()):
        targets[1] = [channels, -1, width] if draw(st.booleans()) else [-1, height, width]
    names = []
    for target in targets:
        if first == "shape":
            (whole,) = g.node("Shape", [current])
            (size,) = g.node("Gather", [whole, g.const(np.array([0], np.int64))], axis=0)
            (name,) = g.node("Concat", [size, g.const(np.array(target, np.int64))], axis=0)
        else:
            name = g.const(np.array([first, *target], np.int64))
        names.append(name)
    (grouped,) = g.node("Reshape", [current, names[0]])
    (swapped,) = g.node("Transpose", [grouped], perm=perm)
    return g.node("Reshape", [swapped, names[1]])[0]


def _conv(g: Graph, current: str, shape, same: bool = False) -> str:
    draw = g.draw
    channels = _sizes(shape)[1]
    group = draw(st.sampled_from([d for d in range(1, channels + 1) if channels % d == 0]))
    filters = group * draw(st.integers(1, 2)) if not same else channels
    if same and channels % group == 0 and filters % group:
        group = 1
    kernel = [draw(st.integers(1, 3)), draw(st.integers(1, 3))]
    attrs = {"strides": [draw(st.integers(1, 2)), draw(st.integers(1, 2))] if not same else [1, 1]}
    attrs["dilations"] = [draw(st.sampled_from([1, 1, 2])), draw(st.sampled_from([1, 1, 2]))]
    if group > 1:
        attrs["group"] = group
    auto = draw(st.sampled_from(["NOTSET", "NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"]))
    if same:
        auto = draw(st.sampled_from(["SAME_UPPER", "SAME_LOWER"]))
    if auto == "NOTSET":
        if draw(st.booleans()):
            attrs["pads"] = [draw(st.integers(0, 2)) for _ in range(4)]
    else:
        attrs["auto_pad"] = auto
    if draw(st.booleans()):
        attrs["kernel_shape"] = kernel
    inputs = [current, g.weights(filters, channels // group, *kernel, fan_in=channels // group * math.prod(kernel))]
    if draw(st.booleans()):
        inputs.append(g.const(g.rng.normal(0, 0.5, filters).astype(np.float32)))
    return g.node("Conv", inputs, **attrs)[0]


def _pool(g: Graph, current: str) -> str:
    draw = g.draw
    op = draw(st.sampled_from(["MaxPool", "AveragePool"]))
    kernel = [draw(st.integers(1, 3)), draw(st.integers(1, 3))]
    attrs = {"kernel_shape": kernel, "strides": [draw(st.integers(1, 3)), draw(st.integers(1, 3))]}
    auto = draw(st.sampled_from(["NOTSET", "NOTSET", "NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"]))
    if auto == "NOTSET":
        if draw(st.booleans()):
            attrs["pads"] = [draw(st.integers(0, k - 1)) for k in kernel * 2]
    else:
        attrs["auto_pad"] = auto
    if draw(st.booleans()):
        attrs["ceil_mode"] = 1
    if op == "AveragePool" and draw(st.booleans()):
        attrs["count_include_pad"] = 1
    return g.node(op, [current], **attrs)[0]


@st.composite
def graphs(draw):
    """A small random graph, checked by onnx.checker: (model, whether its batch is fixed at 1)."""
    opset = draw(st.sampled_from([11, 13, 17, 17, 18]))
    fixed = draw(st.booleans())
    if draw(st.booleans()):
        input_shape = (draw(st.sampled_from([1, 3])), draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    else:
        input_shape = (draw(st.integers(1, 6)),)
    g = Graph(draw, opset, 1 if fixed else "batch", input_shape)
    current, pool = "x", ["x"]
    for _ in range(draw(st.integers(1, 5))):
        if len(g.shapes[current]) < 2:  # a scalar or the batch alone: nothing more to draw on it
            break
        current = step(g, current, pool)
        pool.append(current)
    if len(g.shapes[current]) > 2 and draw(st.integers(0, 4)):  # mostly end in scores, as classifiers do
        current = g.node("Flatten", [current])[0]
    made = g.model(current)
    try:
        onnx.checker.check_model(made, full_check=True)
    except Exception:  # noqa: BLE001 - a graph ONNX rejects is not one to test import with
        assume(False)
    return made, fixed


def _run(session, x: np.ndarray) -> np.ndarray | None:
    try:
        return session.run(None, {session.get_inputs()[0].name: x})[0]
    except Exception:  # noqa: BLE001 - onnxruntime rejects some graphs ONNX allows: nothing to compare with
        return None


def _close(actual: np.ndarray, expected: np.ndarray, what: str) -> None:
    scale = max(float(np.abs(expected).max(initial=0.0)), 1.0)  # the values summed are about 1
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5 * scale, err_msg=what)


def imports_exactly_or_refuses(made, fixed: bool, folder: Path) -> str | None:
    """Import `made`: None if netspec imported it exactly (and its export runs so), else its NS503/NS208 line."""
    path = save(made, folder)
    session = _session(path)
    assume(session is not None)
    shape = [d.dim_value for d in made.graph.input[0].type.tensor_type.shape.dim[1:]]
    x = np.random.default_rng(3).normal(size=(3, *shape)).astype(np.float32)
    one_by_one = [_run(session, x[i : i + 1]) for i in range(3)]
    assume(all(out is not None for out in one_by_one))
    out = folder / "model.yaml"
    result = invoke("import", path, "-o", out)
    if result.exit_code != 0:
        line = result.stderr.removeprefix(f"{path}: ")
        assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.stderr
        assert line.startswith(("NS503 ", "NS208 ")), result.stderr
        assert not out.exists()
        return line.rstrip("\n")
    network = netspec.load(out)
    scores = network.forward(x)
    for i, expected in enumerate(one_by_one):  # each sample's scores are its own, whatever the batch
        _close(scores[i : i + 1], expected.reshape(1, -1), f"sample {i} in a batch of 3")
    if not fixed:
        together = _run(session, x)
        assert together is not None and together.shape[0] == 3, "onnxruntime's batch axis moves: import must refuse"
        _close(scores, together.reshape(3, -1), "a batch of 3")
    exported = folder / "exported.onnx"
    assert invoke("export", out, "-o", exported).exit_code == 0
    again = _session(exported)
    _close(_run(again, x), scores, "netspec export run by onnxruntime")
    return None


def _session(path: Path):
    try:
        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception:  # noqa: BLE001 - onnxruntime refuses some graphs that onnx.checker accepts
        return None


@settings(
    max_examples=int(EXPLORING or 400),
    deadline=None,
    derandomize=not EXPLORING,  # the same graphs in every CI run; explore with NETSPEC_ONNX_EXAMPLES
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture],
)
@given(drawn=graphs())
def test_import_reproduces_a_random_graph_exactly_or_refuses_it(tmp_path_factory, drawn):
    made, fixed = drawn
    note(f"batch {'fixed at 1' if fixed else 'open'}, opset {made.opset_import[0].version}")
    note(onnx.printer.to_text(made.graph))
    line = imports_exactly_or_refuses(made, fixed, tmp_path_factory.mktemp("g"))
    event("imported exactly" if line is None else "refused")
    if EXPLORING:  # what was refused and why, what was imported and of what: --hypothesis-show-statistics
        for what in [re.sub(r"'[^']*'|\d+", "_", line.split("): ", 1)[-1])[:70]] if line else made.graph.node:
            event(what if line else f"imported with {what.op_type}")


# The graphs the search found wrong, minimised. Each refusal is its exact NS503 line.


def test_a_graph_ending_in_an_image_is_refused_naming_its_output(tmp_path):
    # Was NS123 about "layers[0]" and a flatten to add to a spec the user never wrote.
    made = model(
        [helper.make_node("Relu", ["x"], ["y"], name="relu")], ("x", ["batch", 1, 1, 2]), (("y", ["batch", 1, 1, 2]),)
    )
    assert refusal(save(made, tmp_path)) == (
        "NS503 node 'relu' (Relu): the graph output 'y' has shape (batch, 1, 1, 2); a netspec network gives one "
        "score per class, (batch, classes): end the graph with a Flatten of it"
    )


def test_a_pooling_padded_past_half_its_window_is_refused(tmp_path):
    # onnxruntime pads a side by up to the window less one; netspec's pooling by half the window. Was NS126.
    pool = helper.make_node("MaxPool", ["x"], ["p"], name="pool", kernel_shape=[1, 3], pads=[0, 2, 0, 0])
    flat = helper.make_node("Flatten", ["p"], ["y"], name="flat")
    made = model([pool, flat], ("x", ["batch", 1, 2, 2]), (("y", ["batch", 4]),))
    assert refusal(save(made, tmp_path)) == (
        "NS503 node 'pool' (MaxPool): it pads (top, bottom, left, right) by [0, 0, 2, 0] pixels, more than half "
        "its 1×3 window on a side; netspec's pooling pads at most half the window on each side"
    )


def test_a_window_larger_than_the_image_is_refused(tmp_path):
    # A 2×1 window on a 1×1 image: ONNX's shape inference rounds its output to 1×1, netspec's geometry to 0×1.
    # Was "the graph does not make a valid spec (classes: must have at least 1 item, got 0)".
    pool = helper.make_node("MaxPool", ["x"], ["p"], name="pool", kernel_shape=[2, 1], strides=[2, 1])
    flat = helper.make_node("Flatten", ["p"], ["y"], name="flat")
    made = model([pool, flat], ("x", ["batch", 1, 1, 1]), (("y", ["batch", 1]),))
    assert refusal(save(made, tmp_path)) == (
        "NS503 node 'pool' (MaxPool): its window does not fit the 1×1 image it reads (an output of 0×1 pixels); "
        "netspec's windows lie on the image, padding included"
    )


# A model exported with its batch fixed at 1 is run by netspec with any batch: each sample's scores must be
# the ones onnxruntime gives it alone; a Reshape writing the batch as 1 in a model whose batch is open would
# mix the samples of a batch, and is refused.

RNG = np.random.default_rng(14)
KERNEL = RNG.normal(0, 0.5, size=(4, 1, 3, 3)).astype(np.float32)
DENSE = RNG.normal(0, 0.5, size=(3, 4 * 2 * 2)).astype(np.float32)


def _flattened_by(target: list, batch) -> list:
    """conv → Reshape to `target` → Gemm, on a (batch, 1, 4, 4) input."""
    nodes = [
        helper.make_node("Conv", ["x", "K"], ["c"], name="conv"),
        helper.make_node("Reshape", ["c", "shape"], ["f"], name="reshape"),
        helper.make_node("Gemm", ["f", "D"], ["y"], name="dense", transB=1),
    ]
    constants = {"K": KERNEL, "D": DENSE, "shape": np.array(target, np.int64)}
    return model(nodes, ("x", [batch, 1, 4, 4]), (("y", [batch, 3]),), constants)


def _each_sample_as_onnxruntime_runs_it(path: Path, x: np.ndarray) -> None:
    out = path.with_suffix(".yaml")
    assert invoke("import", path, "-o", out).exit_code == 0
    session = ort.InferenceSession(str(path))
    alone = np.concatenate([session.run(None, {"x": x[i : i + 1]})[0] for i in range(len(x))])
    np.testing.assert_allclose(netspec.load(out).forward(x), alone.reshape(len(x), -1), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("first", [1, 0, -1])
def test_a_model_of_batch_1_runs_each_sample_of_a_batch_of_3_alone(tmp_path, first):
    path = save(_flattened_by([first, 16], 1), tmp_path)
    _each_sample_as_onnxruntime_runs_it(path, RNG.normal(size=(3, 1, 4, 4)).astype(np.float32))


def test_a_model_of_batch_1_reshaping_by_its_own_shape_runs_each_sample_alone(tmp_path):
    # x.view(x.size(0), -1) exported with a batch of 1: Shape gives 1, a constant, as the Reshape's first entry.
    nodes = [
        helper.make_node("Conv", ["x", "K"], ["c"], name="conv"),
        helper.make_node("Shape", ["c"], ["s"], name="shape"),
        helper.make_node("Gather", ["s", "zero"], ["n"], name="size", axis=0),
        helper.make_node("Unsqueeze", ["n", "axes"], ["n1"], name="unsqueeze"),
        helper.make_node("Concat", ["n1", "rest"], ["target"], name="target", axis=0),
        helper.make_node("Reshape", ["c", "target"], ["f"], name="reshape"),
        helper.make_node("Gemm", ["f", "D"], ["y"], name="dense", transB=1),
    ]
    constants = {"K": KERNEL, "D": DENSE, "zero": np.array(0, np.int64), "axes": np.array([0], np.int64)}
    constants["rest"] = np.array([-1], np.int64)
    path = save(model(nodes, ("x", [1, 1, 4, 4]), (("y", [1, 3]),), constants), tmp_path)
    _each_sample_as_onnxruntime_runs_it(path, RNG.normal(size=(3, 1, 4, 4)).astype(np.float32))


def test_a_channel_shuffle_of_a_model_of_batch_1_runs_each_sample_alone(tmp_path):
    nodes = [
        helper.make_node("Conv", ["x", "K"], ["c"], name="conv"),
        helper.make_node("Reshape", ["c", "grouped"], ["g"], name="group"),
        helper.make_node("Transpose", ["g"], ["t"], name="swap", perm=[0, 2, 1, 3, 4]),
        helper.make_node("Reshape", ["t", "back"], ["s"], name="shuffle"),
        helper.make_node("Flatten", ["s"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "D"], ["y"], name="dense", transB=1),
    ]
    constants = {"K": KERNEL, "D": DENSE}
    constants |= {"grouped": np.array([1, 2, 2, 2, 2], np.int64), "back": np.array([1, 4, 2, 2], np.int64)}
    path = save(model(nodes, ("x", [1, 1, 4, 4]), (("y", [1, 3]),), constants), tmp_path)
    _each_sample_as_onnxruntime_runs_it(path, RNG.normal(size=(3, 1, 4, 4)).astype(np.float32))
    assert [layer.type for layer in netspec.load(path.with_suffix(".yaml")).layers] == [
        "conv2d",
        "channel_shuffle",
        "flatten",
        "dense",
    ]


def test_a_reshape_writing_the_batch_as_1_in_a_model_of_open_batch_is_refused(tmp_path):
    # Reshape to (1, 16) of a batch of 3 would join three samples into one row: onnxruntime fails or mixes them.
    assert refusal(save(_flattened_by([1, 16], "batch"), tmp_path)) == (
        "NS503 node 'reshape' (Reshape): a Reshape to [1, 16] is not a flatten to (batch, 16); netspec reads a "
        "Reshape as a flatten, or as part of a channel shuffle"
    )


def test_an_add_of_a_stored_array_before_the_data_says_what_netspec_maps(tmp_path):
    # Add(bias, x) is Add(x, bias): refused for the same reason, not as "x is not its first input (the data)".
    add = helper.make_node("Add", ["B", "x"], ["y"], name="shift")
    made = model([add], ("x", ["batch", 4]), (("y", ["batch", 4]),), {"B": np.ones(4, np.float32)})
    assert refusal(save(made, tmp_path)) == (
        "NS503 node 'shift' (Add): an Add of a stored array of shape (4,) is netspec's only as the bias of a MatMul "
        "before it, or as one value per channel folded into the BatchNormalization before it (Caffe's Scale layer); "
        "an Add of two layers' outputs is an add layer; scaling the input image is preprocessing: give it to import "
        "as --scale, --mean and --std"
    )


def test_squeeze_and_excitation_of_the_input_image_imports_exactly(tmp_path):
    # The input image scaled by its own channels' gates: was refused as "two vectors made (3, 2, 2) by Unsqueeze".
    nodes = [
        helper.make_node("GlobalAveragePool", ["x"], ["g"], name="squeeze"),
        helper.make_node("Conv", ["g", "K"], ["c"], name="fc"),
        helper.make_node("Sigmoid", ["c"], ["s"], name="gate"),
        helper.make_node("Mul", ["x", "s"], ["m"], name="excite"),
        helper.make_node("Flatten", ["m"], ["y"], name="flat"),
    ]
    constants = {"K": RNG.normal(0, 0.5, size=(3, 3, 1, 1)).astype(np.float32)}
    path = save(model(nodes, ("x", ["batch", 3, 2, 2]), (("y", ["batch", 12]),), constants), tmp_path)
    network = imports_as_onnxruntime_runs(path, RNG.normal(size=(3, 3, 2, 2)).astype(np.float32))
    gate = network.layers[1].name  # a dense layer, named as netspec names one whose weights are not named
    assert [(layer.type, layer.inputs) for layer in network.layers] == [
        ("global_avgpool", ["input"]),
        ("dense", ["squeeze"]),
        ("multiply", ["input", gate]),
        ("flatten", ["excite"]),
    ]
    assert network.layers[1].spec.activation == "sigmoid"
