"""Class labels read from a text file, one a line: the form ImageNet's label files take.

The rules, said once for `classes: {file: ...}` in a spec and for `netspec import --classes-file`:
the file is UTF-8 (a byte-order mark is allowed); lines end at "\\n" (a "\\r" before it, as Windows
writes, is dropped); spaces and tabs around a label are dropped, so a trailing space never makes two
labels differ; blank lines at the end are ignored, but a blank line between labels is an error (it
would shift every label after it to the wrong score); a label listed twice, or holding a control
character (a tab inside it, U+2028), is an error at its line.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from netspec.errors import Problem, SpecError

MAX_BYTES = 16 * 2**20
"""Largest labels file read (16 MiB; ImageNet's 21,841 labels take 0.4 MiB): a file is read whole."""


def read_labels(path: Path, shown: str | None = None) -> list[str]:
    """The labels in a file, one a line (see the module's rules); problems name the file as `shown`.

    Raises:
        SpecError: a label that is empty, not printable or listed twice, each at its line; a file
            that is not UTF-8 text, larger than MAX_BYTES, or holds no labels.
        OSError: the file cannot be opened.
    """
    name = str(path) if shown is None else shown
    with open(path, "rb") as stream:
        data = stream.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        message = f"the file holds more than {MAX_BYTES:,} bytes, more than any list of labels; give a labels file"
        raise SpecError(Problem("NS103", message, file=name))
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        message = f"the labels are not UTF-8 text (byte {err.object[err.start]:#04x} at offset {err.start:,})"
        raise SpecError(Problem("NS103", message, file=name)) from None
    # Split at "\n" only: str.splitlines also splits at characters an editor shows inside a line (U+2028,
    # form feed), and the line numbers said in errors would then not be the editor's.
    labels = [line.strip(" \t\r") for line in text.split("\n")]
    while labels and not labels[-1]:
        labels.pop()
    if not labels:
        raise SpecError(Problem("NS109", "the file holds no labels; write one class label a line", file=name))
    problems = label_problems(labels, lambda i: {"file": name, "line": i + 1}, lambda i: f"line {i + 1}")
    if problems:
        raise SpecError(problems)
    return labels


def label_problems(labels: list[str], where: Callable[[int], dict], named: Callable[[int], str]) -> list[Problem]:
    """A problem for each label that is empty, not printable or listed twice; `where(i)` places the i-th,
    `named(i)` names it in a message ("line 3", "classes[2]")."""
    problems, seen = [], {}
    for index, label in enumerate(labels):
        if not label:
            problems.append(Problem("NS109", "the label is empty; give every class a label", **where(index)))
        elif not label.isprintable():
            message = f"the label {label!r} holds a tab or other control character; labels are printable text"
            problems.append(Problem("NS103", message, **where(index)))
        elif label in seen:
            message = f"the label {label!r} is listed twice (also {named(seen[label])}); keep one"
            problems.append(Problem("NS122", message, **where(index)))
        seen.setdefault(label, index)
    return problems
