"""The JSON Schema: generated from the models, committed, and in agreement with the validator."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from netspec.cli import main
from netspec.cli.schema import schema_text
from netspec.fields import Initializer, InitializerName
from netspec.schema import json_schema

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "schema" / "netspec-v1.schema.json"
SPECS = sorted(ROOT.glob("specs/*.yaml")) + [ROOT / "examples" / "rose-vs-lotus.yaml"]


def test_the_committed_schema_is_the_generated_one():
    assert COMMITTED.read_text() == schema_text() + "\n", (
        "regenerate it: netspec schema > schema/netspec-v1.schema.json"
    )
    assert CliRunner().invoke(main, ["schema"]).output == schema_text() + "\n"


def test_every_key_has_a_description_and_an_example():
    missing = []

    def walk(node, path):
        if isinstance(node, dict):
            for key, prop in (node.get("properties") or {}).items():
                if not prop.get("description") or not prop.get("examples"):
                    missing.append(f"{path}.{key}")
            for key, value in node.items():
                walk(value, f"{path}/{key}")
        elif isinstance(node, list):
            for value in node:
                walk(value, path)

    walk(json_schema(), "")
    assert missing == []


@pytest.mark.parametrize("spec", SPECS, ids=[p.name for p in SPECS])
def test_shipped_specs_match_the_schema_and_point_editors_at_it(spec):
    text = spec.read_text()
    assert text.splitlines()[0] == f"# yaml-language-server: $schema={'../schema/netspec-v1.schema.json'}"
    jsonschema.validate(yaml.safe_load(text), json_schema())


def test_the_schema_catches_what_editors_should_flag():
    broken = yaml.safe_load((ROOT / "examples" / "broken" / "rose-typos.yaml").read_text())
    errors = list(jsonschema.Draft202012Validator(json_schema()).iter_errors(broken))
    assert errors  # the misspelt key and the unknown initializer


def test_initializer_names_match_the_models():
    models = get_args(get_args(Initializer)[0])
    assert sorted(get_args(model.model_fields["init"].annotation)[0] for model in models) == sorted(
        get_args(InitializerName)
    )
