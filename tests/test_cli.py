"""The command line: output formats, exit codes, errors without tracebacks, and a real subprocess."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from netspec.cli import main

from conftest import VALID, where

COLOURS = """\
netspec: 1
name: colours
classes: [red, blue]
input:
  image: {width: 1, height: 1}
layers:
  - {name: out, type: dense, neurons: 2, activation: softmax, weights: [[1, 0, 0], [0, 0, 1]], bias: 0}
"""

RED = math.e / (math.e + 1)  # softmax of (1, 0): what a pure red pixel scores


def invoke(*args: str):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert "Traceback" not in result.output + result.stderr
    return result


@pytest.fixture
def colours(write_spec, tmp_path):
    spec = write_spec(COLOURS, "colours.yaml")
    Image.new("RGB", (3, 3), (255, 0, 0)).save(tmp_path / "red.png")
    Image.new("RGB", (3, 3), (0, 0, 255)).save(tmp_path / "blue.png")
    return spec


def test_validate_valid_and_invalid(write_spec, tmp_path):
    good = write_spec(VALID, "good.yaml")
    bad_text = VALID.replace("neurons: 4", "neurons: 0")
    bad = write_spec(bad_text, "bad.yaml")
    result = invoke("validate", good)
    assert (result.exit_code, result.output) == (0, "1 spec checked, 0 invalid\n")
    result = invoke("validate", good, bad)
    location = where(bad_text, "neurons: 0", "0").replace("spec.yaml", str(bad))
    assert result.exit_code == 1
    assert (
        result.output == f"{location}: NS104 layers[0].neurons: must be at least 1, got 0\n2 specs checked, 1 invalid\n"
    )


def test_validate_a_folder_recursively(write_spec, tmp_path):
    (tmp_path / "nested").mkdir()
    write_spec(VALID, "a.yaml")
    write_spec(VALID, "nested/b.yml")
    write_spec("not: [a spec", "nested/c.yaml")
    (tmp_path / "readme.txt").write_text("ignored")
    (tmp_path / "moved.yaml").symlink_to(tmp_path / "elsewhere.yaml")  # a broken link is not a spec
    (tmp_path / "NOTES.YAML").write_text("not: [a spec either")  # *.yaml and *.yml, as written, as CI tools match
    result = invoke("validate", tmp_path)
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == "3 specs checked, 1 invalid"
    assert result.output.startswith(f"{tmp_path / 'nested' / 'c.yaml'}:1:13: NS001 ")


def locked(monkeypatch, folder):
    """Make `folder` unreadable, as chmod 000 would for a user who is not root (the tests may run as root)."""
    import os

    real = os.scandir

    def scandir(path="."):
        if os.fspath(path) == os.fspath(folder):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)


def test_unreadable_folders_are_reported_not_skipped(write_spec, colours, tmp_path, monkeypatch):
    (tmp_path / "specs" / "private").mkdir(parents=True)
    (tmp_path / "specs" / "ok.yaml").write_text(VALID)
    (tmp_path / "photos" / "private").mkdir(parents=True)
    Image.new("RGB", (3, 3), (255, 0, 0)).save(tmp_path / "photos" / "red.png")
    locked(monkeypatch, tmp_path / "specs" / "private")
    result = invoke("validate", tmp_path / "specs")
    assert (result.exit_code, result.output) == (
        1,
        f"{tmp_path / 'specs' / 'private'}: NS005 cannot read the folder: Permission denied\n"
        "1 spec checked, 0 invalid, 1 folder could not be read\n",
    )
    locked(monkeypatch, tmp_path / "photos" / "private")
    result = invoke("run", colours, tmp_path / "photos", "--top-k", "1")
    assert result.exit_code == 1
    assert result.stdout.startswith(f"{tmp_path / 'photos' / 'red.png'}: red\n")
    assert result.stderr == f"{tmp_path / 'photos' / 'private'}: NS302 cannot read the folder: Permission denied\n"


def test_validate_usage_errors(tmp_path):
    result = invoke("validate", tmp_path / "missing.yaml")
    assert result.exit_code == 2 and "does not exist" in result.stderr
    result = invoke("validate", tmp_path)
    assert result.exit_code == 2 and f"no *.yaml or *.yml files found in {tmp_path}" in result.stderr


def test_run_prints_labels_scores_and_bars(colours, tmp_path):
    result = invoke("run", colours, tmp_path / "red.png", tmp_path / "blue.png")
    assert result.exit_code == 0
    # 0.7311 of a 20-character bar is 116.97 eighths: 14 full blocks and 5/8; 0.2689 is 43.0: 5 and 3/8.
    assert result.output == (
        f"{tmp_path / 'red.png'}: red\n"
        f"  red   {RED:.4f}  {'█' * 14}▋\n"
        f"  blue  {1 - RED:.4f}  {'█' * 5}▍\n"
        f"{tmp_path / 'blue.png'}: blue\n"
        f"  blue  {RED:.4f}  {'█' * 14}▋\n"
        f"  red   {1 - RED:.4f}  {'█' * 5}▍\n"
    )


def test_run_reads_one_image_from_standard_input_given_as_a_dash(colours, tmp_path):
    def run(*args, stdin: bytes):
        result = CliRunner().invoke(main, [str(a) for a in args], input=stdin, catch_exceptions=False)
        assert "Traceback" not in result.output + result.stderr
        return result

    red = (tmp_path / "red.png").read_bytes()
    result = run("run", colours, "-", tmp_path / "blue.png", "--top-k", "1", stdin=red)
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == (
        f"-: red\n  red  {RED:.4f}  {'█' * 14}▋\n{tmp_path / 'blue.png'}: blue\n  blue  {RED:.4f}  {'█' * 14}▋\n"
    )
    line = json.loads(run("run", colours, "-", "--json", stdin=red).stdout)
    assert line["file"] == "-" and line["scores"]["red"] == pytest.approx(RED, rel=1e-6)
    # The limits of a pipe given by name (/dev/stdin): read no further than the largest allowed image takes.
    limit = 5 * 8 + 2**20
    result = run("run", colours, "-", "--max-pixels", "5", stdin=red + bytes(limit))
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        f"-: NS304 more than {limit:,} bytes came through the pipe, more than an image of 5 pixels takes; "
        "raise the limit with --max-pixels N if the image is that large\n"
    )
    result = run("run", colours, "-", "--max-pixels", "5", stdin=(tmp_path / "red.png").read_bytes())
    assert result.stderr.startswith("-: NS304 image is ")
    result = run("run", colours, "-", tmp_path / "red.png", stdin=b"not an image")
    assert result.exit_code == 1 and result.stdout.startswith(f"{tmp_path / 'red.png'}: red\n")
    assert result.stderr == "-: NS302 not an image netspec reads (PNG, JPEG, BMP, GIF, TIFF, WEBP)\n"
    result = run("run", colours, "-", stdin=b"")
    assert (result.exit_code, result.stderr) == (1, "-: NS302 nothing came through standard input; give an image\n")
    result = run("run", colours, "-", "-", stdin=red)
    assert result.exit_code == 2 and "- (standard input) holds one image and can be read once" in result.stderr


def test_run_top_k_and_json(colours, tmp_path):
    result = invoke("run", colours, tmp_path / "blue.png", "--top-k", "1")
    assert result.output == f"{tmp_path / 'blue.png'}: blue\n  blue  {RED:.4f}  {'█' * 14}▋\n"
    result = invoke("run", colours, tmp_path / "red.png", "--json")
    line = json.loads(result.output)
    assert list(line) == ["file", "label", "scores"]
    assert line["file"] == str(tmp_path / "red.png") and line["label"] == "red"
    assert list(line["scores"]) == ["red", "blue"]
    assert line["scores"]["red"] == pytest.approx(RED, rel=1e-6)
    assert line["scores"]["blue"] == pytest.approx(1 - RED, rel=1e-5)


def test_run_reports_bad_images_and_classifies_the_rest(colours, tmp_path):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    result = invoke("run", colours, tmp_path / "missing.png", tmp_path / "broken.png", tmp_path / "red.png", "--json")
    assert result.exit_code == 1
    assert [json.loads(line)["label"] for line in result.stdout.splitlines()] == ["red"]
    assert result.stderr.splitlines()[0] == f"{tmp_path / 'missing.png'}: NS301 image not found"
    assert result.stderr.splitlines()[1].startswith(f"{tmp_path / 'broken.png'}: NS30")
    assert len(result.stderr.splitlines()) == 2


def test_run_keeps_the_order_across_batches(colours, tmp_path):
    paths = [tmp_path / name for name in ("red.png", "missing.png", "blue.png", "red.png", "blue.png", "missing.png")]
    result = invoke("run", colours, *paths, "--json", "--batch-size", "2", "--threads", "2")
    assert result.exit_code == 1
    assert [json.loads(line)["label"] for line in result.stdout.splitlines()] == ["red", "blue", "red", "blue"]
    assert result.stderr == f"{tmp_path / 'missing.png'}: NS301 image not found\n" * 2


def test_run_takes_folders_of_images(colours, tmp_path):
    folder = tmp_path / "photos"
    (folder / "more").mkdir(parents=True)
    (folder / ".thumbnails").mkdir()
    Image.new("RGB", (3, 3), (0, 0, 255)).save(folder / "b.png")
    Image.new("RGB", (3, 3), (255, 0, 0)).save(folder / "more" / "a.JPG")
    Image.new("RGB", (3, 3), (255, 0, 0)).save(folder / ".thumbnails" / "b.png")
    (folder / "notes.txt").write_text("not an image")
    os.mkfifo(folder / "pipe.png")  # only regular files are read from a folder: a pipe would wait forever
    (folder / "gone.png").symlink_to(folder / "deleted.png")
    result = invoke("run", colours, folder, tmp_path / "red.png", "--json")
    assert result.exit_code == 0
    assert [(json.loads(line)["file"], json.loads(line)["label"]) for line in result.stdout.splitlines()] == [
        (str(folder / "b.png"), "blue"),
        (str(folder / "more" / "a.JPG"), "red"),
        (str(tmp_path / "red.png"), "red"),
    ]
    (tmp_path / "empty").mkdir()
    result = invoke("run", colours, tmp_path / "empty")
    assert result.exit_code == 2
    assert result.stderr.endswith(
        f"Error: {tmp_path / 'empty'} is a folder with no images in it (.png, .jpg, .jpeg, .bmp, .gif, .tif, .tiff, .webp)\n"
    )


def test_explain_that_cannot_be_written_stops_before_classifying(colours, tmp_path):
    pytest.importorskip("matplotlib")
    (tmp_path / "afile").write_text("a file, not a folder")
    result = invoke("run", colours, tmp_path / "red.png", "--explain", tmp_path / "afile" / "why.png")
    assert result.exit_code == 2 and result.stdout == ""
    assert f"--explain {tmp_path / 'afile' / 'why.png'}: {tmp_path / 'afile'} is a file, not a folder" in result.stderr
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "red.png").write_bytes((tmp_path / "red.png").read_bytes())
    result = invoke("run", colours, tmp_path / "one", "--explain", tmp_path / "one" / "sub" / "why.png")
    assert result.exit_code == 2 and result.stdout == ""  # the next run of that folder would classify the picture
    assert f"would be written among the images of {tmp_path / 'one'}, which this run reads" in result.stderr
    os.mkfifo(tmp_path / "pipe.png")
    result = invoke("run", colours, tmp_path / "pipe.png", "--explain", tmp_path / "why.png")
    assert result.exit_code == 2 and "--explain reads its image twice (to classify, then to explain)" in result.stderr


def test_json_output_stays_utf8_for_a_file_name_that_is_not(colours, tmp_path):
    import os

    name = os.fsdecode(tmp_path / "red.png").replace("red.png", os.fsdecode(b"r\xffd.png"))
    Path(name).write_bytes((tmp_path / "red.png").read_bytes())
    result = invoke("run", colours, name, "--json")
    assert result.exit_code == 0
    line = json.loads(result.stdout_bytes.decode("utf-8"))  # strict: raises on a raw 0xFF byte
    assert os.fsencode(line["file"]) == os.fsencode(name) and line["label"] == "red"


def test_run_with_an_invalid_spec_prints_located_problems(write_spec, tmp_path):
    text = COLOURS.replace("neurons: 2", "neurons: 3")
    spec = write_spec(text)
    Image.new("RGB", (1, 1)).save(tmp_path / "x.png")
    result = invoke("run", spec, tmp_path / "x.png")
    assert result.exit_code == 1
    assert result.stderr == (
        f"{where(text, 'neurons: 3', '3').replace('spec.yaml', str(spec))}: NS123 layers[0].neurons: the output layer "
        "has 3 neurons but there are 2 classes; give the last layer one neuron per class\n"
    )


SIDES = """\
netspec: 1
name: sides
classes: [left, right]
input: {features: {size: 2, mean: [1, 0], std: 2}}
layers:
  - {name: out, type: dense, neurons: 2, activation: softmax, weights: [[1, -1], [-1, 1]], bias: 0}
