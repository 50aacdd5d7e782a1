"""Pictures: the diagram, neurons, explanations, training curves and the confusion matrix."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import netspec
from netspec.cli import main
from netspec.explain import attribution

pytest.importorskip("matplotlib", reason="pip install 'matplotlib>=3.7' (netspec's plot extra)")

ROOT = Path(__file__).resolve().parent.parent


def invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert "Traceback" not in result.output + result.stderr, result.output + result.stderr
    return result


def picture_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        image.load()
        return image.size


def test_diagram_png_and_svg(tmp_path):
    png, svg = tmp_path / "net.png", tmp_path / "net.svg"
    assert invoke("draw", ROOT / "specs" / "rose-vs-lotus.yaml", "-o", png).stdout == f"wrote {png}\n"
    width, height = picture_size(png)
    assert width > 600 and height > 300
    invoke("draw", ROOT / "specs" / "digits-cnn.yaml", "-o", svg)
    text = svg.read_text()
    assert text.startswith("<?xml") and "<svg" in text
    for word in ("conv1", "pool1", "conv2", "flatten", "output", "digits-cnn") + tuple(str(d) for d in range(10)):
        assert f">{word}<" in text or f"{word} " in text or f"{word}—" in text, word


def test_neuron_pictures(tmp_path, write_spec):
    for address in ("hidden1:0", "hidden2:3", "output:1"):
        path = tmp_path / f"{address.replace(':', '-')}.png"
        invoke("draw", ROOT / "specs" / "rose-vs-lotus.yaml", "--neuron", address, "-o", path)
        assert min(picture_size(path)) > 200
    one = write_spec(
        "netspec: 1\nclasses: [a, b]\ninput: {features: 1}\nlayers:\n  - {name: n, type: dense, neurons: 2, activation: tanh}\n",
        "one.yaml",
    )
    two = write_spec(
        "netspec: 1\nclasses: [a, b]\ninput: {features: 2}\nlayers:\n  - {name: n, type: dense, neurons: 2, activation: sigmoid}\n",
        "two.yaml",
    )
    for spec in (one, two, ROOT / "specs" / "digits-cnn.yaml"):
        address = "conv1:5" if spec.name == "digits-cnn.yaml" else "n:1"
        assert invoke("draw", spec, "--neuron", address, "-o", tmp_path / f"{spec.stem}.svg").exit_code == 0
    result = invoke("draw", ROOT / "specs" / "rose-vs-lotus.yaml", "--neuron", "hidden1:9", "-o", tmp_path / "x.png")
    assert result.exit_code == 1 and result.stderr == "NS603 layer hidden1 has 4 neurons (0 to 3); got 9\n"
    result = invoke("draw", ROOT / "specs" / "rose-vs-lotus.yaml", "--neuron", "hidden1:²", "-o", tmp_path / "x.png")
    assert result.exit_code == 1 and result.stderr.startswith("NS603 --neuron 'hidden1:²' names no neuron")


def test_kernel_pictures_number_rows_and_columns_in_whole_steps():
    from netspec.pictures import neuron

    figure = neuron.draw(netspec.load(ROOT / "specs" / "digits-cnn.yaml"), "conv1:0")
    for ax in figure.axes[:-1]:  # the last axes is the colour bar
        ticks = [*ax.get_xticks(), *ax.get_yticks()]
        assert ticks and all(float(tick).is_integer() for tick in ticks), ticks


LEFT_ONLY = """\
netspec: 1
classes: [left, other]
input: {image: {width: 4, height: 2, color: grayscale}}
layers:
  - {name: out, type: dense, neurons: 2, activation: softmax, bias: 0,
     weights: [[1, 1, 0, 0, 1, 1, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0]]}
