"""The contract a layer kind fulfils, the adapter for kinds that read one input, and the registry of kinds.

Every dispatch on layer types (planning shapes, building arrays, running, training, exporting,
drawing, summing up) goes through a `Kind` found in `netspec.layers.KINDS`: adding a kind is one
module and one line there.

The contract is written for graphs: shapes, forward and backprop take a *list* of inputs (one per
input the layer reads) and backprop gives one gradient per input. A kind that reads one input
(every kind so far) writes its math for that input alone, in a module, and `OneInput` adapts it.
A merge kind (netspec.layers.merge: add, concat, multiply) implements `Kind` itself: `output_shape`
checks that the input shapes fit together, `forward` combines the list, and its backprop splits
`dy` into one gradient per input (add passes `dy` to each; concat slices it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Annotated, Any, ClassVar, Literal, Protocol, Union

import numpy as np
from pydantic import Discriminator, Tag

Shape = tuple[int, ...]

Backprop = Callable[..., tuple[list[np.ndarray | None], dict[str, np.ndarray]]]
"""backprop(dy, preactivation=False, input_grad=True) -> ([one gradient per input], {param: gradient}).

With `preactivation=True`, dy is the gradient of the value before the layer's activation (a loss
folded with softmax gives that); with `input_grad=False` the input gradients are not computed
(they are None: no layer below learns anything).
"""


class Emitter(Protocol):
    """What a kind writes its ONNX nodes with; the exporter passes one in, so layer modules never import onnx."""

    dtype: np.dtype
    """The network's dtype, for constants that are not parameters (dropout's ratio)."""

    def node(self, op: str, inputs: list[str], name: str, **attributes: Any) -> str:
        """Add the ONNX node `op` reading tensors `inputs`; returns its output tensor's name (`name`)."""
        ...

    def constant(self, name: str, array: np.ndarray) -> str:
        """Add `array` as an initializer called `name`; returns `name`."""
        ...


class Kind(Protocol):
    """What a layer kind provides. `layer` is always an instance of `model`.

    `node` (in to_onnx) is the network's record of the layer: `name`, `spec`, `params`,
    `input_shapes`, `output_shape` and `flattened` (it reads its input as one vector).
    """

    tag: str
    """The `type` that names the kind in a spec."""
    model: type
    """The pydantic model of such a layer."""
    not_learned: frozenset[str]
    """Parameters kept up to date while training, but not by gradients (batchnorm's running statistics)."""
    non_negative: frozenset[str]
    """Parameters that can never be negative; the builder refuses arrays that are."""
    decayed: frozenset[str]
    """Parameters weight decay shrinks (weights, not biases, scales or shifts)."""
    reads_flat: bool
    """Reads its input as one vector whatever its shape (dense). The planner alone decides what follows:
    such a layer may read the network's image input flattened (the node records it as `flattened`),
    not an image-shaped output of another layer."""
    neurons: Literal["fan", "kernel"] | None
    """How one neuron's weights are drawn: one weight per input value (fan), one map per input
    channel (kernel), or None: the kind has no neurons."""
    passes: Literal["elementwise", "reshape"] | None
    """How outputs hold the inputs' values, for pictures tracing values back: each value in its place
    (elementwise), the same values in order (reshape), or None: new values."""
    min_inputs: int
    """The fewest inputs the layer reads (1, or 2 for a merge)."""
    max_inputs: int | None
    """The most inputs the layer reads (1; 2 for multiply; None: any number, as add and concat)."""

    def output_shape(self, layer: Any, input_shapes: list[Shape]) -> Shape:
        """The shape of one output (no batch axis).

        Inputs that do not fit raise netspec.errors.Unlocated("NS126", message, (field,)): the
        planner adds the layer. The message may name the input's origin as `{source}` ("pool2",
        "the input"), or say `{input}` for "input" or "input from pool2" after a shape; a merge names
        its i-th input as `{sources[i]}` ("'pool2'", "the input"), and its path may be ("inputs", i)
        to point at the input that does not fit.
        """
        ...

    def param_shapes(self, layer: Any, input_shapes: list[Shape]) -> dict[str, Shape]:
        """Each parameter's shape, by name (PyTorch's names where it has them)."""
        ...

    def fans(self, layer: Any, input_shapes: list[Shape]) -> tuple[int, int]:
        """(fan_in, fan_out), which scale the Glorot, He and LeCun initializers."""
        ...

    def axis_meanings(self, layer: Any) -> dict[str, tuple[str, ...]]:
        """What each axis of each parameter counts ("neuron", "input"), for messages about wrong shapes."""
        ...

    def multiply_adds(self, layer: Any, input_shapes: list[Shape]) -> int:
        """Multiply-adds for one example."""
        ...

    def forward(
        self, layer: Any, params: dict[str, np.ndarray], inputs: list[np.ndarray], train: bool = False, rng=None
    ) -> tuple[np.ndarray, Backprop]:
        """The output for a batch of each input, and the function that takes gradients back (see Backprop).

        `train` selects training behaviour (dropout active, batch statistics); `rng` draws random masks.
        """
        ...

    def runner(self, layer: Any, params: dict[str, np.ndarray]) -> Callable[..., np.ndarray]:
        """The function running (not training) the layer: run(*inputs) -> output, one array per input.

        It holds `params` itself: in-place changes to the arrays are seen, a replaced array is not.
        """
        ...

    def to_onnx(self, node: Any, inputs: list[str], emit: Emitter) -> str:
        """Write the layer as ONNX nodes reading the tensors `inputs`; returns the output tensor's name."""
        ...

    def activation(self, layer: Any) -> str:
        """The activation the layer applies, as `netspec summary` shows it ("" for none)."""
        ...

    def caption(self, layer: Any, output_shape: Shape) -> str:
        """What the diagram writes under the layer: its kind and size, then its output shape."""
        ...


