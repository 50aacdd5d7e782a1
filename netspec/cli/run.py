"""`netspec run`: classify images, or rows of numbers, with the network a spec describes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from netspec import batches
from netspec.batches import classify
from netspec.cli.options import max_params as max_params_option
from netspec.cli.options import max_pixels as max_pixels_option
from netspec.cli.options import picture_output, refuse_among_images, refuse_overwrite, spec_inputs
from netspec.cli.options import threads as threads_option
from netspec.errors import InputError
from netspec.loader import load
from netspec.samples import Row
from netspec.threads import limited

BAR_WIDTH = 20
STDIN = Path("-")
"""The image argument that stands for standard input, as for cat; printed as `-`."""
_EIGHTHS = " ▏▎▍▌▋▊▉"
MANY_CLASSES = 10
TOP_WHEN_MANY = 5
"""Text output lists every score up to MANY_CLASSES classes, and the best TOP_WHEN_MANY of more (as Keras's
decode_predictions shows ImageNet's): a thousand lines an image would bury the answer. --json keeps every score."""


@click.command()
@click.argument("spec", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--top-k",
    type=click.IntRange(min=1),
    default=None,
    help=f"Show only the N best classes (default: all; in text, the best {TOP_WHEN_MANY} of more than {MANY_CLASSES}).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per image instead of text.")
@click.option(
    "--batch-size", type=click.IntRange(min=1), default=64, show_default=True, help="Images per forward pass."
)
@threads_option(
    "Threads for decoding images (default: one per core) and for the matrix products (default: one "
    "where a batch is too small to gain from more)."
)
@click.option(
    "--explain",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write a picture of which pixels pushed the chosen class's score (one image only).",
)
@max_pixels_option
@max_params_option
def run(
    spec: Path,
    images: tuple[Path, ...],
    top_k: int | None,
    as_json: bool,
    batch_size: int,
    threads: int | None,
    explain: Path | None,
    max_pixels: int,
    max_params: int,
) -> None:
    """Classify IMAGES (files, or folders of them) with the network SPEC describes.

    For each image prints the predicted label and every class's score, high to low (the best 5 of
    more than 10 classes, unless --top-k or --json says otherwise). A folder
    stands for every image below it, in name order; `-` is one image read from standard input.
    An image that cannot be read is reported on stderr, the others are still classified,
    and the exit code is 1.

    A spec whose input is `features` reads numbers instead: .csv files (one sample a line, an
    optional header line), .npy files (an array shaped (n, features)) or .npz files (array x).
    Each sample is named by its line in a CSV (iris.csv:3) or its index in the array (x.npz[3]).
    """
    if explain is not None:
        picture_output("--explain", explain)
    network = load(spec, max_params)
    reads_images = network.spec.input.image is not None
    if explain is not None and not reads_images:
        raise click.UsageError("--explain shows which pixels mattered; this spec reads numbers, not images")
    given = images
    try:
        images, unreadable = batches.input_files(network, images)
    except InputError as err:  # a folder with nothing to classify in it: a mistake in the command
        empty = err.problems[0]
        raise click.UsageError(f"{empty.file} {empty.message}") from None
    for problem in unreadable:
        click.echo(str(problem), err=True)
    if explain is not None:
        if len(images) != 1:
            raise click.UsageError("--explain explains one image; give exactly one")
        if images[0].exists() and not images[0].is_file():
            raise click.UsageError("--explain reads its image twice (to classify, then to explain); give a file")
        refuse_overwrite("--explain", explain, [*spec_inputs(spec, network.spec), *images])
        for folder in (path for path in given if path.is_dir()):
            refuse_among_images("--explain", explain, folder)
    piped = _from_stdin(images, max_pixels) if reads_images else {}
    failed = len(unreadable)
    with limited(threads):  # None: each batch's forward chooses; undone however the loop ends (an error, a closed pipe)
        if reads_images:
            results = classify(network, images, batch_size, threads, max_pixels, decoded=piped)
        else:
            results = batches.classify_samples(network, images, batch_size, threads)
        for where, result in results:
            if isinstance(result, InputError):
                failed += 1
                for problem in result.problems:
                    click.echo(str(problem), err=True)
                continue
            ranked = sorted(zip(network.classes, result.tolist()), key=lambda pair: -pair[1])
            if as_json or top_k or len(ranked) <= MANY_CLASSES:
                click.echo(_as_json(where, ranked[:top_k]) if as_json else _as_text(where, ranked[:top_k]))
            else:  # the best few, and a line saying how to see the rest
                click.echo(_as_text(where, ranked[:TOP_WHEN_MANY], unshown=len(ranked) - TOP_WHEN_MANY))
    if explain is not None and not failed:
        from netspec.pictures import explain as explain_picture
        from netspec.pictures.canvas import save

        figure = explain_picture.draw(network, piped.get(images[0], images[0]), str(images[0]))
        click.echo(f"wrote {save(figure, explain)}", err=True)
    if failed:
        raise click.exceptions.Exit(1)


def _from_stdin(images: tuple[Path, ...], max_pixels: int) -> dict[Path, Any]:
    """The image piped to standard input, when `-` is among `images`, decoded (or the InputError saying why not)."""
    if STDIN not in images:
        return {}
    if images.count(STDIN) > 1:
        raise click.UsageError("- (standard input) holds one image and can be read once; give it once")
    return {STDIN: batches.read_stream(sys.stdin.buffer, str(STDIN), max_pixels)}


def _as_json(where: Path | Row, ranked: list[tuple[str, float]]) -> str:
    if isinstance(where, Row):  # a row of numbers: its file, and its line in a CSV or its index in an array
        place = {"line": where.line} if where.line is not None else {"index": where.index}
        line = {"file": str(where.file), **place, "label": ranked[0][0], "scores": dict(ranked)}
    else:
        line = {"file": str(where), "label": ranked[0][0], "scores": dict(ranked)}
    # A file name that is not UTF-8 holds surrogates (Python's stand-ins for its bytes): escaped, the line
    # stays valid UTF-8 and json.loads gives the name back, which os.fsencode turns into the same bytes.
    undecodable = any("\udc80" <= c <= "\udcff" for c in line["file"])
    return json.dumps(line, ensure_ascii=undecodable)


def _as_text(where: Path | Row, ranked: list[tuple[str, float]], unshown: int = 0) -> str:
    width = max(len(label) for label, _ in ranked)
    scores = [score for _, score in ranked]
    # Four decimals show probabilities and logits; scores all below 0.001 (an untrained model's) would all
    # show as 0.0000, so they are written with their exponent.
    tiny = 0 < max(abs(score) for score in scores) < 1e-3
    shown = [f"{score:.3e}" if tiny else f"{score:.4f}" for score in scores]
    column = max(len(text) for text in shown)
    # Probabilities fill the bar at 1; other scores (logits) are drawn from the lowest to the highest.
    low, high = (0.0, 1.0) if all(0.0 <= s <= 1.0 for s in scores) else (min(min(scores), 0.0), max(scores))
    lines = [f"{where}: {ranked[0][0]}"]
    for (label, score), text in zip(ranked, shown):
        fraction = (score - low) / (high - low) if high > low else 1.0
        lines.append(f"  {label:<{width}}  {text:>{column}}  {_bar(fraction)}".rstrip())
    if unshown:
        lines.append(f"  ({unshown:,} more classes; --top-k {len(ranked) + unshown} lists them all)")
    return "\n".join(lines)


def _bar(fraction: float) -> str:
    eighths = round(max(0.0, min(1.0, fraction)) * BAR_WIDTH * 8)
    return "█" * (eighths // 8) + (_EIGHTHS[eighths % 8] if eighths % 8 else "")