"""


def sides_scores(row) -> list[float]:
    """Softmax of (a - b, b - a) for the standardised row (a, b), computed here by hand."""
    a, b = (row[0] - 1) / 2, (row[1] - 0) / 2
    left = 1 / (1 + math.exp(2 * (b - a)))
    return [left, 1 - left]


def test_run_classifies_rows_of_numbers_from_csv_npy_and_npz(write_spec, tmp_path):
    spec = write_spec(SIDES)
    (tmp_path / "rows.csv").write_text("a,b\n3,1\n\n0, 4\n")
    np.save(tmp_path / "one.npy", np.array([5.0, 1.0]))
    np.savez(tmp_path / "rows.npz", x=np.array([[0.0, 4.0], [3.0, 1.0]]))
    result = invoke("run", spec, tmp_path / "rows.csv", tmp_path / "one.npy", tmp_path / "rows.npz", "--top-k", "1")
    assert result.exit_code == 0, result.stderr
    left, right, five = sides_scores([3, 1])[0], sides_scores([0, 4])[1], sides_scores([5, 1])[0]
    # CSV rows are named by their line in the file (the header is line 1; a blank line counts, and is skipped).
    named = [
        (f"{tmp_path / 'rows.csv'}:2: left", "left", left),
        (f"{tmp_path / 'rows.csv'}:4: right", "right", right),
        (f"{tmp_path / 'one.npy'}[0]: left", "left", five),
        (f"{tmp_path / 'rows.npz'}[0]: right", "right", right),
        (f"{tmp_path / 'rows.npz'}[1]: left", "left", left),
    ]
    lines = result.stdout.splitlines()
    assert lines[::2] == [name for name, _, _ in named]
    assert [line.split()[:2] for line in lines[1::2]] == [[label, f"{score:.4f}"] for _, label, score in named]
    result = invoke("run", spec, tmp_path / "rows.csv", tmp_path / "rows.npz", "--json")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [{k: v for k, v in line.items() if k != "scores"} for line in lines] == [
        {"file": str(tmp_path / "rows.csv"), "line": 2, "label": "left"},
        {"file": str(tmp_path / "rows.csv"), "line": 4, "label": "right"},
        {"file": str(tmp_path / "rows.npz"), "index": 0, "label": "right"},
        {"file": str(tmp_path / "rows.npz"), "index": 1, "label": "left"},
    ]
    for line, row in zip(lines, [[3, 1], [0, 4], [0, 4], [3, 1]]):
        assert list(line["scores"]) == sorted(line["scores"], key=lambda k: -line["scores"][k])
        assert [line["scores"]["left"], line["scores"]["right"]] == pytest.approx(sides_scores(row), rel=1e-6)


def test_run_on_numbers_says_what_is_wrong_with_each_file(write_spec, tmp_path):
    spec = write_spec(SIDES)
    files = {
        "typo.csv": "a,b\n1,2\n3,x\n",
        "wide.csv": "1,2,3\n",
        "nan.csv": "1,2\n 2, nan\n",
        "empty.csv": "",
        "header.csv": "a,b\n",
        "tabs.csv": "1\t2\n",
        "spaces.csv": "1 2\n",
        "trailing.csv": "1,2,\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    np.savez(tmp_path / "named.npz", features=np.zeros((2, 2)), labels=np.zeros(2))
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.save(tmp_path / "wide.npy", np.zeros((3, 5)))
    np.save(tmp_path / "inf.npy", np.array([[1.0, 2.0], [2.0, -np.inf]]))
    np.save(tmp_path / "none.npy", np.zeros((0, 2)))
    Image.new("RGB", (1, 1)).save(tmp_path / "x.png")
    (tmp_path / "notes.txt").write_text("notes")
    (tmp_path / "good.csv").write_text("3,1\n")
    names = [
        *files,
        "named.npz",
        "objects.npy",
        "wide.npy",
        "inf.npy",
        "none.npy",
        "x.png",
        "notes.txt",
        "missing.csv",
        "good.csv",
    ]
    result = invoke("run", spec, *[tmp_path / name for name in names])
    assert result.exit_code == 1
    assert result.stdout.splitlines()[0] == f"{tmp_path / 'good.csv'}:1: left"  # the others are still classified
    assert result.stderr.replace(f"{tmp_path}/", "").splitlines() == [
        "typo.csv:3:3: NS307 column 2 (b) holds 'x', not a number; give finite numbers only",
        "wide.csv:1:1: NS305 the line has 3 columns, but the spec reads 2 numbers a sample; give one column each",
        "nan.csv:2:5: NS307 column 2 holds 'nan', not finite; give finite numbers only",
        "empty.csv: NS307 has no rows; write one sample a line, 2 numbers split by commas",
        "header.csv: NS307 has only a header line; write one sample a line, 2 numbers split by commas",
        "tabs.csv:1:1: NS305 the header line has 1 column, but the spec reads 2 numbers a sample; netspec splits columns at "
        "commas, and this line has tabs, semicolons or spaces between its values: write it with commas",
        "spaces.csv:1:1: NS305 the header line has 1 column, but the spec reads 2 numbers a sample; netspec splits "
        "columns at commas, and this line has tabs, semicolons or spaces between its values: write it with commas",
        "trailing.csv:1:1: NS305 the line has 3 columns, but the spec reads 2 numbers a sample; the line ends with a "
        "comma, which starts an empty last column: remove it",
        "named.npz: NS307 needs an array x; missing x (it has: features, labels)",
        "objects.npy: NS307 holds Python objects (a pickled array), which netspec never unpickles; "
        "save numbers: x.astype('float32')",
        "wide.npy: NS305 the array has shape (3, 5); the spec reads 2 numbers a sample: give shape (n, 2)",
        "inf.npy: NS307 the value at [1, 1] is -inf (1 value(s) not finite); give finite numbers",
        "none.npy: NS307 has no rows; save at least one sample of 2 numbers",
        "x.png: NS305 this spec reads 2 numbers a sample, not images; give a .csv, .npy or .npz of samples",
        "notes.txt: NS307 not a file of samples netspec reads (.csv with one sample a line, .npy, or .npz with an array x)",
        "missing.csv: NS307 file not found",
    ]


def test_run_refuses_a_table_given_to_an_image_spec(colours, tmp_path):
    (tmp_path / "rows.csv").write_text("1,2,3\n")
    result = invoke("run", colours, tmp_path / "rows.csv", tmp_path / "red.png")
    assert result.exit_code == 1
    assert result.stdout.startswith(f"{tmp_path / 'red.png'}: red")
    assert result.stderr == (
        f"{tmp_path / 'rows.csv'}: NS305 this spec reads images (3×1×1), not numbers; "
        "give image files, or arrays to Network.predict\n"
    )


def test_run_refuses_a_huge_npy_header_before_reading_it(write_spec, tmp_path):
    header = {"descr": "<f8", "fortran_order": False, "shape": (2**40, 2)}
    with open(tmp_path / "huge.npy", "wb") as stream:
        np.lib.format.write_array_header_2_0(stream, header)
    result = invoke("run", write_spec(SIDES), tmp_path / "huge.npy")
    assert result.exit_code == 1
    assert result.stderr == (
        f"{tmp_path / 'huge.npy'}: NS307 the array declares 17,592,186,044,416 bytes of data ((1099511627776, 2)), "
        "more than the 8,589,934,592 netspec reads\n"
    )


def test_summary_table(write_spec):
    result = invoke("summary", write_spec(VALID))
    assert result.exit_code == 0
    header = "Layer   Type      Output shape  Params  Mult-adds  Activation"
    rule = "─" * len(header)
    assert result.output == (
        "tiny\n"
        "classes: cat, dog\n"
        f"{rule}\n{header}\n{rule}\n"
        "input   features  (3,)               0          0\n"
        "hidden  dense     (4,)              16         12  relu\n"
        "output  dense     (2,)              10          8  softmax\n"
        f"{rule}\n"
        "Total params: 26 (104 B as float32)\n"
        "Trainable params: 26\n"
        "Non-trainable params: 0\n"
        "Mult-adds per input: 20\n"
        "Input values per sample: 3\n"
    )


def test_summary_counts_running_statistics_as_not_trainable(write_spec):
    spec = write_spec(
        "netspec: 1\nclasses: [a, b]\ninput: {image: {width: 4, height: 4, color: grayscale}}\nlayers:\n"
        "  - {name: conv, type: conv2d, filters: 2, kernel: 3}\n  - {name: norm, type: batchnorm}\n"
        "  - {type: flatten}\n  - {name: out, type: dense, neurons: 2}\n"
    )
    # conv: 2 filters × 3 × 3 + 2 biases = 20; norm: scale, shift, mean, var for 2 channels = 8, of
    # which mean and var (4) are running statistics; out: 2 × 8 inputs + 2 = 18.
    lines = invoke("summary", spec).output.splitlines()
    assert lines[-6:-3] == ["Total params: 46 (184 B as float32)", "Trainable params: 42", "Non-trainable params: 4"]
    # The conv has no activation and nothing else reads it: the batch norm runs inside it (netspec.fusion).
    assert lines[-1] == "At inference, 1 batch norm is folded into the conv2d layer before it"


def test_summary_of_a_network_too_large_for_memory_makes_no_arrays(write_spec):
    import tracemalloc

    for weights in ("glorot_uniform", "{init: uniform, low: -0.1, high: 0.1}", "{init: normal, std: 0.02}"):
        spec = write_spec(
            "netspec: 1\nclasses: [a, b]\ninput: {features: 100000}\nlayers:\n"
            f"  - {{name: huge, type: dense, neurons: 100000, weights: {weights}}}\n"
            "  - {name: out, type: dense, neurons: 2}\n"
        )
        tracemalloc.start()
        result = invoke("summary", spec, "--max-params", "20000000000")
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert result.exit_code == 0, weights
        # huge: 100,000 × 100,000 weights + 100,000 biases; out: 2 × 100,000 + 2; 4 bytes each in float32.
        assert "Total params: 10,000,300,002 (37.3 GiB as float32)" in result.stdout.splitlines()
        assert peak < 20_000_000, weights


def test_a_network_the_machine_cannot_allocate_is_a_located_problem(write_spec, monkeypatch):
    def out_of_memory(*args):
        raise MemoryError

    monkeypatch.setattr("netspec.builder.initialize", out_of_memory)
    spec = write_spec(VALID)
    result = invoke("run", spec, spec)
    assert result.exit_code == 1
    first = result.stderr.splitlines()[0]
    assert first.endswith(
        "NS208 layers[0].weights: layer 'hidden': weights needs 96 B and this machine cannot allocate it; make it smaller"
    )


def test_internal_errors_are_one_line_and_debug_shows_the_traceback(monkeypatch, write_spec):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("netspec.cli.summary.read_checked", broken)
    spec = write_spec(VALID)
    result = invoke("summary", spec)
    assert result.exit_code == 3
    assert result.stderr.splitlines()[0] == "netspec: internal error: RuntimeError: boom"
    result = CliRunner().invoke(main, ["--debug", "summary", str(spec)], catch_exceptions=False)
    assert result.exit_code == 3
    assert "Traceback (most recent call last)" in result.stderr and result.stderr.rstrip().endswith(
        "RuntimeError: boom"
    )


def test_installed_console_script(colours, tmp_path):
    """The real `netspec` program, as users run it: exit codes and streams."""
    netspec = shutil.which("netspec") or shutil.which("netspec", path=str(Path(sys.executable).parent))
    assert netspec, "the netspec console script is not installed (pip install -e '.[test]')"
    done = subprocess.run(
        [netspec, "run", str(colours), str(tmp_path / "red.png"), str(tmp_path / "nope.png"), "--top-k", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stdout == f"{tmp_path / 'red.png'}: red\n  red  {RED:.4f}  {'█' * 14}▋\n"
    assert done.stderr == f"{tmp_path / 'nope.png'}: NS301 image not found\n"
    done = subprocess.run([netspec, "validate", str(colours)], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (0, "1 spec checked, 0 invalid\n")
    done = subprocess.run([sys.executable, "-m", "netspec", "--version"], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "netspec, version 0.1.0"


def test_non_finite_scores_are_reported_not_labelled(write_spec, tmp_path):
    # float32 overflows: 3e38 * 255 is past its largest value (3.4e38), so the scores become NaN.
    text = COLOURS.replace("{width: 1, height: 1}", "{width: 1, height: 1, scale: [0, 255]}").replace(
        "[[1, 0, 0], [0, 0, 1]]", "[[3e38, 0, 0], [0, 0, 1]]"
    )
    spec = write_spec(text)
    Image.new("RGB", (1, 1), (255, 0, 0)).save(tmp_path / "red.png")
    result = invoke("run", spec, tmp_path / "red.png")
    assert result.exit_code == 1 and result.stdout == ""
    assert (
        result.stderr
        == f"{tmp_path / 'red.png'}: NS306 the network's scores are not finite (overflow); no label given\n"
    )


def test_run_with_the_arguments_swapped(colours, tmp_path):
    result = invoke("run", tmp_path / "red.png", colours)
    assert result.exit_code == 1
    assert (
        result.stderr
        == f"{tmp_path / 'red.png'}: NS005 it looks like an image; the spec comes first: netspec run SPEC IMAGE...\n"
    )


def test_validate_skips_hidden_folders(write_spec, tmp_path):
    (tmp_path / ".github").mkdir()
    write_spec("on: push\njobs: {}\n", ".github/ci.yml")
    write_spec(VALID, "good.yaml")
    assert invoke("validate", tmp_path).output == "1 spec checked, 0 invalid\n"


def test_logit_scores_are_drawn_from_lowest_to_highest(write_spec, tmp_path):
    text = COLOURS.replace("activation: softmax, weights: [[1, 0, 0], [0, 0, 1]]", "weights: [[-30, 0, 0], [0, 0, 2]]")
    spec = write_spec(text)
    Image.new("RGB", (1, 1), (255, 0, 255)).save(tmp_path / "magenta.png")
    result = invoke("run", spec, tmp_path / "magenta.png")
    # Scores 2 and -30: the higher fills the bar, the lower draws none; the column is aligned.
    assert result.output == f"{tmp_path / 'magenta.png'}: blue\n  blue    2.0000  {'█' * 20}\n  red   -30.0000\n"


def test_many_inline_numbers_draw_advice(write_spec):
    rows = ", ".join("[" + ", ".join(["0.5"] * 100) + "]" for _ in range(101))
    spec = write_spec(
        f"netspec: 1\nclasses: [a, b]\ninput: {{features: 100}}\nlayers:\n  - {{name: h, type: dense, neurons: 101, weights: [{rows}]}}\n  - {{type: dense, neurons: 2}}\n"
    )
    result = invoke("validate", spec)
    assert result.exit_code == 0 and result.stdout == "1 spec checked, 0 invalid\n"
    assert result.stderr == (
        f"{spec}: warning: 10,100 numbers are written in the YAML, which reads them slowly; "
        "save the arrays with numpy.save and write {file: name.npy} instead\n"
    )
    assert invoke("validate", write_spec(VALID, "small.yaml")).stderr == ""


def test_threads_limit_blas_while_running(colours, tmp_path, monkeypatch):
    import threadpoolctl

    from netspec.cli import run as run_module

    seen = []
    real = run_module.classify

    def spying(network, paths, batch_size, threads, max_pixels=None, **options):
        seen.append(
            (threads, {info["num_threads"] for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas"})
        )
        yield from real(network, paths, batch_size, threads, max_pixels, **options)

    monkeypatch.setattr(run_module, "classify", spying)
    assert (
        CliRunner()
        .invoke(main, ["run", str(colours), str(tmp_path / "red.png")], env={"NETSPEC_NUM_THREADS": "1"})
        .exit_code
        == 0
    )
    assert seen[-1][0] == 1 and seen[-1][1] <= {1}


def test_run_lists_the_best_five_of_many_classes_and_says_how_to_see_all(write_spec, tmp_path):
    # Class k's score is k + 1 (a bias alone): the order is known without computing anything.
    labels = [f"c{k}" for k in range(12)]
    spec = write_spec(f"""\
        netspec: 1
        name: many
        classes: [{", ".join(labels)}]
        input:
          image: {{width: 1, height: 1, color: grayscale}}
        layers:
          - {{name: scores, type: dense, neurons: 12, weights: 0.0, bias: {[float(k + 1) for k in range(12)]}}}
        """)
    Image.new("L", (1, 1)).save(tmp_path / "dot.png")
    result = invoke("run", spec, tmp_path / "dot.png")
    lines = result.output.splitlines()
    assert lines[0] == f"{tmp_path / 'dot.png'}: c11"
    assert [line.split()[0] for line in lines[1:6]] == ["c11", "c10", "c9", "c8", "c7"]
    assert lines[6:] == ["  (7 more classes; --top-k 12 lists them all)"]
    assert len(invoke("run", spec, tmp_path / "dot.png", "--top-k", "12").output.splitlines()) == 13
    assert len(json.loads(invoke("run", spec, tmp_path / "dot.png", "--json").output)["scores"]) == 12


def test_run_writes_scores_all_below_a_thousandth_with_their_exponent(write_spec, tmp_path):
    spec = write_spec("""\
        netspec: 1
        name: faint
        classes: [a, b]
        input:
          image: {width: 1, height: 1, color: grayscale}
        layers:
          - {name: scores, type: dense, neurons: 2, weights: 0.0, bias: [1.5e-9, -2.0e-10]}
        """)
    Image.new("L", (1, 1)).save(tmp_path / "dot.png")
    lines = invoke("run", spec, tmp_path / "dot.png").output.splitlines()
    assert lines[1].split()[:2] == ["a", "1.500e-09"] and lines[2].split()[:2] == ["b", "-2.000e-10"]
