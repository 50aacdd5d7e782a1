"""Threat 1: code in YAML. Only plain values are read; nothing a spec says reaches an import or eval."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

import netspec
from netspec.cli import main

PACKAGE = Path(__file__).resolve().parents[2] / "netspec"


@pytest.mark.parametrize(
    "payload",
    [
        "!!python/object/apply:os.system ['touch {sentinel}']",
        "!!python/object/new:os.system ['touch {sentinel}']",
        "!!python/name:os.system",
        "!!python/module:os",
        "!binary aGVsbG8=",
        "!!set {{a: null}}",
    ],
)
def test_tags_are_refused_and_run_nothing(tmp_path, payload):
    sentinel = tmp_path / "ran"
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "netspec: 1\nclasses: [a, b]\ninput: {features: 2}\n"
        f"name: {payload.format(sentinel=sentinel)}\nlayers:\n  - {{type: dense, neurons: 2}}\n"
    )
    result = CliRunner().invoke(main, ["validate", str(spec)])
    assert result.exit_code == 1 and "NS002" in result.output and "Traceback" not in result.output
    assert result.output.startswith(f"{spec}:4:7: NS002 tag ")
    assert not sentinel.exists()


FORBIDDEN = {
    r"\byaml\.load\((?![^)]*Safe)": "yaml.load without a safe loader",
    r"\bunsafe_load\b": "yaml.unsafe_load",
    r"\bfull_load\b": "yaml.full_load",
    r"(?<![\w.])eval\(": "eval(",
    r"(?<![\w.])exec\(": "exec(",
    r"^\s*import pickle|^\s*from pickle|\bpickle\.load": "pickle",
    r"allow_pickle\s*=\s*True": "allow_pickle=True",
    r"__import__\(": "__import__(",
}


def test_the_package_has_no_way_to_run_code_from_input():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            for pattern, what in FORBIDDEN.items():
                if re.search(pattern, line):
                    found.append(f"{path.relative_to(PACKAGE.parent)}:{number}: {what}")
    assert found == []


def test_layer_types_and_activations_are_closed_vocabularies(problems):
    # A module path or builtin name is just an unknown word.
    text = "netspec: 1\nclasses: [a, b]\ninput: {features: 2}\nlayers:\n  - {type: os.system, neurons: 2, activation: __import__}\n"
    found = problems(text)
    assert len(found) == 1 and "NS105 layers[0].type: unknown layer type 'os.system'" in found[0]
    assert netspec.check  # the API the CLI uses is the one tested here
