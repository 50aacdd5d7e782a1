"""How each ONNX operator the importer takes becomes netspec layers (the walk itself is netspec.interop.chain).

`Operators` is mixed into `Chain`: its methods read the walk's state (the current tensor's shape,
the constants, the layers so far) and add layers, or refuse the node with a named reason.
"""

from __future__ import annotations

import math

import numpy as np

from netspec.layers import windows
from netspec.layers.common import ONNX_ACTIVATIONS

# ONNX activations that become the `activation` of the layer before them, or an activation layer.
# Gelu is an operator from opset 20 on (netspec's export, at opset 17, writes it as Erf and
# arithmetic, and silu as x·Sigmoid(x): patterns the walk in netspec.interop.chain recognises).
_ACTIVATIONS = {operator: name for name, operator in ONNX_ACTIVATIONS.items()} | {"Gelu": "gelu"}
_TAKES_ACTIVATION = ("dense", "conv2d", "batchnorm", "add", "concat")


class Refusal(Exception):
    """A node netspec cannot reproduce exactly (NS503), or too large (NS208); the importer names the node."""

    def __init__(self, node, why: str, code: str = "NS503"):
        super().__init__(why)
        self.node, self.why, self.code = node, why, code


def _fail(node, why: str, code: str = "NS503"):
    raise Refusal(node, why, code)