"""


def test_explanation_highlights_only_what_the_weights_look_at(write_spec, tmp_path):
    network = netspec.load(write_spec(LEFT_ONLY))
    x = np.full((1, 2, 4), 0.5)
    pushed = attribution(network, x, 0)
    # The score of 'left' (before softmax) is the sum of the left half's pixels: gradient 1 there, 0 elsewhere.
    np.testing.assert_allclose(pushed[0], [[0.5, 0.5, 0, 0], [0.5, 0.5, 0, 0]])
    Image.new("L", (4, 2), 128).save(tmp_path / "grey.png")
    result = invoke("run", write_spec(LEFT_ONLY, "left.yaml"), tmp_path / "grey.png", "--explain", tmp_path / "why.png")
    assert result.exit_code == 0 and result.stderr == f"wrote {tmp_path / 'why.png'}\n"
    assert min(picture_size(tmp_path / "why.png")) > 200
    result = invoke(
        "run",
        write_spec(LEFT_ONLY, "left2.yaml"),
        tmp_path / "grey.png",
        tmp_path / "grey.png",
        "--explain",
        tmp_path / "x.png",
    )
    assert result.exit_code == 2 and "--explain explains one image; give exactly one" in result.stderr


def test_training_curves_and_confusion_matrix(tmp_path):
    spec = tmp_path / "xor.yaml"
    spec.write_text(
        "netspec: 1\nclasses: [same, different]\ninput: {features: 2}\nseed: 3\n"
        "layers:\n  - {type: dense, neurons: 8, activation: tanh}\n  - {type: dense, neurons: 2, activation: softmax}\n"
        "training: {learning_rate: 0.05, epochs: 30, batch_size: 8, val_split: 0.25}\n"
    )
    x = np.repeat(np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32), 8, axis=0)
    np.savez(tmp_path / "xor.npz", x=x, y=np.tile([0, 1, 1, 0], 8))
    result = invoke(
        "train", spec, tmp_path / "xor.npz", "-o", tmp_path / "out.yaml", "--quiet", "--plot", tmp_path / "curves.svg"
    )
    assert result.exit_code == 0 and result.stderr.splitlines()[-1] == f"wrote {tmp_path / 'curves.svg'}"
    curves = (tmp_path / "curves.svg").read_text()
    assert "validation" in curves and "epoch" in curves and "accuracy" in curves
    result = invoke("eval", tmp_path / "out.yaml", tmp_path / "xor.npz", "--plot", tmp_path / "confusion.png")
    assert result.stderr == f"wrote {tmp_path / 'confusion.png'}\n"
    assert min(picture_size(tmp_path / "confusion.png")) > 300


def test_pictures_say_how_to_get_matplotlib(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    result = invoke("draw", ROOT / "specs" / "rose-vs-lotus.yaml", "-o", tmp_path / "net.png")
    assert (
        result.exit_code == 1
        and result.stderr == "NS601 pictures need matplotlib: pip install 'matplotlib>=3.7' (netspec's plot extra)\n"
    )
    result = invoke("draw", ROOT / "specs" / "rose-vs-lotus.yaml", "-o", tmp_path / "net.gif")
    assert (
        result.exit_code == 1
        and result.stderr == f"{tmp_path / 'net.gif'}: NS602 pictures are written as .png, .svg, .pdf; got 'net.gif'\n"
    )


def saved_size(figure, tmp_path) -> tuple[int, int]:
    from netspec.pictures.canvas import save

    return picture_size(save(figure, tmp_path / "figure.png"))


def test_a_dense_neuron_after_a_flatten_is_drawn_as_the_maps_it_reads(tmp_path):
    from netspec.pictures import neuron

    # digits-cnn: pool2 gives 64 maps of 2×2, flattened to 256 inputs of the output layer. As one bar
    # per input the picture was thousands of pixels wide.
    network = netspec.load(ROOT / "specs" / "digits-cnn.yaml")
    figure = neuron.draw(network, "output:2")
    assert "its weights laid out as the output of pool2 it reads" in figure.get_suptitle()
    maps = [ax for ax in figure.axes if ax.images]
    assert [ax.get_title() for ax in maps] == [f"channel {c}" for c in range(64)]
    # The flatten reads (channel, row, column) in C order: weight 4c + 2r + q is map c, row r, column q.
    weights = network.layers[-1].params["weights"][2]
    for c in (0, 17, 63):
        np.testing.assert_array_equal(maps[c].images[0].get_array(), weights[4 * c : 4 * c + 4].reshape(2, 2))
    width, height = saved_size(figure, tmp_path)
    assert width <= 2000 and height <= 2000


def test_a_grouped_filter_is_drawn_as_the_channels_of_its_group(write_spec):
    from netspec.pictures import neuron

    network = netspec.load(
        write_spec(
            "netspec: 1\nclasses: [a, b]\ninput: {image: {width: 6, height: 6, color: rgb}}\nlayers:\n"
            "  - {type: conv2d, filters: 6, kernel: 1}\n  - {name: grouped, type: conv2d, filters: 4, kernel: 2, groups: 2}\n"
            "  - {type: global_avgpool}\n  - {type: dense, neurons: 2}\n"
        )
    )
    figure = neuron.draw(network, "grouped:3")  # filters 2 and 3 read channels 3, 4 and 5
    assert "the filter's kernel, one map per input channel of its group" in figure.get_suptitle()
    maps = [ax for ax in figure.axes if ax.images]
    assert [ax.get_title() for ax in maps] == ["channel 3", "channel 4", "channel 5"]
    np.testing.assert_array_equal(maps[1].images[0].get_array(), network.layers[1].params["weights"][3, 1])


def test_a_kernel_over_many_channels_is_a_grid_no_wider_than_a_figure(tmp_path):
    from netspec.pictures import neuron

    figure = neuron.draw(netspec.load(ROOT / "specs" / "digits-cnn.yaml"), "conv2:3")  # 32 channels of 3×3
    assert len([ax for ax in figure.axes if ax.images]) == 32
    width, height = saved_size(figure, tmp_path)
    assert width <= 2000 and height <= 2000


def test_large_fans_that_are_not_maps_are_summarised(write_spec, tmp_path):
    from netspec.pictures import neuron

    wide = netspec.load(
        write_spec(
            "netspec: 1\nclasses: [a, b]\ninput: {features: 300}\nseed: 4\n"
            "layers:\n  - {name: h, type: dense, neurons: 3, activation: relu}\n"
            "  - {type: dense, neurons: 2, activation: softmax}\n",
            "wide.yaml",
        )
    )
    figure = neuron.draw(wide, "h:1")
    spread, top = figure.axes
    assert spread.get_title() == "all 300 weights" and spread.get_xlabel() == "weight"
    assert top.get_title() == "the 16 largest, by size (counted from 0)"
    weights = wide.layers[0].params["weights"][1]
    largest = sorted(range(300), key=lambda i: -abs(float(weights[i])))[:16]
    assert [label.get_text() for label in top.get_yticklabels()][::-1] == [f"input {i}" for i in largest]
    assert saved_size(figure, tmp_path)[0] <= 2000
    # 100 maps are too many to draw one by one: each of the largest is named by where it reads.
    deep = netspec.load(
        write_spec(
            "netspec: 1\nclasses: [a, b]\ninput: {image: {width: 6, height: 6, color: rgb}}\n"
            "layers:\n  - {type: conv2d, filters: 100, kernel: 3, activation: relu}\n  - {type: flatten}\n"
            "  - {name: out, type: dense, neurons: 2, activation: softmax}\n",
            "deep.yaml",
        )
    )
    figure = neuron.draw(deep, "out:0")
    assert "100 maps of 4×4 weights: more than 64 to draw one by one" in figure.get_suptitle()
    weights = deep.layers[-1].params["weights"][0]
    c, r, q = np.unravel_index(int(np.abs(weights).argmax()), (100, 4, 4))
    assert figure.axes[1].get_yticklabels()[-1].get_text() == f"channel {c}, row {r}, column {q}"
    assert saved_size(figure, tmp_path)[0] <= 2000


def test_neuron_formulas_number_inputs_from_0_and_subtract_negative_terms(write_spec):
    from netspec.pictures import neuron

    two = netspec.load(
        write_spec(
            "netspec: 1\nclasses: [a, b]\ninput: {features: 2}\n"
            "layers:\n  - {name: n, type: dense, neurons: 2, activation: sigmoid,\n"
            "     weights: [[0.5, -2], [1, 1]], bias: [-1, 0.25]}\n",
            "two.yaml",
        )
    )
    (ax, _) = neuron.draw(two, "n:0").axes
    assert ax.get_title().endswith("Output = sigmoid(0.5·x0 − 2·x1 − 1)")
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("input x0", "input x1")
    (ax,) = neuron.draw(two, "n:1").axes[:1]
    assert ax.get_title().endswith("Output = sigmoid(1·x0 + 1·x1 + 0.25)")
    one = netspec.load(
        write_spec(
            "netspec: 1\nclasses: [a, b]\ninput: {features: 1}\n"
            "layers:\n  - {name: n, type: dense, neurons: 2, activation: tanh, weights: [[-0.5], [1]], bias: -1}\n",
            "one.yaml",
        )
    )
    (ax,) = neuron.draw(one, "n:0").axes
    assert ax.get_xlabel() == "input x0"
    assert ax.get_legend().get_texts()[0].get_text() == "Weight·Input + Bias = −0.5·x0 − 1"


def drawn_texts(figure, dpi: int = 120):
    """Every title, axis label and tick label drawn, with its axes and its box in pixels at `dpi`."""
    figure.set_dpi(dpi)
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    found = []
    for ax in figure.axes:
        ticks = []
        for axis in (ax.xaxis, ax.yaxis):
            low, high = sorted(axis.get_view_interval())
            locations = axis.get_majorticklocs()
            ticks += [t for t, at in zip(axis.get_ticklabels(), locations) if low - 1e-9 <= at <= high + 1e-9]
        for text in (ax.title, ax.xaxis.label, ax.yaxis.label, *ticks):
            if text.get_visible() and text.get_text():
                found.append((ax, text.get_text(), text.get_window_extent(renderer)))
    return found


@pytest.mark.parametrize(
    "classes, width, height",
    [(["red rose", "white lotus"], 16, 16), ([str(d) for d in range(10)], 8, 8), (["a long class name", "b"], 32, 8)],
)
def test_explanation_panels_keep_their_labels_apart(write_spec, classes, width, height):
    from netspec.pictures import explain

    network = netspec.load(
        write_spec(
            f"netspec: 1\nclasses: {classes}\ninput: {{image: {{width: {width}, height: {height}, color: rgb}}}}\n"
            f"layers:\n  - {{type: dense, neurons: {len(classes)}, activation: softmax}}\n",
            "explained.yaml",
        )
    )
    picture = Image.fromarray((np.random.default_rng(0).random((height, width, 3)) * 255).astype(np.uint8))
    texts = drawn_texts(explain.draw(network, picture, "picture.png"))
    assert any(text == "gradient × input (channels added)" for _, text, _ in texts)
    # The scores panel's labels once sat 11 px from the colour bar's label (and overlapped it in other
    # fonts): texts of different panels side by side keep a fifth of an inch (24 px) apart.
    for (ax1, text1, box1), (ax2, text2, box2) in itertools.combinations(texts, 2):
        if ax1 is not ax2 and box1.y0 < box2.y1 and box2.y0 < box1.y1:
            assert max(box2.x0 - box1.x1, box1.x0 - box2.x1) >= 24, (text1, text2)


def test_explanation_of_an_image_read_from_standard_input(tmp_path):
    # Standard input is read once: the image classified is the image explained.
    red = (ROOT / "examples" / "images" / "red-rose.png").read_bytes()
    args = ["run", str(ROOT / "specs" / "rose-vs-lotus.yaml"), "-", "--explain", str(tmp_path / "why.png")]
    result = CliRunner().invoke(main, args, input=red, catch_exceptions=False)
    assert (result.exit_code, result.stderr) == (0, f"wrote {tmp_path / 'why.png'}\n")
    assert result.stdout.startswith("-: red rose\n")
    assert min(picture_size(tmp_path / "why.png")) > 200


def deep_residual(blocks: int) -> str:
    """A ResNet-like spec: a stem, `blocks` residual blocks of 4 layers, a pool, dropout and the output."""
    lines = [
        "netspec: 1",
        "name: deep-residual",
        "classes: [a, b]",
        "input: {image: {width: 8, height: 8, color: grayscale}}",
        "layers:",
        "  - {name: stem, type: conv2d, filters: 4, kernel: 3, padding: same, activation: relu}",
    ]
    previous = "stem"
    for b in range(blocks):
        lines += [
            f"  - {{name: b{b}_conv1, type: conv2d, filters: 4, kernel: 3, padding: same, inputs: {previous}}}",
            f"  - {{name: b{b}_norm1, type: batchnorm, activation: relu}}",
            f"  - {{name: b{b}_conv2, type: conv2d, filters: 4, kernel: 3, padding: same}}",
            f"  - {{name: b{b}_add, type: add, inputs: [b{b}_conv2, {previous}], activation: relu}}",
        ]
        previous = f"b{b}_add"
    lines += [
        "  - {name: pool, type: global_avgpool}",
        "  - {name: drop, type: dropout, rate: 0.1}",
        "  - {name: output, type: dense, neurons: 2, activation: softmax}",
    ]
    return "\n".join(lines) + "\n"


INCEPTION = """\
netspec: 1
name: inception
classes: [a, b]
input: {image: {width: 8, height: 8, color: rgb}}
layers:
  - {name: stem, type: conv2d, filters: 8, kernel: 3, padding: same, activation: relu}
  - {name: branch1x1, type: conv2d, filters: 4, kernel: 1, inputs: stem, activation: relu}
  - {name: reduce3x3, type: conv2d, filters: 4, kernel: 1, inputs: stem, activation: relu}
  - {name: branch3x3, type: conv2d, filters: 4, kernel: 3, padding: same, activation: relu}
  - {name: pool3x3, type: maxpool2d, size: 3, stride: 1, padding: same, inputs: stem}
  - {name: pool_proj, type: conv2d, filters: 4, kernel: 1, activation: relu}
  - {name: joined, type: concat, inputs: [branch1x1, branch3x3, pool_proj]}
  - {name: pool, type: global_avgpool}
  - {name: output, type: dense, neurons: 2, activation: softmax}
