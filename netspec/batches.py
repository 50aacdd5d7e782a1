"""Classify many files in batches: images decoded by a pool of threads, or the rows of files of numbers.

`netspec run` and `Network.classify_files` both go through here. Each input gives a pair, in the
order given: where it came from (a path; for numbers, a `samples.Row` naming the file and the line
or index) and its scores, or the InputError that kept it from being classified. One input that
cannot be read (or whose scores overflow) does not stop the others.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from netspec import samples
from netspec.errors import InputError, Problem
from netspec.folders import IMAGE_SUFFIXES, files_given

if TYPE_CHECKING:
    from netspec.network import Network

Result = np.ndarray | InputError
"""An input's scores, shape (classes,), or the InputError that kept it from being classified."""

NOT_FINITE = "the network's scores are not finite (overflow); no label given"


def input_files(network: Network, paths: Iterable[str | Path]) -> tuple[tuple[Path, ...], list[Problem]]:
    """The files the network would read for `paths`: each folder replaced by the images below it (for an
    image input) or the .csv, .npy and .npz files below it (for numbers), hidden ones skipped, in name
    order; and a problem for each folder below them that could not be read.

    Raises:
        InputError: a folder given has none of those files in it (NS302 for images, NS307 for numbers).
    """
    if network.spec.input.image is None:
        return files_given(paths, samples.SUFFIXES, "NS307", "files of samples")
    return files_given(paths, IMAGE_SUFFIXES, "NS302", "images")


def classify_files(
    network: Network,
    paths: Iterable[str | Path],
    batch_size: int = 64,
    threads: int | None = None,
    max_pixels: int | None = None,
) -> Iterator[tuple[Path | samples.Row, Result]]:
    """Every input of the files and folders given, classified: `input_files`, then `classify` or
    `classify_samples`. A folder below them that cannot be read comes first, with its InputError.

    Raises:
        InputError: as `input_files`, at once (the folders are listed before the first result).
    """
    files, unreadable = input_files(network, paths)
    return _classified(network, files, unreadable, batch_size, threads, max_pixels)


def _classified(network, files, unreadable, batch_size, threads, max_pixels):
    for problem in unreadable:
        yield Path(problem.file), InputError(problem)
    if network.spec.input.image is None:
        yield from classify_samples(network, files, batch_size, threads)
    else:
        yield from classify(network, files, batch_size, threads, max_pixels)


def classify(
    network: Network,
    paths: Sequence[str | Path],
    batch_size: int = 64,
    threads: int | None = None,
    max_pixels: int | None = None,
    decoded: dict[Any, Any] | None = None,
) -> Iterator[tuple[Any, Result]]:
    """Scores for each image file in order, or the InputError that kept it from being read; batch by batch.

    `decoded` maps paths to images decoded before, or to the InputError that kept them from being
    decoded (standard input, which can be read only once). `threads` decode the images (default: one
    per core) and hold the BLAS threads of each batch's forward pass (default: chosen for its size).
    Scores that are not finite (an overflow) come as an InputError (NS306) naming the file.

    Images are decoded by a pool of threads (Pillow releases the GIL while it decodes). The next
    batch is being decoded while this one is classified and used, and no more than two batches
    are held at once, so memory stays bounded however many images there are.
    """
    import netspec.images  # noqa: F401 - imported here, once: threads importing it at once would collide

    given = decoded or {}
    batches = (paths[start : start + batch_size] for start in range(0, len(paths), batch_size))
    # Each read silences Pillow's warnings with warnings.catch_warnings, which is not thread-safe: the
    # threads' contexts may restore each other's filters. One context around them all, entered and
    # left here, puts the filters back as they were however the threads interleaved.
    with warnings.catch_warnings(), ThreadPoolExecutor(max_workers=threads or os.cpu_count() or 1) as pool:
        warnings.simplefilter("ignore")

        def submit(batch: Sequence[str | Path]) -> tuple[Sequence[str | Path], list[Future]]:
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
                # Overflow shows up as non-finite scores, reported per image; NumPy's warnings would add noise.
                with np.errstate(over="ignore", invalid="ignore"):
                    scores = network.forward(np.stack(list(arrays.values())), threads) if arrays else None
                rows = dict(zip(arrays, scores)) if arrays else {}
                for i, path in enumerate(batch):
                    yield path, _checked(rows[i], str(path)) if i in rows else read[i]
        finally:
            # A caller that stops early, an error or Ctrl-C: drop the reads not started, of this batch
            # and the next, rather than wait for them (cancelling a finished read does nothing).
            for future in [*futures, *(queued[1] if queued is not None else ())]:
                future.cancel()


