"""Views of a spec with blocks: `summary` and `draw` show each use of a block as one unit, `--expand` every layer."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_blocks import BLOCKS, FLAT

import netspec
from netspec.cli import main
from netspec.summary import LayerRow
from netspec.units import Unit, units

ROOT = Path(__file__).resolve().parent.parent


def invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output + result.stderr
    return result


@pytest.fixture(autouse=True)
def _close_figures():
    """Figures drawn here are looked at, not kept: closed so that matplotlib holds no more than it should."""
    yield
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


@pytest.fixture
def both(tmp_path) -> tuple[Path, Path]:
    """BLOCKS and its twin written flat by hand (tests/test_blocks.py), each in its own folder."""
    (tmp_path / "blocks").mkdir()
    (tmp_path / "flat").mkdir()
    blocks, flat = tmp_path / "blocks" / "spec.yaml", tmp_path / "flat" / "spec.yaml"
    blocks.write_text(BLOCKS)
    flat.write_text(FLAT)
    return blocks, flat


# Summary -----------------------------------------------------------------------------------------------

# By hand: conv1 4 filters of 3×3×1 = 36 params, 8×8×4 outputs × 9 = 2,304 multiply-adds. A basic copy
# on 4 channels of 8×8: two convs of 4×4×9 = 144 params and 256 outputs × 36 = 9,216, two batch norms of
# 4 × 4 = 16 params and 256; 320 and 18,944 a copy, 640 and 37,888 for layer1. layer2 on 8 channels of
# 4×4 (128 values): basic_down's conv1 8×4×9 = 288 and 128 × 36 = 4,608, conv2 8×8×9 = 576 and 128 × 72
# = 9,216, the 1×1 downsample 32 and 128 × 4 = 512, three norms of 32 and 128: 992 and 14,720; basic's
# 576 + 32 + 576 + 32 = 1,216 and 9,216 × 2 + 256 = 18,688; 2,208 and 33,408 in all. fc 8 × 3 + 3 = 27, 24.
SUMMARY = """\
tiny-resnet
classes: a, b, c
─────────────────────────────────────────────────────────────────────────────
Layer   Type                      Output shape  Params  Mult-adds  Activation
─────────────────────────────────────────────────────────────────────────────
input   image                     (1, 8, 8)          0          0
conv1   conv2d                    (4, 8, 8)         36      2,304  linear
layer1  block basic ×2            (4, 8, 8)        640     37,888
layer2  block basic_down + basic  (8, 4, 4)      2,208     33,408
pool    global_avgpool            (8,)               0          0
fc      dense                     (3,)              27         24  softmax
─────────────────────────────────────────────────────────────────────────────
Total params: 2,911 (11.4 KiB as float32)
Trainable params: 2,799
Non-trainable params: 112
Mult-adds per input: 73,624
Input values per sample: 64
At inference, 9 batch norms are folded into the conv2d layers before them
Blocks: 2 uses shown as one row each (22 layers); --expand shows every layer
"""


def test_summary_shows_each_use_as_one_row_with_its_layers_totals(both):
    assert invoke("summary", both[0]).stdout == SUMMARY


def test_summary_expand_prints_exactly_the_flat_twins_table(both):
    blocks, flat = both
    expanded = invoke("summary", "--expand", blocks).stdout
    assert expanded == invoke("summary", flat).stdout
    assert "layer2.0.downsample.0" in expanded and "Blocks:" not in expanded
    # The totals are the flat network's whichever way the table is shown; only the Blocks line goes.
    totals = SUMMARY.splitlines()[-7:-1]
    assert totals[0] == "Total params: 2,911 (11.4 KiB as float32)"
    assert expanded.splitlines()[-6:] == totals


def test_network_summary_has_the_rows_of_the_units_and_of_every_layer(both):
    blocks, flat = both
    summary, twin = netspec.load(blocks).summary(), netspec.load(flat).summary()
    assert summary.rows == twin.rows and len(summary.rows) == 1 + 25  # the input and every layer
    assert (summary.params, summary.trainable_params, summary.multiply_adds) == (2911, 2799, 73624)
    assert (twin.params, twin.trainable_params, twin.multiply_adds) == (2911, 2799, 73624)
    assert summary.units == [
        LayerRow("input", "image", (1, 8, 8), 0, 0),
        LayerRow("conv1", "conv2d", (4, 8, 8), 36, 2304, "linear", ("input",)),
        LayerRow("layer1", "block basic ×2", (4, 8, 8), 640, 37888, "", ("conv1",)),
        LayerRow("layer2", "block basic_down + basic", (8, 4, 4), 2208, 33408, "", ("layer1",)),
        LayerRow("pool", "global_avgpool", (8,), 0, 0, "", ("layer2",)),
        LayerRow("fc", "dense", (3,), 27, 24, "softmax", ("pool",)),
    ]
    assert sum(row.params for row in summary.units) == twin.params
    assert sum(row.multiply_adds for row in summary.units) == twin.multiply_adds
    assert str(netspec.load(blocks).summary(expand=True)) == str(twin)
    assert twin.units == [] and str(twin) == str(netspec.load(flat).summary(expand=True))


def test_a_spec_that_defines_blocks_but_uses_none_is_shown_flat(write_spec):
    diagram = pictures()

    head, layers = BRANCHES.split("layers:\n  - {name: stem")
    layers = "layers:\n  - {name: stem, type: conv2d, filters: 4, kernel: 3, padding: 1}\n"
    layers += "  - {name: flat, type: flatten}\n  - {name: out, type: dense, neurons: 2, activation: softmax}\n"
    defined = write_spec(head + layers, "defined.yaml")
    plain = write_spec(head.split("blocks:")[0] + layers, "plain.yaml")  # the same without `blocks:`
    assert netspec.read_spec(defined)[0].origins is not None and units(netspec.read_spec(defined)[0]) is None
    assert invoke("summary", defined).stdout == invoke("summary", plain).stdout
    assert box_names(diagram.draw(netspec.load(defined))) == box_names(diagram.draw(netspec.load(plain))) == []


def test_a_spec_without_blocks_summarises_as_before():
    spec = ROOT / "examples" / "residual-block.yaml"
    plain = invoke("summary", spec).stdout
    assert invoke("summary", "--expand", spec).stdout == plain
    assert "block_add    add             (16, 8, 8)         0          0  relu        block_norm2, stem" in plain
    assert "Blocks:" not in plain


BRANCHES = """\
netspec: 1
name: branches
classes: [a, b]
input: {image: {width: 8, height: 8, color: grayscale}}
blocks:
  pair:
    params: {filters: ~}
    layers:
      - {name: a, type: conv2d, filters: $filters, kernel: 3, padding: 1, activation: relu}
      - {name: b, type: conv2d, filters: $filters, kernel: 3, padding: 1, activation: relu}
