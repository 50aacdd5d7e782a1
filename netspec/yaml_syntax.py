"""Where a YAML syntax error is placed, and what its message says, so that editors open the right line."""

from __future__ import annotations

import yaml

from netspec.errors import Problem


def syntax_problem(err: yaml.MarkedYAMLError, file: str, text: str) -> Problem:
    """A located NS001 for a YAML syntax error, placed where libyaml noticed it.

    Editors and CI annotations jump to the position given, so it is the problem mark: the line the
    parser could not read. libyaml often notices a mistake later than it is made (a missing ':' at
    the next line, an unclosed quote or bracket at the end of the file), so the construct it was
    reading and where that started (its context mark) stay in the message, to look back to.
    """
    found = err.problem_mark
    if found is not None and text[found.index : found.index + 1] == "\t":
        return Problem("NS001", "a tab cannot indent YAML; indent with spaces").located(
            file, found.line + 1, found.column + 1
        )
    start, mark = err.context_mark, found or err.context_mark
    if mark is None:  # pragma: no cover - libyaml marks every syntax error
        return Problem("NS001", err.problem or "invalid YAML", file=file)
    looked_back = _at_the_start(err, text)
    if looked_back is not None:
        return looked_back.located(file, start.line + 1, start.column + 1)
    line, column = _within(text, mark.line + 1, mark.column + 1)
    what, where = err.problem or "invalid YAML", "here"
    if err.context and start is not None and (start.line + 1, start.column + 1) != (line, column):
        what = f"{err.context} at line {start.line + 1}, column {start.column + 1}: {what}"
        where = "here" if start.line + 1 == line else f"from line {start.line + 1} to here"
    elif err.context:
        what = f"{err.context}: {what}"
    what += f"; check the brackets, quotes, colons and indentation {where}"
    return Problem("NS001", what).located(file, line, column)


def _at_the_start(err: yaml.MarkedYAMLError, text: str) -> Problem | None:
    """The problem, for the two mistakes libyaml notices only later but whose start is the place to fix.

    A key without ': ' (`neurons 4`, `neurons:4`) is noticed on the next line, and a quote never
    closed at the end of the file: both are placed where the key or the quote starts, with the fix.
    """
    start = err.context_mark
    if start is None:
        return None
    written = text.splitlines()[start.line] if start.line < len(text.splitlines()) else ""
    key_and_rest = written[start.column :].rstrip()
    where = f"{err.context} at line {start.line + 1}, column {start.column + 1}: {err.problem}"
    if err.problem == "could not find expected ':'":
        key, gap, value = key_and_rest.partition(":") if ":" in key_and_rest else key_and_rest.partition(" ")
        fixed = f"{key.rstrip()}: {value.lstrip()}".rstrip()
        return Problem("NS001", f"{where}; a key needs ': ' (a colon, then a space) before its value: write {fixed!r}")
    if err.context == "while scanning a quoted scalar":
        quote = written[start.column : start.column + 1]
        return Problem("NS001", f"{where}; the quote {quote} opened here is never closed: end the value with {quote}")
    return None


def _within(text: str, line: int, column: int) -> tuple[int, int]:
    """The position, or just after the last character when it lies past the end of the text.

    libyaml marks the end of the stream on the line after the last one, which editors and
    GitHub annotations cannot show.
    """
    content = text.rstrip()
    last = content.count("\n") + 1
    if line < last or (line == last and column <= len(content) - content.rfind("\n")):
        return line, column
    return last, len(content) - content.rfind("\n")
