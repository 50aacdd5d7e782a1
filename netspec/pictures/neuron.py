"""One neuron's weights as a picture: laid out as the image it reads, or its output as a line or map."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from netspec.errors import Problem, SpecError
from netspec.layers import KINDS
from netspec.layers.activations import ACTIVATIONS
from netspec.layers.common import alpha_of
from netspec.pictures.canvas import DIVERGING, NEGATIVE, NEUTRAL, POSITIVE, pyplot

if TYPE_CHECKING:
    from netspec.network import Network


def find(network: Network, address: str):
    """The layer and neuron index that `LAYER:INDEX` names.

    Raises:
        SpecError: no such layer, a layer without neurons, or an index out of range (NS603).
    """
    name, _, index = address.rpartition(":")
    layers = {layer.name: layer for layer in network.layers}
    if name not in layers or not index.isdecimal():
        choices = ", ".join(f"{layer.name}:0" for layer in network.layers if layer.kind.neurons)
        raise SpecError(Problem("NS603", f"--neuron {address!r} names no neuron; write LAYER:INDEX, e.g. {choices}"))
    layer = layers[name]
    if not layer.kind.neurons:
        drawn = " or ".join(tag for tag, kind in KINDS.items() if kind.neurons)
        raise SpecError(Problem("NS603", f"layer {name} ({layer.type}) has no weights to draw; choose a {drawn} layer"))
    count = len(layer.params["weights"])
    if int(index) >= count:
        raise SpecError(Problem("NS603", f"layer {name} has {count} neurons (0 to {count - 1}); got {index}"))
    return layer, int(index)


MOST_BARS = 64
"""Inputs drawn one bar each; a larger fan that is not image-shaped is summarised."""
MOST_PANELS = 64
"""Channels drawn one map each; a neuron reading more channels is summarised."""
TOP = 16
"""Largest weights listed in a summary."""
WIDEST = 13.0
"""Widest figure in inches (about 1,600 px at the 120 dpi pictures are saved at), however large the fan."""


def draw(network: Network, address: str):
    """A figure of one neuron: what it looks for (image weights), or what it computes (1 or 2 inputs).

    Inputs, neurons and channels are numbered from 0 everywhere, as `--neuron LAYER:INDEX` counts.
    """
    plt = pyplot()
    layer, index = find(network, address)
    weights = layer.params["weights"][index]
    bias = float(layer.params["bias"][index]) if "bias" in layer.params else None  # none with use_bias: false
    activation = layer.kind.activation(layer.spec)
    said = "no bias" if bias is None else f"bias {bias:.3g}"
    title = f"{network.spec.name}: neuron {index} of {layer.name} ({layer.type}, {activation}), {said}"
    if layer.kind.neurons == "kernel":
        # A filter of a grouped convolution reads its own group's channels only: number them as the input does.
        groups = getattr(layer.spec, "groups", 1)
        first = index // (len(layer.params["weights"]) // groups) * len(weights)
        names = [f"channel {first + c}" for c in range(len(weights))]
        what = "one map per input channel" + (" of its group" if groups > 1 else "")
        return _as_images(plt, weights, title, f"the filter's kernel, {what}", names)
    reads, source = _read_shape(network, layer)
    if len(reads) == 3:
        shaped = weights.reshape(reads)
        if source is None:  # the input image itself
            names = {1: ["gray"], 3: ["red", "green", "blue"]}.get(reads[0])
            return _as_images(plt, shaped, title, "its weights laid out as the image it reads", names)
        return _as_images(plt, shaped, title, f"its weights laid out as the output of {source} it reads", None)
    if weights.size == 1:
        return _line(plt, float(weights[0]), bias, activation, layer, title)
    if weights.size == 2:
        return _surface(plt, weights, bias, activation, layer, title)
    if weights.size > MOST_BARS:
        return _summary(plt, weights, title, [f"input {i}" for i in range(weights.size)])
    figure, ax = plt.subplots(figsize=(min(max(6, weights.size * 0.25), WIDEST), 3.5))
    colours = [POSITIVE if w >= 0 else NEGATIVE for w in weights]
    ax.bar(range(weights.size), weights, color=colours)
    ax.set(title=title, xlabel="input", ylabel="weight")
    ax.axhline(0, color="#333333", linewidth=0.8)
    return figure


def _read_shape(network: Network, layer) -> tuple[tuple[int, ...], str | None]:
    """The shape of what a dense layer reads, before any flatten, and the layer that made it (None: the input).

    A dense layer reading a flatten of an image (or of a conv layer's maps) has one weight per pixel
    of each channel, in the flatten's order: reshaped, they are the picture the neuron looks for.
    """
    if layer.flattened:  # the input image itself
        return layer.input_shape, None
    # Walk back along what each layer reads (its first input), not the list: in a graph spec the layer
    # listed above may be on another branch.
    by_name = {node.name: node for node in network.layers}
    shape, source = layer.input_shape, by_name.get(layer.inputs[0])  # None: the network's input
    # Layers that keep each value where it was (dropout, batchnorm) leave the flatten before them in charge.
    while source is not None and source.kind.passes == "elementwise":
        source = by_name.get(source.inputs[0])
    if source is not None and source.kind.passes == "reshape":
        shape, source = source.input_shape, by_name.get(source.inputs[0])
    return shape, (source.name if source is not None else None)


def _as_images(plt, weights: np.ndarray, title: str, what: str, names: list[str] | None):
    """One map per channel, in a grid no wider than WIDEST; past MOST_PANELS channels, a summary."""
    from matplotlib.ticker import MaxNLocator  # matplotlib is loaded by now (pyplot() above)

    channels, height, width = weights.shape
    if channels > MOST_PANELS:
        spots = [f"channel {c}, row {r}, column {q}" for c, r, q in np.ndindex(weights.shape)]
        what = f"{channels} maps of {height}×{width} weights: more than {MOST_PANELS} to draw one by one"
        return _summary(plt, weights.ravel(), f"{title}\n{what}", spots)
    names = names or [f"channel {c}" for c in range(channels)]
    columns = min(channels, max(8, int(np.ceil(np.sqrt(2 * channels)))))
    rows = int(np.ceil(channels / columns))
    panel = min(3.4, (WIDEST - 1.6) / columns)  # inches per map; the colour bar takes the rest
    small = columns > 4
    figure, axes = plt.subplots(
        rows,
        columns,
        figsize=(panel * columns + 1.6, rows * (panel * min(height / width, 2) + (0.35 if small else 0.8)) + 0.8),
        squeeze=False,
        layout="constrained",
    )
    limit = float(np.abs(weights).max()) or 1.0
    for k, ax in enumerate(axes.flat):
        if k >= channels:
            ax.axis("off")
            continue
        shown = ax.imshow(weights[k], cmap=DIVERGING, vmin=-limit, vmax=limit)
        ax.set_title(names[k], fontsize=8 if small else None)
        if small:  # a grid of maps: the numbers would crowd them; the first one says what the axes are
            ax.set_xticks([])
            ax.set_yticks([])
        else:
            ax.set(xlabel="column", ylabel="row")
            for axis in (ax.xaxis, ax.yaxis):  # rows and columns are whole numbers: no ticks between pixels
                axis.set_major_locator(MaxNLocator(integer=True))
    figure.colorbar(shown, ax=axes.ravel().tolist(), label="weight (purple pushes the output up, orange down)")
    grid = f" ({height}×{width} each, rows and columns from 0)" if small else ""
    figure.suptitle(f"{title}\n{what}{grid}")
    return figure


def _summary(plt, weights: np.ndarray, title: str, spots: list[str]):
    """A fan too large to draw weight by weight: how its weights spread, and the largest of them."""
    figure, (spread, top) = plt.subplots(
        1, 2, figsize=(WIDEST, 4.6), gridspec_kw={"width_ratios": [1, 1.2]}, layout="constrained"
    )
    spread.hist(weights, bins=min(60, max(10, weights.size // 20)), color=NEUTRAL)
    spread.axvline(0, color="#333333", linewidth=0.8)
    spread.set(title=f"all {weights.size:,} weights", xlabel="weight", ylabel="inputs")
    largest = np.argsort(-np.abs(weights), kind="stable")[:TOP][::-1]  # the largest at the top
    top.barh(
        [spots[i] for i in largest],
        weights[largest],
        color=[POSITIVE if weights[i] >= 0 else NEGATIVE for i in largest],
    )
    top.axvline(0, color="#333333", linewidth=0.8)
    top.tick_params(axis="y", labelsize=8)
    top.set(title=f"the {len(largest)} largest, by size (counted from 0)", xlabel="weight")
    figure.suptitle(title)
    return figure


def _output(z: np.ndarray, activation: str, layer) -> np.ndarray:
    alpha = alpha_of(layer.spec)
    if activation == "softmax":  # a single neuron's softmax needs the others; show its input instead
        return z
    return ACTIVATIONS[activation].forward(z, alpha)


def formula(weights, bias: float | None) -> str:
    """Weight·Input + Bias written out with the inputs numbered from 0: '0.5·x0 − 2·x1 − 1' (no bias: none)."""
    text = ""
    for i, w in enumerate(weights):
        sign = ("−" if w < 0 else "") if i == 0 else (" − " if w < 0 else " + ")
        text += f"{sign}{abs(float(w)):.3g}·x{i}"
    return text if bias is None else text + (" − " if bias < 0 else " + ") + f"{abs(bias):.3g}"


def _line(plt, weight: float, bias: float | None, activation: str, layer, title: str):
    x = np.linspace(-3, 3, 301)
    z = weight * x + (bias or 0.0)
    figure, ax = plt.subplots(figsize=(6, 4))
    what = "Weight·Input" if bias is None else "Weight·Input + Bias"
    ax.plot(x, z, color="#999999", linestyle="--", label=f"{what} = {formula([weight], bias)}")
    ax.plot(x, _output(z, activation, layer), color=POSITIVE, linewidth=2, label=f"Output ({activation})")
    ax.set(title=title, xlabel="input x0", ylabel="output")
    ax.axhline(0, color="#333333", linewidth=0.6)
    ax.legend(fontsize=8)
    return figure


def _surface(plt, weights: np.ndarray, bias: float | None, activation: str, layer, title: str):
    grid = np.linspace(-3, 3, 121)
    x0, x1 = np.meshgrid(grid, grid)
    output = _output(weights[0] * x0 + weights[1] * x1 + (bias or 0.0), activation, layer)
    figure, ax = plt.subplots(figsize=(5.5, 4.5))
    shown = ax.imshow(output, extent=(-3, 3, -3, 3), origin="lower", cmap="viridis")
    ax.set(
        title=f"{title}\nOutput = {activation}({formula(weights, bias)})",
        xlabel="input x0",
        ylabel="input x1",
    )
    figure.colorbar(shown, ax=ax, label="output")
    return figure
