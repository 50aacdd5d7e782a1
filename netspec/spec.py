"""The spec: the whole network description as one pydantic model, with the rules that span layers."""

import functools
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from netspec import graph
from netspec.blocks import expand_data, uses_blocks
from netspec.errors import Problem, SpecError, Unlocated
from netspec.fields import Count, FileArray, Seed, SpecModel, rule_error
from netspec.inputs import Input
from netspec.labels import read_labels
from netspec.layers import KINDS, Layer
from netspec.layers.kind import layer_union
from netspec.weights import resolve_inside

FORMAT_VERSION = 1
"""The spec format version this release reads."""


class WeightsFile(SpecModel):
    """A weight file beside the spec, and the names its arrays are stored under."""

    file: str = Field(min_length=1)
    """Path of the .npz or .safetensors file, relative to the spec's folder."""
    names: Literal["netspec", "pytorch"] = "netspec"
    """netspec: arrays named "<layer>.weights", "<layer>.bias", … (any of them; the rest come from the layers);
    pytorch: a PyTorch state dict's names ("<layer>.weight", "<layer>.running_mean", …), each matched to a
    layer parameter and every parameter given, as load_state_dict(strict=True) does."""


def _weights_file_form(value: Any) -> str | None:
    if isinstance(value, str):
        return "file"
    if isinstance(value, (dict, WeightsFile)):
        return "mapping"
    return None


WeightsFileField = Annotated[
    Annotated[str, Field(min_length=1), Tag("file")] | Annotated[WeightsFile, Tag("mapping")],
    Discriminator(
        _weights_file_form,
        custom_error_type="NS103",
        custom_error_message="must be a file name or a mapping {file: ..., names: netspec or pytorch}",
    ),
]


def _label(value: Any) -> Any:
    # Digits as labels ("0".."9") are natural to write unquoted; bools are never labels.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _printable(label: str) -> str:
    # A newline or tab in a label would break every table and line netspec prints.
    if not label.isprintable():
        raise PydanticCustomError(
            "NS103", "class labels must be printable text on one line, got {label}", {"label": repr(label)}
        )
    return label


ClassLabel = Annotated[
    str, BeforeValidator(_label, json_schema_input_type=str | int), Field(min_length=1), AfterValidator(_printable)
]


class ClassesFile(SpecModel):
    """Class labels read from a text file beside the spec: `classes: {file: imagenet-classes.txt}`."""

    file: str = Field(min_length=1)
    """A UTF-8 text file in the spec's folder (or below it), one label a line, in the order of the scores."""


def _classes_form(value: Any) -> str | None:
    if isinstance(value, list):
        return "list"
    if isinstance(value, (dict, ClassesFile)):
        return "file"
    return None


Classes = Annotated[
    Annotated[list[ClassLabel], Field(min_length=1), Tag("list")] | Annotated[ClassesFile, Tag("file")],
    Discriminator(
        _classes_form,
        custom_error_type="NS103",
        custom_error_message="must be a list of labels, or {file: labels.txt} naming a file of them, one a line",
    ),
]


def _read_classes(classes: ClassesFile, base_dir: Path) -> list[str]:
    """The labels of a classes file, read from `base_dir` under the path rules of weight files.

    Raises:
        SpecError: the path (at classes.file, to be located in the spec), or the file's labels (at their lines).
    """
    try:
        path = resolve_inside(base_dir, classes.file, files="the classes file")
    except Unlocated as err:
        raise SpecError(
            Problem(err.code, _classes_path_problem(err, classes.file, base_dir), ("classes", "file"))
        ) from None
    try:
        return read_labels(path, shown=str(base_dir / classes.file))
    except OSError as err:
        message = f"cannot read the classes file {classes.file!r}: {err.strerror}"
        raise SpecError(Problem("NS203", message, ("classes", "file"))) from None


def _classes_path_problem(err: Unlocated, name: str, base_dir: Path) -> str:
    """resolve_inside's message, said of a classes file rather than of a weight file."""
    if err.code == "NS202":
        return f"classes file {name!r} not found in {base_dir.resolve()}"
    path = base_dir / name
    if err.code == "NS203" and path.exists() and not path.is_file():
        kind = "a folder" if path.is_dir() else "not a plain file (a pipe or a device)"
        return f"{name!r} is {kind}; give a text file of labels, one a line"
    return err.message


