"""The graph a spec's layers make: what each layer reads, the rules it keeps, and the order values are freed in.

Layers are listed so that each reads only layers above it (as ONNX and Caffe require), so the
spec's order is already a topological order: running the layers in it is running the graph.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from netspec.errors import Problem, plural
from netspec.layers import KINDS
from netspec.layers.common import NETWORK_INPUT
from netspec.validation import closest

INPUT = NETWORK_INPUT
"""The name layers read the network's input by."""


def input_names(layers: Sequence[Any]) -> list[list[str]]:
    """The names each layer reads, in order: its `inputs`, else the layer before it (the input for the first)."""
    previous, found = INPUT, []
    for layer in layers:
        given = getattr(layer, "inputs", None)  # every layer model has it (LayerBase); a test's own kind may not
        found.append([previous] if given is None else [given] if isinstance(given, str) else list(given))
        previous = layer.name
    return found


def is_chain(nodes: Sequence[Any]) -> bool:
    """Whether every node reads just the one before it (the first, the input): a plain chain."""
    previous = INPUT
    for node in nodes:
        if node.inputs != [previous]:
            return False
        previous = node.name
    return True


def problems(layers: Sequence[Any]) -> Iterator[Problem]:
    """What is wrong with the graph the layers make: each input named must be a layer listed above the
    reader (or the input), each layer must read as many inputs as its kind takes, and every layer but
    the last (the output) must be read by some layer.
    """
    index_of: dict[str, int] = {}
    for index, layer in enumerate(layers):
        index_of.setdefault(layer.name, index)
    reads = input_names(layers)
    read: set[str] = set()
    names_wrong = False
    for index, layer in enumerate(layers):
        given = getattr(layer, "inputs", None)
        for at, name in enumerate(reads[index]):
            where = ("layers", index, "inputs", *((at,) if isinstance(given, list) else ()))
            if given is None or name == INPUT:
                read.add(name)
                continue
            found = index_of.get(name)
            if found is None:
                names_wrong = True
                yield Problem("NS127", _unknown(layer.name, name, [above.name for above in layers[:index]]), where)
            elif found >= index:
                names_wrong = True
                yield Problem("NS128", _later(layers, reads, index, found), where)
            else:
                read.add(name)
        yield from _count_problems(layer, index, reads[index])
        if layer.name == INPUT:
            written = [getattr(other, "inputs", None) is not None for other in layers]
            readers = [other.name for names, other, w in zip(reads, layers, written) if w and INPUT in names]
            if readers:
                message = (
                    f"layer name 'input' is also the name of the network's input, which layer {readers[0]!r} "
                    "reads by `inputs: input`; give the layer another name"
                )
                yield Problem("NS121", message, ("layers", index, "name"))
    if names_wrong:  # a misspelt input also leaves the layer meant unread: the first message says enough
        return
    for index, layer in enumerate(layers[:-1]):
        if layer.name not in read:
            yield Problem(
                "NS129",
                f"no layer reads the output of layer {layer.name!r}; only the last layer (the output) may be "
                f"left unread: name {layer.name!r} in the inputs of a layer below it, or remove it",
                ("layers", index),
            )


def _unknown(reader: str, name: str, above: list[str]) -> str:
    """An input that names no layer: said with the name most likely meant."""
    close = closest(name, [*above, INPUT])
    hint = f"did you mean {close!r}?" if close else "name a layer listed above it, or input (the network's input)"
    return f"layer {reader!r} reads {name!r}, which is not the name of any layer; {hint}"


def _later(layers: Sequence[Any], reads: list[list[str]], index: int, found: int) -> str:
    """An input listed at or after its reader: a layer reading itself, a cycle, or one listed out of order."""
    reader, name = layers[index].name, layers[found].name
    if found == index:
        return f"layer {reader!r} reads itself; a layer reads only layers listed above it"
    if _reaches(layers, reads, found, reader):
        return (
            f"layer {reader!r} reads {name!r}, which reads {reader!r} in turn: a cycle; "
            "a layer reads only layers listed above it, so one of the two must read something else"
        )
    return f"layer {reader!r} reads {name!r}, which is listed after it; list {name!r} before {reader!r}"


def _reaches(layers: Sequence[Any], reads: list[list[str]], start: int, target: str) -> bool:
    """Whether layer `start` reads `target`, directly or through other layers (each name's first layer)."""
    index_of: dict[str, int] = {}
    for index, layer in enumerate(layers):
        index_of.setdefault(layer.name, index)
    seen, todo = set(), [start]
    while todo:
        at = todo.pop()
        for name in reads[at]:
            if name == target:
                return True
            if name in index_of and name not in seen:
                seen.add(name)
                todo.append(index_of[name])
    return False


def _count_problems(layer: Any, index: int, names: list[str]) -> Iterator[Problem]:
    """A layer given more or fewer inputs than its kind reads."""
    kind = KINDS[layer.type]
    least, most = kind.min_inputs, kind.max_inputs
    count = len(names)
    if least <= count and (most is None or count <= most):
        return
    listed = ", ".join(repr(name) for name in names)
    given = getattr(layer, "inputs", None)
    where = ("layers", index, "inputs") if given is not None else ("layers", index)
    if most == 1:
        message = (
            f"{layer.type} layer {layer.name!r} reads {plural(count, 'input')} ({listed}), but a {layer.type} "
            "layer reads one; merge them first with an add or concat layer, or name one"
        )
    else:
        takes = "exactly two" if most == 2 else "two or more"
        got = f"only the layer before it ({listed})" if given is None else f"{plural(count, 'input')} ({listed})"
        example = ", ".join([*names[:most], "..."][: most or 3])
        message = (
            f"{layer.type} layer {layer.name!r} reads {got}, but {layer.type} merges {takes} inputs; "
            f"list the layers it merges: inputs: [{example}]"
        )
    yield Problem("NS130", message, where)


def last_readers(nodes: Sequence[Any]) -> dict[str, int]:
    """For each value (the input and each node's output), the index of the last node that reads it."""
    last: dict[str, int] = {}
    for index, node in enumerate(nodes):
        for name in node.inputs:
            last[name] = index
    return last


def schedule(nodes: Sequence[Any]) -> list[tuple[list[str], str, list[str]]]:
    """For each node in order: the names it reads, the name of its output, and the values no node needs
    once it has run (so that a forward pass holds only what is still to be read: its widest point)."""
    freed: list[list[str]] = [[] for _ in nodes]
    for name, index in last_readers(nodes).items():
        freed[index].append(name)
    return [(list(node.inputs), node.name, freed[index]) for index, node in enumerate(nodes)]


def needs_input_grads(nodes: Sequence[Any]) -> list[bool]:
    """For each node, whether some node it reads from (directly or not) has parameters: only then is
    the gradient of its inputs worth computing (layers below every learning layer do no needless work)."""
    learns_up_to: dict[str, bool] = {INPUT: False}  # whether a value depends on some parameter
    needed = []
    for node in nodes:
        upstream = any(learns_up_to[name] for name in node.inputs)
        needed.append(upstream)
        learns_up_to[node.name] = upstream or bool(node.params or node.param_shapes)
    return needed
