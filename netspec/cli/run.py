"""`netspec run`: classify images, or rows of numbers, with the network a spec describes."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import click
import numpy as np

from netspec import samples
from netspec.cli.options import max_params as max_params_option
from netspec.cli.options import max_pixels as max_pixels_option
from netspec.cli.options import picture_output, refuse_among_images, refuse_overwrite, spec_inputs
from netspec.cli.options import threads as threads_option
from netspec.errors import InputError, Problem
from netspec.folders import IMAGE_SUFFIXES, files_below
from netspec.loader import load
from netspec.network import Network
from netspec.threads import limited

BAR_WIDTH = 20
STDIN = Path("-")
"""The image argument that stands for standard input, as for cat; printed as `-`."""
_EIGHTHS = " ▏▎▍▌▋▊▉"


@click.command()
@click.argument("spec", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--top-k", type=click.IntRange(min=1), default=None, help="Show only the N best classes.")
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

    For each image prints the predicted label and every class's score, high to low. A folder
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
    if network.spec.input.image is None:
        if explain is not None:
            raise click.UsageError("--explain shows which pixels mattered; this spec reads numbers, not images")
        with limited(threads):
            failed = classify_samples(network, images, top_k, as_json, batch_size)
        if failed:
            raise click.exceptions.Exit(1)
        return
    given, (images, unreadable) = images, image_files(images)
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
    piped = _from_stdin(images, max_pixels)
    failed = len(unreadable)
    with limited(threads):  # None: each batch's forward chooses; undone however the loop ends (an error, a closed pipe)
        for path, result in classify(network, images, batch_size, threads, max_pixels, read_already=piped):
            if isinstance(result, InputError):
                failed += 1
                for problem in result.problems:
                    click.echo(str(problem), err=True)
                continue
            if not np.isfinite(result).all():
                failed += 1
                message = "the network's scores are not finite (overflow); no label given"
                overflow = Problem("NS306", message, file=str(path))
                click.echo(str(overflow), err=True)
                continue
            ranked = sorted(zip(network.classes, result.tolist()), key=lambda pair: -pair[1])[:top_k]
            click.echo(_as_json(path, ranked) if as_json else _as_text(path, ranked))
    if explain is not None and not failed:
        from netspec.pictures import explain as explain_picture
        from netspec.pictures.canvas import save

        figure = explain_picture.draw(network, piped.get(images[0], images[0]), str(images[0]))
        click.echo(f"wrote {save(figure, explain)}", err=True)
    if failed:
        raise click.exceptions.Exit(1)


def image_files(paths: tuple[Path, ...]) -> tuple[tuple[Path, ...], list[Problem]]:
    """The paths given, each folder replaced by the images below it (hidden ones skipped), sorted;
    and a problem for each folder below them that could not be read."""
    files: list[Path] = []
    problems: list[Problem] = []
    for path in paths:
        try:
            is_folder = path.is_dir()
        except OSError:  # a folder on the way that may not be read: reading the image will say so
            is_folder = False
        if not is_folder:
            files.append(path)
            continue
        found, unreadable = files_below(path, IMAGE_SUFFIXES, "NS302", any_case=True)  # cameras write .JPG
        problems += unreadable
        if not found and not unreadable:
            raise click.UsageError(f"{path} is a folder with no images in it ({', '.join(IMAGE_SUFFIXES)})")
        files.extend(found)
    return tuple(files), problems


def classify(
    network: Network,
    paths: tuple[Path, ...],
    batch_size: int,
    threads: int | None = None,
    max_pixels: int | None = None,
    read_already: dict[Path, Any] | None = None,
) -> Iterator[tuple[Path, np.ndarray | InputError]]:
    """Scores for each image in order, or the InputError that kept it from being read; batch by batch.

    `read_already` maps paths to images decoded before (standard input, which can be read only once).

    Images are decoded by a pool of threads (Pillow releases the GIL while it decodes). The next
    batch is being decoded while this one is classified and printed, and no more than two batches
    are held at once, so memory stays bounded however many images there are.
    """
    import netspec.images  # noqa: F401 - imported here, once: threads importing it at once would collide

    given = read_already or {}
    batches = (paths[start : start + batch_size] for start in range(0, len(paths), batch_size))
    # Each read silences Pillow's warnings with warnings.catch_warnings, which is not thread-safe: the
    # threads' contexts may restore each other's filters. One context around them all, entered and
    # left here, puts the filters back as they were however the threads interleaved.
    with warnings.catch_warnings(), ThreadPoolExecutor(max_workers=threads or os.cpu_count() or 1) as pool:
        warnings.simplefilter("ignore")

        def submit(batch: tuple[Path, ...]) -> tuple[tuple[Path, ...], list[Future]]:
            return batch, [
                pool.submit(_decoded, network, path, given[path])
                if path in given
                else pool.submit(_read, network, path, max_pixels)
                for path in batch
            ]

        queued = submit(next(batches)) if paths else None
        futures: list[Future] = []
        try:
            while queued is not None:
                batch, futures = queued
                # The next batch is queued before this one is awaited, so no thread idles in between.
                following = next(batches, None)
                queued = submit(following) if following is not None else None
                read = [future.result() for future in futures]
                arrays = {i: value for i, value in enumerate(read) if not isinstance(value, InputError)}
                # Overflow shows up as non-finite scores, which `run` reports per image; NumPy's warnings
                # would add noise.
                with np.errstate(over="ignore", invalid="ignore"):
                    scores = network.forward(np.stack(list(arrays.values()))) if arrays else None
                rows = dict(zip(arrays, scores)) if arrays else {}
                for i, path in enumerate(batch):
                    yield path, rows[i] if i in rows else read[i]
        finally:
            # A caller that stops early, an error or Ctrl-C: drop the reads not started, of this batch
            # and the next, rather than wait for them (cancelling a finished read does nothing).
            for future in [*futures, *(queued[1] if queued is not None else ())]:
                future.cancel()


def _read(network: Network, path: Path, max_pixels: int | None = None) -> np.ndarray | InputError:
    if samples.is_samples_file(path):
        shape = "×".join(map(str, network.input_shape))
        message = f"this spec reads images ({shape}), not numbers; give image files, or arrays to Network.predict"
        return InputError(Problem("NS305", message, file=str(path)))
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            return network.inputs([path], max_pixels)[0]
    except InputError as err:
        return err


def _decoded(network: Network, path: Path, image: Any) -> np.ndarray | InputError:
    """As `_read`, for an image decoded already (or the InputError that kept it from being decoded)."""
    if isinstance(image, InputError):
        return image
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            return network.inputs([image])[0]
    except InputError as err:  # problems of a decoded image name no file yet
        return InputError([p if p.file else p.located(str(path), None, None) for p in err.problems])


def _from_stdin(images: tuple[Path, ...], max_pixels: int) -> dict[Path, Any]:
    """The image piped to standard input, when `-` is among `images`, decoded (or the InputError saying why not).

    Read as a pipe given by name is (`/dev/stdin`): no further than the largest image allowed could take.
    """
    if STDIN not in images:
        return {}
    if images.count(STDIN) > 1:
        raise click.UsageError("- (standard input) holds one image and can be read once; give it once")
    from netspec.images import open_image, read_stream

    try:
        data = read_stream(click.get_binary_stream("stdin"), str(STDIN), max_pixels)
        return {STDIN: open_image(data, max_pixels, name=str(STDIN))}
    except InputError as err:
        return {STDIN: err}


def _as_json(path: Path | str, ranked: list[tuple[str, float]], **where: int) -> str:
    line = {"file": str(path), **where, "label": ranked[0][0], "scores": dict(ranked)}
    # A file name that is not UTF-8 holds surrogates (Python's stand-ins for its bytes): escaped, the line
    # stays valid UTF-8 and json.loads gives the name back, which os.fsencode turns into the same bytes.
    undecodable = any("\udc80" <= c <= "\udcff" for c in line["file"])
    return json.dumps(line, ensure_ascii=undecodable)


def _as_text(path: Path | str, ranked: list[tuple[str, float]]) -> str:
    width = max(len(label) for label, _ in ranked)
    scores = [score for _, score in ranked]
    shown = [f"{score:.4f}" for score in scores]
    column = max(len(text) for text in shown)
    # Probabilities fill the bar at 1; other scores (logits) are drawn from the lowest to the highest.
    low, high = (0.0, 1.0) if all(0.0 <= s <= 1.0 for s in scores) else (min(min(scores), 0.0), max(scores))
    lines = [f"{path}: {ranked[0][0]}"]
    for (label, score), text in zip(ranked, shown):
        fraction = (score - low) / (high - low) if high > low else 1.0
        lines.append(f"  {label:<{width}}  {text:>{column}}  {_bar(fraction)}".rstrip())
    return "\n".join(lines)


def _bar(fraction: float) -> str:
    eighths = round(max(0.0, min(1.0, fraction)) * BAR_WIDTH * 8)
    return "█" * (eighths // 8) + (_EIGHTHS[eighths % 8] if eighths % 8 else "")


def classify_samples(
    network: Network, paths: tuple[Path, ...], top_k: int | None, as_json: bool, batch_size: int
) -> int:
    """Classify every sample (row) of the .csv, .npy and .npz files given, or below folders given;
    print each result, and each problem on stderr. Returns how many files or samples failed."""
    files: list[Path] = []
    failed = 0
    for path in paths:
        if not path.is_dir():
            files.append(path)
            continue
        found, unreadable = files_below(path, samples.SUFFIXES, "NS307", any_case=True)
        if not found and not unreadable:
            raise click.UsageError(f"{path} is a folder with no files of samples in it ({', '.join(samples.SUFFIXES)})")
        for problem in unreadable:
            click.echo(str(problem), err=True)
        failed += len(unreadable)
        files += found
    features = network.input_shape[0]
    for path in files:
        try:
            read = _samples(path, features)
        except InputError as err:
            failed += 1
            for problem in err.problems:
                click.echo(str(problem), err=True)
            continue
        for start in range(0, len(read.x), batch_size):
            with np.errstate(over="ignore", invalid="ignore"):
                scores = network.forward(network.inputs(read.x[start : start + batch_size]))
            for i, row in enumerate(scores, start=start):
                name = read.name(str(path), i)
                if not np.isfinite(row).all():
                    failed += 1
                    message = "the network's scores are not finite (overflow); no label given"
                    click.echo(str(Problem("NS306", message, file=name)), err=True)
                    continue
                ranked = sorted(zip(network.classes, row.tolist()), key=lambda pair: -pair[1])[:top_k]
                where = {"line" if read.by_line else "index": read.positions[i]}
                click.echo(_as_json(path, ranked, **where) if as_json else _as_text(name, ranked))
    return failed


def _samples(path: Path, features: int) -> samples.Samples:
    """The samples of one file, or InputError: an image, or a file of another kind, is named as such."""
    if samples.is_samples_file(path):
        return samples.read(path, features)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        message = f"this spec reads {features} numbers a sample, not images; give a .csv, .npy or .npz of samples"
        raise InputError(Problem("NS305", message, file=str(path)))
    message = "not a file of samples netspec reads (.csv with one sample a line, .npy, or .npz with an array x)"
    raise InputError(Problem("NS307", message, file=str(path)))
