"""Where each layer of an expanded spec was written, and the source that shows problems there."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from netspec.errors import Problem
from netspec.yaml_source import Source


@dataclass(frozen=True)
class Use:
    """One use of a block on the way to an expanded layer."""

    path: tuple[str | int, ...]
    """Where the use is written: ("layers", 3) at top level, ("blocks", "basic_down", "layers", 4) in a block."""
    block: str
    """The block this copy is made of (the use's `first: {block: ...}` for its first copy)."""
    copy: str
    """The copy's name, the prefix of its layers' names: "layer2.0", or "layer2.0.downsample"."""
    line: int | None
    """The line the use is written on (None for a spec made in code)."""

    def __str__(self) -> str:
        line = f", line {self.line}" if self.line is not None else ""
        return f"{Problem('', '', self.path).dotted_path} (use of {self.block!r}, copy {self.copy}{line})"


def via(uses: tuple[Use, ...]) -> str:
    """The uses as a problem shows them before its path: "layers[1] (use of 'basic', ...) → "."""
    return "".join(f"{use} → " for use in uses)


@dataclass(frozen=True)
class Origin:
    """Where one layer of the expanded spec was written."""

    path: tuple[str | int, ...]
    """Its definition: ("layers", 5) for a layer written at top level, ("blocks", "basic", "layers", 0) in a block."""
    uses: tuple[Use, ...] = ()
    """The uses that made it, outermost first; empty for a layer written at top level."""
    inputs: tuple[str | int, ...] | None = None
    """Where its `inputs` were given when a use gave them (the use's own `inputs`), not its definition."""


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
            problem = replace(problem, path=where, via=via(origin.uses))
        return super().locate(problem, key)