"""

DPI = 120  # what netspec.pictures.canvas.save writes at


def edge_arrows(figure) -> list[str]:
    return [p.get_gid() for p in figure.axes[0].patches if (p.get_gid() or "").startswith("edge ")]


def text_positions(figure) -> dict[str, tuple[float, float]]:
    return {t.get_text(): t.get_position() for t in figure.axes[0].texts}


def crossings(network) -> list[tuple[str, str]]:
    """(arrow, box) pairs where an arrow's path runs through a box it does not start or end at."""
    from netspec.pictures import boxes

    placed = boxes.boxes(network)
    found = []
    for route in boxes.routes(placed)[0]:
        for (xa, ya), (xb, yb) in itertools.pairwise(route.points):
            for t in np.linspace(0, 1, 41):
                x, y = xa + (xb - xa) * t, ya + (yb - ya) * t
                for box in placed.values():
                    inside_x = abs(x - boxes.x_of(box)) < boxes.BOX_WIDTH / 2 - 0.01
                    inside_y = abs(y - boxes.y_of(box)) < boxes.BOX_HEIGHT / 2 - 0.01
                    if inside_x and inside_y:
                        found.append((f"{route.source}->{route.target}", box.name))
    return sorted(set(found))


def test_graph_draws_as_boxes_with_one_arrow_per_input(tmp_path):
    from netspec.pictures import diagram

    spec = ROOT / "examples" / "residual-block.yaml"
    png = tmp_path / "residual.png"
    assert invoke("draw", spec, "-o", png).stdout == f"wrote {png}\n"
    width, height = picture_size(png)
    assert 300 < width <= 1600 and height > width  # a column of 9 boxes, taller than wide
    network = netspec.load(spec)
    figure = diagram.draw(network)
    texts = text_positions(figure)
    assert {"input", *(layer.name for layer in network.layers)} <= set(texts)
    assert "conv2d 16@3×3, relu, 16×8×8" in texts and "dense, 10 neurons, softmax → 10" in texts
    # 8 layers reading one input each, and the add reading a second (the shortcut from stem).
    arrows = edge_arrows(figure)
    assert len(arrows) == 9 and "edge stem -> block_add" in arrows and "edge input -> stem" in arrows
    assert crossings(network) == []
    # Top to bottom in spec order, one row each (the block has no parallel branch).
    ys = [texts[layer.name][1] for layer in network.layers]
    assert ys == sorted(ys) and len(set(ys)) == len(ys)


