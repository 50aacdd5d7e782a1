"""`netspec train`: learn a spec's weights from labelled examples and write the trained spec."""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

import click

from netspec import saving
from netspec import train as training
from netspec.builder import build
from netspec.cli.options import (
    can_write,
    output,
    picture_output,
    refuse_among_images,
    refuse_overwrite,
    spec_inputs,
    warn_skipped,
)
from netspec.cli.options import max_params as max_params_option
from netspec.cli.options import max_pixels as max_pixels_option
from netspec.cli.options import threads as threads_option
from netspec.errors import Problem, SpecError
from netspec.folders import SPEC_SUFFIXES
from netspec.inputs import Input
from netspec.loader import located, read_spec
from netspec.network import Network
from netspec.spec import Spec
from netspec.train import Epoch, resolve_options
from netspec.train.data import feature_stats, read_dataset

BAR_WIDTH = 24
"""Characters of the progress bar drawn for the running epoch."""


@click.command()
@click.argument("spec", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("data", type=click.Path(exists=True, path_type=Path))
@output("Trained spec to write (OUT.yaml; arrays go to OUT.npz).")
@click.option(
    "--optimizer", type=click.Choice(["sgd", "adam"]), help="Optimizer (spec's training.optimizer, else adam)."
)
@click.option(
    "--learning-rate",
    type=click.FloatRange(min=0, min_open=True),
    help="Step size (default 0.001 for adam, 0.01 for sgd).",
)
@click.option("--momentum", type=click.FloatRange(0, 1, max_open=True), help="Momentum of sgd (default 0.9).")
@click.option("--weight-decay", type=click.FloatRange(min=0), help="L2 penalty on weights (default 0).")
@click.option("--epochs", type=click.IntRange(min=1), help="Passes over the data (default 20).")
@click.option("--batch-size", type=click.IntRange(min=1), help="Examples per step (default 32).")
@click.option(
    "--val-split",
    type=click.FloatRange(0, 1, max_open=True),
    help="Fraction held out to pick the best epoch (default 0.1).",
)
@click.option(
    "--patience",
    type=click.IntRange(min=0),
    help="Stop after N epochs without improvement (0: never; default: the spec's, else never).",
)
@click.option("--seed", type=click.IntRange(min=0), help="Seed of shuffling and the split (default: the spec's seed).")
@click.option("--fresh", is_flag=True, help="Start from the layers' initial values, ignoring the spec's weights_file.")
@click.option(
    "--normalize",
    is_flag=True,
    help="Give a features input each feature's mean and std over DATA (written into OUT), and train on them.",
)
@click.option("--strict", is_flag=True, help="Fail on an unreadable image instead of skipping it.")
@click.option("--quiet", is_flag=True, help="No progress bar: one line per epoch.")
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also draw loss and accuracy per epoch (.png, .svg, .pdf).",
)
@click.option(
    "--save-on-interrupt/--no-save-on-interrupt",
    default=True,
    show_default=True,
    help="On Ctrl-C, save the best epoch so far.",
)
@threads_option()
@max_pixels_option
@max_params_option
def train(
    spec: Path,
    data: Path,
    out: Path,
    fresh: bool,
    normalize: bool,
    strict: bool,
    quiet: bool,
    plot: Path | None,
    save_on_interrupt: bool,
    threads: int | None,
    max_pixels: int,
    max_params: int,
    **overrides,
) -> None:
    """Train SPEC on DATA and write the trained spec to OUT.

    DATA is a folder with one subfolder per class label holding its images, or a .npz with
    arrays x (inputs shaped as the spec's input) and y (class indices or labels). OUT is the
    same spec, comments kept, with weights_file pointing at OUT.npz.
    """
    if out.suffix not in SPEC_SUFFIXES:
        raise click.UsageError(f"-o {out}: the trained spec is a .yaml or .yml file")
    can_write("-o", out)
    can_write("-o", out.with_suffix(".npz"))
    if plot is not None:
        picture_output("--plot", plot)
    parsed, source = read_spec(spec)
    inputs = [*spec_inputs(spec, parsed), data]
    refuse_overwrite("-o", out, inputs, writes=[out.with_suffix(".npz")])
    if plot is not None:
        refuse_overwrite("--plot", plot, [*inputs, out, out.with_suffix(".npz")])
        refuse_among_images("--plot", plot, data, below_its_root=True)
    if fresh:
        parsed = parsed.model_copy(update={"weights_file": None})
    if normalize:
        if parsed.input.image is not None:
            raise click.UsageError("--normalize is for a features input; an image input states its mean and std itself")
        parsed = _standardised(parsed, None)  # DATA is read as it is, to be measured
    try:
        network = build(parsed, base_dir=spec.parent, max_params=max_params)
    except SpecError as err:
        raise located(source, err.problems) from None
    try:
        options = resolve_options(parsed, **overrides)  # here, to locate a bad `training:` value in the file
    except SpecError as err:
        raise _told_apart(err, source, overrides) from None
    # Measured in float64 whatever the spec's dtype: the mean and std are written into the trained spec.
    reader = Network(parsed.model_copy(update={"dtype": "float64"}), network.layers) if normalize else network
    dataset = read_dataset(data, reader, strict=strict, warn=warn_skipped, max_pixels=max_pixels)
    if normalize:
        network = Network(_standardised(parsed, feature_stats(dataset.x, str(data))), network.layers)
        dataset = replace(dataset, x=network.inputs(dataset.x))
    bar = sys.stderr.isatty() and not quiet
    on_batch, on_epoch = _progress(options.epochs, bar)
    # The data is already checked and the options resolved: the loop itself, not Network.fit, which does both again.
    history = training.fit(network, dataset.x, dataset.y, options, on_batch, on_epoch, threads)
    if history.interrupted:
        if bar:
            _redraw("")
        click.echo("netspec: interrupted", err=True)
    if history.diverged:
        epoch, rate = len(history.epochs), options.learning_rate
        message = (
            f"training diverged in epoch {epoch}: the numbers overflowed; lower the learning rate (it was {rate:g})"
        )
        click.echo(f"warning: {message}", err=True)
    if history.interrupted and not save_on_interrupt:
        click.echo("netspec: nothing written", err=True)
        raise click.exceptions.Exit(130)
    if not history.epochs or (history.diverged and history.best_epoch == 0):
        click.echo("netspec: no epoch gave weights worth keeping; nothing written", err=True)
        raise click.exceptions.Exit(130 if history.interrupted else 1)
    measured = network.spec.input.model_dump(mode="json", exclude_none=True)["features"] if normalize else None
    written, arrays = saving.save(network, out, source, features=measured)
    click.echo(f"{_result(history)}; wrote {written} and {arrays}")
    if plot is not None:
        from netspec.pictures.canvas import save
        from netspec.pictures.training import curves

        click.echo(f"wrote {save(curves(history, f'{network.spec.name} trained on {data}'), plot)}", err=True)
    if history.interrupted:
        raise click.exceptions.Exit(130)


