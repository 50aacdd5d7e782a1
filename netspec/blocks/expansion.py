"""Expanding uses of blocks into layers: counted first against the bounds, then made, each with its origin."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from netspec.blocks.origins import ExpandedSource, Origin, Use
from netspec.blocks.reading import Failed, Reader, Resolved, local_name
from netspec.errors import SpecError, plural
from netspec.layers.common import NETWORK_INPUT
from netspec.validation import closest
from netspec.yaml_source import Source

MAX_DEPTH = 16
"""Deepest nesting of uses: a use inside a block used inside a block ... at most this many levels."""

MAX_LAYERS = 10_000
"""Most layers a spec may have once its blocks are expanded."""


def expand(source: Source) -> ExpandedSource | None:
    """The spec with its blocks expanded, or None when it neither defines nor uses any.

    Raises:
        SpecError: every problem of the blocks and uses, located in the file (both places for
            problems inside a block), or the bounds passed.
    """
    data = source.data
    layers = data.get("layers")
    if "blocks" not in data and not uses_blocks(data):
        return None
    expander = _Expander(source)
    flat = dict(data)
    if isinstance(layers, list):
        flat["layers"] = expander.run(layers)
    expander.raise_problems()
    return ExpandedSource(source.file, data, source.root, source.text, flat=flat, origins=expander.origins)


def expand_data(data: dict) -> dict:
    """A spec made in code (plain data, no file) with its blocks expanded; unchanged if it uses none.

    Raises:
        SpecError: the problems of its blocks and uses, with paths but no file or line.
    """
    try:
        expanded = expand(Source("", data, None))
    except SpecError as err:
        raise SpecError([replace(p, file=None, line=None, column=None) for p in err.problems]) from None
    return expanded.flat if expanded is not None else data


def uses_blocks(data: Any) -> bool:
    """Whether spec data has a layer that uses a block."""
    layers = data.get("layers") if isinstance(data, dict) else None
    return isinstance(layers, list) and any(_is_use(item) for item in layers)


def _is_use(item: Any) -> bool:
    return isinstance(item, dict) and "block" in item


def _written_name(item: Any) -> str | None:
    """The name a layer or use is written with, if it is text (a mistyped one is pydantic's to say)."""
    name = item.get("name") if isinstance(item, dict) else None
    return name if isinstance(name, str) else None


class _Expander(Reader):
    def __init__(self, source: Source):
        super().__init__(source)
        self.out: list[dict] = []
        self.origins: list[Origin] = []
        self.names: set[str] = {NETWORK_INPUT}  # of the layers made so far
        self.cut = False  # whether the last count stopped early (past the bound)

    # Counting -------------------------------------------------------------------------------------------

    def size(self, name: str, params: dict, chain: tuple[Use, ...], budget: int) -> int:
        """Layers one copy of block `name` expands to; stops counting once past `budget` (returns more than it).

        Each use in it is counted from one copy (times repeat), so the work follows the definitions, not
        the layers they make; every call adds at least one layer, so past the budget it ends at once.
        """
        total = 0
        for index, item in enumerate(self.blocks[name]["layers"]):
            path = ("blocks", name, "layers", index)
            item = self.substituted(item, params, name, path, chain)
            if _is_use(item):
                try:
                    use = self.resolve(item, path, chain)
                except Failed:
                    use = None
                # A use counts as at least one layer, even one that fails: every call advances the count,
                # so counting ends past the budget however the blocks branch.
                total += self.use_size(use, path, chain, budget - total) if use else 1
            else:
                self.check_inputs(item, name, path, chain)
                total += 1
            if total > budget:
                self.cut = True  # counted no further: `total` is only a lower bound
                break
        return total

    def use_size(self, use: Resolved, path: tuple, chain: tuple[Use, ...], budget: int) -> int:
        line = self.line(path)
        first_chain = (*chain, Use(path, use.first_block, _copy_name(use, 0, chain), line, use.name))
        if not self.can_enter(use.first_block, path, chain, first_chain):
            return 1
        first = self.size(use.first_block, use.first_params, first_chain, budget)
        if (use.repeat or 1) == 1 or first > budget:
            self.cut = self.cut or (use.repeat or 1) > 1
            return first
        rest_chain = (*chain, Use(path, use.block, _copy_name(use, 1, chain), line, use.name))
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

    # Making the layers ----------------------------------------------------------------------------------

    def run(self, layers: list) -> list[dict]:
        """The top-level layers with every use replaced by its layers; problems (and the bounds) first."""
        total = 0
        for index, item in enumerate(layers):
            if not _is_use(item):
                total += 1
                continue
            path = self.current = ("layers", index)
            try:
                use = self.resolve(item, path, ())
            except Failed:
                continue
            self.cut = False
            size = self.use_size(use, path, (), MAX_LAYERS - total)
            if total + size > MAX_LAYERS:
                self.problem("NS133", _too_many(use, size, total, exact=not self.cut), path)
                self.raise_problems()  # nothing past the bound is made
            total += size
        self.raise_problems()
        self.check_top_level_names(layers)
        outputs: dict[str, str] = {}  # a use's name → its last layer's
        made_by: dict[str, int] = {}  # a layer name a use made → the use's index in `layers`
        for index, item in enumerate(layers):
            path = self.current = ("layers", index)
            if not _is_use(item):
                name = _written_name(item)
                if name in made_by:  # said here: the spec would give an expanded index
                    use = layers[made_by[name]]
                    message = (
                        f"name {name!r} is already the name of a layer made by layers[{made_by[name]}] (the use of "
                        f"{use['block']!r} named {use['name']!r}); give this layer another name"
                    )
                    self.problem("NS121", message, (*path, "name"))
                    continue
                self.add(_renamed(item, outputs), Origin(path))
                continue
            use = self.resolve(item, path, ())
            given = outputs.get(use.inputs, use.inputs) if use.inputs is not None else None
            if given is not None and given not in self.names:
                close = closest(given, [*self.names, *outputs])
                hint = f"did you mean {close!r}?" if close else "name a layer or use above it, or input"
                self.problem("NS127", f"{given!r} names no layer above this use; {hint}", (*path, "inputs"))
                continue
            before = len(self.out)
            outputs[use.name] = self.make_use(use, path, (), given or self.previous(), given is not None)
            for layer in self.out[before:]:
                if (made := _written_name(layer)) is not None:
                    made_by.setdefault(made, index)
        self.raise_problems()
        return self.out

    def add(self, layer: Any, origin: Origin) -> None:
        self.out.append(layer)
        self.origins.append(origin)
        self.names.add(self.previous())

    def previous(self) -> str:
        """The name of the layer made last (what a layer without `inputs` reads), as the spec will call it."""
        if not self.out:
            return NETWORK_INPUT
        layer, index = self.out[-1], len(self.out) - 1
        name = _written_name(layer)
        if name is not None:
            return name
        kind = layer.get("type") if isinstance(layer, dict) else None
        return f"{kind}_{index}"  # the name the spec gives a layer without one

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
            name = _written_name(item)
            if name is None:
                continue
            copies = _numbered_copies(item)
            if name in first and (_is_use(item) or _is_use(layers[first[name]])):
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

    def make_use(self, use: Resolved, path: tuple, chain: tuple[Use, ...], input_name: str, given: bool) -> str:
        """Add the layers of every copy of `use`, the first reading `input_name`; returns the last one's name."""
        line = self.line(path)
        for i in range(use.repeat or 1):
            block, params = (use.first_block, use.first_params) if i == 0 else (use.block, use.params)
            copy = _copy_name(use, i, chain)
            inputs_path = (*path, "inputs") if given and i == 0 else None
            inner = (*chain, Use(path, block, copy, line, use.name))
            input_name = self.make_copy(block, params, copy, inner, input_name, inputs_path)
        return input_name

    def make_copy(
        self, name: str, params: dict, copy: str, chain: tuple[Use, ...], input_name: str, inputs_path: tuple | None
    ) -> str:
        """Add the layers of one copy of block `name`; returns the name of its last layer (its output)."""
        layers = self.blocks[name]["layers"]
        # Every layer's name is known before any is made: one listed later is then said to be out of order.
        local = {local_name(item, i): f"{copy}.{local_name(item, i)}" for i, item in enumerate(layers)}
        local[NETWORK_INPUT] = input_name
        for index, item in enumerate(layers):
            path = ("blocks", name, "layers", index)
            item = self.substituted(item, params, name, path, chain)
            if _is_use(item):
                use = self.resolve(item, path, chain)
                given = local.get(use.inputs, use.inputs) if use.inputs is not None else None
                previous = input_name if index == 0 else self.previous()
                local[use.name] = self.make_use(use, path, chain, given or previous, given is not None)
                continue
            layer = _renamed({**item, "name": local[local_name(item, index)]}, local)
            origin_inputs = None
            if "inputs" not in item and index == 0 and self.previous() != input_name:
                layer["inputs"] = input_name  # the block reads something other than the layer just before
                origin_inputs = inputs_path
            self.spend(self.count(layer))  # pydantic reads every copy
            self.add(layer, Origin(path, chain, origin_inputs))
        return self.previous()


def _too_many(use: Resolved, size: int, before: int, exact: bool) -> str:
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
    """The numbers of a top-level use's copies when it gives `repeat` (checked already, as `start`), else None."""
    if not _is_use(item) or "repeat" not in item:
        return None
    start = item.get("start", 0)
    return range(start, start + item["repeat"])


def _copy_name(use: Resolved, i: int, chain: tuple[Use, ...]) -> str:
    prefix = f"{chain[-1].copy}.{use.name}" if chain else use.name
    return f"{prefix}.{use.start + i}" if use.repeat is not None else prefix


def _renamed(item: Any, names: dict[str, str]) -> Any:
    """The layer with the names its `inputs` gives read through `names` (a block's own, or uses' outputs)."""
    if not isinstance(item, dict) or "inputs" not in item:
        return item
    inputs = item["inputs"]
    if isinstance(inputs, str):
        return {**item, "inputs": names.get(inputs, inputs)}
    if isinstance(inputs, list):
        return {**item, "inputs": [names.get(n, n) if isinstance(n, str) else n for n in inputs]}
    return item
