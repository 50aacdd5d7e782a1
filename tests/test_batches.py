"""Classifying many files in batches (netspec.batches): the decoding pool, folders, rows of numbers, stdin."""

from __future__ import annotations

import io
import math
import os
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import netspec
from netspec import batches
from netspec.errors import InputError
from netspec.samples import Row

COLOURS = """\
netspec: 1
name: colours
classes: [red, blue]
input:
  image: {width: 1, height: 1}
layers:
  - {name: out, type: dense, neurons: 2, activation: softmax, weights: [[1, 0, 0], [0, 0, 1]], bias: 0}
"""

SIDES = """\
netspec: 1
name: sides
classes: [left, right]
input: {features: {size: 2, mean: [1, 0], std: 2}}
layers:
  - {name: out, type: dense, neurons: 2, activation: softmax, weights: [[1, -1], [-1, 1]], bias: 0}
"""

RED = math.e / (math.e + 1)  # softmax of (1, 0): what a pure red pixel scores


def sides_scores(a: float, b: float) -> list[float]:
    """Softmax of (a' - b', b' - a') for the standardised row (a' = (a - 1) / 2, b' = b / 2), by hand."""
    d = (a - 1) / 2 - b / 2
    return [1 / (1 + math.exp(-2 * d)), 1 / (1 + math.exp(2 * d))]


@pytest.fixture
def colours(write_spec, tmp_path):
    spec = write_spec(COLOURS, "colours.yaml")
    Image.new("RGB", (3, 3), (255, 0, 0)).save(tmp_path / "red.png")
    Image.new("RGB", (3, 3), (0, 0, 255)).save(tmp_path / "blue.png")
    return spec


def test_bulk_runs_decode_the_next_batch_while_one_is_used_and_no_further(colours, tmp_path, monkeypatch):
    """However many images are given, only the batch being classified and the next are decoded."""

    network = netspec.load(colours)
    reads, next_batch_started = [], threading.Event()
    real = batches._read

    def recording(network, path, max_pixels=None):
        reads.append(path)
        if path.name == "blue.png":
            next_batch_started.set()
        return real(network, path, max_pixels)

    monkeypatch.setattr(batches, "_read", recording)
    paths = (tmp_path / "red.png",) * 5 + (tmp_path / "blue.png",) * 95
    results = batches.classify(network, paths, 5, 2)
    first = next(results)
    assert first[0] == tmp_path / "red.png" and first[1].argmax() == 0
    # The second batch was queued before the first was handed over, with nothing more asked of `results`.
    assert next_batch_started.wait(timeout=10)
    results.close()  # waits for the reads under way and cancels the queued ones
    assert len(reads) <= 10


def test_a_failing_bulk_run_stops_without_reading_the_rest(colours, tmp_path, monkeypatch):
    """An error (or Ctrl-C) in the middle of a batch drops the reads not yet started, of this batch and the next."""

    network = netspec.load(colours)
    reads = []

    def failing(network, path, max_pixels=None):
        reads.append(path)
        raise RuntimeError("the disk went away")

    monkeypatch.setattr(batches, "_read", failing)
    with pytest.raises(RuntimeError, match="the disk went away"):
        list(batches.classify(network, (tmp_path / "red.png",) * 10, 8, 1))
    assert 1 <= len(reads) <= 2  # the failing read, and at most the one its thread had already begun


def test_bulk_runs_leave_the_warning_filters_as_they_found_them(colours, tmp_path):
    """Threads each silencing Pillow's warnings can restore one another's filters; the run must not leak that."""
    network = netspec.load(colours)

    for _ in range(10):  # the race shows in about one run of 20 without the guard
        before = list(warnings.filters)
        assert sum(1 for _ in batches.classify(network, (tmp_path / "red.png",) * 200, 16, 4)) == 200
        assert warnings.filters == before