layers:
  - {name: stem, type: conv2d, filters: 4, kernel: 3, padding: 1}
  - {name: left, block: pair, filters: 4}
  - {name: right, block: pair, filters: 4, inputs: stem}
  - {name: mid, type: flatten, inputs: left.a}
  - {name: join, type: add, inputs: [left, right]}
  - {name: flat, type: flatten}
  - {name: both, type: concat, inputs: [flat, mid]}
  - {name: out, type: dense, neurons: 2, activation: softmax}
"""


def test_connected_to_names_a_uses_output_by_the_use_and_a_layer_inside_it_by_its_own_name(write_spec):
    spec = write_spec(BRANCHES)
    lines = invoke("summary", spec).stdout.splitlines()
    assert lines[3] == "Layer  Type        Output shape  Params  Mult-adds  Activation  Connected to"
    # A pair: two 4-filter 3×3 convs with biases, (4 × 9 + 1) × 4 = 148 params and 64 × 4 × 36 = 9,216 each.
    assert lines[5:14] == [
        "input  image       (1, 8, 8)          0          0",
        "stem   conv2d      (4, 8, 8)         40      2,304  linear      input",
        "left   block pair  (4, 8, 8)        296     18,432              stem",
        "right  block pair  (4, 8, 8)        296     18,432              stem",
        "mid    flatten     (256,)             0          0              left.a",
        "join   add         (4, 8, 8)          0          0  linear      left, right",
        "flat   flatten     (256,)             0          0              join",
        "both   concat      (512,)             0          0  linear      flat, mid",
        "out    dense       (2,)           1,026      1,024  softmax     both",
    ]


def test_a_use_is_shown_by_its_name_whatever_its_copies_are_numbered(write_spec):
    spec = write_spec(
        BRANCHES.split("layers:\n  - {name: stem")[0]
        + textwrap.dedent("""\
        layers:
          - {name: features, block: pair, repeat: 3, start: 4, filters: 2}
          - {name: layer4, block: pair, repeat: 1, filters: 2}
          - {name: head, block: pair, filters: 2}
          - {name: out, type: dense, neurons: 2, activation: softmax}
        """)
    )
    found = units(netspec.read_spec(spec)[0])
    assert found == [
        Unit("features", 0, 6, ("pair", "pair", "pair")),
        Unit("layer4", 6, 8, ("pair",)),
        Unit("head", 8, 10, ("pair",)),
        Unit("out", 10, 11),
    ]
    assert [(u.copies, u.is_use) for u in found] == [("pair ×3", True), ("pair", True), ("pair", True), ("", False)]
    assert netspec.read_spec(spec)[0].layers[6].name == "layer4.0.a"  # the copy is numbered, the use is not


def pictures():
    """netspec.pictures.diagram, or a skip where matplotlib (the plot extra) is not installed."""
    pytest.importorskip("matplotlib", reason="pip install 'matplotlib>=3.7' (netspec's plot extra)")
    from netspec.pictures import diagram

    return diagram


# Draw --------------------------------------------------------------------------------------------------


def box_names(figure) -> list[str]:
    return [p.get_gid()[4:] for p in figure.axes[0].patches if (p.get_gid() or "").startswith("box ")]


def edge_arrows(figure) -> list[str]:
    return [p.get_gid() for p in figure.axes[0].patches if (p.get_gid() or "").startswith("edge ")]


def texts(figure) -> set[str]:
    return {t.get_text() for t in figure.axes[0].texts}


def test_draw_shows_each_use_as_one_box(both):
    diagram = pictures()

    figure = diagram.draw(netspec.load(both[0]))
    assert box_names(figure) == ["input", "conv1", "layer1", "layer2", "pool", "fc"]
    assert edge_arrows(figure) == [
        "edge input -> conv1",
        "edge conv1 -> layer1",
        "edge layer1 -> layer2",
        "edge layer2 -> pool",
        "edge pool -> fc",
    ]
    # Each use's box: its name, its copies' blocks, then how many layers it holds and its output shape.
    assert {"basic ×2\n10 layers → 4×8×8", "basic_down + basic\n12 layers → 8×4×4"} <= texts(figure)
    assert "green: a use of a block, one box; --expand draws its layers" in texts(figure)


def test_draw_expand_draws_every_layer_as_the_flat_twin(both):
    diagram = pictures()

    blocks, flat = both
    expanded, twin = diagram.draw(netspec.load(blocks), expand=True), diagram.draw(netspec.load(flat))
    assert box_names(expanded) == box_names(twin) == ["input", *(layer.name for layer in netspec.load(flat).layers)]
    assert edge_arrows(expanded) == edge_arrows(twin) and len(edge_arrows(twin)) == 25 + 4  # and 4 adds' second inputs
    assert texts(expanded) == texts(twin)


def test_draw_of_branches_arrows_each_use_from_what_its_layers_read(write_spec):
    diagram = pictures()

    figure = diagram.draw(netspec.load(write_spec(BRANCHES)))
    assert box_names(figure) == ["input", "stem", "left", "right", "mid", "join", "flat", "both", "out"]
    # `mid` reads left.a, inside the use `left`: its arrow comes from left's box.
    assert sorted(edge_arrows(figure)) == sorted(
        f"edge {a} -> {b}"
        for a, b in [
            ("input", "stem"),
            ("stem", "left"),
            ("stem", "right"),
            ("left", "mid"),
            ("left", "join"),
            ("right", "join"),
            ("join", "flat"),
            ("flat", "both"),
            ("mid", "both"),
            ("both", "out"),
        ]
    )


def test_draw_writes_the_boxes_into_the_svg(both, tmp_path):
    pictures()
    svg = tmp_path / "net.svg"
    assert invoke("draw", both[0], "-o", svg).stdout == f"wrote {svg}\n"
    text = svg.read_text()
    assert 'id="box layer1"' in text and 'id="box layer1.0.conv1"' not in text
    invoke("draw", both[0], "--expand", "-o", svg)
    text = svg.read_text()
    assert 'id="box layer1.0.conv1"' in text and 'id="box layer1"' not in text


def test_a_spec_without_blocks_draws_as_before():
    diagram = pictures()

    network = netspec.load(ROOT / "examples" / "residual-block.yaml")
    figure = diagram.draw(network)
    assert box_names(figure) == ["input", *(layer.name for layer in network.layers)]
    assert box_names(diagram.draw(network, expand=True)) == box_names(figure)
    assert not any("use of a block" in text for text in texts(figure))
    short = netspec.load(ROOT / "specs" / "rose-vs-lotus.yaml")  # a short chain: neurons, no boxes
    assert box_names(diagram.draw(short)) == [] and box_names(diagram.draw(short, expand=True)) == []
