"""Build a Network from a validated Spec: chain shapes layer by layer, then make every array."""

from __future__ import annotations

from collections.abc import Mapping
from math import prod
from pathlib import Path

import numpy as np

from netspec.errors import Problem, SpecError, Unlocated, size_shown, with_article
from netspec.fields import (
    FileArray,
)
from netspec.graph import input_names
from netspec.initializers import fits_without_drawing, initialize, seed_sequence
from netspec.layers import KINDS
from netspec.layers.windows import shown
from netspec.network import Network
from netspec.node import INPUT, Node
from netspec.spec import Spec
from netspec.weights import ShapeMismatch, read_array, resolve_inside
from netspec.weights_file import misfit, stored_key, target, weights_file_arrays

MAX_VALUES_PER_LAYER = 50_000_000
"""Most values one layer may output for one input (a padding typo could otherwise ask for gigabytes)."""

DEFAULT_MAX_PARAMS = 50_000_000
"""Specs with more parameters are refused before anything is allocated (`--max-params` changes it)."""


def build(
    spec: Spec,
    base_dir: str | Path = ".",
    max_params: int = DEFAULT_MAX_PARAMS,
    arrays: Mapping[str, np.ndarray] | None = None,
) -> Network:
    """Make the executable network a spec describes.

    Args:
        spec: a validated spec.
        base_dir: the folder weight files are read from (the spec's folder).
        max_params: refuse specs with more parameters than this, before allocating.
        arrays: parameter arrays keyed "<layer>.<param>" that replace what the layers say, as the
            arrays of a `weights_file` do, and are checked the same way.

    Raises:
        SpecError: every shape, weight file and size problem found, each with its path.
    """
    nodes = plan(spec)
    params = _param_arrays(spec, nodes, Path(base_dir), max_params, arrays or {}, draw_all=True)
    for node in nodes:
        node.params = params[node.index]
    return Network(spec, nodes)


def check(spec: Spec, base_dir: str | Path = ".", max_params: int = DEFAULT_MAX_PARAMS) -> None:
    """Find every problem `build` would, without making the network (what `netspec validate` needs).

    Initial values that cannot hold a problem are not drawn: a large network is checked in
    the time it takes to read its weight files, and many small specs at the speed of parsing them.

    Raises:
        SpecError: as `build` does.
    """
    _param_arrays(spec, plan(spec), Path(base_dir), max_params, {}, draw_all=False)


def _param_arrays(
    spec: Spec,
    nodes: list[Node],
    base: Path,
    max_params: int,
    arrays: Mapping[str, np.ndarray],
    draw_all: bool,
) -> list[dict[str, np.ndarray]]:
    """Every layer's parameter arrays, in the spec's dtype, or a SpecError with all problems found.

    With `draw_all` false, parameters from a bounded initializer are left out (see `check`).
    """
    _check_outputs(nodes)
    _check_size(nodes, max_params)
    problems: list[Problem] = []
    from_file = weights_file_arrays(spec, nodes, base, problems)
    stored = {**from_file, **_given_arrays(arrays, nodes, problems)}
    dtype = np.dtype(spec.dtype)
    params: list[dict[str, np.ndarray]] = []
    for p in nodes:
        params.append({})
        non_negative = p.kind.non_negative
        for param, shape in p.param_shapes.items():
            array = stored.get((p.name, param))
            if array is None and not draw_all and param not in non_negative:
                if fits_without_drawing(getattr(p.spec, param), dtype):
                    continue
            # An array from the weights file is said as such, and its problems point at weights_file.
            in_file = (p.name, param) in from_file and array is from_file[(p.name, param)]
            if in_file:
                label = f"{param} ({spec.weights.file} holds it as {stored_key(spec.weights.names, p.name, param)})"
            else:
                label = param
            where = ("weights_file",) if in_file else ("layers", p.index, param)
            try:
                if array is None:
                    array = _param_array(spec, p, param, shape, base)
                if param in non_negative and (array < 0).any():
                    raise Unlocated("NS104", f"{label} holds negative values; a variance is never below 0")
                params[-1][param] = _cast(array, dtype, label)
            except Unlocated as err:
                problems.append(err.at(where, f"layer {p.name!r}: {err.message}"))
            except MemoryError:  # allowed by a raised --max-params, but more than this machine has
                size = size_shown(prod(shape) * max(dtype.itemsize, 8))  # drawn in float64, then cast
                message = f"layer {p.name!r}: {param} needs {size} and this machine cannot allocate it; make it smaller"
                problems.append(Problem("NS208", message, ("layers", p.index, param)))
    if problems:
        raise SpecError(problems)
    return params


