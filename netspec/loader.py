"""Read a spec file: YAML with positions → validated Spec → built Network, errors located in the file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pydantic import ValidationError

from netspec.blocks import expand
from netspec.builder import DEFAULT_MAX_PARAMS, build
from netspec.builder import check as check_spec
from netspec.errors import Problem, SpecError
from netspec.folders import IMAGE_SUFFIXES
from netspec.network import Network
from netspec.spec import Spec, model_for
from netspec.validation import problems_from, show
from netspec.yaml_source import Source, read_yaml

# Problems about a key itself point at the key, not at its value.
_KEY_CODES = {"NS101"}

T = TypeVar("T")


def read_text(path: Path) -> str:
    """A spec file's text, or an NS005 saying why it cannot be read (missing, not UTF-8, an image)."""
    name = str(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(Problem("NS005", "spec file not found", file=name)) from None
    except UnicodeDecodeError as err:
        if path.suffix.lower() in IMAGE_SUFFIXES:
            hint = "it looks like an image; the spec comes first: netspec run SPEC IMAGE..."
            raise SpecError(Problem("NS005", hint, file=name)) from None
        # Placed where the first byte that is not UTF-8 stands, as an editor counts lines and columns.
        before = err.object[: err.start].decode("utf-8")
        line, column = before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1
        message = f"spec file is not UTF-8 text (byte 0x{err.object[err.start]:02x} here); save it as UTF-8"
        raise SpecError(Problem("NS005", message).located(name, line, column)) from None
    except OSError as err:
        raise SpecError(Problem("NS005", f"cannot read the spec file: {err.strerror}", file=name)) from None


def read_spec(path: str | Path) -> tuple[Spec, Source]:
    """Parse and validate a spec file; its blocks are expanded first (netspec.blocks).

    The source returned locates problems of the spec in the file; for a spec with blocks it is a
    netspec.blocks.ExpandedSource, and `spec.origins` says where each layer was written.

    Raises:
        SpecError: every problem in the file, each with its line and column.
    """
    path = Path(path)
    name = str(path)
    text = read_text(path)
    source = read_yaml(text, name)
    if not isinstance(source.data, dict):
        got = "an empty file" if source.data is None and not text.strip() else show(source.data)
        raise SpecError(
            source.locate(Problem("NS103", f"a spec is a mapping of keys (netspec, classes, input, layers), got {got}"))
        )
    if not source.data.keys() & {"netspec", "classes", "input", "layers"}:
        raise SpecError(
            source.locate(
                Problem("NS102", "not a netspec spec: it has none of the keys netspec, classes, input, layers")
            )
        )
    blocks = _block_names(source.data)
    expanded = expand(source)  # blocks become the layers they stand for, before anything else reads them
    data = source.data
    if expanded is not None:
        source, data = expanded, expanded.flat
    model = model_for(data)
    try:
        # The folder is where `classes: {file: ...}` is read from, as weight files are.
        spec = model.model_validate(data, context={"base_dir": path.parent})
    except ValidationError as err:
        raise located(source, problems_from(err, model, blocks)) from None
    except SpecError as err:  # the classes file: its path is in the spec, its labels' problems in the file
        raise located(source, err.problems) from None
    if expanded is not None:
        spec._origins = tuple(expanded.origins)
    return spec, source


def _block_names(data: dict) -> list[str]:
    """The names under the spec's `blocks:` key, as written (none if it is not a mapping)."""
    blocks = data.get("blocks")
    return [str(name) for name in blocks] if isinstance(blocks, dict) else []


def read_checked(path: str | Path, max_params: int = DEFAULT_MAX_PARAMS) -> Spec:
    """Read a spec file and find every problem `load` would, without making the network.

    Raises:
        SpecError: every problem found, each with the file, line and column.
    """
    spec, source = read_spec(path)
    _in_file(source, lambda: check_spec(spec, base_dir=Path(path).parent, max_params=max_params))
    return spec


def load(path: str | Path, max_params: int = DEFAULT_MAX_PARAMS) -> Network:
    """Read, validate and build the network a spec file describes.

    Args:
        path: the spec's YAML file; weight files are read from its folder.
        max_params: refuse specs with more parameters than this.

    Raises:
        SpecError: every problem found, each with the file, line and column.
    """
    spec, source = read_spec(path)
    return _in_file(source, lambda: build(spec, base_dir=Path(path).parent, max_params=max_params))


INLINE_NUMBERS_WARNED = 10_000
"""More numbers than this written in a spec's YAML draw a warning: a .npy or .npz reads far faster."""


def check(path: str | Path, max_params: int = DEFAULT_MAX_PARAMS, warnings: list[str] | None = None) -> list[Problem]:
    """Every problem in a spec file (an empty list when it is valid).

    Args:
        warnings: if given, advice that is not a problem is appended to it (many inline numbers).
    """
    try:
        spec, source = read_spec(path)
    except SpecError as err:
        return err.problems
    if warnings is not None:
        count = inline_numbers(source.data.get("layers"))
        if count > INLINE_NUMBERS_WARNED:
            warnings.append(
                f"{path}: warning: {count:,} numbers are written in the YAML, which reads them slowly; "
                "save the arrays with numpy.save and write {file: name.npy} instead"
            )
    try:
        _in_file(source, lambda: check_spec(spec, base_dir=Path(path).parent, max_params=max_params))
    except SpecError as err:
        return err.problems
    return []


def inline_numbers(value) -> int:
    """How many numbers sit in lists inside `value` (explicit weights, biases and the like)."""
    if isinstance(value, list):
        return sum(1 if isinstance(item, (int, float)) else inline_numbers(item) for item in value)
    if isinstance(value, dict):
        return sum(inline_numbers(item) for item in value.values())
    return 0


def _in_file(source: Source, work: Callable[[], T]) -> T:
    """What `work` (checking or building the spec) gives, or its problems located in the spec's file."""
    try:
        return work()
    except SpecError as err:
        raise located(source, err.problems) from None


def located(source: Source, problems: list[Problem]) -> SpecError:
    located = [p if p.file else source.locate(p, key=p.code in _KEY_CODES) for p in problems]
    # A mistake in a block used many times is one mistake: shown once, with the first use that shows it.
    once: dict[tuple, Problem] = {}
    for problem in located:
        once.setdefault((problem.file, problem.line, problem.column, problem.code, problem.message), problem)
    located = sorted(once.values(), key=lambda p: (p.line or 0, p.column or 0))
    return SpecError(located)
