"""Layer names for an imported graph that a person can read: PyTorch's module paths, or the names netspec wrote.

PyTorch's exporter names each node by the modules it ran in, then the operator:
`/layer1/layer1.0/conv1/Conv` ran in module `layer1.0.conv1`, which its weights name too
(`layer1.0.conv1.weight`). The layer it becomes is named `layer1.0.conv1`, as PyTorch names the
module. A node that a block computes itself (the residual `/layer1/layer1.0/Add`) is named after
the block and what it is: `layer1.0.add`. Every name is a valid layer name and used once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from netspec.layers.common import NAME_PATTERN

_NAME = re.compile(NAME_PATTERN)


def module_path(node_name: str) -> str | None:
    """The module a node of PyTorch's exporter ran in ('layer1.0.conv1' from '/layer1/layer1.0/conv1/Conv');
    '' for a node outside any module ('/Flatten'); None for a name not written that way."""
    if not node_name.startswith("/"):
        return None
    *scopes, _ = node_name[1:].split("/")
    path, outer = "", ""
    for scope in scopes:
        # A Sequential's children are written under its own name ("layer1", then "layer1.0"): not twice.
        own = scope[len(outer) + 1 :] if outer and scope.startswith(outer + ".") else scope
        path, outer = f"{path}.{own}" if path else own, scope
    return path


def blocks(node_names: Iterable[str]) -> set[str]:
    """The module paths that hold other modules: a node computed in one of them is the block's, not a layer's."""
    found: set[str] = set()
    for name in node_names:
        parts = (module_path(name) or "").split(".")
        found.update(".".join(parts[:end]) for end in range(1, len(parts)))
    return found


def layer_name(hint: str, what: str, blocks: set[str], taken: set[str]) -> str | None:
    """A valid name for a layer, not in `taken`, from `hint` (a node's or weights' name); None if it gives none.

    `what` says what the layer is (add, relu, flatten), for a node computed by a block itself or by no
    module ('layer1.0.add', 'flatten'). A name used already gets a number: 'layer1.0.relu_2'.
    """
    path = module_path(hint)
    if path is None:
        name = hint
    elif not path:
        name = what
    else:
        name = f"{path}.{what}" if path in blocks else path
    if not _NAME.fullmatch(name or ""):
        return None
    return unique(name, taken)


def unique(name: str, taken: set[str]) -> str:
    """`name`, or `name_2`, `name_3`... if it is taken."""
    fresh, number = name, 2
    while fresh in taken:
        fresh, number = f"{name}_{number}", number + 1
    return fresh
