"""Options several commands share."""

from __future__ import annotations

from pathlib import Path

import click

from netspec.builder import DEFAULT_MAX_PARAMS

max_params = click.option(
    "--max-params",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_PARAMS,
    show_default=True,
    help="Refuse specs with more parameters than this.",
)


def output(help_text: str):
    """The -o/--output option of the commands that write a file."""
    return click.option(
        "-o", "--output", "out", required=True, type=click.Path(dir_okay=False, path_type=Path), help=help_text
    )
