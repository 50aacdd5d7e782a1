"""Bind the arrays of a spec's `weights_file` to layer parameters, by netspec's names or by PyTorch's.

netspec's own names ("<layer>.weights", batch norm's "<layer>.scale", …) may cover any of the
parameters: the rest come from what the layers say. PyTorch's names ("<layer>.weight",
"<layer>.running_mean", …) are a state dict, which is all or nothing, as PyTorch's
load_state_dict(strict=True): every key must name a parameter and every parameter must be given,
and every key that fails either way is listed in one problem. Either way, each array's header (its
shape and dtype) is checked before its data is read.
"""

from __future__ import annotations

import difflib
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from netspec.errors import Problem, Unlocated, plural
from netspec.node import Node
from netspec.safetensors_file import SafetensorsFile
from netspec.spec import Spec, WeightsFile
from netspec.weights import NpzFile, ShapeMismatch, resolve_inside

TORCH_NAMES = {
    "weights": "weight",  # conv2d (filters, channels / groups, kh, kw) and dense (neurons, inputs): PyTorch's layouts
    "bias": "bias",
    "scale": "weight",  # batch norm's γ
    "shift": "bias",  # batch norm's β
    "mean": "running_mean",
    "var": "running_var",
}
"""PyTorch's name of each netspec parameter, after "<layer>."; a parameter not listed keeps its own name."""

POINTWISE = (1, 1)
"""The kernel of a PyTorch Conv2d that a dense layer stands for: a 1 × 1 convolution of a (C, 1, 1) map is a dense
layer of the (C,) vector, so a dense layer takes its (out, in, 1, 1) weight as (out, in). torchvision's
squeeze-and-excitation (EfficientNet, MobileNet V3) writes its two small layers so, where netspec has dense
layers on global_avgpool's vector."""

IGNORED = "num_batches_tracked"
"""A batch norm's count of training batches in a PyTorch state dict: netspec has no use for it."""

WHERE = ("weights_file",)


PICKLE_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".pkl")
"""Suffixes of PyTorch's (pickled) weight files."""


def open_weights(path: Path) -> NpzFile | SafetensorsFile:
    """The weight file at `path`, opened and its index (the .npz's members, the safetensors header) checked.

    A PyTorch .pth is refused by name: it is a pickle (and, since PyTorch 1.6, a zip that a .npz
    reader would find no arrays in, which would silently leave every layer as the spec says).
    """
    if path.suffix.lower() == ".safetensors":
        # By its first bytes, not zipfile.is_zipfile: that looks for a zip's end record anywhere near the
        # end, where a real .safetensors file's values may hold one, and would read its arrays as none.
        if not _begins_as_zip(path):
            return SafetensorsFile(path)
        zipped = True
    else:
        zipped = zipfile.is_zipfile(path)
    if path.suffix.lower() in PICKLE_SUFFIXES or (zipped and _holds_a_pickle(path)):
        out = path.with_suffix(".safetensors").name
        raise Unlocated(
            "NS203",
            f"{path.name} is a PyTorch file (a pickle), which netspec does not read: loading one can run code; "
            f"convert it once with `netspec convert {path.name} {out}` and give {out} with names: pytorch",
        )
    return NpzFile(path)


ZIP_SIGNATURE = b"PK\x03\x04"
"""How a zip archive begins (its first member's header): what torch.save writes since PyTorch 1.6."""


def _begins_as_zip(path: Path) -> bool:
    try:
        with open(path, "rb") as stream:
            return stream.read(len(ZIP_SIGNATURE)) == ZIP_SIGNATURE
    except OSError:
        return False  # said by SafetensorsFile, which opens it again


