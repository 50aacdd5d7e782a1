"""`netspec summary`: a table of the layers and the totals, like Keras's model.summary()."""

from __future__ import annotations

from pathlib import Path

import click

from netspec.cli.options import max_params as max_params_option
from netspec.loader import read_checked
from netspec.summary import summarise


@click.command()
@click.argument("spec", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--expand", is_flag=True, help="Show every layer of each use of a block, not one row per use.")
@max_params_option
def summary(spec: Path, expand: bool, max_params: int) -> None:
    """Print a table of SPEC's layers with shapes, parameters and multiply-adds.

    A use of a block is one row (its name, its blocks, its output shape, its layers' totals) unless
    --expand. The spec is checked as `validate` checks it, but no array is made: a network too large
    for this machine's memory is summarised as readily as a small one.
    """
    click.echo(str(summarise(read_checked(spec, max_params), expand)))