class Training(SpecModel):
    """How `netspec train` learns the weights; command-line flags override each value."""

    optimizer: Literal["sgd", "adam"] = "adam"
    """sgd (with momentum) or adam."""
    learning_rate: float | None = Field(default=None, gt=0)
    """Step size (default: 0.001 for adam, 0.01 for sgd)."""
    momentum: float = Field(default=0.9, ge=0, lt=1)
    """Momentum of sgd (0 for plain gradient descent)."""
    weight_decay: float = Field(default=0.0, ge=0)
    """L2 penalty: weight_decay · w is added to each weight's gradient (biases are not decayed)."""
    epochs: Count = 20
    """Passes over the training data."""
    batch_size: Count = 32
    """Samples per gradient step."""
    val_split: float = Field(default=0.1, ge=0, lt=1)
    """Fraction of the data held out to pick the best epoch (0: keep the last epoch)."""
    patience: int | None = Field(default=None, ge=1)
    """Stop after this many epochs without a better validation accuracy (default: never stop early)."""
    seed: Seed | None = None
    """Seed of the shuffling and the validation split (default: the spec's seed)."""

    @model_validator(mode="after")
    def _no_idle_options(self) -> "Training":
        problems = []
        if "momentum" in self.model_fields_set and self.optimizer != "sgd":
            # Said so that it reads right for the key in a spec and for --momentum on the command line.
            message = f"only sgd takes momentum, but the optimizer is {self.optimizer}; leave momentum out or use sgd"
            problems.append(Problem("NS125", message, ("momentum",)))
        if self.patience is not None and self.val_split == 0:
            message = "patience counts epochs without a better validation accuracy; it needs val_split above 0"
            problems.append(Problem("NS125", message, ("patience",)))
        if problems:
            raise rule_error(problems)
        return self


class Block(SpecModel):
    """A named group of layers with parameters, used as one layer: `{name: layer1, block: basic, repeat: 2}`."""

    params: dict[str, Any] = {}
    """The block's parameters and their defaults; ~ (null) makes a parameter required at every use."""
    layers: list[dict[str, Any]] = Field(min_length=1)
    """The block's layers, in order: `$param` stands for a parameter's value, `input` for what the block reads;
    its last layer is its output."""


class Spec(SpecModel):
    """A network: its input, its layers in order, its class labels and its initial parameters."""

    netspec: int
    """Format version of the spec; this release reads 1."""
    name: str = "network"
    """Name of the network."""
    description: str = ""
    """What the network does, for people."""
    classes: Classes
    """Output labels, in output order: the output layer has one neuron per class; or {file: labels.txt}."""
    input: Input
    """What the network reads."""
    seed: Seed = 0
    """Makes every initializer reproducible; a layer or an initializer may set its own."""
    dtype: Literal["float32", "float64"] = "float32"
    """Floating-point type of parameters and computation."""
    weights_file: WeightsFileField | None = None
    """A .npz or .safetensors file beside the spec whose arrays replace what the layers say: its name (arrays
    named "<layer>.weights", "<layer>.bias", …), or {file: ..., names: pytorch} for a PyTorch state dict."""
    blocks: dict[str, Block] | None = None
    """Named blocks of layers, used in `layers` by a layer with `block:` instead of `type:` (expanded as read)."""
    layers: list[Layer] = Field(min_length=1)
    """The layers, from the input to the output; each reads the layer before it, or the layers its `inputs` names."""
    training: Training | None = None
    """How `netspec train` learns the weights."""

    _origins: tuple | None = PrivateAttr(default=None)

    @property
    def origins(self) -> tuple | None:
        """Where each layer was written, for a spec read from a file with blocks (None otherwise).

        One `netspec.blocks.Origin` per layer, in order: `origin.path` is its definition
        (("layers", 5), or ("blocks", "basic", "layers", 0) inside a block) and `origin.uses` the
        chain of uses that made it, outermost first (each a `netspec.blocks.Use` with the use's
        `path`, `block`, `copy` name and `line`); empty for a layer written at top level.
        """
        return self._origins

    @model_validator(mode="before")
    @classmethod
    def _blocks_expanded(cls, data: Any) -> Any:
        # A file's blocks are expanded as it is read, with positions (netspec.loader.read_spec); a spec
        # made in code is expanded here, its problems said by path.
        if not uses_blocks(data):
            return data
        try:
            return expand_data(data)
        except SpecError as err:
            raise rule_error(err.problems) from None

    @field_validator("netspec")
    @classmethod
    def _known_version(cls, version: int) -> int:
        if version != FORMAT_VERSION:
            newer = (
                " is newer than this netspec reads; upgrade netspec or" if version > FORMAT_VERSION else " is unknown;"
            )
            raise PydanticCustomError(
                "NS107",
                "format version {version}" + newer + " write 'netspec: {current}'",
                {"version": version, "current": FORMAT_VERSION},
            )
        return version

    _classes_file: str | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _whole_network(self, info: ValidationInfo) -> "Spec":
        if isinstance(self.classes, ClassesFile):
            # Read here, so that every reader of spec.classes (run, eval, train, export, summary) sees the
            # labels. The folder is the spec's (netspec.load passes it), else the current one, as for build.
            base_dir = Path((info.context or {}).get("base_dir", "."))
            self._classes_file = self.classes.file
            self.classes = _read_classes(self.classes, base_dir)
        # Copies, so that layer objects passed in by the caller are never changed.
        self.layers = [
            layer if layer.name is not None else layer.model_copy(update={"name": f"{layer.type}_{index}"})
            for index, layer in enumerate(self.layers)
        ]
        problems = list(_network_problems(self))
        if problems:
            raise rule_error(problems)
        return self

    @property
    def weights(self) -> WeightsFile | None:
        """`weights_file` as a mapping, whichever form it was written in."""
        if isinstance(self.weights_file, str):
            return WeightsFile(file=self.weights_file)
        return self.weights_file

    @property
    def classes_file(self) -> str | None:
        """The file the labels were read from (`classes: {file: ...}`), as written; None for a list."""
        return self._classes_file

    def array_files(self) -> list[str]:
        """The files the spec reads arrays from (`weights_file` and every `{file: ...}`), as written."""
        files = [self.weights.file] if self.weights else []
        for layer in self.layers:
            files += [value.file for value in vars(layer).values() if isinstance(value, FileArray)]
        return files