def test_sixty_layer_graph_stays_narrow_and_legible(write_spec, tmp_path):
    from netspec.pictures import diagram

    spec = write_spec(deep_residual(14), "deep.yaml")
    network = netspec.load(spec)
    assert len(network.layers) == 60
    figure = diagram.draw(network)
    width, height = figure.get_size_inches()
    assert width * DPI <= 1600 and height > 40  # grows downwards: 60 rows
    assert min(t.get_fontsize() for t in figure.axes[0].texts) >= 8
    assert {layer.name for layer in network.layers} <= set(text_positions(figure))
    assert len(edge_arrows(figure)) == 60 + 14  # one per layer, and each block's shortcut
    assert crossings(network) == []
    png = tmp_path / "deep.png"
    invoke("draw", spec, "-o", png)
    assert picture_size(png)[0] <= 1600


def test_long_chain_draws_as_boxes_and_short_chain_as_neurons(write_spec):
    from netspec.pictures import diagram

    layers = "".join(f"  - {{name: h{i}, type: dense, neurons: 3, activation: relu}}\n" for i in range(12))
    layers += "  - {name: out, type: dense, neurons: 2, activation: softmax}\n"
    long = write_spec(f"netspec: 1\nclasses: [a, b]\ninput: {{features: 2}}\nlayers:\n{layers}", "long.yaml")
    assert len(edge_arrows(diagram.draw(netspec.load(long)))) == 13
    assert edge_arrows(diagram.draw(netspec.load(ROOT / "specs" / "rose-vs-lotus.yaml"))) == []


