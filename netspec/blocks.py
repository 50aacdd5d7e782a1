"""Blocks: named groups of layers with parameters, used as layers and expanded into the flat spec.

A spec's top-level `blocks:` defines blocks (`params` with defaults, `layers`); a layer item with
`block:` instead of `type:` uses one (`repeat`, `start`, `first`, `inputs`, a value per parameter).
Expansion works on the YAML data, before pydantic sees it: what comes out is the same network
written flat, its layers named as PyTorch names modules (`layer1.0.conv1`, `layer2.0.downsample.0`),
so validation, building, export and training need to know nothing of blocks. Each expanded layer
keeps its `Origin` (where it is written, and the chain of uses that made it), so that a problem
found later is shown at the line of the block's definition, with the uses that gave the values.

The bounds are counted before any layer is made: a use's size is found from one copy of its block
(times `repeat`), so `repeat: 1000000000` is refused at once, without building anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from netspec.errors import Problem, SpecError, plural
from netspec.layers.common import NAME_PATTERN, NAME_RULE, NETWORK_INPUT
from netspec.validation import closest, show
from netspec.yaml_source import Source

MAX_DEPTH = 16
"""Deepest nesting of uses: a use inside a block used inside a block ... at most this many levels."""

MAX_LAYERS = 10_000
"""Most layers a spec may have once its blocks are expanded."""

USE_KEYS = {
    "name": "The use's name: its layers are named <name>.<layer> (with repeat, <name>.<index>.<layer>).",
    "block": "The block to use, by its name under `blocks:`.",
    "repeat": "How many copies, one after the other, named <name>.<start>, <name>.<start + 1>, ...",
    "start": "The index of the first copy (default 0), as in PyTorch's features.4 ... features.6.",
    "first": "Parameter values (and optionally `block`) for the first copy only: stride 2 on the first of n.",
    "inputs": "The layer the block reads (its `input`); default the layer before the use.",
}
"""The keys of a use besides the block's parameters, each with what it means (for messages and the schema)."""

BLOCK_KEYS = {
    "params": "The block's parameters and their defaults; ~ (null) makes a parameter required at every use.",
    "layers": "The block's layers, in order; its input is `input`, its output is its last layer.",
}
"""The keys of a block's definition."""

_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_USE_NAME = re.compile(NAME_PATTERN)
"""A use's name is a layer name's prefix, so it follows the same rule; dots too, for two levels of numbered
copies in one use: torchvision's EfficientNet names its blocks features.<stage>.<index>.block.<k>, which
`{name: features.2, repeat: 2}` gives (a name of one part would need a block per stage)."""


@dataclass(frozen=True)
class Use:
    """One use of a block on the way to an expanded layer."""

    path: tuple[str | int, ...]
    """Where the use is written: ("layers", 3) at top level, ("blocks", "basic_down", "layers", 4) in a block."""
    block: str
    """The block this copy is made of (the use's `first: {block: ...}` for its first copy)."""
    copy: str
    """The copy's name, the prefix of its layers' names: "layer2.0", or "layer2.0.downsample"."""
    line: int
    """The line the use is written on."""

    def __str__(self) -> str:
        return f"{_dotted(self.path)} (use of {self.block!r}, copy {self.copy}, line {self.line})"


@dataclass(frozen=True)
class Origin:
    """Where one layer of the expanded spec was written."""

    path: tuple[str | int, ...]
    """Its definition: ("layers", 5) for a layer written at top level, ("blocks", "basic", "layers", 0) in a block."""
    uses: tuple[Use, ...] = ()
    """The uses that made it, outermost first; empty for a layer written at top level."""
    inputs: tuple[str | int, ...] | None = None
    """Where its `inputs` were given, when a use gave them (the use's own `inputs`), not the definition."""

    @property
    def via(self) -> str:
        """The uses as problems show them before the definition's path ("" for a top-level layer)."""
        return "".join(f"{use} → " for use in self.uses)


@dataclass
class ExpandedSource(Source):
    """A spec's source whose blocks are expanded: `data` and the positions stay the file's own, `flat`
    is the spec written flat, and `locate` shows a problem of the flat spec where it is written.
    """

    flat: dict = field(default_factory=dict)
    """The spec's data with its uses replaced by their layers (`blocks` kept: the definitions, as written)."""
    origins: list[Origin] = field(default_factory=list)
    """One per layer of `flat["layers"]`, in order."""

    def locate(self, problem: Problem, key: bool = False) -> Problem:
        path = problem.path
        if len(path) >= 2 and path[0] == "layers" and isinstance(path[1], int) and 0 <= path[1] < len(self.origins):
            origin = self.origins[path[1]]
            rest = path[2:]
            if rest[:1] == ("inputs",) and origin.inputs:  # given by the use, not in the block's definition
                where = origin.inputs + rest[1:]
            else:
                where = origin.path + rest
            problem = replace(problem, path=where, via=origin.via)
        return super().locate(problem, key)


