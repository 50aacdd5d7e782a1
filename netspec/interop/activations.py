"""How ONNX's activations become netspec's: folded into the layer before them, or an activation layer.

`Activations` is mixed into netspec.interop.chain.Chain with netspec.interop.operators' mappings:
Softmax on the class axis only, Clip as relu or relu6, HardSigmoid as PyTorch's, Gelu exact; and the
patterns of nodes that exporters write for silu and gelu at opset 17, which the walk tries first.
"""

from __future__ import annotations

import math

import numpy as np

from netspec.interop.operators import _ACTIVATIONS, _decimal, _fail, _other


class Activations:
    """The activation mappings of the graph importer."""

    def _activation(self, node, attrs) -> None:
        """The activation of the dense, conv2d or batchnorm layer just before, if it has none yet; else a layer."""
        op = node.op_type
        name, alpha = _ACTIVATIONS[op], None
        if op == "Softmax":
            axis = attrs.get("axis", 1 if self.opset < 13 else -1)
            # After a GlobalAveragePool, ONNX's tensor is (batch, classes, 1, 1) where netspec's is a vector:
            # axis -1 is then an axis of one value (every score 1), so count the axes ONNX has.
            dims = self.onnx_shape(node.input[0]) if axis < 0 else None
            dims = dims if dims and len(dims) > len(self.shape) else ["batch", *self.shape]
            axis_of_classes = axis + (len(dims) if axis < 0 else 0) == 1
            if axis_of_classes and len(self.shape) > 1 and all(n == 1 for n in self.shape[1:]):
                # (batch, classes, 1, 1), as a convolution over a 1×1 image gives it: the scores made a vector.
                self.add({"type": "flatten"}, {})
                self.shape, self.fold = [self.shape[0]], None
            if len(self.shape) != 1 or not axis_of_classes:
                _fail(
                    node,
                    f"a Softmax over axis {axis} of a tensor of shape (batch, {', '.join(map(str, dims[1:]))}); "
                    "netspec's softmax is over the class scores, axis 1 of (batch, classes)",
                )
        elif op == "LeakyRelu":
            alpha = _decimal(attrs.get("alpha", 0.01))
        elif op == "Elu":
            alpha = _decimal(attrs.get("alpha", 1.0))
            alpha = None if alpha == 1.0 else alpha  # elu's default, left out as a spec would write it
        elif op == "Clip":
            name = self._clip(node, attrs)
        elif op == "HardSigmoid":
            given = (attrs.get("alpha", 0.2), attrs.get("beta", 0.5))
            if np.float32(given[0]) != np.float32(1 / 6) or given[1] != 0.5:
                _fail(
                    node,
                    f"a HardSigmoid with alpha {_decimal(given[0]):g} and beta {_decimal(given[1]):g}; netspec's "
                    "hard_sigmoid is PyTorch's, relu6(x + 3)/6: alpha 1/6 and beta 0.5",
                )
        elif op == "Gelu" and attrs.get("approximate", "none") != "none":
            _fail(node, f"a Gelu approximated by {attrs['approximate']}; netspec's gelu is the exact one (erf)")
        self._activate(node, name, {} if alpha is None else {"alpha": alpha})

    def _activate(self, node, name: str, extra: dict) -> None:
        """Fold the activation into the layer computing its input, if that layer takes one and nothing else reads
        its output; else an activation layer."""
        if self.fold is not None:
            self.fold.update({"activation": name, **extra})
            self.folded = True
        else:  # after the input, a pooling, or a layer with an activation already
            self.add({"type": "activation", "activation": name, **extra}, {}, node.name.removesuffix(f".{name}"))

    def _clip(self, node, attrs) -> str:
        """relu6 for a Clip to [0, 6], relu for a Clip to [0, ∞); any other Clip is refused."""
        if self.opset < 11:  # the bounds were attributes before opset 11
            low, high = attrs.get("min", -math.inf), attrs.get("max", math.inf)
        else:
            low, high = (self._bound(node, i, default) for i, default in ((1, -math.inf), (2, math.inf)))
        if (low, high) == (0, 6):
            return "relu6"
        if (low, high) == (0, math.inf):
            return "relu"
        _fail(node, f"a Clip to [{low:g}, {high:g}]; netspec clips only as relu6, to [0, 6], and relu, to [0, ∞)")

    def _bound(self, node, position: int, default: float) -> float:
        if len(node.input) <= position or not node.input[position]:  # left out: no bound
            return default
        value = np.asarray(self.constant(node, position))
        if value.size != 1:
            _fail(node, f"its bound {position} has shape {value.shape}; a Clip's bounds are single numbers")
        return float(value.reshape(-1)[0])

    def _silu(self, node):
        """x·Sigmoid(x) starting at the Sigmoid: ("silu", [sigmoid, mul]), or None."""
        if node.op_type != "Sigmoid" or not node.input or node.input[0] not in self.dependent:
            return None
        mul = self.following(node)
        if mul is None or mul.op_type != "Mul" or sorted(mul.input) != sorted([node.input[0], node.output[0]]):
            return None
        return "silu", [node, mul]

    def _gelu(self, node):
        """x·(1 + Erf(x/√2))·0.5 starting at the Div, as netspec and PyTorch export gelu: ("gelu", nodes), or None."""
        if node.op_type != "Div" or len(node.input) != 2 or node.input[0] not in self.dependent:
            return None
        x = node.input[0]
        erf = self.following(node)
        plus = self.following(erf) if erf is not None and erf.op_type == "Erf" else None
        times = self.following(plus) if plus is not None and plus.op_type == "Add" else None
        half = self.following(times) if times is not None and times.op_type == "Mul" else None
        if half is None or half.op_type != "Mul":
            return None
        if (
            not self._is(node.input[1], math.sqrt(2))
            or not self._is(_other(plus, erf.output[0]), 1.0)
            or sorted(times.input) != sorted([x, plus.output[0]])
            or not self._is(_other(half, times.output[0]), 0.5)
        ):
            return None
        return "gelu", [node, erf, plus, times, half]

    def _is(self, name: str | None, value: float) -> bool:
        """Whether `name` is a stored single number equal to `value` in float32."""
        array = self.constants.get(name) if name else None
        if array is None or np.asarray(array).size != 1:
            return False
        return bool(np.float32(np.asarray(array).reshape(-1)[0]) == np.float32(value))
