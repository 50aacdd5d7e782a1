"""`netspec validate`: check spec files and folders of specs, as teams do in CI."""

from __future__ import annotations

import json
from pathlib import Path

import click

from netspec.cli.options import max_params as max_params_option
from netspec.cli.options import shown_problems
from netspec.errors import Problem, plural
from netspec.folders import SPEC_SUFFIXES, files_below
from netspec.loader import check


def spec_files(paths: tuple[Path, ...]) -> tuple[list[Path], list[Problem]]:
    """The files named, plus every *.yaml and *.yml below the folders named, in a stable order; and a
    problem for each folder below them that could not be read.

    Inside folders, hidden files and folders (.github/, .pre-commit-config.yaml) are skipped.
    """
    files: list[Path] = []
    problems: list[Problem] = []
    for path in paths:
        if path.is_dir():
            found, unreadable = files_below(path, SPEC_SUFFIXES, "NS005")
            files.extend(found)
            problems += unreadable
        else:
            files.append(path)
    return list(dict.fromkeys(files)), problems


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--format",
    "style",
    type=click.Choice(["text", "github", "json"]),
    default="text",
    show_default=True,
    help="text: FILE:LINE:COL: CODE PATH: MESSAGE; github: GitHub Actions annotations; json: one object per line.",
)
@max_params_option
def validate(paths: tuple[Path, ...], style: str, max_params: int) -> None:
    """Check spec files (and all *.yaml/*.yml below folders); exit 1 if any is invalid.

    Prints one line per problem, then a summary (on stderr with --format json, so that stdout
    holds only JSON).
    """
    files, unreadable = spec_files(paths)
    if not files and not unreadable:
        raise click.UsageError(f"no *.yaml or *.yml files found in {', '.join(map(str, paths))}")
    for line in shown_problems(unreadable, FORMATS[style]):
        click.echo(line)
    invalid = 0
    for file in files:
        advice: list[str] = []
        problems = check(file, max_params, advice)
        for line in shown_problems(problems, FORMATS[style]):
            click.echo(line)
        for line in advice:
            click.echo(line, err=True)
        invalid += bool(problems)
    noun = "spec" if len(files) == 1 else "specs"
    unread = f", {plural(len(unreadable), 'folder')} could not be read" if unreadable else ""
    click.echo(f"{len(files)} {noun} checked, {invalid} invalid{unread}", err=style == "json")
    if invalid or unreadable:  # what an unreadable folder holds was not checked
        raise click.exceptions.Exit(1)


def _github(problem: Problem) -> str:
    """A GitHub Actions workflow command: the problem shows on its line in a pull request."""
    where = f"file={_escape(problem.file, True)}"
    if problem.line is not None:
        where += f",line={problem.line},col={problem.column or 1}"
    path = f"{problem.via}{problem.dotted_path}: " if problem.path else ""
    return f"::error {where},title={problem.code}::{_escape(path + problem.message, False)}"


def _escape(text: str | None, property_value: bool) -> str:
    # The escapes GitHub's runner reads back; property values escape ':' and ',' as well.
    text = (text or "").replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if property_value else text


def _json(problem: Problem) -> str:
    fields = {
        "file": problem.file,
        "line": problem.line,
        "column": problem.column,
        "code": problem.code,
        "path": problem.dotted_path,
        "message": problem.message,
    }
    if problem.via:  # inside a block: the uses that led there (see docs/spec-format.md#blocks)
        fields["via"] = problem.via
    return json.dumps(fields, ensure_ascii=False)


FORMATS = {"text": str, "github": _github, "json": _json}
