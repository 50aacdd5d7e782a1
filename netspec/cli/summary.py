"""`netspec summary`: a table of the layers and the totals, like Keras's model.summary()."""

from __future__ import annotations

from math import prod
from pathlib import Path

import click
import numpy as np

from netspec.builder import plan
from netspec.cli.options import max_params as max_params_option
from netspec.errors import size_shown
from netspec.loader import read_checked
from netspec.spec import Spec

HEADERS = ("Layer", "Type", "Output shape", "Params", "Mult-adds", "Activation")
CLASSES_WIDTH = 100
"""Characters of the classes line; longer lists (ImageNet's 1,000 labels) show their first labels and a count."""


def classes_line(classes: list[str], width: int = CLASSES_WIDTH) -> str:
    """'classes: cat, dog', or for a long list 'classes (1,000): tench, goldfish, … (998 more)'."""
    line = f"classes: {', '.join(classes)}"
    if len(line) <= width:
        return line
    head, shown = f"classes ({len(classes):,}): ", classes[:1]  # the first label, however long
    for label in classes[1:]:
        rest = len(classes) - len(shown) - 1
        if len(head + ", ".join([*shown, label]) + f", … ({rest:,} more)") > width:
            break
        shown.append(label)
    return head + ", ".join(shown) + f", … ({len(classes) - len(shown):,} more)"


def rows(spec: Spec, plans: list) -> list[tuple[str, ...]]:
    """One row for the input, then one per layer."""
    kind = "image" if spec.input.image else "features"
    table = [("input", kind, str(spec.input.shape), "0", "0", "")]
    for p in plans:
        activation = p.kind.activation(p.spec)
        table.append(
            (p.name, p.kind.tag, str(p.output_shape), f"{p.param_count:,}", f"{p.multiply_adds:,}", activation)
        )
    return table


@click.command()
@click.argument("spec", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@max_params_option
def summary(spec: Path, max_params: int) -> None:
    """Print a table of SPEC's layers with shapes, parameters and multiply-adds.

    The spec is checked as `validate` checks it, but no array is made: a network too large for this
    machine's memory is summarised as readily as a small one.
    """
    checked = read_checked(spec, max_params)
    plans = plan(checked)
    table = [HEADERS, *rows(checked, plans)]
    widths = [max(len(row[i]) for row in table) for i in range(len(HEADERS))]
    numeric = {3, 4}

    def line(row: tuple[str, ...]) -> str:
        cells = [cell.rjust(w) if i in numeric else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))]
        return "  ".join(cells).rstrip()

    rule = "─" * len(line(HEADERS))
    total = sum(p.param_count for p in plans)
    trainable = sum(p.trainable_count for p in plans)
    adds = sum(p.multiply_adds for p in plans)
    dtype = np.dtype(checked.dtype)
    described = f" — {checked.description}" if checked.description else ""
    click.echo(f"{checked.name}{described}")
    click.echo(classes_line(checked.classes))
    click.echo(rule)
    click.echo(line(HEADERS))
    click.echo(rule)
    for row in table[1:]:
        click.echo(line(row))
    click.echo(rule)
    click.echo(f"Total params: {total:,} ({size_shown(total * dtype.itemsize)} as {dtype})")
    click.echo(f"Trainable params: {trainable:,}")
    click.echo(f"Non-trainable params: {total - trainable:,}")
    click.echo(f"Mult-adds per input: {adds:,}")
    click.echo(f"Input values per sample: {prod(checked.input.shape):,}")
