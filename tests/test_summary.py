"""The summary table (netspec.summary): rows and totals counted by hand, and no array made."""

from __future__ import annotations

import tracemalloc

import numpy as np

import netspec
from netspec.summary import LayerRow, classes_line, summarise

from conftest import VALID


def test_rows_and_totals_are_the_layers_counted_by_hand(write_spec):
    spec = write_spec(
        "netspec: 1\nname: small\nclasses: [a, b]\ninput: {image: {width: 4, height: 4, color: grayscale}}\n"
        "layers:\n"
        "  - {name: conv, type: conv2d, filters: 2, kernel: 3, activation: relu}\n  - {name: norm, type: batchnorm}\n"
        "  - {name: flat, type: flatten}\n  - {name: out, type: dense, neurons: 2, activation: softmax}\n"
    )
    summary = netspec.load(spec).summary()
    # conv: 2 filters × 3 × 3 + 2 biases = 20; no padding, so 2 × 2 outputs × 2 filters × 9 = 72 multiply-adds.
    # norm: scale, shift, mean and var of 2 channels = 8, of which mean and var (4) are running statistics;
    # one multiply-add per value (8). out: 2 × 8 inputs + 2 = 18, and 16 multiply-adds.
    assert summary.rows == [
        LayerRow("input", "image", (1, 4, 4), 0, 0),
        LayerRow("conv", "conv2d", (2, 2, 2), 20, 72, "relu", ("input",)),
        LayerRow("norm", "batchnorm", (2, 2, 2), 8, 8, "linear", ("conv",)),
        LayerRow("flat", "flatten", (8,), 0, 0, "", ("norm",)),
        LayerRow("out", "dense", (2,), 18, 16, "softmax", ("flat",)),
    ]
    assert not summary.graph
    assert (summary.params, summary.trainable_params, summary.non_trainable_params) == (46, 42, 4)
    assert (summary.multiply_adds, summary.input_values, summary.dtype) == (96, 16, np.dtype("float32"))


def test_the_text_is_the_table_netspec_summary_prints(write_spec):
    summary = summarise(netspec.read_spec(write_spec(VALID))[0])
    header = "Layer   Type      Output shape  Params  Mult-adds  Activation"
    rule = "─" * len(header)
    assert str(summary) == (
        f"tiny\nclasses: cat, dog\n{rule}\n{header}\n{rule}\n"
        "input   features  (3,)               0          0\n"
        "hidden  dense     (4,)              16         12  relu\n"
        "output  dense     (2,)              10          8  softmax\n"
        f"{rule}\n"
        "Total params: 26 (104 B as float32)\nTrainable params: 26\nNon-trainable params: 0\n"
        "Mult-adds per input: 20\nInput values per sample: 3"
    )


def test_a_spec_too_large_for_memory_is_summarised_without_arrays(write_spec):
    spec = write_spec(
        "netspec: 1\nclasses: [a, b]\ninput: {features: 100000}\nlayers:\n"
        "  - {name: huge, type: dense, neurons: 100000}\n  - {name: out, type: dense, neurons: 2}\n"
    )
    parsed = netspec.read_spec(spec)[0]
    tracemalloc.start()
    summary = summarise(parsed)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert summary.params == 100_000 * 100_000 + 100_000 + 2 * 100_000 + 2  # 40 GB of float32 were it made
    assert peak < 20_000_000


def test_a_long_list_of_classes_shows_its_first_labels_and_a_count():
    labels = [f"class number {i}" for i in range(1000)]
    assert classes_line(["cat", "dog"]) == "classes: cat, dog"
    # "classes (1,000): " (17) + 4 labels of 14 and their 3 commas (62) + ", … (996 more)" (14) = 93 characters;
    # a fifth label would make it 109, past the 100 allowed.
    line = classes_line(labels)
    assert line == "classes (1,000): class number 0, class number 1, class number 2, class number 3, … (996 more)"


def test_a_graphs_table_says_what_each_layer_reads(write_spec):
    spec = write_spec(
        "netspec: 1\nname: skip\nclasses: [a, b]\ninput: {features: 3}\nlayers:\n"
        "  - {name: h1, type: dense, neurons: 3, activation: relu}\n"
        "  - {name: h2, type: dense, neurons: 3}\n"
        "  - {name: sum, type: add, inputs: [h2, input], activation: relu}\n"
        "  - {name: out, type: dense, neurons: 2}\n"
    )
    summary = netspec.load(spec).summary()
    assert summary.graph and summary.rows[3] == LayerRow("sum", "add", (3,), 0, 0, "relu", ("h2", "input"))
    header = "Layer  Type      Output shape  Params  Mult-adds  Activation  Connected to"
    rule = "─" * len(header)
    assert str(summary).split("\n")[2:10] == [
        rule,
        header,
        rule,
        "input  features  (3,)               0          0",
        "h1     dense     (3,)              12          9  relu        input",
        "h2     dense     (3,)              12          9  linear      h1",
        "sum    add       (3,)               0          0  relu        h2, input",
        "out    dense     (2,)               8          6  linear      sum",
    ]
