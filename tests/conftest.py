"""Shared helpers: write a spec into a temporary folder and collect its problems."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

import netspec

VALID = """\
netspec: 1
name: tiny
classes: [cat, dog]
input:
  features: 3
layers:
  - {name: hidden, type: dense, neurons: 4, activation: relu}
  - {name: output, type: dense, neurons: 2, activation: softmax}
"""


@pytest.fixture
def write_spec(tmp_path: Path):
    """Write dedented YAML text to tmp_path/spec.yaml (or another name) and return its path."""

    def write(text: str, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write


@pytest.fixture
def problems(write_spec):
    """The problems netspec finds in a spec text, as strings with the file name shortened to 'spec.yaml'."""

    def find(text: str, **kwargs) -> list[str]:
        path = write_spec(text)
        return [str(p).replace(str(path), "spec.yaml") for p in netspec.check(path, **kwargs)]

    return find


def where(text: str, needle: str, part: str | None = None) -> str:
    """'spec.yaml:LINE:COL' of `part` inside the one occurrence of `needle` in `text` (1-based).

    Tests state the expected location by the text they wrote, independently of netspec's parser.
    """
    text = textwrap.dedent(text)
    assert text.count(needle) == 1, f"{needle!r} must occur once"
    offset = text.index(needle) + (needle.index(part) if part else 0)
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return f"spec.yaml:{line}:{column}"


def numeric_gradient(loss, array) -> np.ndarray:
    """Central differences of loss() with respect to each element of `array` (changed in place, then restored)."""
    numeric = np.zeros_like(array)
    for i in np.ndindex(array.shape):
        keep = array[i]
        array[i] = keep + 1e-6
        up = loss()
        array[i] = keep - 1e-6
        down = loss()
        array[i] = keep
        numeric[i] = (up - down) / 2e-6
    return numeric


def forward_counting_arrays(network, x):
    """network.forward(x), and the most arrays its steps' outputs kept alive at once (a graph's values are
    freed once their last reader ran; an add may write its sum into an input that dies there)."""
    import weakref

    alive: list = []
    most = 0

    def counted(step):
        def run(*inputs):
            nonlocal most
            y = step(*inputs)
            alive.append(weakref.ref(y))
            most = max(most, len({id(ref()) for ref in alive if ref() is not None}))
            return y

        return run

    network._program = [(counted(step), *rest) for step, *rest in network._program]
    return network.forward(x), most
