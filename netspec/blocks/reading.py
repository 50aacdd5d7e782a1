"""Reading blocks and uses: each definition and each use checked, with a problem for every mistake.

Problems are kept, not raised, so that one reading reports them all; a problem inside a block is
placed at the block's definition with the chain of uses that led there (netspec.blocks.origins).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from netspec.blocks.origins import Use, via
from netspec.errors import Problem, SpecError
from netspec.layers import KINDS
from netspec.layers.common import NAME_PATTERN, NAME_RULE, NETWORK_INPUT
from netspec.validation import closest, show
from netspec.yaml_source import MAX_EXPANDED_VALUES, Source

USE_KEYS = {
    "name": "The use's name: its layers are named <name>.<layer> (with repeat, <name>.<index>.<layer>).",
    "block": "The block to use, by its name under `blocks:`.",
    "repeat": "How many copies, one after the other, named <name>.<start>, <name>.<start + 1>, ...",
    "start": "The index of the first copy (default 0), as in PyTorch's features.4 ... features.6.",
    "first": "Parameter values (and optionally `block`) for the first copy only: stride 2 on the first of n.",
    "inputs": "The layer the block reads (its `input`); default the layer before the use.",
}
"""The keys of a use besides the block's parameters, each with what it means (for messages and the schema)."""

BLOCK_KEYS = ("params", "layers")
"""The keys of a block's definition."""

_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NAME_PART = re.compile(r"[A-Za-z0-9_-]+")
_USE_NAME = re.compile(NAME_PATTERN)