class Operators:
    """The operator mappings of the graph importer (see netspec.interop.chain.Chain)."""

    def map(self, node) -> str:
        """Add what `node` computes to the layers; the name of the tensor it leaves for the next node."""
        op, attrs = node.op_type, self.attributes(node)
        if op == "Identity":
            pass
        elif op == "Reshape" and len(self.shape) == 3 and len(self.constant(node, 1)) == 5:
            self.node = node = self._channel_shuffle(node, attrs)  # the next node reads the last Reshape's output
        elif op in ("Flatten", "Reshape"):
            self._flatten(node, attrs)
        elif op == "Gemm":
            if attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0 or attrs.get("transA", 0):
                _fail(node, "only Gemm with alpha 1, beta 1 and no transA is a dense layer")
            weights = self.constant(node, 1)
            weights = weights if attrs.get("transB", 0) else weights.T
            bias = self.constant(node, 2) if len(node.input) > 2 and node.input[2] else None
            self._dense(node, weights, bias, _prefix(node.input[1], node.name))
        elif op == "MatMul":
            if len(self.shape) != 1:
                _fail(
                    node,
                    f"a MatMul on a tensor of shape {tuple(self.shape)} multiplies along its last axis only; "
                    "netspec's dense layer reads a vector (flatten the tensor first)",
                )
            weights, bias, hint = self.constant(node, 1).T, None, _prefix(node.input[1], node.name)
            after = self.following(node)
            if after is not None and after.op_type == "Add" and self._is_constant_add(after, node.output[0]):
                bias = self.constants[_other(after, node.output[0])]
                self.node = node = after  # the Add is the dense layer's bias: the next node reads its output
            self._dense(node, weights, bias, hint)
        elif op == "Conv":
            self._conv(node, attrs)
        elif op in ("MaxPool", "AveragePool"):
            self._pool(node, attrs)
        elif op == "GlobalAveragePool":
            if len(self.shape) != 3:
                _fail(node, f"it reads a tensor of shape {tuple(self.shape)}; netspec's global_avgpool reads images")
            self.global_average(node, keep=True)  # (batch, C, 1, 1): netspec's vector, seen as one pixel
        elif op == "BatchNormalization":
            if attrs.get("training_mode", 0) or attrs.get("spatial", 1) != 1:
                _fail(node, "a batch normalization in training mode or per value (spatial 0) is not netspec's")
            values = {
                key: self.constant(node, position)
                for position, key in enumerate(("scale", "shift", "mean", "var"), start=1)
            }
            epsilon, momentum = _decimal(attrs.get("epsilon", 1e-5)), _decimal(1 - _decimal(attrs.get("momentum", 0.9)))
            values, last = self.scaled(node, values)  # Caffe's Scale after it: one batch norm (see interop.folding)
            self.add({"type": "batchnorm", "epsilon": epsilon, "momentum": momentum}, values, node.name)
            self.node = node = last  # the next node reads the last folded node's output
        elif op == "Dropout":
            if len(node.input) > 2 and node.input[2] and bool(self.constant(node, 2)):
                _fail(
                    node, "a Dropout in training mode drops values when the model runs; export the model in eval mode"
                )
            ratio = self.constant(node, 1) if len(node.input) > 1 and node.input[1] else attrs.get("ratio", 0.5)
            self.add({"type": "dropout", "rate": _decimal(ratio)}, {}, node.name)
        elif op == "LRN":
            self._lrn(node, attrs)
        elif op == "Slice":
            self._slice(node, attrs)
        elif op in _ACTIVATIONS:
            self._activation(node, attrs)
        elif op in ("Add", "Mul"):  # of a stored array: merges of layers are netspec.interop.chain's
            _fail(node, self.unscaled(node))
        else:
            _fail(node, "this operator is not one netspec has (docs/onnx.md lists what import maps)")
        return node.output[0]

    def _is_constant_add(self, add, data: str) -> bool:
        other = _other(add, data)
        return other is not None and other in self.constants and list(add.input).count(data) == 1

    def _flatten(self, node, attrs) -> None:
        if node.op_type == "Flatten" and attrs.get("axis", 1) != 1:
            _fail(
                node, f"a Flatten with axis {attrs['axis']} mixes the samples of a batch; netspec flattens from axis 1"
            )
        if node.op_type == "Reshape":
            values = int(np.prod(self.shape))
            target = [int(n) for n in self.constant(node, 1)]
            # 0 copies the batch size, unless allowzero says it means 0; a fixed batch size may be written out.
            batch = ([] if attrs.get("allowzero", 0) else [0]) + ([-1] if target[1:] == [values] else [])
            batch += [self.batch] if self.batch else []
            if len(target) != 2 or target[0] not in batch or target[1] not in (-1, values):
                _fail(
                    node,
                    f"a Reshape to {target} is not a flatten to (batch, {values}); netspec reads a Reshape as a "
                    "flatten, or as part of a channel shuffle",
                )
        # A dense layer reads the input image flattened by itself, as netspec specs write it.
        after = self.following(node)
        before_dense = not self.layers and after is not None and after.op_type in ("Gemm", "MatMul")
        if len(self.shape) > 1 and not before_dense:
            self.add({"type": "flatten"}, {}, node.name)
        self.shape = [int(np.prod(self.shape))]

    def _channel_shuffle(self, node, attrs):
        """Reshape to (batch, groups, C/groups, H, W), Transpose (0, 2, 1, 3, 4), Reshape back: the last node.

        ShuffleNet's graph (and netspec's export) of a channel shuffle; any other use of a 5-axis
        Reshape of an image is refused, naming the Reshape.
        """
        channels, height, width = self.shape
        grouped = self._reshaped(node, attrs, self.shape)
        swap = self.following(node)
        back = self.following(swap) if swap is not None and swap.op_type == "Transpose" else None
        if (
            grouped is not None
            and grouped[0] * grouped[1] == channels
            and grouped[2:] == [height, width]
            and back is not None
            and back.op_type == "Reshape"
            and list(self.attributes(swap).get("perm", [])) == [0, 2, 1, 3, 4]
            and list(back.input[:1]) == [swap.output[0]]
            and self._reshaped(back, self.attributes(back), [grouped[1], grouped[0], height, width]) == self.shape
        ):
            self.add({"type": "channel_shuffle", "groups": grouped[0]}, {}, back.name)
            return back
        target = [int(n) for n in self.constant(node, 1)]
        _fail(
            node,
            f"a Reshape of a ({channels}, {height}, {width}) image to {target} is netspec's only as the first "
            "node of a channel shuffle: Reshape to (batch, groups, channels/groups, height, width), Transpose with "
            "perm (0, 2, 1, 3, 4), Reshape back to (batch, channels, height, width)",
        )

    def _reshaped(self, node, attrs, shape: list[int]) -> list[int] | None:
        """The shape without the batch that a Reshape gives a tensor of shape (batch, *shape), or None.

        None unless the batch stays on axis 0: written 0 (copy it), -1 (what is left) or, when the
        model fixes it, as a number. Other 0s copy the input's axis there, one -1 takes what is left
        (ONNX's rules, with allowzero 0).
        """
        target = [int(n) for n in self.constant(node, 1)]
        copies = not attrs.get("allowzero", 0)
        if not target or (target[0] == 0 and not copies):
            return None
        values = math.prod(shape)
        rest = [shape[i] if n == 0 and copies and i < len(shape) else n for i, n in enumerate(target[1:])]
        if target[0] == -1:
            return rest if min(rest, default=1) > 0 and math.prod(rest) == values else None
        if target[0] not in (0, self.batch or 0) or rest.count(-1) > 1:
            return None
        if -1 in rest:
            known = math.prod(n for n in rest if n != -1)
            if known < 1 or values % known:
                return None
            rest[rest.index(-1)] = values // known
        return rest if min(rest, default=1) > 0 and math.prod(rest) == values else None

    def _dense(self, node, weights, bias, hint: str) -> None:
        if weights.ndim != 2:
            _fail(node, f"its weights have shape {weights.shape}; a dense layer's weights are a matrix")
        if bias is not None and (
            bias.size not in (1, len(weights)) or bias.ndim > 2 or (bias.ndim == 2 and bias.shape[0] != 1)
        ):
            _fail(
                node,
                f"a bias of shape {bias.shape} differs between samples; netspec's dense bias has one value "
                f"per neuron ({len(weights)})",
            )
        # A dense layer reads a vector: the input image it flattens itself; any other image-shaped
        # tensor needs a flatten layer before it.
        if len(self.shape) > 1 and self.layers:
            self.add({"type": "flatten"}, {})
        arrays = {"weights": weights.reshape(len(weights), -1)}
        if bias is not None:
            arrays["bias"] = np.broadcast_to(bias.reshape(-1), (len(weights),)).copy()
        # Without a bias (a Gemm of two inputs, a MatMul alone: nn.Linear(bias=False)), none: not zeros.
        layer = {"type": "dense", "neurons": int(len(weights))} | ({} if bias is not None else {"use_bias": False})
        self.add(layer, arrays, hint)
        self.shape = [len(weights)]

    def _conv(self, node, attrs) -> None:
        weights = self.constant(node, 1)
        if weights.ndim != 4:
            _fail(node, f"its weights have shape {weights.shape}; netspec's conv2d has 2-D kernels on images")
        kernel = list(weights.shape[2:])
        if list(attrs.get("kernel_shape", kernel)) != kernel:
            _fail(node, f"kernel_shape {attrs['kernel_shape']} differs from its weights' {kernel}")
        stride, dilation = list(attrs.get("strides", [1, 1])), list(attrs.get("dilations", [1, 1]))
        padding = self._padding(node, attrs, kernel, stride, dilation)
        groups = int(attrs.get("group", 1))
        if groups < 1 or len(weights) % groups or weights.shape[1] * groups != self.shape[0]:
            _fail(
                node,
                f"group {groups} with weights of shape {weights.shape} on {self.shape[0]} channels; a convolution's "
                "weights are (filters, channels / group, kernel height, kernel width), and group divides the filters",
            )
        # A Conv without a bias (torchvision's, before a batch norm) is use_bias: false: no array, as PyTorch counts.
        biased = len(node.input) > 2 and bool(node.input[2])
        arrays = {"weights": weights} | ({"bias": self.constant(node, 2)} if biased else {})
        layer = {"type": "conv2d", "filters": int(len(weights)), "kernel": kernel, "stride": stride}
        self.add(
            {**layer, "padding": padding, "dilation": dilation, **({"groups": groups} if groups > 1 else {})}
            | ({} if biased else {"use_bias": False}),
            arrays,
            _prefix(node.input[1], node.name),
        )
        self.shape = _fitted(node, self.shape, _spatial(self.shape, len(weights), kernel, stride, dilation, padding))

    def _pool(self, node, attrs) -> None:
        size, stride = list(attrs["kernel_shape"]), list(attrs.get("strides", [1, 1]))
        if attrs.get("dilations", [1, 1]) != [1, 1]:
            _fail(node, "a dilated pooling; netspec's pooling windows are whole and undilated")
        ceil_mode = bool(attrs.get("ceil_mode", 0))
        padding = self._padding(node, attrs, size, stride, [1, 1])
        sides = _sides(padding)
        if sides is not None and any(2 * n > size[i // 2] for i, n in enumerate(sides)):
            _fail(
                node,
                f"it pads (top, bottom, left, right) by {sides} pixels, more than half its {size[0]}×{size[1]} "
                "window on a side; netspec's pooling pads at most half the window on each side",
            )
        # Cells a ceil_mode window runs past the edge are never counted (onnxruntime, as PyTorch): padding alone is.
        if node.op_type == "AveragePool" and attrs.get("count_include_pad", 0) and padding not in ("valid", 0):
            _fail(node, "an average that counts padding cells; netspec's leaves them out (count_include_pad 0)")
        kind = "maxpool2d" if node.op_type == "MaxPool" else "avgpool2d"
        layer = {"type": kind, "size": size, "stride": stride, "padding": padding}
        self.add({**layer, "ceil_mode": True} if ceil_mode else layer, {}, node.name)
        self.shape = _fitted(
            node, self.shape, _spatial(self.shape, self.shape[0], size, stride, [1, 1], padding, ceil_mode)
        )

    def _padding(self, node, attrs, kernel, stride, dilation):
        """netspec's padding (valid, same, pixels, [height, width] or per side) for the pads ONNX works out."""
        source = next((layer for layer in self.layers if [layer["name"]] == self.sources), None)
        if source is not None and source["type"] == "global_avgpool":
            _fail(
                node,
                "it follows a GlobalAveragePool; netspec's global_avgpool gives a vector, which image layers "
                "cannot read",
            )
        if len(self.shape) != 3:
            _fail(
                node,
                f"it reads a tensor of shape {tuple(self.shape)}; netspec's image layers read (channels, "
                "height, width)",
            )
        auto = attrs.get("auto_pad", "NOTSET")  # NOTSET, ONNX's default, means "use pads"
        sizes = list(zip(self.shape[1:], kernel, stride, dilation))
        if auto == "NOTSET":
            top, left, bottom, right = attrs.get("pads", [0, 0, 0, 0])
            pads = [(top, bottom), (left, right)]
        elif auto == "VALID":
            pads = [(0, 0), (0, 0)]
        elif auto in ("SAME_UPPER", "SAME_LOWER"):
            pads = [windows.pads(size, k, s, d, "same") for size, k, s, d in sizes]
            if auto == "SAME_LOWER":  # the odd pixel goes before
                pads = [(after, before) for before, after in pads]
        else:
            _fail(node, f"auto_pad {auto!r}; ONNX allows NOTSET, VALID, SAME_UPPER and SAME_LOWER")
        (top, bottom), (left, right) = pads = [(int(before), int(after)) for before, after in pads]
        if len({top, bottom, left, right}) == 1:
            return "valid" if top == 0 else top
        if pads == [windows.pads(size, k, s, d, "same") for size, k, s, d in sizes]:
            return "same"
        if (top, left) == (bottom, right):
            return [top, left]
        return [top, bottom, left, right]

    def _lrn(self, node, attrs) -> None:
        size = attrs["size"]
        if len(self.shape) != 3:
            _fail(node, f"an LRN of a tensor of shape {tuple(self.shape)}; netspec's lrn reads images")
        if size % 2 == 0:
            # ONNX sums floor((size-1)/2) channels before and ceil((size-1)/2) after; PyTorch and
            # netspec the other way round. They agree for odd sizes only (onnxruntime takes no other).
            _fail(
                node,
                f"an LRN of even size {size} sums one channel more after each channel than before it; netspec's "
                "lrn (PyTorch's) sums one more before, so only odd sizes map",
            )
        layer = {"type": "lrn", "size": size, "alpha": _decimal(attrs.get("alpha", 1e-4))}
        layer |= {"beta": _decimal(attrs.get("beta", 0.75)), "k": _decimal(attrs.get("bias", 1.0))}
        self.add(layer, {}, node.name)

    def _slice(self, node, attrs) -> None:
        """A Slice along axis 1 (channels, or features of a vector) with step 1; every other axis whole."""
        if self.opset < 10:  # starts, ends and axes were attributes until opset 10
            starts, ends = attrs["starts"], attrs["ends"]
            axes, steps = attrs.get("axes", range(len(starts))), [1] * len(starts)
        else:
            starts, ends = self.constant(node, 1), self.constant(node, 2)
            given = [position < len(node.input) and node.input[position] for position in (3, 4)]
            axes = self.constant(node, 3) if given[0] else range(len(starts))
            steps = self.constant(node, 4) if given[1] else [1] * len(starts)
        dims, taken = [None, *self.shape], None  # None: the batch size, which the graph may leave open
        for axis, start, end, step in zip(*(map(int, values) for values in (axes, starts, ends, steps))):
            axis += len(dims) if axis < 0 else 0
            size = dims[axis] if 0 <= axis < len(dims) else None
            if step != 1:
                _fail(node, f"a Slice with step {step}; netspec's slice takes every channel from start to stop")
            if axis == 1:
                start, end = (min(max(n + size if n < 0 else n, 0), size) for n in (start, end))
                if end <= start:
                    _fail(node, f"a Slice of axis 1 from {start} to {end} of {size} takes nothing")
                taken = (start, end)
            elif start != 0 or end < (size or self.batch or 2**31 - 1):  # all of another axis is no slice
                _fail(
                    node,
                    f"a Slice along axis {axis} of a tensor of shape (batch, {', '.join(map(str, self.shape))}); "
                    "netspec's slice takes channels (or features of a vector), axis 1",
                )
        start, stop = taken or (0, self.shape[0])
        self.add({"type": "slice", "start": start, "stop": stop}, {}, node.name)
        self.shape[0] = stop - start


def _other(add, data: str) -> str | None:
    others = [name for name in add.input if name != data]
    return others[0] if len(others) == 1 else None


def _decimal(value) -> float:
    """A setting stored as float32 (as ONNX stores attributes) back as the decimal it was written as."""
    return float(f"{float(value):.7g}")


def _prefix(name: str, node: str = "") -> str:
    """The layer a weights array names: 'hidden1' from 'hidden1.weights' (netspec's export),
    'layer1.0.conv1' from 'layer1.0.conv1.weight' (PyTorch's); else the node's name if PyTorch wrote
    it as a module path ('/layer1/layer1.0/conv1/Conv', where batch norms were folded into the weights)."""
    for suffix in (".weights", ".weight"):
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return node if node.startswith("/") else ""


def _fitted(node, before: list[int], after: list[int]) -> list[int]:
    """The output shape of a window layer, refused where the window does not fit the image (ONNX's shape
    inference and onnxruntime round such a size differently from netspec and PyTorch)."""
    if min(after[1:]) < 1:
        _fail(
            node,
            f"its window does not fit the {before[1]}×{before[2]} image it reads (an output of "
            f"{after[1]}×{after[2]} pixels); netspec's windows lie on the image, padding included",
        )
    return after


def _sides(padding) -> list[int] | None:
    """The pixels a netspec padding adds (top, bottom, left, right); None for 'same' (at most half the window)."""
    if padding == "same":
        return None
    if padding == "valid":
        return [0, 0, 0, 0]
    if isinstance(padding, int):
        return [padding] * 4
    return [padding[0], padding[0], padding[1], padding[1]] if len(padding) == 2 else list(padding)


def _spatial(shape, channels, kernel, stride, dilation, padding, ceil_mode: bool = False) -> list[int]:
    geometry = windows.geometry(tuple(shape), tuple(kernel), tuple(stride), tuple(dilation), padding, ceil_mode)
    (_, (out_h, out_w)) = geometry
    return [int(channels), out_h, out_w]
