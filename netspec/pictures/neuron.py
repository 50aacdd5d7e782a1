"""One neuron's weights as a picture: laid out as the image it reads, or its output as a line or map."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from netspec.errors import Problem, SpecError
from netspec.layers.activations import ACTIVATIONS
from netspec.layers.common import alpha_of
from netspec.pictures.canvas import DIVERGING, NEGATIVE, POSITIVE, pyplot

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
        choices = ", ".join(f"{layer.name}:0" for layer in network.layers if "weights" in layer.params)
        raise SpecError(Problem("NS603", f"--neuron {address!r} names no neuron; write LAYER:INDEX, e.g. {choices}"))
    layer = layers[name]
    if "weights" not in layer.params:
        raise SpecError(
            Problem("NS603", f"layer {name} ({layer.type}) has no weights to draw; choose a dense or conv2d layer")
        )
    count = len(layer.params["weights"])
    if int(index) >= count:
        raise SpecError(Problem("NS603", f"layer {name} has {count} neurons (0 to {count - 1}); got {index}"))
    return layer, int(index)


def draw(network: Network, address: str):
    """A figure of one neuron: what it looks for (image weights), or what it computes (1 or 2 inputs)."""
    plt = pyplot()
    layer, index = find(network, address)
    weights, bias = layer.params["weights"][index], float(layer.params["bias"][index])
    activation = getattr(layer.spec, "activation", "linear")
    title = f"{network.spec.name}: neuron {index} of {layer.name} ({layer.type}, {activation}), bias {bias:.3g}"
    image = network.spec.input.image
    if layer.type == "conv2d" or (image is not None and layer is network.layers[0] and layer.type == "dense"):
        shaped = weights.reshape(network.input_shape if layer.type == "dense" else weights.shape)
        return _as_images(plt, shaped, title, layer.type == "conv2d")
    if weights.size == 1:
        return _line(plt, float(weights[0]), bias, activation, layer, title)
    if weights.size == 2:
        return _surface(plt, weights, bias, activation, layer, title)
    figure, ax = plt.subplots(figsize=(max(6, weights.size * 0.25), 3.5))
    colours = [POSITIVE if w >= 0 else NEGATIVE for w in weights]
    ax.bar(range(weights.size), weights, color=colours)
    ax.set(title=title, xlabel="input", ylabel="weight")
    ax.axhline(0, color="#333333", linewidth=0.8)
    return figure


def _as_images(plt, weights: np.ndarray, title: str, kernel: bool):
    from matplotlib.ticker import MaxNLocator  # matplotlib is loaded by now (pyplot() above)

    channels = weights.shape[0]
    names = [f"channel {c}" for c in range(channels)]
    if not kernel:
        names = {1: ["gray"], 3: ["red", "green", "blue"]}.get(channels, names)
    limit = float(np.abs(weights).max()) or 1.0
    figure, axes = plt.subplots(1, channels, figsize=(3.4 * channels + 1.6, 3.9), squeeze=False, layout="constrained")
    for ax, plane, name in zip(axes[0], weights, names):
        shown = ax.imshow(plane, cmap=DIVERGING, vmin=-limit, vmax=limit)
        ax.set(title=name, xlabel="column", ylabel="row")
        for axis in (ax.xaxis, ax.yaxis):  # rows and columns are whole numbers: no ticks between pixels
            axis.set_major_locator(MaxNLocator(integer=True))
    figure.colorbar(shown, ax=axes[0].tolist(), label="weight (purple pushes the output up, orange down)")
    figure.suptitle(title + ("\nthe filter's kernel" if kernel else "\nits weights laid out as the image it reads"))
    return figure


def _output(z: np.ndarray, activation: str, layer) -> np.ndarray:
    alpha = alpha_of(layer.spec)
    if activation == "softmax":  # a single neuron's softmax needs the others; show its input instead
        return z
    return ACTIVATIONS[activation].forward(z, alpha)


def _line(plt, weight: float, bias: float, activation: str, layer, title: str):
    x = np.linspace(-3, 3, 301)
    figure, ax = plt.subplots(figsize=(6, 4))
    ax.plot(
        x,
        weight * x + bias,
        color="#999999",
        linestyle="--",
        label=f"Weight·Input + Bias = {weight:.3g}·x + {bias:.3g}",
    )
    ax.plot(
        x, _output(weight * x + bias, activation, layer), color=POSITIVE, linewidth=2, label=f"Output ({activation})"
    )
    ax.set(title=title, xlabel="input x", ylabel="output")
    ax.axhline(0, color="#333333", linewidth=0.6)
    ax.legend(fontsize=8)
    return figure


def _surface(plt, weights: np.ndarray, bias: float, activation: str, layer, title: str):
    grid = np.linspace(-3, 3, 121)
    x1, x2 = np.meshgrid(grid, grid)
    output = _output(weights[0] * x1 + weights[1] * x2 + bias, activation, layer)
    figure, ax = plt.subplots(figsize=(5.5, 4.5))
    shown = ax.imshow(output, extent=(-3, 3, -3, 3), origin="lower", cmap="viridis")
    ax.set(
        title=f"{title}\nOutput = {activation}({weights[0]:.3g}·x1 + {weights[1]:.3g}·x2 + {bias:.3g})",
        xlabel="input x1",
        ylabel="input x2",
    )
    figure.colorbar(shown, ax=ax, label="output")
    return figure
