"""One layer of a network as the planner sees it and the network runs it: its inputs, shapes and arrays."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from math import prod
from typing import Any

import numpy as np

from netspec.layers import KINDS, Kind

Shape = tuple[int, ...]

INPUT = "input"
"""What a node names as its input when it reads the network's input."""


@dataclass(eq=False)
class Node:
    """One layer: planned from the spec (shapes, what it reads), then filled with its parameter arrays.

    `netspec.builder.plan` makes these with `params` empty; `netspec.build` fills them, and a
    Network's `layers` are these nodes.
    """

    index: int
    """Place in the spec's `layers`."""
    spec: Any
    """The layer's validated spec (a model of netspec.layers, e.g. Dense)."""
    inputs: list[str]
    """Names of the nodes it reads, in order ("input": the network's input): its `inputs`, else the layer before it."""
    input_shapes: list[Shape]
    """Shape of each input (no batch axis), as the nodes it reads give them."""
    output_shape: Shape
    """Shape of one output (no batch axis)."""
    param_shapes: dict[str, Shape]
    """Each parameter's shape, by name."""
    flattened: bool = False
    """Whether it reads its image-shaped input as one vector (a dense layer reading the network's
    input image): the planner decides it, export and pictures read it here."""
    params: dict[str, np.ndarray] = field(default_factory=dict)
    """Parameter arrays by name; empty until the network is built. Changed in place, never replaced."""

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def type(self) -> str:
        return self.spec.type

    @property
    def kind(self) -> Kind:
        """The layer's kind (netspec.layers.KINDS): its math, its shape rules, how it is exported and drawn."""
        return KINDS[self.spec.type]

    @property
    def input_shape(self) -> Shape:
        """The shape of its (first) input."""
        return self.input_shapes[0]

    @property
    def param_count(self) -> int:
        return sum(prod(shape) for shape in self.param_shapes.values())

    @property
    def trainable_count(self) -> int:
        """Parameters learned from gradients (batchnorm's running statistics are not)."""
        not_learned = self.kind.not_learned
        return sum(prod(shape) for name, shape in self.param_shapes.items() if name not in not_learned)

    @property
    def multiply_adds(self) -> int:
        """Multiply-adds for one example."""
        return self.kind.multiply_adds(self.spec, self.input_shapes)

    @property
    def infer(self) -> Callable[..., np.ndarray]:
        """The function giving this layer's output for a batch when running (not training): run(*inputs)."""
        return self.kind.runner(self.spec, self.params)

    def forward(self, x: np.ndarray, train: bool = False, rng: np.random.Generator | None = None):
        """Output for batch `x` of a node reading one input, and the function that pushes gradients back.

        The backprop function returns (the input's gradient, {parameter: gradient}). `train` selects
        training behaviour (dropout active, batch statistics); `rng` draws dropout's masks. A graph
        engine calls `kind.forward` with the list of inputs instead.
        """
        y, backprop = self.kind.forward(self.spec, self.params, [x], train, rng)

        def backprop_one(dy: np.ndarray, preactivation: bool = False, input_grad: bool = True):
            (dx,), grads = backprop(dy, preactivation=preactivation, input_grad=input_grad)
            return dx, grads

        return y, backprop_one
