"""What an editor shows: the real YAML language server (the engine of VS Code's YAML extension) on the schema.

One server process opens every spec of the repository, as an editor would, and its diagnostics are
compared with `netspec validate`'s located problems: a mark where netspec reports one, with a message
that names the fix, and none on a valid spec. The server is installed with npm into a cache folder
on first use; without node, npm or a network the tests are skipped, saying why.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import netspec
from netspec.cli import main
from netspec.layers import LAYER_MODELS

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "schema" / "netspec-v1.schema.json"
SPECS = sorted(ROOT.glob("specs/*.yaml")) + [ROOT / "examples" / "rose-vs-lotus.yaml"]
BROKEN = sorted((ROOT / "examples" / "broken").glob("*.yaml"))

YLS_VERSION = "1.19.2"  # the server that VS Code's YAML extension 1.19 runs
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "netspec-tests" / f"yls-{YLS_VERSION}"
HANG = 120  # seconds without any message from the server before a test gives up (a hang, not a slow run)

# For each broken spec, in the order of netspec's problems: what the editor's message at that
# problem's line and column must say.
EXPECTED = {
    "activation-typo.yaml": ['Valid values: "linear", "relu"'],
    "conv2d-without-type.yaml": ['Missing property "type"'],
    "dense-without-type.yaml": ['Missing property "type"'],
    "initializer-typo.yaml": ['Valid values: "zeros", "ones", "uniform", "normal", "glorot_uniform"'],
    "input-empty.yaml": ["Object has fewer properties than the required number of 1"],
    "input-image-and-features.yaml": ["Object has more properties than limit of 1"],
    "key-typo.yaml": ["Property nuerons is not allowed"],
    "layer-name-space.yaml": ["layer names are ASCII letters, digits, '_' and '-', in parts joined by dots"],
    "layer-only-name.yaml": ['Missing property "type"'],
    "neurons-zero.yaml": ["Value is below the minimum of 1"],
    "rose-typos.yaml": ["Property nuerons is not allowed", '"he_uniform"', "Value is below the minimum of 1"],
    "type-capitalised.yaml": ['Valid values: "dense", "conv2d", "maxpool2d"'],
    "type-typo.yaml": ['Valid values: "dense", "conv2d", "maxpool2d", "avgpool2d", "global_avgpool", "flatten"'],
    "version-2.yaml": ["this netspec reads format version 1: write 'netspec: 1'"],
}
# Marks the editor adds where netspec has none, each true in its own right.
EXTRA = {
    "key-typo.yaml": 'Missing property "neurons".',  # a misspelt key leaves the real one missing
    "rose-typos.yaml": 'Missing property "neurons".',
}
# What the editor said before the schema chose layers by type and put the names first.
MISLEADING = ["Incorrect type. Expected", "Matches multiple schemas", 'Missing property "neurons"']


class LanguageServer:
    """A language server over stdio: JSON-RPC messages with Content-Length headers."""

    def __init__(self, command: list[str], settings: dict[str, Any]):
        self.settings = settings
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        self.inbox: queue.Queue[dict | None] = queue.Queue()
        self.responses: dict[int, dict] = {}
        self.published: dict[str, list[dict]] = {}
        self.configured = False
        self.last_id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        stream = self.process.stdout
        while True:
            length = None
            while (line := stream.readline().decode("ascii")) not in ("\r\n", ""):
                name, _, value = line.partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            if not line or length is None:
                self.inbox.put(None)
                return
            self.inbox.put(json.loads(stream.read(length)))

    def _send(self, message: dict) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        self.process.stdin.flush()

    def notify(self, method: str, params: dict) -> None:
        self._send({"method": method, "params": params})

    def request(self, method: str, params: dict) -> Any:
        self.last_id += 1
        asked = self.last_id
        self._send({"id": asked, "method": method, "params": params})
        self._pump(lambda: asked in self.responses)
        return self.responses.pop(asked).get("result")

    def _pump(self, done) -> None:
        """Handle the server's messages until `done()`."""
        while not done():
            try:
                message = self.inbox.get(timeout=HANG)
            except queue.Empty:
                raise AssertionError(f"the language server sent nothing for {HANG} s") from None
            if message is None:
                raise AssertionError("the language server stopped")
            if "id" in message and "method" in message:  # the server asks the client
                result = None
                if message["method"] == "workspace/configuration":
                    sections = {"yaml": self.settings}
                    result = [sections.get(item.get("section"), {}) for item in message["params"]["items"]]
                    self.configured = True
                self._send({"id": message["id"], "result": result})
            elif "id" in message:
                self.responses[message["id"]] = message
            elif message.get("method") == "textDocument/publishDiagnostics":
                self.published[message["params"]["uri"]] = message["params"]["diagnostics"]

    def start(self, root: Path) -> None:
        capabilities = {
            "workspace": {"configuration": True},
            "textDocument": {"completion": {"completionItem": {"snippetSupport": True}}},
        }
        self.request("initialize", {"processId": os.getpid(), "rootUri": root.as_uri(), "capabilities": capabilities})
        self.notify("initialized", {})
        self.notify("workspace/didChangeConfiguration", {"settings": {"yaml": self.settings}})
        # Documents opened before the server has its settings would be checked without them.
        self._pump(lambda: self.configured)

    def open(self, uri: str, text: str) -> list[dict]:
        """Open a document and return the diagnostics the server publishes for it."""
        self.published.pop(uri, None)
        self.notify(
            "textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "yaml", "version": 1, "text": text}}
        )
        self._pump(lambda: uri in self.published)
        return self.published[uri]

    def stop(self) -> None:
        try:
            self.request("shutdown", {})
            self.notify("exit", {})
            self.process.wait(timeout=HANG)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()


