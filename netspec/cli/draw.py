"""`netspec draw`: the network as a diagram, or one neuron's weights as a picture (the `plot` extra)."""

from __future__ import annotations

from pathlib import Path

import click

from netspec.cli.options import max_params as max_params_option
from netspec.cli.options import output, picture_output
from netspec.loader import load


@click.command()
@click.argument("spec", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@output("The picture to write: .png, .svg or .pdf.")
@click.option("--neuron", metavar="LAYER:INDEX", help="Draw one neuron's weights instead, e.g. hidden1:0.")
@click.option("--expand", is_flag=True, help="Draw every layer of each use of a block, not one box per use.")
@max_params_option
def draw(spec: Path, out: Path, neuron: str | None, expand: bool, max_params: int) -> None:
    """Draw SPEC's network: columns of neurons joined by their weights, blocks for image layers.

    A graph spec, or a network of more than 12 layers, is drawn as a column of labelled boxes; a spec
    with blocks as boxes too, one per use of a block unless --expand.
    """
    from netspec.pictures import diagram
    from netspec.pictures import neuron as neuron_picture
    from netspec.pictures.canvas import save

    picture_output("-o", out)
    network = load(spec, max_params)
    figure = neuron_picture.draw(network, neuron) if neuron else diagram.draw(network, expand)
    click.echo(f"wrote {save(figure, out)}")
