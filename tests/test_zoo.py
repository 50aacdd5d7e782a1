"""The zoo (specs/zoo/): each spec validates, counts torchvision's parameters, and the small ones reproduce
torchvision's scores from its state dict (random weights) on the same photos (tests/zoo_oracle.py).
The large ones are reproduced by `python -m benchmarks.zoo` (docs/zoo.md records its results)."""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from zoo_oracle import TOLERANCE, ZOO, ZOO_FOLDER, prepare, torchvision_counts, torchvision_model, with_weights

import netspec
from netspec.cli import main
from netspec.loader import read_checked
from netspec.summary import summarise

pytest.importorskip("torch", reason="PyTorch is not installed (pip install -e '.[test]')")
pytest.importorskip("safetensors", reason="pip install safetensors")


def needs_torchvision() -> None:
    """Skip without torchvision, the zoo's oracle; import it as benchmarks/ does (its C++ operators declared)."""
    if importlib.util.find_spec("torchvision") is None:
        pytest.skip("torchvision is not installed (pip install -e '.[test]')")


SPECS = sorted(ZOO_FOLDER.glob("*.yaml"))
SMALL = [name for name, row in ZOO.items() if row.in_tests]


def test_the_zoo_has_a_row_for_every_spec_and_a_spec_for_every_row():
    assert {path.stem for path in SPECS} == set(ZOO)
    assert {"resnet18", "resnet50"} <= set(ZOO)


@pytest.mark.parametrize("path", SPECS, ids=lambda path: path.stem)
def test_a_zoo_spec_validates_and_counts_torchvision_s_parameters(path: Path):
    needs_torchvision()
    assert netspec.check(path, warnings=[]) == []
    params, buffers = torchvision_counts(path.stem)
    assert params == ZOO[path.stem].params  # the count the issue and docs/zoo.md quote
    summary = summarise(read_checked(path))
    assert summary.trainable_params == params
    assert summary.params == params + buffers  # the running means and variances, non-trainable


@pytest.mark.parametrize("name", sorted(ZOO))
def test_a_zoo_spec_takes_every_key_of_torchvision_s_state_dict_by_name(name: str, tmp_path: Path):
    # The large models' scores are benchmarks.zoo's; their names and shapes are checked here, as for the small ones.
    needs_torchvision()
    spec = with_weights(name, torchvision_model(name), tmp_path)
    assert netspec.check(spec, warnings=[]) == []


def test_netspec_summary_prints_resnet18_s_parameter_count():
    result = CliRunner().invoke(main, ["summary", str(ZOO_FOLDER / "resnet18.yaml")])
    assert result.exit_code == 0, result.output
    assert "Trainable params: 11,689,512\n" in result.output
    assert "Total params: 11,699,112 (" in result.output  # and 4,800 batch-norm channels' running mean and var
    assert "Traceback" not in result.output


@pytest.mark.parametrize("name", SMALL)
def test_a_zoo_spec_with_torchvision_s_state_dict_gives_torchvision_s_scores(name: str, tmp_path: Path):
    needs_torchvision()
    prepared = prepare(name, tmp_path)
    comparison = prepared.compare()
    assert comparison.netspec.shape == (3, 1000)
    assert comparison.relative <= TOLERANCE, f"{name}: relative difference {comparison.relative:.2e}"
    # The scores are spread as a trained model's are (zoo_oracle.temper): the comparison is not of saturated ones.
    assert 1e-10 < comparison.torchvision.min() and comparison.torchvision.max() < 0.5


def test_docs_zoo_md_shows_what_netspec_run_prints_for_resnet18_on_its_initializers(tmp_path: Path, monkeypatch):
    # The page's photo is the oracle's second generated one; the spec runs as it ships, with random weights.
    from zoo_oracle import photos

    shutil.copy(photos(tmp_path, 2)[1], tmp_path / "photo.jpg")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["run", str(ZOO_FOLDER / "resnet18.yaml"), "photo.jpg"])
    assert result.exit_code == 0, result.output
    page = (ZOO_FOLDER.parent.parent / "docs" / "zoo.md").read_text(encoding="utf-8")
    shown = page.split("$ netspec run specs/zoo/resnet18.yaml photo.jpg\n", 1)[1].split("```", 1)[0]
    assert result.output.splitlines()[0] == shown.splitlines()[0] == "photo.jpg: baseball"
    assert shown.splitlines()[-1] == result.output.splitlines()[-1]
    rows = [re.match(r"  (.+?) +(0\.\d{4})", line) for line in result.output.splitlines()[1:-1]]
    expected = [re.match(r"  (.+?) +(0\.\d{4})", line) for line in shown.splitlines()[1:-1]]
    assert [row[1] for row in rows] == [row[1] for row in expected]
    # float32's promise, not its last digits (the scores go through 20 layers on this machine's BLAS)
    assert [float(row[2]) for row in rows] == pytest.approx([float(row[2]) for row in expected], abs=2e-3)


def test_docs_zoo_md_shows_resnet18_s_layers_and_totals_as_they_are():
    page = (ZOO_FOLDER.parent.parent / "docs" / "zoo.md").read_text(encoding="utf-8")
    spec = (ZOO_FOLDER / "resnet18.yaml").read_text(encoding="utf-8")
    shown = page.split("```yaml\nlayers:\n", 1)[1].split("```", 1)[0]
    assert "\nlayers:\n" + shown in spec and spec.endswith(shown)
    shown_summary = page.split("```\n$ netspec summary specs/zoo/resnet18.yaml\n", 1)[1].split("```", 1)[0]
    printed = CliRunner().invoke(main, ["summary", str(ZOO_FOLDER / "resnet18.yaml")]).output
    assert shown_summary == printed


def test_benchmarks_zoo_writes_a_row_and_fails_one_that_does_not_reproduce():
    from benchmarks.zoo import Row

    row = Row("resnet18", 52, 11_689_512, 11_689_512, 5.6e-6, 145.2, 139.4)
    assert row.markdown() == "| resnet18 | 52 | 11,689,512 | 5.6e-06 | 145 | 139 | 1.04× |"
    assert row.passed
    miscounted = Row("resnet18", 52, 11_689_000, 11_689_512, 5.6e-6, 145.2, 139.4)
    assert miscounted.markdown().startswith("| resnet18 | 52 | 11,689,000 ≠ 11,689,512 | ")
    assert not miscounted.passed
    assert not Row("resnet18", 52, 11_689_512, 11_689_512, 2e-4, 145.2, 139.4).passed
