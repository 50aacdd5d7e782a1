"""The node record: one per layer, planned (what it reads, its shapes) and then filled with arrays."""

from __future__ import annotations

import pickle

import numpy as np

import netspec
from netspec.builder import plan
from netspec.node import Node

SPEC = """\
netspec: 1
classes: [a, b]
input: {image: {width: 6, height: 6, color: grayscale}}
layers:
  - {name: conv, type: conv2d, filters: 2, kernel: 3, activation: relu}
  - {name: pool, type: maxpool2d, size: 2}
  - {name: flat, type: flatten}
  - {name: output, type: dense, neurons: 2, activation: softmax}
"""


def test_planned_nodes_know_their_inputs_and_shapes_and_hold_no_arrays_yet(write_spec):
    spec, _ = netspec.read_spec(write_spec(SPEC))
    nodes = plan(spec)
    assert all(isinstance(node, Node) and node.params == {} for node in nodes)
    assert [node.inputs for node in nodes] == [["input"], ["conv"], ["pool"], ["flat"]]
    assert [node.input_shapes for node in nodes] == [[(1, 6, 6)], [(2, 4, 4)], [(2, 2, 2)], [(8,)]]
    assert [node.output_shape for node in nodes] == [(2, 4, 4), (2, 2, 2), (8,), (2,)]
    assert nodes[0].param_shapes == {"weights": (2, 1, 3, 3), "bias": (2,)}
    assert (nodes[3].param_count, nodes[3].multiply_adds) == (18, 16)


def test_a_networks_layers_are_the_planned_nodes_filled_with_arrays(write_spec):
    network = netspec.load(write_spec(SPEC))
    conv = network.layers[0]
    assert isinstance(conv, Node)
    assert (conv.name, conv.type, conv.spec.filters, conv.inputs) == ("conv", "conv2d", 2, ["input"])
    assert (conv.input_shape, conv.input_shapes, conv.output_shape) == ((1, 6, 6), [(1, 6, 6)], (2, 4, 4))
    assert conv.params["weights"].shape == (2, 1, 3, 3)
    x = np.random.default_rng(0).random((3, 1, 6, 6), dtype=np.float32)
    y, backprop = conv.forward(x)
    dx, grads = backprop(np.ones_like(y))
    assert (y.shape, dx.shape, set(grads)) == ((3, 2, 4, 4), x.shape, {"weights", "bias"})
    again = pickle.loads(pickle.dumps(network))
    assert again.layers[0].inputs == ["input"]
    np.testing.assert_array_equal(again.forward(x), network.forward(x))


def test_the_planner_records_which_nodes_read_an_image_flattened(write_spec):
    reads_image = SPEC.replace(
        "layers:\n", "layers:\n  - {name: first, type: dense, neurons: 4}\n  - {name: back, type: dense, neurons: 2}\n"
    ).split("  - {name: conv")[0]
    nodes = plan(netspec.read_spec(write_spec(reads_image))[0])
    assert [(node.name, node.flattened, node.input_shape) for node in nodes] == [
        ("first", True, (1, 6, 6)),
        ("back", False, (4,)),
    ]
    assert not any(node.flattened for node in plan(netspec.read_spec(write_spec(SPEC, "cnn.yaml"))[0]))
