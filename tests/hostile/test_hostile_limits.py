"""Threats 4–7: paths, images, deep nesting and huge error lists, numbers."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, ImageFile

import netspec
from netspec import images
from netspec.cli import main
from netspec.errors import InputError
from netspec.inputs import ImageInput

DATA = Path(__file__).parent / "data"


def invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert "Traceback" not in result.output + result.stderr
    return result


def test_weight_paths_stay_in_the_specs_folder(tmp_path, problems):
    (tmp_path / "inside").mkdir()
    np.save(tmp_path / "inside" / "ok.npy", np.zeros(2))
    outside = tmp_path.parent / f"{tmp_path.name}-secret.npy"
    np.save(outside, np.zeros(2))
    os.symlink(outside, tmp_path / "link.npy")
    head = "netspec: 1\nclasses: [a, b]\ninput: {features: 2}\nlayers:\n  - {type: dense, neurons: 2, bias: {file: "
    for name, code in [
        (str(outside), "NS207"),
        ("../" + outside.name, "NS207"),
        ("link.npy", "NS207"),
        ("inside/../inside/ok.npy", None),
    ]:
        found = problems(head + f"'{name}'" + "}}\n")
        assert (found == []) if code is None else (code in found[0]), (name, found)


def test_writing_never_overwrites_an_input(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text("netspec: 1\nclasses: [a, b]\ninput: {features: 2}\nlayers:\n  - {type: dense, neurons: 2}\n")
    np.savez(tmp_path / "data.npz", x=np.zeros((4, 2)), y=np.array([0, 1, 0, 1]))
    assert invoke("train", spec, tmp_path / "data.npz", "-o", spec).exit_code == 2
    assert invoke("export", spec, "-o", spec).exit_code == 2
    if importlib.util.find_spec("onnx"):
        invoke("export", spec, "-o", tmp_path / "model.onnx")
        assert invoke("import", tmp_path / "model.onnx", "-o", tmp_path / "model.npz").exit_code == 2
    assert spec.read_text().startswith("netspec: 1")


def test_outputs_never_replace_the_arrays_or_images_a_run_reads(tmp_path):
    pytest.importorskip("matplotlib")
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "netspec: 1\nclasses: [a, b]\ninput: {image: {width: 2, height: 2}}\nweights_file: arrays.npz\n"
        "layers:\n  - {type: flatten}\n  - {name: out, type: dense, neurons: 2, bias: {file: bias.npy}}\n"
    )
    np.savez(tmp_path / "arrays.npz", **{"out.weights": np.ones((2, 12))})
    np.save(tmp_path / "bias.npy", np.zeros(2))
    Image.new("RGB", (2, 2)).save(tmp_path / "photo.png")
    np.savez(tmp_path / "data.npz", x=np.zeros((4, 12)), y=np.array([0, 1, 0, 1]))
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    cases = [  # (command, the option, what it names, the input it would have replaced)
        (["run", spec, tmp_path / "photo.png", "--explain"], "--explain", "photo.png", "photo.png"),
        (["export", spec, "-o"], "-o", "bias.npy", "bias.npy"),
        (["train", spec, tmp_path / "data.npz", "-o"], "-o", "arrays.yaml", "arrays.npz"),  # its arrays go to .npz
    ]
    for args, option, named, replaced in cases:
        result = invoke(*args, tmp_path / named)
        assert result.exit_code == 2, result.output
        assert (
            f"Error: {option} {tmp_path / named} would overwrite {tmp_path / replaced}, an input of this run; "
            "choose another name"
        ) in result.stderr
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == before


def test_images_beyond_the_pixel_bound_are_refused_before_decoding(tmp_path, monkeypatch):
    Image.new("L", (3000, 3000)).save(tmp_path / "big.png")

    def decode(image):
        raise AssertionError(f"{image.size} pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", decode)  # what every decode of a PNG goes through
    result = invoke(
        "run",
        "--max-pixels",
        "1000000",
        Path(__file__).parents[2] / "specs" / "rose-vs-lotus.yaml",
        tmp_path / "big.png",
    )
    assert (
        result.exit_code == 1
        and result.stderr
        == f"{tmp_path / 'big.png'}: NS304 image is 3000×3000 pixels, more than the limit of 1,000,000; "
        "scale it down, or raise the limit with --max-pixels 9000000 if you trust the file\n"
    )


def test_a_damaged_animation_found_by_fuzzing_is_an_input_error():
    with pytest.raises(InputError, match="NS303 image is truncated or corrupt"):
        images.read(DATA / "truncated-gif-frames.gif", ImageInput.model_validate({"width": 4, "height": 4}))


def test_deep_nesting_and_a_million_bad_numbers_give_one_clean_error(tmp_path):
    deep = tmp_path / "deep.yaml"
    deep.write_text("[" * 100_000)
    found = [str(p) for p in netspec.check(deep)]
    assert len(found) == 1 and ("NS004" in found[0] or "NS001" in found[0])
    many = tmp_path / "many.yaml"
    many.write_text(
        "netspec: 1\nclasses: [a, b]\ninput: {features: 2}\nlayers:\n  - {type: dense, neurons: 2, bias: ["
        + ", ".join(["x"] * 1_000_000)
        + "]}\n"
    )
    result = invoke("validate", many)
    assert result.stdout.splitlines() == [
        f"{many}:5:38: NS103 layers[0].bias[0]: must be a number, got 'x'; 999,999 more value(s) in this array are not finite numbers either",
        "1 spec checked, 1 invalid",
    ]


def test_printed_problems_are_bounded(tmp_path):
    spec = tmp_path / "keys.yaml"
    spec.write_text(
        "netspec: 1\nclasses: [a, b]\ninput: {features: 2}\nlayers:\n  - {type: dense, neurons: 2}\n"
        + "".join(f"extra{i}: 1\n" for i in range(500))
    )
    lines = invoke("validate", spec).stdout.splitlines()
    assert len(lines) == 52 and lines[-2] == f"{spec}: ... and 450 more problems not shown"


def test_non_finite_numbers_are_refused_at_load(problems, tmp_path):
    np.save(tmp_path / "inf.npy", np.array([np.inf, 0.0]))
    head = "netspec: 1\nclasses: [a, b]\ninput: {features: 2}\nlayers:\n  - {type: dense, neurons: 2, bias: "
    assert "NS106" in problems(head + "[.nan, 0]}\n")[0]
    assert "NS209" in problems(head + "{file: inf.npy}}\n")[0]