def _cast(array: np.ndarray, dtype: np.dtype, param: str) -> np.ndarray:
    """`array` in the spec's dtype, refusing values that do not fit in it (they would become inf)."""
    with np.errstate(over="ignore"):
        cast = array.astype(dtype)
    if not np.isfinite(cast).all():
        largest = np.finfo(dtype).max
        wider = " or dtype: float64" if dtype != np.float64 else ""
        message = f"{param} holds values beyond what {dtype} can hold (about ±{largest:.3g}); use smaller values"
        raise Unlocated("NS106", message + wider)
    return cast


def plan(spec: Spec) -> list[Node]:
    """Every layer as a node without arrays: what it reads, and the shapes of its inputs, output and parameters.

    Raises:
        SpecError: the first layer that does not fit its input, said in the spec's own terms
            (the shapes after it cannot be known), or an output that is not one score per class.
    """
    shapes = {INPUT: spec.input.shape}
    nodes = []
    for index, (layer, reads) in enumerate(zip(spec.layers, input_names(spec.layers))):
        kind = KINDS[layer.type]
        input_shapes = [shapes[name] for name in reads]
        shape, source = input_shapes[0], _origin(reads[0])
        # Where a layer reading vectors (dense) may read an image: the input image itself is read
        # flattened (issue-2 specs do that); a conv or pool output is not reshaped silently.
        # Decided here, once: the node records it, and export and pictures read the record.
        flattened = kind.reads_flat and len(shape) > 1
        try:
            if flattened and reads[0] != INPUT:
                got = with_article(shown(shape))
                raise Unlocated(
                    "NS126", f"gets {got} output from {{source}}; add a layer {{{{type: flatten}}}} before it"
                )
            out = kind.output_shape(layer, input_shapes)
        except Unlocated as err:
            given = "input" if reads[0] == INPUT else f"input from {source}"  # not 'the 8×8 input from the input'
            sources = ["the input" if name == INPUT else repr(name) for name in reads]
            message = f"layer {layer.name}: {err.message.format(source=source, input=given, sources=sources)}"
            raise SpecError(err.at(("layers", index), message)) from None
        nodes.append(Node(index, layer, reads, input_shapes, out, kind.param_shapes(layer, input_shapes), flattened))
        shapes[layer.name] = shape = out
    if shape != (len(spec.classes),):
        last = spec.layers[-1]
        ends = f"an output of {shown(shape)}" if len(shape) == 1 else f"{with_article(shown(shape))} output"
        message = (
            f"the network ends with {ends} from {last.name}, but needs one score per class "
            f"({len(spec.classes)}); end with "
            + ("a flatten (or a global_avgpool) and " if len(shape) == 3 else "")
            + f"a dense layer of {len(spec.classes)} neurons"
        )
        raise SpecError(Problem("NS123", message, ("layers", len(spec.layers) - 1)))
    return nodes


def _origin(name: str) -> str:
    """How a message names where an input comes from: 'the input', or the layer's name."""
    return "the input" if name == INPUT else name


def _check_outputs(nodes: list[Node]) -> None:
    """Refuse a layer whose output alone would take gigabytes per input (a padding typo, say).

    A layer with more parameters than outputs (a dense layer) is left to the parameter limit,
    which names the larger of the two.
    """
    for p in nodes:
        if prod(p.output_shape) > max(MAX_VALUES_PER_LAYER, p.param_count):
            message = (
                f"layer {p.name}: its output would hold {prod(p.output_shape):,} values per input "
                f"({shown(p.output_shape)}), more than {MAX_VALUES_PER_LAYER:,}; check its size, padding and stride"
            )
            raise SpecError(Problem("NS126", message, ("layers", p.index)))


