"""The exception family: where each kind of problem is raised, and how a problem without its place gets one."""

from __future__ import annotations

import sys

import pytest

import netspec
from netspec.errors import DataError, MissingExtra, NetspecError, Problem, SpecError, Unlocated

from conftest import where


def test_a_missing_onnx_is_a_missing_extra_not_a_spec_error(monkeypatch):
    from netspec.interop.export import onnx_module

    monkeypatch.setitem(sys.modules, "onnx", None)  # as if it were not installed
    with pytest.raises(MissingExtra) as raised:
        onnx_module()
    assert isinstance(raised.value, NetspecError) and not isinstance(raised.value, SpecError)
    assert [str(p) for p in raised.value.problems] == [
        "NS501 ONNX support needs the onnx package: pip install 'onnx>=1.16' 'onnxruntime>=1.18' (netspec's onnx extra)"
    ]


def test_a_missing_matplotlib_is_a_missing_extra(monkeypatch):
    from netspec.pictures.canvas import pyplot

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(MissingExtra) as raised:
        pyplot()
    assert [p.code for p in raised.value.problems] == ["NS601"]


def test_data_error_lives_with_the_other_errors():
    from netspec.train.data import DataError as from_data

    assert netspec.DataError is DataError is from_data
    assert issubclass(DataError, NetspecError)


def test_an_unlocated_problem_is_placed_under_the_path_of_what_raised_it():
    found = Unlocated("NS126", "does not fit", ("kernel",))
    assert found.at(("layers", 2)) == Problem("NS126", "does not fit", ("layers", 2, "kernel"))
    assert found.at(("layers", 2), "layer c: does not fit").message == "layer c: does not fit"


def test_a_kinds_shape_problem_is_located_at_its_layer_and_field(problems):
    text = """\
        netspec: 1
        classes: [a, b]
        input: {image: {width: 4, height: 4, color: grayscale}}
        layers:
          - {name: c, type: conv2d, filters: 2, kernel: 5}
          - {type: flatten}
          - {type: dense, neurons: 2}
        """
    assert problems(text) == [
        f"{where(text, 'kernel: 5', '5')}: NS126 layers[0].kernel: layer c: a 5×5 kernel does not fit the 4×4 input "
        "(try padding: same or a smaller kernel)"
    ]
