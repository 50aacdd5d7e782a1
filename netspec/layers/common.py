"""Field types every layer shares, and the answers of a layer without parameters."""

import math
import re
from typing import Annotated, Any

import numpy as np
from pydantic import AfterValidator, BeforeValidator, Discriminator, Field, Tag, model_validator
from pydantic_core import PydanticCustomError

from netspec.errors import Problem
from netspec.fields import Count, SpecModel, rule_error

NAME_PATTERN = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$"
"""What a layer name may be: parts joined by dots, as PyTorch names modules (layer1.0.conv1); the JSON
Schema gives editors the same pattern."""

NAME_RULE = "layer names are ASCII letters, digits, '_' and '-', in parts joined by dots (as layer1.0.conv1)"
"""The rule said in words, by netspec's message and by the editor's."""

_NAME = re.compile(NAME_PATTERN)


def _check_name(name: str) -> str:
    # Names become keys such as "layer1.0.conv1.weights" in weight files: a parameter's name has no dot,
    # so the last dot separates the two, and no part is empty. fullmatch: `$` alone would let a name end
    # in a newline.
    if not _NAME.fullmatch(name):
        raise PydanticCustomError("NS103", NAME_RULE + ", got '{name}'", {"name": name})
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


class ActivatedLayer(LayerBase):
    """A layer with an `activation` (and its `alpha`): the rule that alpha goes with an activation taking
    it, written once. Subclasses declare both fields (where they stand among their own keys) and may add
    rules of their own in `_own_problems`, reported together with this one."""

    @model_validator(mode="after")
    def _rules(self):
        problems = alpha_problems(self.activation, self.alpha) + self._own_problems()
        if problems:
            raise rule_error(problems)
        return self

    def _own_problems(self) -> list[Problem]:
        return []


def _square(value: Any) -> Any:
    # `kernel: 3` means 3×3, as in Keras and PyTorch; checked here so that a bad number is reported
    # once, not once for each of the two sizes it stands for.
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise PydanticCustomError("NS104", "must be at least 1, got {value}", {"value": value})
        return [value, value]
    if isinstance(value, list):
        return value
    from netspec.validation import show  # here: validation imports the layers

    raise PydanticCustomError("NS103", "must be a whole number or [height, width], got {got}", {"got": show(value)})


Size2D = Annotated[
    list[Count],
    BeforeValidator(_square, json_schema_input_type=Count | Annotated[list[Count], Field(min_length=2, max_length=2)]),
    Field(min_length=2, max_length=2),
]
"""A size along height and width: one number for both, or [height, width]."""

ALPHA_DEFAULTS = {"leaky_relu": 0.01, "elu": 1.0}
"""The activations that take `alpha`, and the value each uses when the spec gives none (PyTorch's defaults)."""


def alpha_of(layer: Any) -> float:
    """The alpha the layer's activation uses: its own `alpha` (0 included), else the activation's default."""
    return ALPHA_DEFAULTS.get(layer.activation, 0.0) if layer.alpha is None else layer.alpha


def alpha_problems(activation: str, alpha: float | None) -> list[Problem]:
    """An `alpha` given to an activation that takes none would do nothing: say so."""
    if alpha is not None and activation not in ALPHA_DEFAULTS:
        message = (
            f"only leaky_relu and elu take alpha, but the activation is {activation}; "
            "remove alpha or use leaky_relu or elu"
        )
        return [Problem("NS125", message, ("alpha",))]
    return []


def bias_problems(layer: Any) -> list[Problem]:
    """A `bias` given to a layer with `use_bias: false` would never be used: say so, pointing at bias."""
    if not layer.use_bias and "bias" in layer.model_fields_set:
        message = (
            f"the layer has no bias (use_bias is false), but bias is given ({_given(layer.bias)}); "
            "remove bias, or set use_bias: true"
        )
        return [Problem("NS125", message, ("bias",))]
    return []


def _given(value: Any) -> str:
    """A bias as written, shortly: a number, a list's length, or an initializer's name."""
    if isinstance(value, (int, float)):
        return f"{value:g}"
    if isinstance(value, list):
        return f"a list of {len(value)} values"
    init = getattr(value, "init", None)
    return f"the initializer {init}" if init else f"the file {value.file}"


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


ONNX_ACTIVATIONS = {  # the one ONNX operator each activation is exported as; the importer reads them back
    "relu": "Relu",
    "leaky_relu": "LeakyRelu",
    "sigmoid": "Sigmoid",
    "tanh": "Tanh",
    "softmax": "Softmax",
    "relu6": "Clip",  # Clip(0, 6)
    "hard_sigmoid": "HardSigmoid",  # alpha 1/6, beta 1/2: relu6(z + 3)/6
    "hard_swish": "HardSwish",
    "elu": "Elu",
}
"""silu and gelu are written as several nodes (opset 17 has no Silu, and Gelu only from opset 20)."""


def activation_to_onnx(layer: Any, z: str, rank: int, emit: Any) -> str:
    """The layer's activation applied to tensor `z` (of `rank` axes without the batch) as ONNX nodes."""
    activation, name = layer.activation, f"{layer.name}.{layer.activation}"
    if activation == "linear":
        return z
    if activation == "silu":  # z·sigmoid(z)
        return emit.node("Mul", [z, emit.node("Sigmoid", [z], f"{name}.sigmoid")], name)
    if activation == "gelu":  # z·(1 + erf(z/√2))·1/2, as PyTorch's approximate='none'
        root2, one, half = (emit.constant(f"{name}.{key}", np.array(value, emit.dtype)) for key, value in _GELU)
        erf = emit.node("Erf", [emit.node("Div", [z, root2], f"{name}.div")], f"{name}.erf")
        scaled = emit.node("Mul", [z, emit.node("Add", [erf, one], f"{name}.add")], f"{name}.mul")
        return emit.node("Mul", [scaled, half], name)
    inputs, attributes = [z], {}
    if activation in ALPHA_DEFAULTS:
        attributes = {"alpha": alpha_of(layer)}
    elif activation == "softmax":
        attributes = {"axis": -1 if rank == 1 else 1}
    elif activation == "hard_sigmoid":
        attributes = {"alpha": 1 / 6, "beta": 0.5}
    elif activation == "relu6":
        inputs += [
            emit.constant(f"{name}.{key}", np.array(value, emit.dtype)) for key, value in (("min", 0), ("max", 6))
        ]
    return emit.node(ONNX_ACTIVATIONS[activation], inputs, name, **attributes)


_GELU = (("sqrt2", math.sqrt(2)), ("one", 1.0), ("half", 0.5))
