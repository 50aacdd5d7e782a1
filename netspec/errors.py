"""netspec's one exception family and the located problems it carries."""

from __future__ import annotations

from dataclasses import dataclass, replace

# Every error kind has a stable code; a code never changes meaning (docs/errors.md explains each).
CODES: dict[str, str] = {
    # Reading the YAML file itself.
    "NS001": "YAML syntax error",
    "NS002": "YAML tag not allowed",
    "NS003": "key given twice in one mapping",
    "NS004": "document too large or nested too deeply once aliases are expanded",
    "NS005": "spec file cannot be read",
    # Fields of the spec.
    "NS101": "unknown key",
    "NS102": "missing required key",
    "NS103": "wrong type of value",
    "NS104": "number out of range",
    "NS105": "not one of the allowed choices",
    "NS106": "number is not finite",
    "NS107": "format version not supported",
    "NS108": "wrong number of values",
    "NS109": "empty value",
    # Rules that need the whole spec.
    "NS121": "layer name used twice",
    "NS122": "class label used twice",
    "NS123": "output layer size differs from the number of classes",
    "NS124": "softmax on a layer other than the last",
    "NS125": "option that has no effect with the rest of the layer",
    "NS126": "layer does not fit the shape of its input",
    "NS127": "layer input that names no layer",
    "NS128": "layer input listed after the layer that reads it (out of order, or a cycle)",
    "NS129": "layer whose output no layer reads",
    "NS130": "layer given more or fewer inputs than its type reads",
    "NS131": "groups do not divide a convolution's channels or filters",
    "NS132": "block that uses itself, directly or through other blocks",
    "NS133": "blocks nested too deeply, or expanding to too many layers",
    "NS134": "$parameter that the block does not declare",
    # Weights and biases.
    "NS201": "explicit array has the wrong shape",
    "NS202": "weight file not found",
    "NS203": "weight file cannot be read",
    "NS204": "array in a weight file has the wrong shape",
    "NS205": "array in a weight file is not numeric",
    "NS206": "key not found in a .npz weight file",
    "NS207": "weight file path leaves the spec's folder",
    "NS208": "too many parameters",
    "NS209": "array in a weight file holds non-finite numbers",
    "NS210": "weights_file holds arrays for no layer of the spec",
    "NS211": "state dict keys do not match the spec's layers (names: pytorch)",
    "NS212": "PyTorch is not installed (netspec convert)",
    "NS213": "file is not a PyTorch state dict netspec can convert",
    # Inputs given to a network.
    "NS301": "image not found",
    "NS302": "file is not a readable image",
    "NS303": "image is truncated or corrupt",
    "NS304": "image has too many pixels",
    "NS305": "input array has the wrong shape",
    "NS306": "the network's scores are not finite",
    "NS307": "file of samples (.csv, .npy, .npz) cannot be read as numbers",
    # Training and evaluation data.
    "NS401": "no folder for a class",
    "NS402": "a folder that is not a class",
    "NS403": "a class without examples",
    "NS404": "data arrays missing or of the wrong shape",
    "NS405": "labels that are not classes",
    "NS406": "data is neither a folder nor a .npz file",
    # ONNX.
    "NS501": "the onnx package is not installed",
    "NS502": "file is not a readable ONNX model",
    "NS503": "ONNX graph netspec cannot map",
    "NS504": "ONNX external data outside the model's folder",
    "NS505": "import options that do not fit the model",
    # Pictures.
    "NS601": "matplotlib is not installed",
    "NS602": "picture format not supported",
    "NS603": "no such neuron to draw",
}


def size_shown(n: float) -> str:
    """A number of bytes as people read it: '96 B', '12.1 KiB', '37.3 GiB'."""
    if n < 1024:
        return f"{int(n)} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        n /= 1024
        if n < 1024 or unit == "TiB":
            break
    return f"{n:,.1f} {unit}"


def plural(n: int, noun: str) -> str:
    """'1 row', '3 rows': numbers in messages read as English."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def with_article(phrase: str) -> str:
    """The phrase after 'a' or 'an', as it is said: 'a 5×5 kernel', 'an 11×11 kernel', 'an 8×8 input', 'an int'.

    A number takes 'an' when said with a vowel first: 8, 11 and 18 (eighty, eleven thousand, ...).
    """
    digits = ""
    for c in phrase:
        if c.isdigit():
            digits += c
        elif c != "," or not digits:
            break
    if digits:
        leading = digits[: len(digits) % 3 or 3]  # the part said first: 11 of 11,000, 180 of 180,000
        vowel = digits[0] == "8" or leading in ("11", "18")
    else:
        vowel = phrase[:1].lower() in ("a", "e", "i", "o", "u")
    return f"{'an' if vowel else 'a'} {phrase}"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a spec or an input, with where it is.

    `path` is the route to the value inside the spec, e.g. ("layers", 1, "neurons");
    `file`, `line` and `column` (1-based) are filled in when the YAML source is known; `via` says
    which uses of blocks led to a problem inside a block.
    """

    code: str
    message: str
    path: tuple[str | int, ...] = ()
    file: str | None = None
    line: int | None = None
    column: int | None = None
    via: str = ""
    """For a problem inside a block: the uses that led to it, outermost first, each ending in " → "
    (see netspec.blocks); shown before the path, which is then the block definition's."""

    @property
    def dotted_path(self) -> str:
        """The path as users write it: layers[1].neurons."""
        text = ""
        for part in self.path:
            text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
        return text

    def located(self, file: str, line: int | None, column: int | None) -> Problem:
        return replace(self, file=file, line=line, column=column)

    def __str__(self) -> str:
        where = ""
        if self.file is not None:
            where = self.file
            if self.line is not None:
                where += f":{self.line}:{self.column or 1}"
            where += ": "
        path = f"{self.dotted_path}: " if self.path else ""
        return f"{where}{self.code} {self.via}{path}{self.message}"


class NetspecError(Exception):
    """Base of every error netspec raises on purpose: bad specs, weight files, images."""

    def __init__(self, problems: list[Problem] | Problem):
        self.problems = [problems] if isinstance(problems, Problem) else list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class SpecError(NetspecError):
    """A spec (its YAML, fields, whole-network rules or weight files) is invalid."""


class InputError(NetspecError):
    """An input given to a network (an image or an array) cannot be used."""


class DataError(NetspecError):
    """A training or evaluation data set cannot be used as it is."""


class MissingExtra(NetspecError):
    """An optional package this needs (onnx for ONNX, matplotlib for pictures) is not installed; the message
    says what to install."""


class Unlocated(Exception):
    """A problem found where its place in the spec is not known: a layer's shape rule, a weight file's array.

    It carries a code, a message and a path relative to what raised it (a layer field such as
    ("kernel",), or none); whoever knows the place (the builder, the loader) makes it a located
    Problem with `at`. Never shown as it is: it is caught inside netspec.
    """

    def __init__(self, code: str, message: str, path: tuple[str | int, ...] = ()):
        super().__init__(message)
        self.code, self.message, self.path = code, message, path

    def at(self, where: tuple[str | int, ...], message: str | None = None) -> Problem:
        """The problem at `where` (the path of what raised it) and then its own path; `message` rewords it."""
        return Problem(self.code, self.message if message is None else message, where + self.path)
