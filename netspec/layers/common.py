"""Field types every layer shares, and the answers of a layer without parameters."""

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Discriminator, Field, Tag
from pydantic_core import PydanticCustomError

from netspec.errors import Problem
from netspec.fields import Count, SpecModel

NAME_PATTERN = "^[A-Za-z0-9_-]+$"
"""What a layer name may be; the JSON Schema gives editors the same pattern."""

_NAME = re.compile(NAME_PATTERN)


def _check_name(name: str) -> str:
    # Names become keys such as "hidden1.weights" in weight files, so a dot would be ambiguous.
    # fullmatch: `$` alone would let a name end in a newline.
    if not _NAME.fullmatch(name):
        raise PydanticCustomError(
            "NS103",
            "layer names use ASCII letters, digits, '_' and '-' only, got '{name}'",
            {"name": name},
        )
    return name


LayerName = Annotated[str, AfterValidator(_check_name)]

NETWORK_INPUT = "input"
"""What `inputs` names to read the network's input."""


def _names_or_list(value: Any) -> Any:
    # Said here, with the value received: a failed union would list each member's complaint instead.
    if not isinstance(value, (str, list)):
        got = (
            "a mapping" if isinstance(value, dict) else f"{value!r}".lower() if isinstance(value, bool) else repr(value)
        )
        raise PydanticCustomError("NS103", "must be a layer name or a list of layer names, got {got}", {"got": got})
    return value


LayerInputs = Annotated[
    Annotated[LayerName, Tag("one")] | Annotated[list[LayerName], Tag("each"), Field(min_length=1)],
    Discriminator(lambda value: "each" if isinstance(value, list) else "one"),
    BeforeValidator(_names_or_list),
]
"""A layer name, or a list of them: what a layer reads."""


class LayerBase(SpecModel):
    """The keys every layer has, whatever its type: each layer model derives from this one."""

    type: str
    """Layer type."""
    name: LayerName | None = None
    """Unique name of the layer (default: type and index, e.g. dense_2); other layers read it by this name."""
    inputs: LayerInputs | None = None
    """The layer it reads (listed above it), a list of them (add, concat), or input; default: the layer before it."""


def _square(value: Any) -> Any:
    # `kernel: 3` means 3×3, as in Keras and PyTorch; checked here so that a bad number is reported
    # once, not once for each of the two sizes it stands for.
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise PydanticCustomError("NS104", "must be at least 1, got {value}", {"value": value})
        return [value, value]
    return value


Size2D = Annotated[
    list[Count],
    BeforeValidator(_square, json_schema_input_type=Count | Annotated[list[Count], Field(min_length=2, max_length=2)]),
    Field(min_length=2, max_length=2),
]
"""A size along height and width: one number for both, or [height, width]."""

DEFAULT_ALPHA = 0.01
"""leaky_relu's slope for negative inputs when the spec gives none (PyTorch's default)."""


def alpha_of(layer: Any) -> float:
    """The slope leaky_relu uses in `layer`: its own `alpha` (0 included), else DEFAULT_ALPHA."""
    return DEFAULT_ALPHA if layer.alpha is None else layer.alpha


def alpha_problems(activation: str, alpha: float | None) -> list[Problem]:
    """An `alpha` given to an activation other than leaky_relu would do nothing: say so."""
    if alpha is not None and activation != "leaky_relu":
        message = f"only leaky_relu takes alpha, but the activation is {activation}; remove alpha or use leaky_relu"
        return [Problem("NS125", message, ("alpha",))]
    return []


# What a layer without parameters (flatten, dropout, pooling) answers the builder. Such a module binds
# these under the protocol's names (param_shapes = no_param_shapes, ...).


def no_param_shapes(layer: Any, input_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    return {}


def unit_fans(layer: Any, input_shape: tuple[int, ...]) -> tuple[int, int]:
    return 1, 1


def no_axis_meanings(layer: Any) -> dict[str, tuple[str, ...]]:
    return {}


def no_multiply_adds(layer: Any, input_shape: tuple[int, ...]) -> int:
    return 0


ONNX_ACTIVATIONS = {  # the ONNX operator each activation is exported as; the importer reads them back
    "relu": "Relu",
    "leaky_relu": "LeakyRelu",
    "sigmoid": "Sigmoid",
    "tanh": "Tanh",
    "softmax": "Softmax",
}


def activation_to_onnx(layer: Any, z: str, rank: int, emit: Any) -> str:
    """The layer's activation applied to tensor `z` (of `rank` axes without the batch) as an ONNX node."""
    activation = layer.activation
    if activation == "linear":
        return z
    attributes = {"alpha": alpha_of(layer)} if activation == "leaky_relu" else {}
    if activation == "softmax":
        attributes = {"axis": -1 if rank == 1 else 1}
    return emit.node(ONNX_ACTIVATIONS[activation], [z], f"{layer.name}.{activation}", **attributes)
