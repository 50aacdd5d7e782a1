"""Saving (netspec.saving.save): what Network.save and `netspec train -o` both write."""

from __future__ import annotations

import numpy as np
import pytest

import netspec
from netspec.saving import save

SPEC = """\
# Two sides of a line.
netspec: 1
classes: [left, right]   # in output order
input: {features: 2}
seed: 3

layers:
  - {name: out, type: dense, neurons: 2, activation: softmax}
"""


def test_with_its_source_the_spec_keeps_its_comments_and_without_is_written_anew(write_spec, tmp_path):
    network = netspec.load(write_spec(SPEC))
    network.layers[0].params["weights"][...] = [[1.5, -2.0], [0.25, 3.0]]  # as training would change them
    _, source = netspec.read_spec(write_spec(SPEC))
    edited, arrays = save(network, tmp_path / "kept" / "net.yaml", source)
    assert arrays == tmp_path / "kept" / "net.npz"
    # One line is added before `layers:`, set apart by a blank line as the spec sets its sections apart.
    assert edited.read_text() == SPEC.replace(
        "\nlayers:", "\nweights_file: net.npz   # written by netspec train\n\nlayers:"
    )
    anew, _ = save(network, tmp_path / "anew.yaml")
    assert "#" not in anew.read_text()
    api = network.save(tmp_path / "api.yaml")[0].read_text()
    assert api == anew.read_text().replace("weights_file: anew.npz", "weights_file: api.npz")
    for path in (edited, anew):
        np.testing.assert_array_equal(netspec.load(path).layers[0].params["weights"], [[1.5, -2.0], [0.25, 3.0]])
    with pytest.raises(ValueError, match="give a .yaml or .yml path, not"):
        save(network, tmp_path / "net.txt", source)
