"""The operators of the later ImageNet classifiers: a global average and what reads it, ReduceMean, Squeeze, Split.

ONNX's global average (GlobalAveragePool, or ReduceMean over height and width keeping them) is
(batch, C, 1, 1); netspec's global_avgpool gives the vector (batch, C). The walk keeps such a tensor
as the vector seen as an image of one pixel, (C, 1, 1): a 1×1 Conv of it is exactly a dense layer
(torchvision's squeeze-and-excitation writes its two fully connected layers so), an activation is the
same on the vector, a Flatten, Reshape or Squeeze gives the vector back without a layer, and a Mul
with an image scales its channels. A Split along channels is one slice layer per output that is read.
"""

from __future__ import annotations

from netspec.interop.operators import _ACTIVATIONS, _fail, _prefix

ONE_PIXEL_READERS = ("Conv", "Flatten", "Reshape", "Squeeze", "Dropout", *_ACTIVATIONS)
"""The operators that read a vector seen as (C, 1, 1) (and x·Sigmoid(x), a pattern), besides Mul and Unsqueeze."""


class Patterns:
    """The mappings of this module, mixed into netspec.interop.chain.Chain with netspec.interop.operators'."""

    one_pixel = False
    """Whether the tensor being mapped is a layer's vector seen as (C, 1, 1), and so is what the node leaves."""

    def map_pattern(self, node) -> str | None:
        """Map `node` if it is one of this module's: the tensor it leaves for the next node; else None."""
        op = node.op_type
        if op == "ReduceMean":
            self._reduce_mean(node)
        elif op == "Squeeze":
            self._squeeze(node)
        elif self.one_pixel and op in ("Flatten", "Reshape"):
            self._unview(node)
        elif self.one_pixel and op == "Conv":
            self._one_pixel_conv(node)
        elif self.one_pixel and op == "Softmax":
            self._one_pixel_softmax(node)
        else:
            return None
        return node.output[0]

    def one_pixel_view(self, name: str) -> bool:
        """Whether tensor `name` is a layer's vector seen as (C, 1, 1)."""
        layer, shape = self.tensors[name]
        vector = self.layer_shapes.get(layer)
        return vector is not None and len(vector) == 1 and shape == [*vector, 1, 1]

    def global_average(self, node, keep: bool) -> None:
        """A global_avgpool layer; with `keep`, its vector is seen as (C, 1, 1), as ONNX's average is."""
        self.add({"type": "global_avgpool"}, {}, node.name.removesuffix(".pool"))
        self.shape = [self.shape[0]]
        self.one_pixel = keep

    def _reduce_mean(self, node) -> None:
        """A ReduceMean over height and width (axes 2 and 3, as an attribute until opset 17, an input from 18)."""
        attrs = self.attributes(node)
        if self.opset < 18:
            axes = attrs.get("axes")
        else:
            axes = self.constant(node, 1) if len(node.input) > 1 and node.input[1] else None
        rank = len(self.shape) + 1
        given = None if axes is None else sorted(int(a) + (rank if int(a) < 0 else 0) for a in axes)
        if len(self.shape) != 3 or given != [2, 3]:  # (a global average seen as (C, 1, 1) is refused as read)
            what = "every axis (the batch too)" if not given else f"axes {[int(a) for a in axes]}"
            dims = ", ".join(map(str, self.shape))
            _fail(
                node,
                f"a ReduceMean over {what} of a tensor of shape (batch, {dims}); netspec averages an image over "
                "its height and width only (global_avgpool): axes [2, 3] (or [-2, -1]) of (batch, channels, "
                "height, width)",
            )
        self.global_average(node, bool(attrs.get("keepdims", 1)))

    def _squeeze(self, node) -> None:
        """A Squeeze of the height and width of (C, 1, 1): the vector back (a flatten layer for a conv's image)."""
        if self.opset < 13:
            axes = self.attributes(node).get("axes")
        else:
            axes = self.constant(node, 1) if len(node.input) > 1 and node.input[1] else None
        shape = [*self.shape, 1, 1] if self.one_pixel else self.shape
        given = None if axes is None else sorted(int(a) + (len(shape) + 1 if int(a) < 0 else 0) for a in axes)
        if given != [2, 3] or shape[1:] != [1, 1]:
            what = "every axis of size 1 (the batch too, if it is 1)" if axes is None else f"axes {given}"
            _fail(
                node,
                f"a Squeeze of {what} of a tensor of shape (batch, {', '.join(map(str, shape))}); netspec reads a "
                "Squeeze of axes [2, 3] of a (channels, 1, 1) image only, as a flatten",
            )
        if self.one_pixel:
            self.one_pixel = False  # the layer's own vector: no layer
        else:
            self._flatten(node, {})

    def _unview(self, node) -> None:
        """A Flatten (axis 1) or Reshape to (batch, C) of a vector seen as (C, 1, 1): the vector, no layer."""
        attrs = self.attributes(node)
        shape = [*self.shape, 1, 1]
        if node.op_type == "Flatten":
            axis = int(attrs.get("axis", 1))
            flat = axis in (1, -3)
            target = f"with axis {axis}"
        else:
            flat = self._reshaped(node, attrs, shape) == self.shape
            target = f"to {[int(n) for n in self.constant(node, 1)]}"
        if not flat:
            _fail(
                node,
                f"a {node.op_type} {target} of a tensor of shape (batch, {', '.join(map(str, shape))}); netspec "
                f"reads it only as the vector (batch, {self.shape[0]}) again: Flatten with axis 1, or Reshape "
                f"to (batch, {self.shape[0]})",
            )
        self.one_pixel = False

    def _one_pixel_conv(self, node) -> None:
        """A 1×1 Conv without padding of a vector seen as (C, 1, 1): a dense layer, its vector seen so again."""
        attrs = self.attributes(node)
        weights = self.constant(node, 1)
        pads = list(attrs.get("pads", [0, 0, 0, 0]))
        kernel = list(weights.shape[2:])
        if weights.ndim != 4 or kernel != [1, 1] or any(pads) or int(attrs.get("group", 1)) != 1:
            size = "×".join(map(str, kernel))
            group = int(attrs.get("group", 1))
            _fail(
                node,
                f"a {size} Conv with pads {pads} and group {group} of {node.input[0]!r}, the {self.shape[0]} values "
                f"of a vector seen as a ({self.shape[0]}, 1, 1) image; netspec reads a Conv of it only as a dense "
                "layer: a 1×1 kernel, no padding, group 1",
            )
        if weights.shape[1] != self.shape[0]:
            _fail(node, f"its weights of shape {weights.shape} read {weights.shape[1]} channels of {self.shape[0]}")
        bias = self.constant(node, 2) if len(node.input) > 2 and node.input[2] else None
        # With one pixel, a 1×1 kernel is a matrix of filters by channels; stride and dilation change nothing.
        self._dense(node, weights.reshape(len(weights), -1), bias, _prefix(node.input[1]))

    def _one_pixel_softmax(self, node) -> None:
        """A Softmax over the channels of a vector seen as (C, 1, 1): softmax of the vector."""
        axis = int(self.attributes(node).get("axis", 1 if self.opset < 13 else -1))
        if axis not in (1, -3):  # before opset 13, axis 1 flattens (C, 1, 1) to the C values: the same
            _fail(
                node,
                f"a Softmax over axis {axis} of a tensor of shape (batch, {self.shape[0]}, 1, 1); netspec's "
                "softmax is over the class scores, axis 1 of (batch, classes)",
            )
        self._activate(node, "softmax", {})

    def split(self, node) -> None:
        """A Split along axis 1: a slice layer for each output that is read, each reading the Split's input."""
        attrs = self.attributes(node)
        rank = len(self.shape) + 1
        axis = int(attrs.get("axis", 0))
        axis += rank if axis < 0 else 0
        dims = ", ".join(map(str, self.shape))
        if axis != 1:
            _fail(
                node,
                f"a Split along axis {axis} of a tensor of shape (batch, {dims}); netspec splits channels (or "
                "the features of a vector), axis 1, as slice layers",
            )
        count = self.shape[0]
        if len(node.input) > 1 and node.input[1]:  # the sizes, an input from opset 13
            sizes = [int(n) for n in self.constant(node, 1)]
        elif "split" in attrs:  # an attribute before opset 13
            sizes = [int(n) for n in attrs["split"]]
        else:  # equal parts, the last one smaller if they do not divide the axis (opset 18's num_outputs)
            parts = int(attrs.get("num_outputs", len(node.output)))
            size = -(-count // parts)
            sizes = [size] * (parts - 1) + [count - size * (parts - 1)]
        if len(sizes) != len(node.output) or sum(sizes) != count or min(sizes, default=0) < 1:
            _fail(
                node,
                f"it splits {count} along axis 1 into parts of {sizes} for {len(node.output)} outputs; netspec "
                f"needs one part of at least 1 for each output, adding up to {count}",
            )
        source, shape, start = self.sources[0], list(self.shape), 0
        ends = {value.name for value in self.graph.output}
        for index, (name, size) in enumerate(zip(node.output, sizes)):
            if name and (name in self.readers or name in ends):
                self.sources, self.shape = [source], [size, *shape[1:]]
                self.add(
                    {"type": "slice", "start": start, "stop": start + size}, {}, node.name and f"{node.name}_{index}"
                )
                layer = self.layers[-1]["name"]
                self.primary[layer] = name
                self.tensors[name] = (layer, list(self.shape))
            start += size
        self.done.add(id(node))