@dataclass
class _Resolved:
    """A use read and checked: which block each copy is, with which parameters."""

    name: str
    block: str
    params: dict[str, Any]
    first_block: str
    first_params: dict[str, Any]
    repeat: int | None
    start: int
    inputs: str | None


class _Failed(Exception):
    """A use that cannot be expanded; its problem is recorded already."""


def expand(source: Source) -> ExpandedSource | None:
    """The spec with its blocks expanded, or None when it neither defines nor uses any.

    Raises:
        SpecError: every problem of the blocks and uses, located in the file (both places for
            problems inside a block), or the bounds passed.
    """
    data = source.data
    layers = data.get("layers")
    uses_any = isinstance(layers, list) and any(isinstance(item, dict) and "block" in item for item in layers)
    if "blocks" not in data and not uses_any:
        return None
    expander = _Expander(source)
    flat = dict(data)
    if isinstance(layers, list):
        flat["layers"] = expander.run(layers)
    expander.raise_problems()
    return ExpandedSource(source.file, data, source.root, source.text, flat=flat, origins=expander.origins)


class _Expander:
    def __init__(self, source: Source):
        self.source = source
        self.problems: dict[tuple, Problem] = {}
        self.blocks = self._definitions(source.data.get("blocks"))
        self.out: list[dict] = []
        self.origins: list[Origin] = []
        self.cut = False  # whether the last count stopped early (past the bound)

    # Problems -------------------------------------------------------------------------------------------

    def problem(self, code: str, message: str, path: tuple, chain: tuple[Use, ...] = (), key: bool = False) -> None:
        found = self.source.locate(Problem(code, message, path, via="".join(f"{u} → " for u in chain)), key)
        self.problems.setdefault((code, path), found)  # a problem seen from two copies is one problem

    def raise_problems(self) -> None:
        if self.problems:
            found = sorted(self.problems.values(), key=lambda p: (p.line or 0, p.column or 0))
            raise SpecError(found)

    # The definitions ------------------------------------------------------------------------------------

    def _definitions(self, blocks: Any) -> dict[str, dict]:
        """The well-formed blocks by name: {"params": {...}, "layers": [...]}; problems for the rest."""
        if blocks is None:
            return {}
        if not isinstance(blocks, dict):
            self.problem("NS103", f"must be a mapping of block names to blocks, got {show(blocks)}", ("blocks",))
            return {}
        found = {}
        for name, block in blocks.items():
            where = ("blocks", name)
            if not isinstance(block, dict):
                self.problem("NS103", f"a block is a mapping with params and layers, got {show(block)}", where)
                continue
            ok = True
            for key in block:
                if key not in BLOCK_KEYS:
                    self.problem("NS101", _unknown(key, list(BLOCK_KEYS), "a block has"), (*where, key), key=True)
                    ok = False
            params = block.get("params") or {}
            if not isinstance(params, dict):
                self.problem(
                    "NS103", f"must be a mapping of parameter names to defaults, got {show(params)}", (*where, "params")
                )
                params, ok = {}, False
            for param in params:
                if not _PARAM_NAME.fullmatch(param) or param in USE_KEYS:
                    why = "is a key of every use" if param in USE_KEYS else "is not a name $ can refer to"
                    message = (
                        f"parameter {param!r} {why}; name parameters with letters, digits and '_' "
                        f"(not {', '.join(USE_KEYS)})"
                    )
                    self.problem("NS103", message, (*where, "params", param), key=True)
                    ok = False
            layers = block.get("layers")
            if not isinstance(layers, list) or not layers:
                got = "no layers" if layers is None or layers == [] else show(layers)
                self.problem(
                    "NS102" if layers is None else "NS103",
                    f"a block needs a list of layers, got {got}",
                    (*where, "layers") if "layers" in block else where,
                )
                continue
            names: dict[str, int] = {}
            for index, item in enumerate(layers):
                if not isinstance(item, dict):
                    self.problem(
                        "NS103",
                        f"a layer is a mapping of keys (name, type, ...), got {show(item)}",
                        (*where, "layers", index),
                    )
                    ok = False
                    continue
                local = item.get("name", str(index))
                if isinstance(local, str) and local in names:
                    message = (
                        f"name {local!r} is already used by layers[{names[local]}] of block {name!r}; "
                        "give each its own name"
                    )
                    self.problem("NS121", message, (*where, "layers", index, "name"))
                    ok = False
                names.setdefault(str(local), index)
            if ok:
                found[name] = {"params": params, "layers": layers, "names": names}
        return found

    # Counting -------------------------------------------------------------------------------------------

    def size(self, name: str, params: dict, chain: tuple[Use, ...], budget: int) -> int:
        """Layers one copy of block `name` expands to; stops counting once past `budget` (returns more than it)."""
        block = self.blocks[name]
        total = 0
        for index, item in enumerate(block["layers"]):
            path = ("blocks", name, "layers", index)
            item = self.substituted(item, params, name, path, chain)
            if "block" in item:
                try:
                    use = self.resolve(item, path, chain)
                except _Failed:
                    continue
                total += self.use_size(use, path, chain, budget - total)
            else:
                self.check_inputs(item, block, name, path, chain)
                total += 1
            if total > budget:
                self.cut = True  # counted no further: `total` is only a lower bound
                break
        return total

    def use_size(self, use: _Resolved, path: tuple, chain: tuple[Use, ...], budget: int) -> int:
        line = self.source.position(path)[0]
        first_copy = _copy_name(use, 0, chain)
        first_chain = (*chain, Use(path, use.first_block, first_copy, line))
        if not self.can_enter(use.first_block, path, chain, first_chain):
            return 0
        first = self.size(use.first_block, use.first_params, first_chain, budget)
        if (use.repeat or 1) == 1 or first > budget:
            self.cut = self.cut or (use.repeat or 1) > 1
            return first
        rest_chain = (*chain, Use(path, use.block, _copy_name(use, 1, chain), line))
        if not self.can_enter(use.block, path, chain, rest_chain):
            return first
        return first + (use.repeat - 1) * self.size(use.block, use.params, rest_chain, budget - first)

    def can_enter(self, block: str, path: tuple, chain: tuple[Use, ...], inner: tuple[Use, ...]) -> bool:
        """Whether a use may expand `block` here: no cycle, not too deep (else a problem at the use)."""
        names = [use.block for use in chain]
        if block in names:
            cycle = " → ".join([*names[names.index(block) :], block])
            message = f"block {block!r} uses itself ({cycle}); a block cannot contain itself, remove the use"
            self.problem("NS132", message, (*path, "block"), chain)
            return False
        if len(inner) > MAX_DEPTH:
            message = f"blocks are nested {len(inner)} deep here, more than the {MAX_DEPTH} allowed; nest fewer blocks"
            self.problem("NS133", message, path, chain)
            return False
        return True

    # Reading uses ---------------------------------------------------------------------------------------

    def resolve(self, item: dict, path: tuple, chain: tuple[Use, ...]) -> _Resolved:
        """The use `item` checked: its block(s), parameters per copy, repeat, start and input."""
        failed = len(self.problems)
        name = item.get("name")
        if name is None:
            self.problem("NS102", "a use of a block needs a 'name': its layers are named <name>.<layer>", path, chain)
        elif not isinstance(name, str) or not _USE_NAME.fullmatch(name):
            self.problem(
                "NS103",
                f"a use's name is a layer name's beginning: {NAME_RULE}, got {show(name)}",
                (*path, "name"),
                chain,
            )
        block = self.block_named(item.get("block"), (*path, "block"), chain)
        first = item.get("first", {})
        if not isinstance(first, dict):
            self.problem(
                "NS103",
                f"must be a mapping of parameter values for the first copy, got {show(first)}",
                (*path, "first"),
                chain,
            )
            first = {}
        first_block = self.block_named(first["block"], (*path, "first", "block"), chain) if "block" in first else block
        declared = {*self.blocks.get(block, {}).get("params", {}), *self.blocks.get(first_block, {}).get("params", {})}
        given = {key: value for key, value in item.items() if key not in USE_KEYS}
        for key in given:
            if key not in declared and block in self.blocks:
                self.problem(
                    "NS101",
                    _unknown(key, [*USE_KEYS, *sorted(declared)], f"a use of {block!r} takes"),
                    (*path, key),
                    chain,
                    key=True,
                )
        for key in first:
            if key != "block" and key not in declared and block in self.blocks:
                self.problem(
                    "NS101",
                    _unknown(key, ["block", *sorted(declared)], "first takes"),
                    (*path, "first", key),
                    chain,
                    key=True,
                )
        repeat = self.whole(item, "repeat", 1, path, chain)
        start = self.whole(item, "start", 0, path, chain)
        if "start" in item and "repeat" not in item:
            self.problem(
                "NS125",
                "start numbers the copies of repeat; give repeat too, or leave start out",
                (*path, "start"),
                chain,
            )
        inputs = item.get("inputs")
        if isinstance(inputs, list) and len(inputs) == 1:
            inputs = inputs[0]
        if inputs is not None and not isinstance(inputs, str):
            self.problem(
                "NS103", f"a block reads one input: give one layer name, got {show(inputs)}", (*path, "inputs"), chain
            )
        if len(self.problems) > failed or block not in self.blocks or first_block not in self.blocks:
            raise _Failed  # a block defined with problems of its own is not expanded: they are reported
        params = self.params_for(block, given, {}, path, chain)
        first_params = self.params_for(first_block, given, first, path, chain)
        if len(self.problems) > failed:
            raise _Failed
        return _Resolved(
            name, block, params, first_block, first_params, repeat if "repeat" in item else None, start, inputs
        )

    def block_named(self, name: Any, path: tuple, chain: tuple[Use, ...]) -> str:
        if isinstance(name, str) and name in self.blocks:
            return name
        defined = (self.source.data.get("blocks") or {}) if isinstance(self.source.data.get("blocks"), dict) else {}
        if isinstance(name, str) and name in defined:
            return name  # defined with a problem of its own, reported already
        choices = list(defined)
        shown = repr(name) if isinstance(name, str) else show(name)
        if not choices:
            message = f"no block named {shown}: the spec defines no blocks; define it under blocks:"
        else:
            close = closest(name, choices) if isinstance(name, str) else None
            hint = f"did you mean {close!r}?" if close else f"the blocks are {', '.join(choices)}"
            message = f"no block named {shown}; {hint}"
        self.problem("NS105", message, path, chain)
        return "" if not isinstance(name, str) else name

    def whole(self, item: dict, key: str, default: int, path: tuple, chain: tuple[Use, ...]) -> int:
        value = item.get(key, default)
        least = 1 if key == "repeat" else 0
        if not isinstance(value, int) or isinstance(value, bool):
            self.problem("NS103", f"must be a whole number, got {show(value)}", (*path, key), chain)
            return default
        if value < least:
            self.problem("NS104", f"must be at least {least}, got {value}", (*path, key), chain)
            return default
        return value

    def params_for(self, block: str, given: dict, first: dict, path: tuple, chain: tuple[Use, ...]) -> dict:
        """The parameters of one copy of `block`: its defaults, then the use's values, then `first`'s."""
        if block not in self.blocks:
            return {}
        declared = self.blocks[block]["params"]
        values = {**declared, **{k: v for k, v in given.items() if k in declared}}
        values.update({k: v for k, v in first.items() if k in declared})
        for param, value in values.items():
            if value is None:
                message = f"block {block!r} needs {param!r} (a required parameter); add {param}: <value> to the use"
                self.problem("NS102", message, path, chain)
        return values

    def check_inputs(self, item: dict, block: dict, name: str, path: tuple, chain: tuple[Use, ...]) -> None:
        inputs = item.get("inputs")
        listed = [inputs] if isinstance(inputs, str) else inputs if isinstance(inputs, list) else []
        for at, each in enumerate(listed):
            if isinstance(each, str) and each != NETWORK_INPUT and each not in block["names"]:
                choices = [*block["names"], NETWORK_INPUT]
                close = closest(each, choices)
                hint = f"did you mean {close!r}?" if close else f"it may read {', '.join(choices)}"
                message = (
                    f"{each!r} names nothing in block {name!r}: inside a block, inputs name the block's own "
                    f"layers and uses, or input (the block's input); {hint}"
                )
                where = (*path, "inputs", *((at,) if isinstance(inputs, list) else ()))
                self.problem("NS127", message, where, chain)

    def substituted(self, value: Any, params: dict, block: str, path: tuple, chain: tuple[Use, ...]) -> Any:
        """`value` with every "$param" (a whole value, or an item of a list) replaced by the parameter's value."""
        if isinstance(value, str):
            match = _PARAM.fullmatch(value)
            if match is None:
                return value
            if match.group(1) in params:
                return params[match.group(1)]
            declared = list(self.blocks[block]["params"])
            close = closest(match.group(1), declared)
            hint = f"did you mean ${close}?" if close else f"its parameters are {', '.join(declared) or 'none'}"
            message = f"{value} is no parameter of block {block!r}; {hint} (declare it under params)"
            self.problem("NS134", message, path, chain)
            return value
        if isinstance(value, list):
            return [self.substituted(v, params, block, (*path, i), chain) for i, v in enumerate(value)]
        if isinstance(value, dict):
            return {k: self.substituted(v, params, block, (*path, k), chain) for k, v in value.items()}
        return value

    # Making the layers ----------------------------------------------------------------------------------

    def run(self, layers: list) -> list[dict]:
        """The top-level layers with every use replaced by its layers; problems (and the bounds) first."""
        total = 0
        for index, item in enumerate(layers):
            if not (isinstance(item, dict) and "block" in item):
                total += 1
                continue
            path = ("layers", index)
            try:
                use = self.resolve(item, path, ())
            except _Failed:
                continue
            self.cut = False
            size = self.use_size(use, path, (), MAX_LAYERS - total)
            if total + size > MAX_LAYERS:
                self.problem("NS133", _too_many(use, size, total, exact=not self.cut), path)
                self.raise_problems()  # nothing past the bound is made
            total += size
        self.raise_problems()
        self.check_top_level_names(layers)
        outputs: dict[str, str] = {}
        last = NETWORK_INPUT
        for index, item in enumerate(layers):
            path = ("layers", index)
            if not (isinstance(item, dict) and "block" in item):
                item = _reading(item, outputs)
                self.out.append(item)
                self.origins.append(Origin(path))
                last = _name_of(item, len(self.out) - 1)
                continue
            use = self.resolve(item, path, ())
            given = outputs.get(use.inputs, use.inputs) if use.inputs else None
            if given is not None and not self.made(given):
                above = [_name_of(layer, i) for i, layer in enumerate(self.out)] + list(outputs)
                close = closest(given, above)
                hint = f"did you mean {close!r}?" if close else "name a layer or use above it, or input"
                self.problem("NS127", f"{given!r} names no layer above this use; {hint}", (*path, "inputs"))
                continue
            last = self.make_use(use, path, (), given or last, given is not None)
            outputs[use.name] = last
        self.raise_problems()
        return self.out

    def made(self, name: str) -> bool:
        """Whether a layer of this name is made already (or it is the network's input)."""
        return name == NETWORK_INPUT or any(_name_of(layer, i) == name for i, layer in enumerate(self.out))

    def check_top_level_names(self, layers: list) -> None:
        """A use's name is read as its output by later layers: it must be no other layer's or use's name.

        Except between uses with `repeat`: those may share a name to number one row of copies together, as
        torchvision's `features.1` … `features.17` are rows of a paper's table, each a use of its own block
        (MobileNet V2, SqueezeNet). Each such use starts after the copies of the one before, and the name
        reads the last copy made so far: what PyTorch's `model.features` gives.
        """
        first: dict[str, int] = {}
        numbered: dict[str, tuple[int, int]] = {}  # a name shared by numbered uses: the last use, its next number
        for index, item in enumerate(layers):
            name = item.get("name") if isinstance(item, dict) else None
            if not isinstance(name, str):
                continue
            copies = _numbered_copies(item)
            if name in first and ("block" in item or "block" in layers[first[name]]):
                if copies is not None and name in numbered:
                    at, following = numbered[name]
                    if copies.start < following:
                        message = (
                            f"the copies of {name!r} are numbered from {copies.start}, but layers[{at}] made "
                            f"{name}.{following - 1} already; start at {following} (uses that share a name "
                            "number one row of copies)"
                        )
                        self.problem("NS121", message, ("layers", index, "start" if "start" in item else "name"))
                else:
                    message = (
                        f"name {name!r} is already used by layers[{first[name]}]; give each layer and use its own name"
                    )
                    self.problem("NS121", message, ("layers", index, "name"))
            if copies is not None and (name not in first or name in numbered):
                numbered[name] = (index, copies.stop)
            first.setdefault(name, index)
        self.raise_problems()

    def make_use(self, use: _Resolved, path: tuple, chain: tuple[Use, ...], input_name: str, given: bool) -> str:
        """Add the layers of every copy of `use`, reading `input_name`; returns the name of the last."""
        line = self.source.position(path)[0]
        for i in range(use.repeat or 1):
            block, params = (use.first_block, use.first_params) if i == 0 else (use.block, use.params)
            copy = _copy_name(use, i, chain)
            inputs_path = (*path, "inputs") if given and i == 0 else None
            input_name = self.make_copy(
                block, params, copy, (*chain, Use(path, block, copy, line)), input_name, inputs_path
            )
        return input_name

    def previous(self) -> str:
        """The name of the layer made last: what a layer without `inputs` reads."""
        return _name_of(self.out[-1], len(self.out) - 1) if self.out else NETWORK_INPUT

    def make_copy(
        self, name: str, params: dict, copy: str, chain: tuple[Use, ...], input_name: str, inputs_path: tuple | None
    ) -> str:
        """Add the layers of one copy of block `name`; returns the name of its last layer (its output)."""
        layers = self.blocks[name]["layers"]
        # Every layer's name is known before any is made: one listed later is then said to be out of order.
        local = {str(item.get("name", i)): f"{copy}.{item.get('name', i)}" for i, item in enumerate(layers)}
        local[NETWORK_INPUT] = input_name
        for index, item in enumerate(layers):
            path = ("blocks", name, "layers", index)
            item = self.substituted(item, params, name, path, chain)
            previous = input_name if index == 0 else self.out[-1]["name"]
            if "block" in item:
                use = self.resolve(item, path, chain)
                given = local[use.inputs] if use.inputs else None
                local[use.name] = self.make_use(use, path, chain, given or previous, given is not None)
                continue
            layer = {**item, "name": f"{copy}.{item.get('name', index)}"}
            origin_inputs = None
            if "inputs" in item:
                inputs = item["inputs"]
                layer["inputs"] = (
                    local.get(inputs, inputs) if isinstance(inputs, str) else [local.get(n, n) for n in inputs]
                )
            elif index == 0 and self.previous() != input_name:
                layer["inputs"] = input_name  # the block reads something other than the layer just before
                origin_inputs = inputs_path
            local[str(item.get("name", index))] = layer["name"]
            self.out.append(layer)
            self.origins.append(Origin(path, chain, origin_inputs))
        return self.out[-1]["name"]