def classify_samples(
    network: Network, paths: Iterable[str | Path], batch_size: int = 64, threads: int | None = None
) -> Iterator[tuple[Path | samples.Row, Result]]:
    """Scores for every sample (row) of the .csv, .npy and .npz files given, file by file, in batches.

    Each sample comes as its `samples.Row` (`iris.csv:3`, `x.npz[3]`) and its scores, or an
    InputError (NS306) if they are not finite; a file that cannot be read comes as its path and the
    InputError saying why. `threads`: BLAS threads, as for `Network.forward`.
    """
    features = network.input_shape[0]
    for path in map(Path, paths):
        try:
            read = _samples(path, features)
        except InputError as err:
            yield path, err
            continue
        for start in range(0, len(read.x), batch_size):
            with np.errstate(over="ignore", invalid="ignore"):
                scores = network.forward(network.inputs(read.x[start : start + batch_size]), threads)
            for i, row in enumerate(scores, start=start):
                where = read.row(path, i)
                yield where, _checked(row, str(where))


def read_stream(stream: BinaryIO, name: str, max_pixels: int | None = None) -> Any:
    """The image piped to `stream` (standard input, say), decoded, or the InputError saying why it could not be.

    Read no further than the largest image allowed could take (`max_pixels`); give the result to
    `classify` in `decoded`.
    """
    from netspec.images import MAX_PIXELS, open_image
    from netspec.images import read_stream as read_bytes

    limit = max_pixels or MAX_PIXELS
    try:
        return open_image(read_bytes(stream, name, limit), limit, name=name)
    except InputError as err:
        return err


def _checked(scores: np.ndarray, name: str) -> Result:
    """The scores, or an InputError if they are not finite: such scores give no label."""
    if np.isfinite(scores).all():
        return scores
    return InputError(Problem("NS306", NOT_FINITE, file=name))


def _read(network: Network, path: str | Path, max_pixels: int | None = None) -> Result:
    if samples.is_samples_file(path):
        shape = "×".join(map(str, network.input_shape))
        message = f"this spec reads images ({shape}), not numbers; give image files, or arrays to Network.predict"
        return InputError(Problem("NS305", message, file=str(path)))
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            return network.inputs([path], max_pixels)[0]
    except InputError as err:
        return err


def _decoded(network: Network, path: str | Path, image: Any) -> Result:
    """As `_read`, for an image decoded already (or the InputError that kept it from being decoded)."""
    if isinstance(image, InputError):
        return image
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            return network.inputs([image])[0]
    except InputError as err:  # problems of a decoded image name no file yet
        return InputError([p if p.file else p.located(str(path), None, None) for p in err.problems])


def _samples(path: Path, features: int) -> samples.Samples:
    """The samples of one file, or InputError: an image, or a file of another kind, is named as such."""
    if samples.is_samples_file(path):
        return samples.read(path, features)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        message = f"this spec reads {features} numbers a sample, not images; give a .csv, .npy or .npz of samples"
        raise InputError(Problem("NS305", message, file=str(path)))
    message = "not a file of samples netspec reads (.csv with one sample a line, .npy, or .npz with an array x)"
    raise InputError(Problem("NS307", message, file=str(path)))
