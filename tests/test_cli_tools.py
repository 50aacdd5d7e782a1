"""The CI and editor tools: validate's output formats, init, upgrade, the pre-commit hook."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

import netspec
from netspec.cli import main

from conftest import VALID, where

ROOT = Path(__file__).resolve().parent.parent
ROOT_SCHEMA = ROOT / "schema" / "netspec-v1.schema.json"


def invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert "Traceback" not in result.output + result.stderr
    return result


@pytest.fixture
def bad(write_spec):
    text = VALID.replace("neurons: 4", "neurons: 0").replace("name: tiny", "name: 'a, b: c'")
    return write_spec(text, "bad.yaml"), text


def test_validate_github_format(bad):
    path, text = bad
    line, column = where(text, "neurons: 0", "0").split(":")[1:]
    result = invoke("validate", "--format", "github", path)
    assert result.exit_code == 1
    assert result.stdout == (
        f"::error file={str(path).replace(':', '%3A').replace(',', '%2C')},line={line},col={column},title=NS104::"
        "layers[0].neurons: must be at least 1, got 0\n1 spec checked, 1 invalid\n"
    )


def test_github_format_escapes_what_the_runner_reads():
    from netspec.cli.validate import _github
    from netspec.errors import Problem

    problem = Problem("NS001", "100% wrong\nsecond line", file="a,b:c.yaml", line=1, column=2)
    assert _github(problem) == "::error file=a%2Cb%3Ac.yaml,line=1,col=2,title=NS001::100%25 wrong%0Asecond line"


def test_validate_json_format(bad):
    path, text = bad
    line, column = where(text, "neurons: 0", "0").split(":")[1:]
    result = invoke("validate", "--format", "json", path)
    assert result.exit_code == 1 and result.stderr == "1 spec checked, 1 invalid\n"
    assert [json.loads(row) for row in result.stdout.splitlines()] == [
        {
            "file": str(path),
            "line": int(line),
            "column": int(column),
            "code": "NS104",
            "path": "layers[0].neurons",
            "message": "must be at least 1, got 0",
        }
    ]


@pytest.mark.parametrize("kind", ["image", "features"])
def test_init_writes_a_starter_spec_that_validates(tmp_path, monkeypatch, kind):
    monkeypatch.chdir(tmp_path)
    result = invoke("init", "flowers", "--input", kind, "--classes", "red rose, white lotus,1e3,a:b")
    assert (
        result.exit_code == 0
        and result.stdout
        == f"wrote flowers.yaml: 4 classes, {kind} input; check it with: netspec validate flowers.yaml\n"
    )
    network = netspec.load(tmp_path / "flowers.yaml")
    assert network.classes == ["red rose", "white lotus", "1e3", "a:b"]
    result = invoke("init", "my net", "--input", kind)
    assert result.stdout.endswith("check it with: netspec validate 'my net.yaml'\n")
    assert network.input_shape == ((3, 32, 32) if kind == "image" else (4,))
    first, second = (tmp_path / "flowers.yaml").read_text().splitlines()[:2]
    assert first == f"# yaml-language-server: $schema={ROOT_SCHEMA.as_uri()}" and second.startswith(
        "# A netspec spec: flowers."
    )
    again = invoke("init", "flowers")
    assert again.exit_code == 2 and "flowers.yaml exists; choose another name or add --force" in again.stderr
    assert invoke("init", "flowers", "--classes", "a,a").exit_code == 2
    assert invoke("init", "one", "--classes", "only").stdout.startswith("wrote one.yaml: 1 class, image input;")


def test_init_names_the_schema_relative_to_a_spec_in_the_checkout(tmp_path, monkeypatch):
    # A spec written inside the checkout names the committed schema as the shipped specs do.
    schema = tmp_path / "checkout" / "schema" / "netspec-v1.schema.json"
    monkeypatch.setattr("netspec.cli.init.committed_schema", lambda: schema)
    schema.parent.mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "checkout")
    assert invoke("init", "specs/flowers").exit_code == 0
    first = Path("specs/flowers.yaml").read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=../schema/netspec-v1.schema.json"


def test_init_writes_the_schema_beside_the_spec_when_netspec_has_none(tmp_path, monkeypatch):
    # An installed netspec (not a source checkout) has no schema file; the spec gets one beside it.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("netspec.cli.init.committed_schema", lambda: None)
    result = invoke("init", "flowers")
    assert result.stdout == (
        "wrote flowers.yaml and netspec-v1.schema.json, the schema editors check it with: 2 classes, image input; "
        "check it with: netspec validate flowers.yaml\n"
    )
    assert (tmp_path / "netspec-v1.schema.json").read_text() == ROOT_SCHEMA.read_text()
    assert (
        (tmp_path / "flowers.yaml").read_text().startswith("# yaml-language-server: $schema=netspec-v1.schema.json\n")
    )
    (tmp_path / "netspec-v1.schema.json").write_text("{}")  # one already there is the user's: kept
    assert invoke("init", "roses").stdout.startswith("wrote roses.yaml: 2 classes")
    assert (tmp_path / "netspec-v1.schema.json").read_text() == "{}"


def test_upgrade(write_spec):
    current = write_spec(VALID, "current.yaml")
    assert invoke("upgrade", current).stdout == f"{current}: format version 1 is current; nothing to upgrade\n"
    future = write_spec(VALID.replace("netspec: 1", "netspec: 2"), "future.yaml")
    result = invoke("upgrade", future)
    assert result.exit_code == 1
    assert (
        result.stderr
        == f"{future}:1:10: NS107 netspec: format version 2 is newer than this netspec, which reads version 1; upgrade netspec\n"
    )
    latin = write_spec("", "latin.yaml")
    latin.write_bytes("netspec: 1\nname: caf\xe9\n".encode("latin-1"))
    result = invoke("upgrade", latin)
    assert result.stderr == f"{latin}:2:10: NS005 spec file is not UTF-8 text (byte 0xe9 here); save it as UTF-8\n"


def test_pre_commit_hook_and_workflow_example_run_validate():
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hooks[0]["id"] == "netspec-validate" and hooks[0]["entry"] == "netspec validate"
    # pre-commit passes the files that match `files` and not `exclude` (Python regexes, searched in the path).
    chosen = [
        path
        for path in ("specs/a.yaml", "b.yml", ".pre-commit-config.yaml", ".github/workflows/ci.yml", "x/.hidden.yaml")
        if re.search(hooks[0]["files"], path) and not re.search(hooks[0]["exclude"], path)
    ]
    assert chosen == ["specs/a.yaml", "b.yml"]
    workflow = yaml.safe_load((ROOT / "examples" / "ci" / "github-workflow.yml").read_text())
    assert workflow["jobs"]["validate"]["steps"][-1]["run"] == "netspec validate --format github specs/"


def test_ci_examples_install_netspec_from_its_repository_at_a_pinned_revision():
    # `pip install netspec` installs an unrelated project of that name from the public index.
    workflow = yaml.safe_load((ROOT / "examples" / "ci" / "github-workflow.yml").read_text())
    runs = "\n".join(step.get("run", "") for step in workflow["jobs"]["validate"]["steps"])
    installs = [line.strip() for line in runs.splitlines() if "pip install" in line]
    assert installs == ['pip install "netspec @ git+$NETSPEC_REPO@$NETSPEC_REV"']
    # The placeholders are marked, and the step refuses to run until they are filled in.
    assert all(workflow["env"][name].startswith("FILL-IN") for name in ("NETSPEC_REPO", "NETSPEC_REV"))
    assert "*FILL-IN*)" in runs and "exit 1" in runs
    config = yaml.safe_load((ROOT / "examples" / "ci" / "pre-commit-config.yaml").read_text())
    (repo,) = config["repos"]
    assert repo["repo"].startswith("FILL-IN") and repo["rev"].startswith("FILL-IN")
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert [hook["id"] for hook in repo["hooks"]] == [hooks[0]["id"]]


def test_the_command_list_says_each_command_whole_and_lists_every_one():
    from netspec.cli import COMMANDS, SUMMARIES

    result = CliRunner().invoke(main, ["--help"])
    listed = result.output.split("Commands:\n", 1)[1].splitlines()
    assert [line.split()[0] for line in listed] == list(COMMANDS) == list(SUMMARIES)
    assert all(line.rstrip().endswith(".") and "..." not in line for line in listed)