def _network_problems(spec: Spec):
    first_use: dict[str, int] = {}
    for index, layer in enumerate(spec.layers):
        if layer.name in first_use:
            yield Problem(
                "NS121",
                f"layer name {layer.name!r} is already used by layers[{first_use[layer.name]}]; "
                "give each layer its own name",
                ("layers", index, "name"),
            )
        first_use.setdefault(layer.name, index)
    yield from graph.problems(spec.layers)
    seen: dict[str, int] = {}
    for index, label in enumerate(spec.classes):
        if label in seen:
            yield Problem(
                "NS122",
                f"class label {label!r} is listed twice (also classes[{seen[label]}]); keep one",
                ("classes", index),
            )
        seen.setdefault(label, index)
    last = len(spec.layers) - 1
    output = spec.layers[last]
    if getattr(output, "neurons", len(spec.classes)) != len(spec.classes):
        yield Problem(
            "NS123",
            f"the output layer has {output.neurons} neurons but there are {len(spec.classes)} classes; "
            "give the last layer one neuron per class",
            ("layers", last, "neurons"),
        )
    for index, layer in enumerate(spec.layers[:last]):
        if getattr(layer, "activation", None) == "softmax":
            yield Problem(
                "NS124",
                f"softmax is only for the output layer, but layer {layer.name!r} is not last; "
                "use relu, tanh or sigmoid here",
                ("layers", index, "activation"),
            )


def model_for(data: Any) -> type[Spec]:
    """The Spec model to validate `data` with: one that knows only the layer types it uses.

    Building pydantic's validator for every layer type takes longer than reading a small spec;
    a model for just the types a spec names validates it the same way, and starts faster. Anything
    unusual (an unknown or missing type) goes to the full model, whose messages list every type.
    """
    layers = data.get("layers") if isinstance(data, dict) else None
    if (
        isinstance(layers, list)
        and layers
        and all(
            isinstance(layer, dict) and isinstance(layer.get("type"), str) and layer["type"] in KINDS
            for layer in layers
        )
    ):
        return _narrow(tuple(sorted({layer["type"] for layer in layers})))
    return Spec


@functools.cache
def _narrow(types: tuple[str, ...]) -> type[Spec]:
    layer = layer_union({tag: KINDS[tag] for tag in types})
    name = "Spec__" + "__".join(types)  # a name of this module's (see __getattr__), so that specs pickle
    return create_model(
        name,
        __base__=Spec,
        __module__=__name__,
        layers=(list[layer], Field(min_length=1)),
    )


def __getattr__(name: str) -> Any:
    # Unpickling a spec in another process (a Dask worker, say) asks this module for its model by name.
    types = tuple(name.split("__")[1:]) if name.startswith("Spec__") else ()
    if types and set(types) <= set(KINDS):
        return _narrow(types)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