def _standardised(spec: Spec, stats: tuple[list[float], list[float]] | None) -> Spec:
    """The spec with its features input given this mean and std (None: neither)."""
    mean, std = stats or (None, None)
    given = {"size": spec.input.shape[0], "mean": mean, "std": std}
    features = {key: value for key, value in given.items() if value is not None}
    return spec.model_copy(update={"input": Input.model_validate({"features": features})})


def _result(history) -> str:
    """The line that says which arrays were kept and how good they are."""
    ending = " (stopped early)" if history.stopped_early else ""
    best = history.best
    if history.best_epoch == 0:
        start = history.start_val_accuracy
        measured = f" (validation accuracy {start:.2%})" if start is not None else ""
        return f"no epoch beat the starting weights{measured}, which are kept{ending}"
    if best.val_accuracy is None:
        return f"final training accuracy {best.accuracy:.2%} at epoch {best.number}{ending}"
    return f"best validation accuracy {best.val_accuracy:.2%} at epoch {best.number}{ending}"


def _told_apart(err: SpecError, source, overrides: dict) -> SpecError:
    """Training problems said where their values came from: a flag is named, a key in the file is located."""
    flags = {key: value for key, value in overrides.items() if value is not None}
    given = " ".join(f"--{key.replace('_', '-')} {value}" for key, value in flags.items())
    problems = []
    for problem in err.problems:
        key = problem.path[1] if len(problem.path) > 1 else None
        if key in flags:
            problems.append(Problem(problem.code, f"--{key.replace('_', '-')} {flags[key]}: {problem.message}"))
        else:
            note = f" (with {given} given on the command line)" if flags else ""
            problems.append(source.locate(replace(problem, message=problem.message + note)))
    return SpecError(problems)


def _progress(epochs: int, bar: bool):
    """Callbacks that redraw a bar for the running epoch on a terminal, and print a line per finished epoch."""
    state = {"epoch": 1, "start": time.perf_counter()}

    def on_batch(seen: int, total: int, loss: float, accuracy: float) -> None:
        if not bar:
            return
        if seen <= 0 or "drawn" not in state:
            state["start"], state["drawn"] = time.perf_counter(), True
        elapsed = time.perf_counter() - state["start"]
        filled = round(BAR_WIDTH * seen / total)
        label = f"epoch {state['epoch']:>{len(str(epochs))}}/{epochs}"
        line = f"{label}  [{'#' * filled}{'-' * (BAR_WIDTH - filled)}]  loss {loss:.4f}  accuracy {accuracy:6.2%}"
        # A rate from the first few milliseconds says nothing; show it once there is time behind it.
        _redraw(f"{line}  {seen / elapsed:,.0f} samples/s" if elapsed > 0.5 else line)

    def on_epoch(epoch: Epoch) -> None:
        if state.pop("drawn", False):
            _redraw("")
        state["epoch"] = epoch.number + 1
        click.echo(_epoch_line(epoch, epochs), err=True)

    return on_batch, on_epoch


def _redraw(text: str) -> None:
    # Carriage return and "erase line" (ANSI): the bar is redrawn in place on a terminal.
    sys.stderr.write(f"\r\x1b[2K{text}")
    sys.stderr.flush()


def _epoch_line(epoch: Epoch, epochs: int) -> str:
    line = f"epoch {epoch.number:>{len(str(epochs))}}/{epochs}  loss {epoch.loss:.4f}  accuracy {epoch.accuracy:6.2%}"
    if epoch.val_accuracy is not None:
        line += f"  val_loss {epoch.val_loss:.4f}  val_accuracy {epoch.val_accuracy:6.2%}"
    return line + f"  {epoch.samples_per_second:,.0f} samples/s"
