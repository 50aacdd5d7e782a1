"""`netspec summary`: a table of the layers and the totals, like Keras's model.summary()."""

from __future__ import annotations

from math import prod
from pathlib import Path

import click

from netspec.cli.options import max_params as max_params_option
from netspec.loader import load
from netspec.network import Network

HEADERS = ("Layer", "Type", "Output shape", "Params", "Mult-adds", "Activation")


def rows(network: Network) -> list[tuple[str, ...]]:
    """One row for the input, then one per layer."""
    spec = network.spec
    kind = "image" if spec.input.image else "features"
    table = [("input", kind, str(network.input_shape), "0", "0", "")]
    for layer in network.layers:
        activation = getattr(layer.spec, "activation", "")
        shape = str(layer.output_shape)
        table.append((layer.name, layer.type, shape, f"{layer.param_count:,}", f"{layer.multiply_adds:,}", activation))
    return table


@click.command()
@click.argument("spec", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@max_params_option
def summary(spec: Path, max_params: int) -> None:
    """Print a table of SPEC's layers with shapes, parameters and multiply-adds."""
    network = load(spec, max_params)
    table = [HEADERS, *rows(network)]
    widths = [max(len(row[i]) for row in table) for i in range(len(HEADERS))]
    numeric = {3, 4}

    def line(row: tuple[str, ...]) -> str:
        cells = [cell.rjust(w) if i in numeric else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))]
        return "  ".join(cells).rstrip()

    rule = "─" * len(line(HEADERS))
    total = sum(layer.param_count for layer in network.layers)
    adds = sum(layer.multiply_adds for layer in network.layers)
    size = total * network.dtype.itemsize
    described = f" — {network.spec.description}" if network.spec.description else ""
    click.echo(f"{network.spec.name}{described}")
    click.echo(f"classes: {', '.join(network.classes)}")
    click.echo(rule)
    click.echo(line(HEADERS))
    click.echo(rule)
    for row in table[1:]:
        click.echo(line(row))
    click.echo(rule)
    trainable = sum(layer.trainable_count for layer in network.layers)
    click.echo(f"Total params: {total:,} ({_bytes(size)} as {network.dtype})")
    click.echo(f"Trainable params: {trainable:,}")
    click.echo(f"Non-trainable params: {total - trainable:,}")
    click.echo(f"Mult-adds per input: {adds:,}")
    click.echo(f"Input values per sample: {prod(network.input_shape):,}")


def _bytes(n: float) -> str:
    if n < 1024:
        return f"{int(n)} B"
    for unit in ("KiB", "MiB", "GiB"):
        n /= 1024
        if n < 1024 or unit == "GiB":
            break
    return f"{n:.1f} {unit}"
