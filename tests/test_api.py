"""The package's public face: `netspec.__all__`, what `dir(netspec)` lists, names loaded on first use."""

from __future__ import annotations

import importlib
import subprocess
import sys

import netspec


def test_dir_lists_the_public_api_once_and_nothing_of_the_implementation():
    before = dir(netspec)
    for name in netspec.__all__:  # each loaded on first use, then kept in the module's globals
        assert getattr(netspec, name).__name__ == name
    importlib.import_module("netspec.images")  # a submodule becomes an attribute of the package when imported

    after = dir(netspec)
    assert before == after and len(after) == len(set(after))
    assert [name for name in after if not name.startswith("__")] == sorted(netspec.__all__)
    assert "__version__" in after
    for leaked in ("Any", "TYPE_CHECKING", "annotations", "importlib", "_HOMES", "images", "errors"):
        assert leaked not in after


def test_import_netspec_loads_none_of_the_api_until_used():
    code = "import sys, netspec; print(sorted(m for m in sys.modules if m.startswith('netspec')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "['netspec']"