def _holds_a_pickle(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith(".pkl") for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False  # said by NpzFile


def stored_key(names: str, layer: str, param: str) -> str:
    """The key a weight file with `names` (netspec or pytorch) stores a layer's parameter under."""
    return f"{layer}.{TORCH_NAMES.get(param, param) if names == 'pytorch' else param}"


def weights_file_arrays(
    spec: Spec, nodes: list[Node], base: Path, problems: list[Problem]
) -> dict[tuple[str, str], np.ndarray]:
    """The arrays of the spec's `weights_file`, keyed by (layer, parameter); problems are collected."""
    weights = spec.weights
    if weights is None:
        return {}
    try:
        path = resolve_inside(base, weights.file, ".npz or .safetensors file")
        source = open_weights(path)
    except Unlocated as err:
        problems.append(err.at(WHERE))
        return {}
    with source:
        if weights.names == "pytorch":
            return _by_torch_names(source, weights, nodes, problems)
        return _by_own_names(source, nodes, problems)


def target(key: str, by_name: Mapping[str, Node]) -> tuple[Node | None, str]:
    """The layer and parameter an array key "<layer>.<param>" names (the layer None if it names none);
    `by_name` maps layer names to nodes, made once by the caller: a file may hold a million keys."""
    layer_name, _, param = key.rpartition(".")
    p = by_name.get(layer_name)
    return (p, param) if p is not None and param in p.param_shapes else (None, param)


def _by_own_names(
    source: NpzFile | SafetensorsFile, nodes: list[Node], problems: list[Problem]
) -> dict[tuple[str, str], np.ndarray]:
    arrays = {}
    keys, unmatched = source.keys(), {}
    by_name = {q.name: q for q in nodes}
    for key in keys:
        p, param = target(key, by_name)
        if p is None:
            unmatched.setdefault(key.rpartition(".")[0], []).append(key)
            continue
        try:
            arrays[(p.name, param)] = source.read(key, p.param_shapes[param])
        except ShapeMismatch as err:
            # Said at the layer: its numbers (filters, neurons) are what a person changed, not the file.
            problems.append(Problem("NS204", f"layer {p.name!r}: {misfit(p, param, err.label, err.shape)}", _at(p)))
        except Unlocated as err:
            problems.append(err.at(WHERE))
    torch_like = [key for group in unmatched.values() for key in group if key.rpartition(".")[2] in TORCH_ONLY]
    if torch_like:
        problems.append(_torch_names_given(source.name, torch_like))
    else:
        groups = list(unmatched.values())
        # Which layers the file feeds, found once: per group it made a file of 20,000 stray names take hours.
        fed = {key.rpartition(".")[0] for key in keys}
        unfed = [q for q in nodes if q.param_shapes and q.name not in fed]
        problems.extend(_unmatched(layer_keys, source.name, nodes, unfed) for layer_keys in groups[:MAX_UNMATCHED])
        if len(groups) > MAX_UNMATCHED:
            problems.append(_more_unmatched(source.name, groups[MAX_UNMATCHED:]))
    return arrays


MAX_UNMATCHED = 20
"""Layer names matching no layer that get a problem each; the rest are counted in one (a file of another model)."""


def _more_unmatched(file: str, groups: list[list[str]]) -> Problem:
    arrays = sum(len(group) for group in groups)
    shown = ", ".join(repr(group[0]) for group in groups[:2])
    message = (
        f"{file} holds {plural(arrays, 'more array')} that match no layer parameter ({shown}, …); "
        "is it the weight file of this spec?"
    )
    return Problem("NS210", message, WHERE)


TORCH_ONLY = frozenset({"weight", "running_mean", "running_var", IGNORED})
"""Names after "<layer>." that PyTorch's state dicts use and netspec's own names never do."""


def _torch_names_given(file: str, keys: list[str]) -> Problem:
    """One NS210 for a state dict read by netspec's names, rather than one per layer it names."""
    shown = ", ".join(map(repr, keys[:2])) + (", …" if len(keys) > 2 else "")
    message = (
        f"{file} holds PyTorch's names ({shown}), which are not netspec's; "
        f"write weights_file: {{file: {file}, names: pytorch}}"
    )
    return Problem("NS210", message, WHERE)


def _by_torch_names(
    source: NpzFile | SafetensorsFile, weights: WeightsFile, nodes: list[Node], problems: list[Problem]
) -> dict[tuple[str, str], np.ndarray]:
    """Every parameter from its state-dict key; nothing is read unless every name and shape fits."""
    expected = {stored_key("pytorch", p.name, param): (p, param) for p in nodes for param in p.param_shapes}
    batchnorms = {p.name for p in nodes if p.spec.type == "batchnorm"}
    keys = [k for k in source.keys() if not (k.endswith("." + IGNORED) and k.rpartition(".")[0] in batchnorms)]
    found = len(problems)
    present = set(keys)  # made once: per key, it made a large file's check quadratic
    missing, unexpected = [k for k in expected if k not in present], [k for k in keys if k not in expected]
    if missing or unexpected:
        problems.append(_names_problem(source.name, missing, unexpected, keys, nodes))
    for key in keys:
        if key not in expected:
            continue
        p, param = expected[key]
        try:
            shape = source.shape(key)
        except Unlocated as err:
            problems.append(err.at(WHERE))
            continue
        if shape != torch_shape(p, param, shape):
            axes = " × ".join(p.kind.axis_meanings(p.spec)[param])
            message = (
                f"layer {p.name!r}: {source.name} holds {key!r} of shape {shape}, but the layer needs "
                f"{p.param_shapes[param]} for its {param} ({axes})"
            )
            problems.append(Problem("NS204", message, _at(p)))
    if len(problems) > found:
        return {}
    arrays = {}
    for key, (p, param) in expected.items():
        try:
            stored = torch_shape(p, param, source.shape(key))
            arrays[(p.name, param)] = source.read(key, stored).reshape(p.param_shapes[param])
        except Unlocated as err:  # NS205, NS209: what only the data (or its dtype) shows
            problems.append(err.at(WHERE))
    return arrays


def torch_shape(p: Node, param: str, held: tuple[int, ...]) -> tuple[int, ...]:
    """The shape a state dict may hold `param` of layer `p` in, given the one it `held`: the layer's own, or a
    dense layer's weights as a 1 × 1 convolution's (see POINTWISE)."""
    shape = p.param_shapes[param]
    if p.spec.type == "dense" and param == "weights" and held == (*shape, *POINTWISE):
        return held
    return shape


def _names_problem(file: str, missing: list[str], unexpected: list[str], keys: list[str], nodes: list[Node]) -> Problem:
    """NS211: every key the state dict lacks and every key it has in excess, in one line, as PyTorch lists them."""
    by_name = {p.name: p for p in nodes}
    unexpected = sorted(unexpected, key=_natural)  # the missing ones come in the spec's order already
    parts = []
    if missing:
        shown = [_missing(key, keys, by_name) for key in missing[:MAX_KEYS_LISTED]]
        parts.append("Missing key(s): " + ", ".join(shown) + _more(len(missing)))
    if unexpected:
        listed = unexpected[:MAX_KEYS_LISTED]
        # difflib compares each unexpected key with each missing one: bounded, or a file of another model
        # (20,000 keys) took 9 s to be told apart; past the bound the files share nothing to guess from.
        close = missing if len(listed) * len(missing) <= MAX_GUESSES else []
        shown = [_unexpected(key, close, by_name) for key in listed]
        parts.append("Unexpected key(s): " + ", ".join(shown) + _more(len(unexpected)))
    counts = plural(len(missing), "key") + " missing" if missing else ""
    counts += (", " if missing and unexpected else "") + (f"{len(unexpected):,} unexpected" if unexpected else "")
    prefix = _common_prefix(keys, missing)
    if keys and len(unexpected) == len(keys) and not prefix:  # said first: the lists would bury it
        counts += f"; none of the file's {plural(len(keys), 'key')} names a layer parameter: another network's weights?"
    message = f"{file} does not match the spec's layers by PyTorch's names ({counts}): " + "; ".join(parts)
    if prefix:
        message += (
            f"; every key of the file starts with {prefix!r}, which no layer name does (a model saved inside "
            f"torch.nn.DataParallel?): convert the .pth again with --strip-prefix {prefix}"
        )
    return Problem("NS211", message, WHERE)


MAX_KEYS_LISTED = 1000
"""Keys of each kind (missing, unexpected) an NS211 lists at most: all of a ResNet-152's 932, and a line
that stays readable for a file of another model (a language model's 100,000 keys)."""

MAX_GUESSES = 100_000
"""Pairs of keys compared at most for "did you mean" (about 1 s on this machine kind)."""


def _more(count: int) -> str:
    return f", … ({count - MAX_KEYS_LISTED:,} more)" if count > MAX_KEYS_LISTED else ""


def _natural(key: str) -> list[tuple[int, int | str]]:
    """A key's order as a model lists them: layer2.10 after layer2.9, a layer's keys together."""
    return [(0, int(run)) if run.isdigit() else (1, run) for run in re.split(r"(\d+)", key) if run]


def _common_prefix(keys: list[str], missing: list[str]) -> str | None:
    """The first part of every key ("module."), where the keys without it are the ones the spec misses."""
    first = {key.partition(".")[0] for key in keys}
    if len(first) != 1 or not all("." in key for key in keys):
        return None
    prefix = first.pop() + "."
    wanted = set(missing)
    return prefix if any(key.removeprefix(prefix) in wanted for key in keys) else None


def _missing(key: str, keys: list[str], by_name: dict[str, Node]) -> str:
    layer, _, name = key.rpartition(".")
    if name == "bias" and f"{layer}.weight" in keys and getattr(by_name[layer].spec, "use_bias", False):
        return f"{key!r} (the file has no bias for it: give layer {layer!r} use_bias: false)"
    return repr(key)


def _unexpected(key: str, missing: list[str], by_name: dict[str, Node]) -> str:
    layer, _, name = key.rpartition(".")
    if name == "bias" and layer in by_name and getattr(by_name[layer].spec, "use_bias", True) is False:
        return f"{key!r} (layer {layer!r} has use_bias: false)"
    # Layer names are compared, among missing keys of the same parameter: whole keys share their ".weight", which
    # made '0.weight' look like a misspelt 'fc.weight'; the cutoff keeps 'fc1' → 'fc' and drops 'features.10.conv.2' →
    # 'layer4.1.conv2' (0.63).
    same = {k.rpartition(".")[0]: k for k in missing if k.rpartition(".")[2] == name}
    close = difflib.get_close_matches(layer, list(same), n=1, cutoff=0.75)
    return f"{key!r} (did you mean {same[close[0]]!r}?)" if close else repr(key)


def _at(p: Node) -> tuple[str | int, ...]:
    return ("layers", p.index)


def misfit(p: Node, param: str, label: str, got: tuple[int, ...]) -> str:
    """`label` (an array of `param`) has shape `got`, not the one needed: said in the layer's own terms."""
    expected = p.param_shapes[param]
    return f"{label} {shape_phrase(got, expected, p.kind.axis_meanings(p.spec)[param])}"


def shape_phrase(got: tuple[int, ...], expected: tuple[int, ...], axes: tuple[str, ...]) -> str:
    """How an array's shape differs from the expected one, in the layer's own terms."""
    if len(got) == len(expected) == 2:
        if got[0] != expected[0]:
            return (
                f"has {plural(got[0], 'row')} but the layer has {plural(expected[0], axes[0])} (one row per {axes[0]})"
            )
        return f"rows have {plural(got[1], 'value')} but the layer receives {plural(expected[1], axes[1])}"
    if len(got) == len(expected) == 1:
        return (
            f"has {plural(got[0], 'value')} but the layer has {plural(expected[0], axes[0])} (one value per {axes[0]})"
        )
    return f"has shape {got} but needs shape {expected} ({' × '.join(axes)})"


_KEYS_SHOWN = 8
"""Expected keys an NS210 lists at most: a ResNet has a hundred."""


def _unmatched(layer_keys: list[str], file: str, nodes: list[Node], unfed: list[Node]) -> Problem:
    """NS210 for the array keys of one layer name that names no layer parameter: at the layer they were likely
    meant for (renamed in the spec, so that no array names it now), else with the keys expected."""
    layer_name = layer_keys[0].rpartition(".")[0]
    held = " and ".join(repr(key) for key in layer_keys[:2]) + (
        f" ({len(layer_keys) - 2} more)" if len(layer_keys) > 2 else ""
    )
    close = difflib.get_close_matches(layer_name, [q.name for q in unfed], n=1)
    if close:
        meant = next(q for q in unfed if q.name == close[0])
        message = (
            f"{file} holds {held}, but no layer is named {layer_name!r} and layer {meant.name!r} has no arrays "
            f"there; was it renamed? Name the layer {layer_name!r} again, or rename the arrays"
        )
        return Problem("NS210", message, ("layers", meant.index, "name"))
    expected = [f"{q.name}.{n}" for q in nodes for n in q.param_shapes]
    more = len(expected) - _KEYS_SHOWN
    shown = ", ".join(expected[:_KEYS_SHOWN]) + (f", … ({more} more)" if more > 0 else "")
    which = "which matches" if len(layer_keys) == 1 else "which match"
    message = f"{file} holds {held}, {which} no layer parameter; expected keys: {shown}"
    return Problem("NS210", message, WHERE)
