"""The output pasted in the README is what the commands print today."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHECKED = ("netspec run ", "netspec validate ", "netspec summary ")
"""Commands that read only shipped files (training and export examples write files and take longer)."""


def shown_commands() -> list[tuple[str, list[str], int | None]]:
    """(command, the lines shown after it, the exit code an `echo $?` shows) for each checked command."""
    found = []
    for lines in _code_blocks((ROOT / "README.md").read_text()):
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
    assert [command.split()[1] for command, _, _ in shown_commands()] == ["run", "validate", "run", "run", "summary"]