def dims(shape: Shape) -> str:
    """A shape as pictures write it: '8×6×6'."""
    return "×".join(map(str, shape))


@dataclass(frozen=True)
class OneInput:
    """A kind reading one input, its math written for that input alone in `module`.

    The module provides output_shape, param_shapes, fans, axis_meanings, multiply_adds,
    forward(layer, params, x, train, rng) -> (y, backprop -> (dx, grads)), to_onnx(node, x, emit)
    and caption(layer, output_shape), and may provide runner(layer, params) -> run(x), faster than
    forward for running. They are looked up in the module at each call, so the module is the one
    place they live (a test that patches `dense.forward` patches the network's too).
    """

    model: type
    module: ModuleType
    not_learned: frozenset[str] = frozenset()
    non_negative: frozenset[str] = frozenset()
    decayed: frozenset[str] = frozenset()
    reads_flat: bool = False
    neurons: Literal["fan", "kernel"] | None = None
    passes: Literal["elementwise", "reshape"] | None = None
    min_inputs: ClassVar[int] = 1
    max_inputs: ClassVar[int | None] = 1

    @property
    def tag(self) -> str:
        return self.model.model_fields["type"].default

    def output_shape(self, layer: Any, input_shapes: list[Shape]) -> Shape:
        return self.module.output_shape(layer, input_shapes[0])

    def param_shapes(self, layer: Any, input_shapes: list[Shape]) -> dict[str, Shape]:
        return self.module.param_shapes(layer, input_shapes[0])

    def fans(self, layer: Any, input_shapes: list[Shape]) -> tuple[int, int]:
        return self.module.fans(layer, input_shapes[0])

    def axis_meanings(self, layer: Any) -> dict[str, tuple[str, ...]]:
        return self.module.axis_meanings(layer)

    def multiply_adds(self, layer: Any, input_shapes: list[Shape]) -> int:
        return self.module.multiply_adds(layer, input_shapes[0])

    def forward(self, layer: Any, params: dict[str, np.ndarray], inputs: list[np.ndarray], train=False, rng=None):
        y, backprop = self.module.forward(layer, params, inputs[0], train, rng)

        def backprop_each(dy: np.ndarray, preactivation: bool = False, input_grad: bool = True):
            dx, grads = backprop(dy, preactivation=preactivation, input_grad=input_grad)
            return [dx], grads

        return y, backprop_each

    def runner(self, layer: Any, params: dict[str, np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
        module = self.module
        if hasattr(module, "runner"):  # layers with a faster way to run than their training forward
            return module.runner(layer, params)
        return lambda x: module.forward(layer, params, x)[0]

    def to_onnx(self, node: Any, inputs: list[str], emit: Emitter) -> str:
        return self.module.to_onnx(node, inputs[0], emit)

    def activation(self, layer: Any) -> str:
        return getattr(layer, "activation", "")

    def caption(self, layer: Any, output_shape: Shape) -> str:
        return self.module.caption(layer, output_shape)


def registry(*kinds: Kind) -> dict[str, Kind]:
    """The kinds by tag, in the order given (the order error messages and the JSON Schema list them)."""
    found: dict[str, Kind] = {}
    for kind in kinds:
        if kind.tag in found:
            raise ValueError(f"two layer kinds are tagged {kind.tag!r}")
        found[kind.tag] = kind
    return found


def layer_type(value: object) -> str | None:
    """The `type` of a layer given as a mapping or a model: what chooses its model (None if it has none)."""
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return kind if isinstance(kind, str) else None


def layer_union(kinds: Mapping[str, Kind]) -> Any:
    """The pydantic type of any layer of `kinds`, chosen by its `type` key (errors only for the chosen model)."""
    members = tuple(Annotated[kind.model, Tag(tag)] for tag, kind in kinds.items())
    return Annotated[Union[members], Discriminator(layer_type)]  # noqa: UP007 - built from a tuple