def _too_many(use: _Resolved, size: int, before: int, exact: bool) -> str:
    """The message of a use that takes the spec past MAX_LAYERS."""
    repeat = f" (repeat {use.repeat:,})" if use.repeat else ""
    if exact:
        total = f"; with the {plural(before, 'layer')} before it, {before + size:,}" if before else ""
        count = f"expands to {size:,} layers{total}"
    else:
        count = f"expands to more than {MAX_LAYERS - before:,} layers" + (" after those before it" if before else "")
    return (
        f"this use of {use.block!r}{repeat} {count}: a spec may have at most {MAX_LAYERS:,} layers once its "
        "blocks are expanded; lower repeat, or write fewer copies"
    )


def _numbered_copies(item: dict) -> range | None:
    """The numbers of a top-level use's copies when it gives `repeat` (checked already by `resolve`), else None."""
    if "block" not in item or "repeat" not in item:
        return None
    start = item.get("start", 0)
    return range(start, start + item["repeat"])


def _copy_name(use: _Resolved, i: int, chain: tuple[Use, ...]) -> str:
    prefix = f"{chain[-1].copy}.{use.name}" if chain else use.name
    return f"{prefix}.{use.start + i}" if use.repeat is not None else prefix


def _reading(item: Any, outputs: dict[str, str]) -> Any:
    """A top-level layer with the uses its `inputs` names read as their last layers."""
    if not outputs or not isinstance(item, dict) or "inputs" not in item:
        return item
    inputs = item["inputs"]
    if isinstance(inputs, str):
        return {**item, "inputs": outputs.get(inputs, inputs)}
    if isinstance(inputs, list):
        return {**item, "inputs": [outputs.get(n, n) if isinstance(n, str) else n for n in inputs]}
    return item


def _name_of(item: Any, index: int) -> str:
    """A top-level layer's name, or the one the spec gives it when it has none (type_index)."""
    if isinstance(item, dict) and isinstance(item.get("name"), str):
        return item["name"]
    kind = item.get("type") if isinstance(item, dict) else None
    return f"{kind}_{index}"


def _unknown(key: Any, allowed: list[str], lead: str) -> str:
    close = closest(str(key), allowed)
    hint = f"did you mean {close!r}? " if close else ""
    return f"unknown key {key!r}; {hint}{lead} {', '.join(allowed)}"


def _dotted(path: tuple) -> str:
    return Problem("", "", path).dotted_path
