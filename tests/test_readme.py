"""The output pasted in the README and the docs is what the commands print today."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHECKED = ("netspec run ", "netspec validate ", "netspec summary ")
"""Commands that read only shipped files (training and export examples write files and take longer)."""
PAGES = ("README.md", "docs/commands.md")
"""Pages whose shown commands are checked one by one."""
FIRST_NETWORK = "## Your first network"
"""The README section that is one session: its commands run in order, each reading what the last wrote."""


def shown_commands() -> list[tuple[str, list[str], int | None]]:
    """(command, the lines shown after it, the exit code an `echo $?` shows) for each checked command."""
    found = []
    for page in PAGES:
        found += _commands_of(_without_first_network((ROOT / page).read_text()))
    return found


def _without_first_network(text: str) -> str:
    if FIRST_NETWORK not in text:
        return text
    start = text.index(FIRST_NETWORK)
    return text[:start] + text[text.index("\n## ", start + 1) :]


def _commands_of(text: str) -> list[tuple[str, list[str], int | None]]:
    found = []
    for lines in _code_blocks(text):
        starts = [i for i, line in enumerate(lines) if line.startswith("$ ")] + [len(lines)]
        for start, end in zip(starts, starts[1:]):
            command = lines[start][2:]
            following = lines[end : end + 2] if end < len(lines) else []
            exit_code = int(following[1]) if following[:1] == ["$ echo $?"] else None
            if command.startswith(CHECKED) and "trained/" not in command:  # not what a training example made
                found.append((command, lines[start + 1 : end], exit_code))
    return found


def _code_blocks(text: str) -> list[list[str]]:
    blocks: list[list[str]] = []
    inside = False
    for line in text.splitlines():
        if line.startswith("```"):
            inside = not inside
            if inside:
                blocks.append([])
        elif inside:
            blocks[-1].append(line)
    return blocks


@pytest.mark.parametrize("command, shown, exit_code", shown_commands(), ids=[c for c, _, _ in shown_commands()])
def test_the_readme_shows_what_the_command_prints(command, shown, exit_code, tmp_path):
    netspec = shutil.which("netspec", path=str(Path(sys.executable).parent)) or shutil.which("netspec")
    assert netspec, "the netspec console script is not installed (pip install -e '.[test]')"
    for name in ("specs", "examples"):
        (tmp_path / name).symlink_to(ROOT / name)
    (tmp_path / "notes.txt").write_text("notes, not an image\n")
    done = subprocess.run(
        ["bash", "-c", netspec + command.removeprefix("netspec")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    printed = (done.stdout + done.stderr).splitlines()  # stdout first, then stderr, as the README shows
    assert [_comparable(line) for line in printed] == [_comparable(line) for line in shown]
    for line, shown_line in zip(printed, shown):
        if line.startswith("{"):
            assert_scores_agree(json.loads(line)["scores"], json.loads(shown_line)["scores"])
    if exit_code is not None:
        assert done.returncode == exit_code


SCORE_TOLERANCE = {"rel": 1e-5, "abs": 1e-12}
"""What float32 can promise across machines (relative; abs only for a score of 0): the BLAS kernel (Haswell, SkylakeX, …) and the batch an image
is in change the order of additions, and with it the 6th or 7th significant digit (0.0002744261 on one
machine is 0.0002744256 on another). The README says scores agree to about 6 digits."""


def _comparable(line: str):
    """A line as text, or a JSON line without its scores (compared apart, within SCORE_TOLERANCE)."""
    if not line.startswith("{"):
        return line
    record = json.loads(line)
    record["scores"] = sorted(record["scores"])
    return record


def assert_scores_agree(printed: dict[str, float], shown: dict[str, float]) -> None:
    assert list(printed) == list(shown)
    assert list(printed.values()) == pytest.approx(list(shown.values()), **SCORE_TOLERANCE)


def test_scores_are_compared_within_float32s_promise_not_to_the_digit():
    shown = {"red rose": 0.9997255, "white lotus": 0.0002744256}
    assert_scores_agree({"red rose": 0.9997255, "white lotus": 0.0002744261}, shown)  # another CPU kernel
    with pytest.raises(AssertionError):
        assert_scores_agree({"red rose": 0.9997255, "white lotus": 0.0002745}, shown)  # a different network
    with pytest.raises(AssertionError):
        assert_scores_agree({"red rose": 0.99970, "white lotus": 0.0002744256}, shown)


def test_the_readme_commands_are_found():
    commands = [command.split()[1] for command, _, _ in shown_commands()]
    assert commands == ["run", "summary", "run", "validate", "run", "run", "summary", "summary", "summary"]


def _session(text: str) -> list[tuple[str, list[str]]]:
    """(command, the lines shown after it) for every command of every block of a section, in order."""
    steps = []
    for lines in _code_blocks(text):
        starts = [i for i, line in enumerate(lines) if line.startswith("$ ")] + [len(lines)]
        steps += [(lines[start][2:], lines[start + 1 : end]) for start, end in zip(starts, starts[1:])]
    return steps


def _matches(printed: list[str], shown: list[str]) -> bool:
    """Whether printed lines fit the shown ones: a shown line `…` stands for any lines (training's epoch
    lines, whose losses and speeds differ between machines), a line ending in ` …` for any ending."""
    if not shown:
        return not printed
    head, rest = shown[0], shown[1:]
    if head == "…":
        return any(_matches(printed[i:], rest) for i in range(len(printed) + 1))
    if not printed:
        return False
    fits = printed[0].startswith(head[:-1]) if head.endswith(" …") else printed[0] == head
    return fits and _matches(printed[1:], rest)


def test_ellipses_stand_for_what_differs_between_machines():
    assert _matches(["epoch 1/2 loss 0.3", "epoch 2/2 loss 0.1", "best"], ["epoch 1/2 …", "…", "best"])
    assert _matches(["a", "b"], ["a", "…", "b"]) and not _matches(["a", "c"], ["a", "…", "b"])
    assert not _matches(["epoch 1/2 loss 0.3"], ["epoch 2/2 …"]) and not _matches(["a", "b"], ["a"])


def test_the_first_network_runs_as_the_readme_shows(tmp_path):
    text = (ROOT / "README.md").read_text()
    start = text.index(FIRST_NETWORK)
    steps = _session(text[start : text.index("\n## ", start + 1)])
    assert [command.split()[:2] for command, _ in steps][:4] == [
        ["python", "examples/make_flowers.py"],
        ["python", "examples/make_flowers.py"],
        ["netspec", "init"],
        ["netspec", "validate"],
    ]
    for name in ("specs", "examples"):
        (tmp_path / name).symlink_to(ROOT / name)
    environment = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for command, shown in steps:
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=tmp_path,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,  # interleaved, as a terminal shows them
            text=True,
            timeout=300,
        )
        printed = done.stdout.splitlines()
        assert _matches(printed, shown), f"$ {command}\n" + "\n".join(printed)


def test_the_python_api_example_prints_what_the_page_shows():
    blocks = _code_blocks((ROOT / "docs" / "python-api.md").read_text())
    code = next("\n".join(block) for block in blocks if block and block[0] == "import numpy as np")
    shown = blocks[blocks.index(code.splitlines()) + 1]
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert (done.stdout.splitlines(), done.stderr) == (shown, "")