def test_inception_branches_stand_side_by_side(write_spec):
    from netspec.pictures import diagram

    network = netspec.load(write_spec(INCEPTION, "inception.yaml"))
    texts = text_positions(diagram.draw(network))
    xs = {name: texts[name][0] for name in ("branch1x1", "branch3x3", "pool_proj")}
    assert len(set(xs.values())) == 3, xs
    # Each branch keeps one column: the 3×3 under its 1×1 reduction, the projection under its pool.
    assert texts["reduce3x3"][0] == xs["branch3x3"] and texts["pool3x3"][0] == xs["pool_proj"]
    # The first rows of the three branches share a row; the concat comes below them all.
    assert texts["branch1x1"][1] == texts["reduce3x3"][1] == texts["pool3x3"][1]
    assert texts["joined"][1] > texts["branch3x3"][1]
    assert crossings(network) == []


AFTER_ADD = """\
netspec: 1
classes: [a, b]
input: {image: {width: 4, height: 4, color: grayscale}}
layers:
  - {name: a, type: conv2d, filters: 2, kernel: 3, padding: same}
  - {name: b, type: conv2d, filters: 2, kernel: 1, inputs: input}
  - {name: s, type: add, inputs: [a, b]}
  - {name: f, type: flatten}
  - {name: side, type: flatten, inputs: input}
  - {name: out, type: dense, neurons: 2, inputs: f}
  - {name: side_out, type: dense, neurons: 2, inputs: side}
  - {name: sum, type: add, inputs: [out, side_out], activation: softmax}
"""


def test_neuron_after_an_add_reads_the_maps_it_reads(write_spec, tmp_path):
    from netspec.pictures import neuron

    spec = write_spec(AFTER_ADD, "after-add.yaml")
    # `out` reads the flatten of the add's 2 maps of 4×4, though the layer listed above it flattens the input.
    figure = neuron.draw(netspec.load(spec), "out:1")
    assert [ax.get_title() for ax in figure.axes[:2]] == ["channel 0", "channel 1"]
    assert "its weights laid out as the output of s it reads" in figure._suptitle.get_text()
    assert invoke("draw", spec, "--neuron", "side_out:0", "-o", tmp_path / "side.png").exit_code == 0
    assert min(picture_size(tmp_path / "side.png")) > 200
