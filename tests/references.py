"""Independent implementations the tests compare netspec with: PyTorch's convolution of a netspec layer, and
the mutations the property tests make of a spec document. Imported by tests, never by netspec."""

from __future__ import annotations

import copy


def torch_conv2d(layer, leaves: dict, pads) -> object:
    """PyTorch's output of the conv2d `layer` (activation included) on leaves "x", "weights" and maybe "bias",
    with the input padded by `pads` = (top, bottom, left, right), as netspec pads each side on its own."""
    import torch
    import torch.nn.functional as F

    top, bottom, left, right = pads
    z = F.conv2d(
        F.pad(leaves["x"], (left, right, top, bottom)),
        leaves["weights"],
        leaves.get("bias"),
        stride=tuple(layer.stride),
        dilation=tuple(layer.dilation),
        groups=layer.groups,
    )
    return {"linear": z, "relu": torch.relu(z), "tanh": torch.tanh(z)}[layer.activation]


def mutate(document, place, action, value, name):
    """A copy of `document` with the value at `place` deleted, replaced by `value`, its key renamed `name`
    (where it is a mapping's), or nested in lists four deep."""
    document = copy.deepcopy(document)
    *parents, last = place
    holder = document
    for part in parents:
        holder = holder[part]
    if action == "delete":
        del holder[last]
    elif action == "replace":
        holder[last] = value
    elif action == "rename" and isinstance(holder, dict):
        holder[name] = holder.pop(last)
    elif action == "nest":
        holder[last] = [[[[holder[last]]]]]
    return document
