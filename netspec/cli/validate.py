"""`netspec validate`: check spec files and folders of specs, as teams do in CI."""

from __future__ import annotations

from pathlib import Path

import click

from netspec.cli.options import max_params as max_params_option
from netspec.loader import check

SPEC_SUFFIXES = (".yaml", ".yml")


def spec_files(paths: tuple[Path, ...]) -> list[Path]:
    """The files named, plus every *.yaml and *.yml below the folders named, in a stable order.

    Inside folders, hidden files and folders (.github/, .pre-commit-config.yaml) are skipped.
    """
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = (p for p in path.rglob("*") if p.suffix in SPEC_SUFFIXES and p.is_file())
            files.extend(
                sorted(p for p in found if not any(part.startswith(".") for part in p.relative_to(path).parts))
            )
        else:
            files.append(path)
    return list(dict.fromkeys(files))


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@max_params_option
def validate(paths: tuple[Path, ...], max_params: int) -> None:
    """Check spec files (and all *.yaml/*.yml below folders); exit 1 if any is invalid.

    Prints one line per problem, FILE:LINE:COLUMN: CODE PATH: MESSAGE, then a summary.
    """
    files = spec_files(paths)
    if not files:
        raise click.UsageError(f"no *.yaml or *.yml files found in {', '.join(map(str, paths))}")
    invalid = 0
    for file in files:
        problems = check(file, max_params)
        for problem in problems:
            click.echo(str(problem))
        invalid += bool(problems)
    noun = "spec" if len(files) == 1 else "specs"
    click.echo(f"{len(files)} {noun} checked, {invalid} invalid")
    if invalid:
        raise click.exceptions.Exit(1)