def test_a_folder_stands_for_the_images_below_it_and_what_cannot_be_read_is_said(colours, tmp_path, monkeypatch):
    photos = tmp_path / "photos"
    (photos / "more").mkdir(parents=True)
    (photos / "private").mkdir()
    (photos / "b.png").write_bytes((tmp_path / "blue.png").read_bytes())
    (photos / "more" / "a.JPG").write_bytes((tmp_path / "red.png").read_bytes())  # cameras write .JPG
    (photos / "c.png").write_bytes(b"not an image")
    (photos / "notes.txt").write_text("not read: not named as an image")
    real = os.scandir

    def scandir(path="."):  # chmod 000 does not stop root, who may run the tests
        if os.fspath(path) == os.fspath(photos / "private"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    network = netspec.load(colours)
    results = list(network.classify_files([photos, tmp_path / "red.png"], batch_size=2, threads=2))
    assert [where for where, _ in results] == [
        photos / "private",
        photos / "b.png",
        photos / "c.png",
        photos / "more" / "a.JPG",
        tmp_path / "red.png",
    ]
    errors = {where.name: [str(p) for p in r.problems] for where, r in results if isinstance(r, InputError)}
    assert errors == {
        "private": [f"{photos / 'private'}: NS302 cannot read the folder: Permission denied"],
        "c.png": [f"{photos / 'c.png'}: NS302 not an image netspec reads (PNG, JPEG, BMP, GIF, TIFF, WEBP)"],
    }
    scores = {where.name: r for where, r in results if not isinstance(r, InputError)}
    assert np.allclose(scores["b.png"], [1 - RED, RED]) and np.allclose(scores["red.png"], [RED, 1 - RED])
    assert np.allclose(scores["a.JPG"], [RED, 1 - RED])


def test_a_folder_with_nothing_to_classify_is_an_input_error(colours, write_spec, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no image")
    with pytest.raises(InputError) as raised:
        batches.input_files(netspec.load(colours), [tmp_path / "red.png", tmp_path / "empty"])
    assert [str(p) for p in raised.value.problems] == [
        f"{tmp_path / 'empty'}: NS302 is a folder with no images in it "
        "(.png, .jpg, .jpeg, .bmp, .gif, .tif, .tiff, .webp)"
    ]
    with pytest.raises(InputError) as raised:
        netspec.load(write_spec(SIDES)).classify_files([tmp_path / "empty"])  # at once, not at the first result
    assert [str(p) for p in raised.value.problems] == [
        f"{tmp_path / 'empty'}: NS307 is a folder with no files of samples in it (.csv, .npy, .npz)"
    ]


def test_rows_of_numbers_are_named_by_their_line_or_index(write_spec, tmp_path):
    network = netspec.load(write_spec(SIDES))
    (tmp_path / "rows.csv").write_text("a,b\n3,1\n\n0, 4\n")  # a header, and a blank line: rows are lines 2 and 4
    np.savez(tmp_path / "rows.npz", x=np.array([[1.0, 2.0], [5.0, 0.0], [2.0, 2.0]]))
    (tmp_path / "notes.txt").write_text("not numbers")
    files = [tmp_path / "rows.csv", tmp_path / "notes.txt", tmp_path / "rows.npz"]
    results = list(batches.classify_samples(network, files, batch_size=2))
    assert [str(where) for where, _ in results] == [
        f"{tmp_path / 'rows.csv'}:2",
        f"{tmp_path / 'rows.csv'}:4",
        str(tmp_path / "notes.txt"),
        f"{tmp_path / 'rows.npz'}[0]",
        f"{tmp_path / 'rows.npz'}[1]",
        f"{tmp_path / 'rows.npz'}[2]",
    ]
    assert results[0][0] == Row(tmp_path / "rows.csv", line=2) and results[3][0] == Row(tmp_path / "rows.npz", index=0)
    rows = [(3, 1), (0, 4), None, (1, 2), (5, 0), (2, 2)]
    for (where, result), row in zip(results, rows):
        if row is None:
            assert isinstance(result, InputError) and result.problems[0].code == "NS307"
        else:
            assert np.allclose(result, sides_scores(*row), rtol=1e-6), where
    assert [str(w) for w, _ in network.classify_files([tmp_path / "rows.npz"])] == [str(w) for w, _ in results[3:]]


def test_scores_that_overflow_are_an_input_error_naming_the_input(write_spec, tmp_path):
    # float32 overflows: 3e38 * 255 is past its largest value (3.4e38), so the scores become NaN.
    text = COLOURS.replace("{width: 1, height: 1}", "{width: 1, height: 1, scale: [0, 255]}")
    network = netspec.load(write_spec(text.replace("[[1, 0, 0], [0, 0, 1]]", "[[3e38, 0, 0], [0, 0, 1]]")))
    Image.new("RGB", (1, 1), (255, 0, 0)).save(tmp_path / "red.png")
    Image.new("RGB", (1, 1), (0, 0, 255)).save(tmp_path / "blue.png")
    (red, overflow), (blue, scores) = batches.classify(network, (tmp_path / "red.png", tmp_path / "blue.png"))
    assert [str(p) for p in overflow.problems] == [
        f"{tmp_path / 'red.png'}: NS306 the network's scores are not finite (overflow); no label given"
    ]
    assert np.allclose(scores, [math.exp(-255) / (math.exp(-255) + 1), 1.0])  # softmax of (0, 255)
    numbers = netspec.load(write_spec(SIDES.replace("[[1, -1], [-1, 1]]", "[[3e38, 0], [0, 1]]")))
    (tmp_path / "rows.csv").write_text("0,0\n9,0\n")
    (first, fine), (second, overflow) = batches.classify_samples(numbers, [tmp_path / "rows.csv"])
    assert not isinstance(fine, InputError)
    assert [str(p) for p in overflow.problems] == [
        f"{tmp_path / 'rows.csv'}:2: NS306 the network's scores are not finite (overflow); no label given"
    ]


def test_an_image_read_from_a_stream_is_classified_under_its_name(colours, tmp_path):
    network = netspec.load(colours)
    piped = batches.read_stream(io.BytesIO((tmp_path / "blue.png").read_bytes()), "-")
    refused = batches.read_stream(io.BytesIO(b"not an image"), "-")
    assert [str(p) for p in refused.problems] == [
        "-: NS302 not an image netspec reads (PNG, JPEG, BMP, GIF, TIFF, WEBP)"
    ]
    stdin = Path("-")
    (where, scores), (_, red) = batches.classify(network, (stdin, tmp_path / "red.png"), decoded={stdin: piped})
    assert where == stdin and np.allclose(scores, [1 - RED, RED]) and np.allclose(red, [RED, 1 - RED])
    ((_, error),) = batches.classify(network, (stdin,), decoded={stdin: refused})
    assert error is refused