def name_part(value: Any) -> str | None:
    """A name a use or a block's layer may have (one part of a dotted name; `0` as YAML's number too), or None."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    return value if isinstance(value, str) and _NAME_PART.fullmatch(value) else None


def use_name(value: Any) -> str | None:
    """A name a use may have, or None: a layer name's beginning, dots too, for two numbered levels in one use
    (torchvision's EfficientNet names its blocks features.<stage>.<index>.block...: `{name: features.2, repeat: 2}`
    gives them; a name of one part would need a block per stage)."""
    part = name_part(value)
    if part is not None:
        return part
    return value if isinstance(value, str) and _USE_NAME.fullmatch(value) else None


def local_name(item: dict, index: int) -> str:
    """A block layer's name inside its block: its `name`, else its place (as PyTorch's nn.Sequential names)."""
    return name_part(item.get("name", index)) or str(index)


@dataclass
class Resolved:
    """A use read and checked: which block each copy is, with which parameters."""

    name: str
    block: str
    params: dict[str, Any]
    first_block: str
    first_params: dict[str, Any]
    repeat: int | None
    """None when the use does not say `repeat`: its one copy is then not numbered."""
    start: int
    inputs: str | None


class Failed(Exception):
    """A use that cannot be expanded; its problems are recorded already."""


class Reader:
    """The blocks of one spec, read and checked, and the problems found so far."""

    def __init__(self, source: Source):
        self.source = source
        self.problems: dict[tuple, Problem] = {}
        self.failed: set[tuple] = set()  # paths of uses that could not be read
        self.referring: dict[int, bool] = {}  # id of a list or mapping of a definition → whether it holds a $param
        self.sizes: dict[int, int] = {}  # id of a list or mapping kept in the expanded spec → values it holds
        self.values = 0  # values made by the blocks so far (every copy counted), bounded as YAML's aliases are
        self.current: tuple = ("layers",)  # the top-level use being expanded: where the bound on values is said
        self.blocks = self.definitions(source.data.get("blocks"))

    def problem(self, code: str, message: str, path: tuple, chain: tuple[Use, ...] = (), key: bool = False) -> None:
        found = self.source.locate(Problem(code, message, path, via=via(chain)), key)
        self.problems.setdefault((code, path), found)  # a problem seen from two copies is one problem

    def line(self, path: tuple) -> int | None:
        """The line `path` is written on (None for a spec made in code, which has no file)."""
        return self.source.position(path)[0] if self.source.root is not None else None

    def raise_problems(self) -> None:
        if self.problems:
            raise SpecError(sorted(self.problems.values(), key=lambda p: (p.line or 0, p.column or 0)))

    # The definitions --------------------------------------------------------------------------------------

    def definitions(self, blocks: Any) -> dict[str, dict]:
        """The well-formed blocks by name: {"params": {...}, "layers": [...], "names": {...}}; problems for the rest."""
        if blocks is None:
            return {}
        if not isinstance(blocks, dict):
            self.problem("NS103", f"must be a mapping of block names to blocks, got {show(blocks)}", ("blocks",))
            return {}
        found = {}
        for name, block in blocks.items():
            if not isinstance(block, dict):
                self.problem(
                    "NS103", f"a block is a mapping with params and layers, got {show(block)}", ("blocks", name)
                )
                continue
            params = self.parameters(name, block)
            layers = self.layers(name, block)
            ok = all(key in BLOCK_KEYS for key in block) and params is not None and layers is not None
            for key in block:
                if key not in BLOCK_KEYS:
                    self.problem(
                        "NS101", unknown(key, list(BLOCK_KEYS), "a block has"), ("blocks", name, key), key=True
                    )
            if ok:
                names = {local_name(item, index): index for index, item in enumerate(layers)}
                found[name] = {"params": params, "layers": layers, "names": names}
        return found

    def parameters(self, name: str, block: dict) -> dict | None:
        params = block.get("params", {})
        where = ("blocks", name, "params")
        if not isinstance(params, dict):
            self.problem("NS103", f"must be a mapping of parameter names to defaults, got {show(params)}", where)
            return None
        wrong = [param for param in params if not _PARAM_NAME.fullmatch(param) or param in USE_KEYS]
        for param in wrong:
            why = "is a key of every use" if param in USE_KEYS else "is not a name $ can refer to"
            message = (
                f"parameter {param!r} {why}; name parameters with letters, digits and '_' (not {', '.join(USE_KEYS)})"
            )
            self.problem("NS103", message, (*where, param), key=True)
        return None if wrong else params

    def layers(self, name: str, block: dict) -> list | None:
        layers = block.get("layers")
        if not isinstance(layers, list) or not layers:
            got = "no layers" if layers is None or layers == [] else show(layers)
            where = ("blocks", name, "layers") if "layers" in block else ("blocks", name)
            self.problem("NS102" if layers is None else "NS103", f"a block needs a list of layers, got {got}", where)
            return None
        ok, seen = True, {}
        for index, item in enumerate(layers):
            where = ("blocks", name, "layers", index)
            if not isinstance(item, dict):
                self.problem("NS103", f"a layer is a mapping of keys (name, type, ...), got {show(item)}", where)
                ok = False
                continue
            if "name" in item and name_part(item["name"]) is None:
                message = f"a name in a block is letters, digits, '_' and '-' (no dots), got {show(item['name'])}"
                self.problem("NS103", message, (*where, "name"))
                ok = False
                continue
            local = local_name(item, index)
            if local == NETWORK_INPUT:  # inside a block, `input` is what the block reads
                self.problem(
                    "NS121", "'input' names what the block reads; give the layer another name", (*where, "name")
                )
                ok = False
                continue
            if local in seen:
                message = (
                    f"name {local!r} is already used by layers[{seen[local]}] of block {name!r}; give each its own"
                )
                self.problem("NS121", message, (*where, "name") if "name" in item else where)
                ok = False
            seen.setdefault(local, index)
        return layers if ok else None

    # Uses -------------------------------------------------------------------------------------------------

    def resolve(self, item: dict, path: tuple, chain: tuple[Use, ...]) -> Resolved:
        """The use `item` checked: its block(s), parameters per copy, repeat, start and input.

        Raises:
            Failed: the use has problems (recorded), or uses a block defined with problems of its own.
        """
        if path in self.failed:
            raise Failed  # said once: a use that fails in one copy is not read again in every other
        failed = len(self.problems)
        name = use_name(item.get("name"))
        if "name" not in item:
            self.problem("NS102", "a use of a block needs a 'name': its layers are named <name>.<layer>", path, chain)
        elif name is None:
            message = f"a use's name is a layer name's beginning: {NAME_RULE}, got {show(item['name'])}"
            self.problem("NS103", message, (*path, "name"), chain)
        block = self.block_named(item.get("block"), (*path, "block"), chain)
        first = item.get("first", {})
        if not isinstance(first, dict):
            message = f"must be a mapping of parameter values for the first copy, got {show(first)}"
            self.problem("NS103", message, (*path, "first"), chain)
            first = {}
        first_block = self.block_named(first["block"], (*path, "first", "block"), chain) if "block" in first else block
        declared = {*self.blocks.get(block, {}).get("params", {}), *self.blocks.get(first_block, {}).get("params", {})}
        given = {key: value for key, value in item.items() if key not in USE_KEYS}
        if block in self.blocks:
            for key in given:
                if key not in declared:
                    message = unknown(key, [*USE_KEYS, *sorted(declared)], f"a use of {block!r} takes")
                    self.problem("NS101", message, (*path, key), chain, key=True)
            for key in first:
                if key != "block" and key not in declared:
                    message = unknown(key, ["block", *sorted(declared)], "first takes")
                    self.problem("NS101", message, (*path, "first", key), chain, key=True)
        if not chain:  # a use in `layers`: no parameter is there for a $name to stand for
            for key, where in [*((k, (*path, k)) for k in given), *((k, (*path, "first", k)) for k in first)]:
                value = item[key] if len(where) == len(path) + 1 else first[key]
                if isinstance(value, str) and _PARAM.fullmatch(value):
                    message = (
                        f"{value} stands for a block's parameter only inside a block's layers; at a use in layers, "
                        f"give the value itself ({key}: 64, say)"
                    )
                    self.problem("NS134", message, where, chain)
        repeat = self.whole(item, "repeat", 1, path, chain)
        start = self.whole(item, "start", 0, path, chain)
        if "start" in item and "repeat" not in item:
            message = "start numbers the copies of repeat; give repeat too, or leave start out"
            self.problem("NS125", message, (*path, "start"), chain)
        inputs = item.get("inputs")
        if isinstance(inputs, list) and len(inputs) == 1:
            inputs = inputs[0]
        if inputs is not None and not isinstance(inputs, str):
            message = f"a block reads one input: give one layer name, got {show(inputs)}"
            self.problem("NS103", message, (*path, "inputs"), chain)
        if len(self.problems) > failed or block not in self.blocks or first_block not in self.blocks:
            self.failed.add(path)
            raise Failed  # a block defined with problems of its own is not expanded: they are reported
        params = self.params_for(block, given, {}, path, chain)
        first_params = self.params_for(first_block, given, first, path, chain)
        if len(self.problems) > failed:
            self.failed.add(path)
            raise Failed
        repeat_given = repeat if "repeat" in item else None
        return Resolved(name, block, params, first_block, first_params, repeat_given, start, inputs)

    def block_named(self, name: Any, path: tuple, chain: tuple[Use, ...]) -> str:
        """`name` if it names a block (one defined with problems too: those are reported); else a problem."""
        written = self.source.data.get("blocks")
        defined = list(written) if isinstance(written, dict) else []
        if isinstance(name, str) and name in defined:
            return name
        shown = repr(name) if isinstance(name, str) else show(name)
        if isinstance(name, str) and name in KINDS:
            message = f"{shown} is a layer type, not a block of this spec: write type: {name}"
        elif not defined:
            message = f"no block named {shown}: the spec defines no blocks; define it under blocks:"
        else:
            close = closest(name, defined) if isinstance(name, str) else None
            hint = f"did you mean {close!r}?" if close else f"the blocks are {', '.join(defined)}"
            message = f"no block named {shown}; {hint}"
        self.problem("NS105", message, path, chain)
        return ""

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
        declared = self.blocks[block]["params"]
        values = {**declared, **{k: v for k, v in given.items() if k in declared}}
        values.update({k: v for k, v in first.items() if k in declared})
        for param, value in values.items():
            if value is None:
                message = f"block {block!r} needs {param!r} (a required parameter); add {param}: <value> to the use"
                self.problem("NS102", message, path, chain)
        return values

    def check_inputs(self, item: dict, block: str, path: tuple, chain: tuple[Use, ...]) -> None:
        """A layer's `inputs` inside a block name the block's layers and uses, or `input`."""
        inputs = item.get("inputs")
        names = self.blocks[block]["names"]
        listed = [inputs] if isinstance(inputs, str) else inputs if isinstance(inputs, list) else []
        for at, each in enumerate(listed):
            if isinstance(each, str) and each != NETWORK_INPUT and each not in names:
                choices = [*names, NETWORK_INPUT]
                close = closest(each, choices)
                hint = f"did you mean {close!r}?" if close else f"it may read {', '.join(choices)}"
                message = (
                    f"{each!r} names nothing in block {block!r}: inside a block, inputs name the block's own "
                    f"layers and uses, or input (the block's input); {hint}"
                )
                where = (*path, "inputs", *((at,) if isinstance(inputs, list) else ()))
                self.problem("NS127", message, where, chain)

    def substituted(self, value: Any, params: dict, block: str, path: tuple, chain: tuple[Use, ...]) -> Any:
        """`value` with every "$param" (a whole value, or an item of a list) replaced by the parameter's value.

        What holds no "$param" is shared, not copied (as a YAML alias shares it); what is copied is
        counted against the bound on values (`spend`).
        """
        if isinstance(value, str):
            match = _PARAM.fullmatch(value)
            if match is None:
                return value
            if match.group(1) in params:
                return params[match.group(1)]
            declared = list(self.blocks[block]["params"])
            close = closest(match.group(1), declared)
            hint = f"did you mean ${close}?" if close else f"its parameters are {', '.join(declared) or 'none'}"
            message = f"{value} is not a parameter of block {block!r}; {hint} (declare it under params)"
            self.problem("NS134", message, path, chain)
            return value
        if not isinstance(value, (list, dict)) or not self.refers(value):
            return value
        self.spend(len(value))
        if isinstance(value, list):
            return [self.substituted(v, params, block, (*path, i), chain) for i, v in enumerate(value)]
        return {k: self.substituted(v, params, block, (*path, k), chain) for k, v in value.items()}

    def refers(self, value: Any) -> bool:
        """Whether `value` holds a "$param" anywhere (remembered for each list and mapping of the definitions)."""
        if isinstance(value, str):
            return _PARAM.fullmatch(value) is not None
        if not isinstance(value, (list, dict)):
            return False
        found = self.referring.get(id(value))
        if found is None:
            found = any(self.refers(v) for v in (value.values() if isinstance(value, dict) else value))
            self.referring[id(value)] = found
        return found

    def count(self, value: Any) -> int:
        """How many values `value` holds, lists and mappings one each, as YAML's reader counts them.

        Each list and mapping is counted once, then remembered: a copy of a layer shares what holds no
        $param with its definition, so counting every copy costs what the definition's text does. Only
        for layers that are kept (their ids stay theirs while the expansion runs).
        """
        if not isinstance(value, (list, dict)):
            return 1
        found = self.sizes.get(id(value))
        if found is None:
            found = 1 + sum(self.count(v) for v in (value.values() if isinstance(value, dict) else value))
            self.sizes[id(value)] = found
        return found

    def spend(self, values: int) -> None:
        """Count values the blocks make; past MAX_EXPANDED_VALUES, stop with a problem at the use being expanded."""
        self.values += values
        if self.values > MAX_EXPANDED_VALUES:
            message = (
                f"the blocks expand to more than {MAX_EXPANDED_VALUES:,} values (every copy of a layer counted); "
                "move large arrays to a .npy/.npz weight file, or write fewer copies"
            )
            self.problem("NS004", message, self.current)
            self.raise_problems()


def unknown(key: Any, allowed: list[str], lead: str) -> str:
    close = closest(str(key), allowed)
    hint = f"did you mean {close!r}? " if close else ""
    return f"unknown key {key!r}; {hint}{lead} {', '.join(allowed)}"
