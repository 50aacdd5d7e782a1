"""`netspec eval`: accuracy, per-class precision, recall and F1, and the confusion matrix."""

from __future__ import annotations

import json
from pathlib import Path

import click

from netspec.cli.options import max_params as max_params_option
from netspec.cli.options import max_pixels as max_pixels_option
from netspec.cli.options import (
    picture_output,
    refuse_among_images,
    refuse_overwrite,
    spec_inputs,
    warn_skipped,
)
from netspec.cli.options import threads as threads_option
from netspec.loader import load
from netspec.train import evaluate
from netspec.train.data import read_dataset
from netspec.train.metrics import Evaluation


@click.command(name="eval")
@click.argument("spec", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("data", type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the results as one JSON object.")
@click.option("--strict", is_flag=True, help="Fail on an unreadable image instead of skipping it.")
@click.option(
    "--plot", type=click.Path(dir_okay=False, path_type=Path), help="Also draw the confusion matrix (.png, .svg, .pdf)."
)
@threads_option()
@max_pixels_option
@max_params_option
def evaluate_command(
    spec: Path,
    data: Path,
    as_json: bool,
    strict: bool,
    plot: Path | None,
    threads: int | None,
    max_pixels: int,
    max_params: int,
) -> None:
    """Measure how well SPEC classifies DATA (a folder of class folders, or a .npz with x and y)."""
    if plot is not None:
        picture_output("--plot", plot)
    network = load(spec, max_params)
    if plot is not None:
        refuse_overwrite("--plot", plot, [*spec_inputs(spec, network.spec), data])
        refuse_among_images("--plot", plot, data, below_its_root=True)
    dataset = read_dataset(data, network, strict=strict, warn=warn_skipped, max_pixels=max_pixels)
    result = evaluate(network, dataset.x, dataset.y, threads)
    click.echo(json.dumps(result.as_dict(), ensure_ascii=False) if as_json else report(result))
    if plot is not None:
        from netspec.pictures.canvas import save
        from netspec.pictures.training import confusion

        click.echo(f"wrote {save(confusion(result, f'{network.spec.name} on {data}'), plot)}", err=True)


def report(result: Evaluation) -> str:
    """Accuracy, the per-class table and the confusion matrix as aligned text."""
    labels = result.classes
    width = max(len("class"), *(len(label) for label in labels))
    lines = [f"accuracy {result.accuracy:.2%} ({int(result.confusion.trace())} of {result.count})", ""]
    lines.append(f"{'class':<{width}}  precision  recall      f1  support")
    for i, label in enumerate(labels):
        scores = f"{result.precision[i]:9.3f}  {result.recall[i]:6.3f}  {result.f1[i]:6.3f}"
        lines.append(f"{label:<{width}}  {scores}  {result.support[i]:7d}")
    lines += ["", "confusion matrix (rows: true class, columns: predicted)"]
    cell = max(len(str(result.confusion.max())), *(len(label) for label in labels))
    lines.append(" " * width + "  " + "  ".join(f"{label:>{cell}}" for label in labels))
    for i, label in enumerate(labels):
        lines.append(f"{label:<{width}}  " + "  ".join(f"{n:>{cell}}" for n in result.confusion[i]))
    return "\n".join(lines)