def _check_size(nodes: list[Node], max_params: int) -> None:
    total = sum(p.param_count for p in nodes)
    if total > max_params:
        largest = max(nodes, key=lambda p: p.param_count)
        raise SpecError(
            Problem(
                "NS208",
                f"the network has {total:,} parameters, more than the limit of {max_params:,} "
                f"(layer {largest.name!r} alone has {largest.param_count:,}); "
                "make layers smaller or raise the limit (--max-params, or max_params= in Python)",
                ("layers", largest.index),
            )
        )


def _param_array(spec: Spec, p: Node, param: str, shape: tuple[int, ...], base: Path) -> np.ndarray:
    source = getattr(p.spec, param)
    if isinstance(source, (int, float)):
        return np.full(shape, float(source))
    if isinstance(source, list):
        array = _explicit_array(source, param)
        if array.shape != shape:
            raise Unlocated("NS201", misfit(p, param, param, array.shape))
        return array
    if isinstance(source, FileArray):
        path = resolve_inside(base, source.file)
        try:
            return read_array(path, source.key, shape)
        except ShapeMismatch as err:
            raise Unlocated("NS204", misfit(p, param, err.label, err.shape)) from None
    fan_in, fan_out = p.kind.fans(p.spec, p.input_shapes)
    entropy = seed_sequence(spec.seed, getattr(p.spec, "seed", None), getattr(source, "seed", None), p.name, param)
    try:
        return initialize(source, shape, fan_in, fan_out, entropy)
    except OverflowError:
        raise Unlocated("NS104", f"{param}: the initializer's range is too wide to draw numbers from") from None


def _explicit_array(values: list, param: str) -> np.ndarray:
    try:
        return np.asarray(values, dtype=np.float64)
    except ValueError:
        if values and isinstance(values[0], list) and values[0] and isinstance(values[0][0], list):
            raise Unlocated("NS201", _uneven_nesting(values, param)) from None
        lengths = [len(row) for row in values]
        longest = max(range(len(lengths)), key=lengths.__getitem__)
        shortest = min(range(len(lengths)), key=lengths.__getitem__)
        raise Unlocated(
            "NS201",
            f"rows of {param} differ in length (row {longest} has {lengths[longest]} values, "
            f"row {shortest} has {lengths[shortest]}); every row needs one value per input",
        ) from None


def _uneven_nesting(values: list, param: str) -> str:
    """Where two lists at the same depth of a nested array (a convolution's kernels) differ in length."""
    level = [((), values)]
    while level:
        first_at, first = level[0]
        for at, items in level[1:]:
            if len(items) != len(first):
                return (
                    f"lists of {param} differ in length ({_indexed(param, first_at)} has {len(first)} values, "
                    f"{_indexed(param, at)} has {len(items)}); every list at one depth needs the same length"
                )
        level = [((*at, i), item) for at, items in level for i, item in enumerate(items) if isinstance(item, list)]
    return f"{param} is not a regular nested list"  # pragma: no cover - NumPy refused it for another reason


def _indexed(param: str, at: tuple[int, ...]) -> str:
    return param + "".join(f"[{i}]" for i in at)


def _given_arrays(
    arrays: Mapping[str, np.ndarray], nodes: list[Node], problems: list[Problem]
) -> dict[tuple[str, str], np.ndarray]:
    """The arrays passed to build, keyed by (layer, parameter), once their shapes and values are checked."""
    checked = {}
    by_name = {q.name: q for q in nodes}
    for key, given in arrays.items():
        p, param = target(key, by_name)
        if p is None:
            problems.append(Problem("NS210", f"array {key!r} matches no layer parameter"))
            continue
        layer_name = p.name
        array, shape = np.asarray(given, dtype=np.float64), p.param_shapes[param]
        where = ("layers", p.index, param)
        if array.shape != shape:
            problems.append(Problem("NS204", f"layer {layer_name!r}: {misfit(p, param, key, array.shape)}", where))
        elif not np.isfinite(array).all():
            problems.append(Problem("NS209", f"layer {layer_name!r}: {key} holds NaN or infinite values", where))
        else:
            checked[(layer_name, param)] = array
    return checked