def _server_command() -> list[str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("node and npm are needed to run the YAML language server")
    script = CACHE / "node_modules" / "yaml-language-server" / "bin" / "yaml-language-server"
    if not script.is_file():
        install = [
            npm,
            "install",
            "--prefix",
            str(CACHE),
            "--no-audit",
            "--no-fund",
            f"yaml-language-server@{YLS_VERSION}",
        ]
        try:
            subprocess.run(install, check=True, capture_output=True, timeout=600)
        except (OSError, subprocess.SubprocessError) as err:
            pytest.skip(f"could not install yaml-language-server@{YLS_VERSION} with npm (offline?): {err}")
    return [node, str(script), "--stdio"]


@pytest.fixture(scope="module")
def server():
    # rose-typos.yaml has no schema line (its line numbers are quoted in the README): the schema is
    # associated with it in the settings, as a user would in VS Code's yaml.schemas.
    settings = {
        "validate": True,
        "completion": True,
        "hover": True,
        "schemaStore": {"enable": False},
        "schemas": {SCHEMA.as_uri(): ["**/rose-typos.yaml"]},
    }
    language_server = LanguageServer(_server_command(), settings)
    try:
        language_server.start(ROOT)
        yield language_server
    finally:
        language_server.stop()


def _marks(diagnostics: list[dict]) -> list[tuple[int, int, str]]:
    """(line, column, message), 1-based as netspec counts."""
    return [(d["range"]["start"]["line"] + 1, d["range"]["start"]["character"] + 1, d["message"]) for d in diagnostics]


def test_every_broken_spec_has_its_expected_messages():
    assert sorted(EXPECTED) == [path.name for path in BROKEN]


@pytest.mark.parametrize("spec", BROKEN, ids=[path.name for path in BROKEN])
def test_the_editor_marks_each_mistake_where_netspec_reports_it(server, spec):
    marks = _marks(server.open(spec.as_uri(), spec.read_text(encoding="utf-8")))
    problems = netspec.check(spec)
    assert len(problems) == len(EXPECTED[spec.name])
    for problem, expected in zip(problems, EXPECTED[spec.name]):
        at = [message for line, column, message in marks if (line, column) == (problem.line, problem.column)]
        assert any(expected in message for message in at), f"{problem}: the editor says {marks}"
    located = {(problem.line, problem.column) for problem in problems}
    elsewhere = [message for line, column, message in marks if (line, column) not in located]
    assert elsewhere == ([EXTRA[spec.name]] if spec.name in EXTRA else [])
    assert not [
        message for *_, message in marks if any(bad in message for bad in MISLEADING) and message not in elsewhere
    ]


RULE_BASE = """\
netspec: 1
classes: [a, b]
input:
  image: {width: 4, height: 4, color: grayscale}
layers:
  - {name: hidden, type: dense, neurons: 3, activation: relu}
  - {name: output, type: dense, neurons: 2, activation: softmax}
"""
# Rules between two keys that JSON Schema can state: (old text, new text, the editor's message).
RULES = {
    "alpha on relu": (
        "activation: relu}",
        "activation: relu, alpha: 0.1}",
        "only leaky_relu and elu take alpha; remove alpha or use activation: leaky_relu or elu",
    ),
    "momentum with adam": (
        "",
        "training:\n  optimizer: adam\n  momentum: 0.5\n",
        "only sgd takes momentum; remove momentum or use optimizer: sgd",
    ),
    "patience without validation": (
        "",
        "training:\n  patience: 2\n  val_split: 0\n",
        "patience counts epochs without a better validation accuracy; it needs val_split above 0",
    ),
    "mean of 3 for grayscale": (
        "color: grayscale}",
        "color: grayscale, mean: [0.5, 0.5, 0.5]}",
        "Array has too many items. Expected 1 or fewer.",
    ),
    "class twice": ("classes: [a, b]", "classes: [a, a]", "Array has duplicate items."),
}


@pytest.mark.parametrize("rule", RULES, ids=list(RULES))
def test_the_editor_marks_rules_between_keys_on_netspecs_line(server, rule, write_spec):
    old, new, message = RULES[rule]
    text = f"# yaml-language-server: $schema={SCHEMA.as_uri()}\n" + (
        RULE_BASE.replace(old, new) if old else RULE_BASE + new
    )
    spec = write_spec(text)
    (problem,) = netspec.check(spec)
    # The line only: the editor marks the key where netspec points at its value, or the whole list.
    assert [(line, message) for line, _, message in _marks(server.open(spec.as_uri(), text))] == [
        (problem.line, message)
    ]


def test_the_editor_is_silent_on_valid_specs(server, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for kind in ("image", "features"):  # what `netspec init` writes: checked from its first line
        assert CliRunner().invoke(main, ["init", f"new-{kind}", "--input", kind]).exit_code == 0
    for spec in [*SPECS, tmp_path / "new-image.yaml", tmp_path / "new-features.yaml"]:
        assert _marks(server.open(spec.as_uri(), spec.read_text(encoding="utf-8"))) == [], spec


def test_a_spec_from_init_is_checked_in_the_editor(server, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert CliRunner().invoke(main, ["init", "new"]).exit_code == 0
    text = (tmp_path / "new.yaml").read_text().replace("neurons: 16", "neurons: 0")
    marks = _marks(server.open((tmp_path / "new.yaml").as_uri(), text))
    assert [message for *_, message in marks] == ["Value is below the minimum of 1."]


def test_the_editor_offers_the_layer_types_before_a_type_is_written(server):
    lines = (ROOT / "examples" / "broken" / "layer-only-name.yaml").read_text().splitlines()
    below = lines.index("  - name: hidden") + 1

    def offered(line: str) -> dict[str, dict]:
        uri = (ROOT / "examples" / "broken" / f"being-written-{len(line)}.yaml").as_uri()  # never on disk
        server.open(uri, "\n".join([*lines[:below], line, *lines[below:]]) + "\n")
        position = {"line": below, "character": len(line)}
        result = server.request("textDocument/completion", {"textDocument": {"uri": uri}, "position": position})
        return {item["label"]: item for item in (result["items"] if isinstance(result, dict) else result)}

    keys = offered("    ")
    assert "type" in keys and "momentum" not in keys  # not batchnorm's keys alone, as before
    assert set(LAYER_MODELS) <= set(offered("    type: "))
