"""Options several commands share."""

from __future__ import annotations

import click

from netspec.builder import DEFAULT_MAX_PARAMS

max_params = click.option(
    "--max-params",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_PARAMS,
    show_default=True,
    help="Refuse specs with more parameters than this.",
)
