"""The value types a spec is made of: the strict model base and the forms of weights and biases."""

import ast
import functools
import inspect
import math
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag, model_validator
from pydantic_core import PydanticCustomError

from netspec.errors import Problem, with_article


@functools.cache
def _module_tree(module_name: str) -> ast.Module | None:
    module = sys.modules.get(module_name)
    path = getattr(module, "__file__", None)
    try:
        return ast.parse(Path(path).read_text(encoding="utf-8")) if path else None
    except (OSError, SyntaxError):
        return None


@functools.cache
def field_descriptions(model: type[BaseModel]) -> dict[str, str]:
    """{field: description} of a spec model: its fields' own, else the docstring written under each.

    The docstrings are read from the source when first asked for (a missing key's hint, the JSON
    Schema), not when the models are defined: parsing the modules at import would slow every start.
    """
    found: dict[str, str] = {}
    for cls in reversed(model.__mro__):  # a subclass's docstrings (a narrow Spec's, say) win
        if issubclass(cls, SpecModel):
            found.update(_attribute_docstrings(cls))
    found.update({name: field.description for name, field in model.model_fields.items() if field.description})
    return {name: text for name, text in found.items() if name in model.model_fields}


def _attribute_docstrings(cls: type) -> dict[str, str]:
    """{field: docstring} for the string literals written under annotated fields in a class body."""
    tree = _module_tree(cls.__module__)
    body = (
        next((n.body for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == cls.__name__), [])
        if tree
        else []
    )
    found = {}
    for field, after in zip(body, body[1:]):
        if isinstance(field, ast.AnnAssign) and isinstance(field.target, ast.Name) and isinstance(after, ast.Expr):
            if isinstance(after.value, ast.Constant) and isinstance(after.value.value, str):
                found[field.target.id] = inspect.cleandoc(after.value.value)
    return found


def rule_error(problems: list[Problem]) -> PydanticCustomError:
    """One pydantic error carrying netspec problems whose paths are relative to the model raising it.

    Rules that involve several fields raise it from a model validator, so that each problem
    points at the field concerned rather than at the mapping, and all of them are reported.
    """
    summary = "; ".join(p.message for p in problems)
    return PydanticCustomError("spec_rules", "{summary}", {"summary": summary, "problems": problems})


class SpecModel(BaseModel):
    """Base of every spec model: unknown keys are errors, and no value is silently converted.

    Strict mode is what keeps `neurons: yes` or `neurons: "4"` from becoming numbers.
    """

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        allow_inf_nan=False,
        validate_default=False,
        # Build each model's validator on first use, not at import: only the spec's own is needed to
        # read a spec, and building every nested model's too would double netspec's start-up time.
        defer_build=True,
    )

    @model_validator(mode="before")
    @classmethod
    def _plain_numbers(cls, data: Any) -> Any:
        # Specs built in code may hold NumPy scalars (np.int64(4)); strict mode takes only Python's.
        if isinstance(data, dict) and any(isinstance(v, np.generic) for v in data.values()):
            return {k: v.item() if isinstance(v, np.generic) else v for k, v in data.items()}
        return data


Count = Annotated[int, Field(ge=1, le=2**31 - 1)]
"""A size such as neurons or width: at least 1, and small enough for an array axis."""

Seed = Annotated[int, Field(ge=0)]
"""A seed of NumPy's random generators."""


class _SeededInit(SpecModel):
    seed: Seed | None = None
    """Seed for this initializer alone; by default it follows the spec's and the layer's seed."""


class Zeros(SpecModel):
    """Every value 0."""

    init: Literal["zeros"]
    """Initializer name."""


class Ones(SpecModel):
    """Every value 1."""

    init: Literal["ones"]
    """Initializer name."""


class Uniform(_SeededInit):
    """Uniform between `low` and `high`."""

    init: Literal["uniform"]
    """Initializer name."""
    low: float = -0.05
    """Smallest value."""
    high: float = 0.05
    """Largest value (must be above `low`)."""

    @model_validator(mode="after")
    def _ordered(self) -> "Uniform":
        if self.high <= self.low:
            raise rule_error(
                [Problem("NS104", f"must be above low, got low={self.low:g} and high={self.high:g}", ("high",))]
            )
        return self


class Normal(_SeededInit):
    """Normal (Gaussian) with the given mean and standard deviation."""

    init: Literal["normal"]
    """Initializer name."""
    mean: float = 0.0
    """Mean of the distribution."""
    std: float = Field(default=0.05, gt=0)
    """Standard deviation (above 0)."""


class GlorotUniform(_SeededInit):
    """Uniform in ±sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio; Keras' default)."""

    init: Literal["glorot_uniform"]
    """Initializer name."""


class GlorotNormal(_SeededInit):
    """Normal with std sqrt(2 / (fan_in + fan_out))."""

    init: Literal["glorot_normal"]
    """Initializer name."""


class HeUniform(_SeededInit):
    """Uniform in ±sqrt(6 / fan_in) (He et al.; suits relu)."""

    init: Literal["he_uniform"]
    """Initializer name."""


class HeNormal(_SeededInit):
    """Normal with std sqrt(2 / fan_in)."""

    init: Literal["he_normal"]
    """Initializer name."""


class LecunNormal(_SeededInit):
    """Normal with std sqrt(1 / fan_in)."""

    init: Literal["lecun_normal"]
    """Initializer name."""


Initializer = Annotated[
    Zeros | Ones | Uniform | Normal | GlorotUniform | GlorotNormal | HeUniform | HeNormal | LecunNormal,
    Field(discriminator="init"),
]
"""An initializer by name, written `he_uniform` or as a mapping `{init: normal, std: 0.1}`."""

InitializerName = Literal[
    "zeros", "ones", "uniform", "normal", "glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_normal"
]
"""The names an initializer may be written with (the `init` of each model above)."""


class FileArray(SpecModel):
    """An array read from a .npy or .npz file beside the spec."""

    file: str = Field(min_length=1)
    """Path of the .npy or .npz file, relative to the spec's folder."""
    key: str | None = None
    """Name of the array inside a .npz file."""


def _form_of(value: Any) -> str | None:
    """Which form a weights or bias value is written in (None: no form fits)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "name"
    if isinstance(value, (list, np.ndarray)):
        return "array"
    if isinstance(value, FileArray) or (isinstance(value, dict) and "file" in value):
        return "file"
    if isinstance(value, (dict, BaseModel)):
        return "init"
    return None


def _name_to_init(value: Any) -> Any:
    return {"init": value} if isinstance(value, str) else value


def _array_to_list(value: Any) -> Any:
    return value.tolist() if isinstance(value, np.ndarray) else value


def _numbers(ndim: int):
    """A check of an explicit array that reports all its bad values as one error, not one each.

    A list of a million bad numbers would otherwise give a million errors (and seconds, and a
    message of hundreds of megabytes); this says how many there are and where the first one is.
    """

    def check(value: Any) -> Any:
        bad, first = 0, None
        stack = [(value, (), 0)]
        while stack:
            item, where, depth = stack.pop()
            if depth < ndim:
                if not isinstance(item, list):
                    message = f"must be {_NESTING[ndim]}, got {with_article(type(item).__name__)} here"
                    raise rule_error([Problem("NS103", message, where)])
                stack.extend((child, (*where, i), depth + 1) for i, child in reversed(list(enumerate(item))))
            elif not _is_finite_number(item):
                bad += 1
                first = first or (where, item)
        if bad:
            where, item = first
            finite = isinstance(item, float) and not isinstance(item, bool)
            got = f"a number with {len(str(abs(item)))} digits" if _is_huge_int(item) else repr(item)
            message = f"must be a finite number, got {got}" if finite else f"must be a number, got {got}"
            if bad > 1:
                message += f"; {bad - 1:,} more value(s) in this array are not finite numbers either"
            raise rule_error([Problem("NS106" if finite else "NS103", message, where)])
        return value

    return check


def _is_huge_int(item: Any) -> bool:
    """An integer beyond any float (YAML integers have no limit); validation.show words it the same way."""
    return isinstance(item, int) and not isinstance(item, bool) and abs(item) > 10**30 and not _fits_float(item)


def _fits_float(item: int) -> bool:
    try:
        float(item)
    except OverflowError:
        return False
    return True


def _is_finite_number(item: Any) -> bool:
    if isinstance(item, bool) or not isinstance(item, (int, float)):
        return False
    return isinstance(item, int) and _fits_float(item) or isinstance(item, float) and math.isfinite(item)


_NESTING = {1: "a list of numbers", 2: "a list of rows of numbers", 4: "a list of lists of lists of lists of numbers"}


PARAM_FORMS = "a number, an initializer name, a list of numbers, or a mapping with 'init' or 'file'"


@functools.cache  # one type per rank, shared by every layer: pydantic builds its validator once
def param_source(ndim: int) -> Any:
    """The type of a parameter whose explicit form is an `ndim`-dimensional list of numbers."""
    array: Any = float
    for _ in range(ndim):
        array = list[array]
    forms = (
        Annotated[float, Tag("number")]
        | Annotated[Initializer, BeforeValidator(_name_to_init, json_schema_input_type=InitializerName), Tag("name")]
        | Annotated[array, BeforeValidator(_numbers(ndim)), BeforeValidator(_array_to_list), Tag("array")]
        | Annotated[Initializer, Tag("init")]
        | Annotated[FileArray, Tag("file")]
    )
    return Annotated[
        forms,
        Discriminator(
            _form_of,
            custom_error_type="NS103",
            custom_error_message=f"must be {PARAM_FORMS}",
        ),
    ]
