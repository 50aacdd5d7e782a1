"""Options several commands share."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path

import click

from netspec.builder import DEFAULT_MAX_PARAMS
from netspec.folders import IMAGE_SUFFIXES

max_params = click.option(
    "--max-params",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_PARAMS,
    show_default=True,
    help="Refuse specs with more parameters than this.",
)


MOST_PROBLEMS_SHOWN = 50
"""Problems printed for one file; a hostile file could otherwise print a million lines."""


def shown_problems(problems: list, render=str) -> list[str]:
    """The lines to print for a file's problems: the first MOST_PROBLEMS_SHOWN, then a count of the rest."""
    lines = [render(problem) for problem in problems[:MOST_PROBLEMS_SHOWN]]
    if len(problems) > MOST_PROBLEMS_SHOWN:
        where = problems[0].file or "this input"
        lines.append(f"{where}: ... and {len(problems) - MOST_PROBLEMS_SHOWN:,} more problems not shown")
    return lines


max_pixels = click.option(
    "--max-pixels",
    type=click.IntRange(min=1),
    default=64_000_000,
    show_default=True,
    help="Refuse images with more pixels than this, before decoding them.",
)


def warn_skipped(problem) -> None:
    """Say on stderr that an unreadable example was left out (train and eval go on without it)."""
    click.echo(f"warning: {problem} (skipped)", err=True)


def output(help_text: str):
    """The -o/--output option of the commands that write a file."""
    return click.option(
        "-o", "--output", "out", required=True, type=click.Path(dir_okay=False, path_type=Path), help=help_text
    )


def picture_output(option: str, path: Path) -> None:
    """Stop before any work if a picture cannot be written to `path`: its format, matplotlib, the folder."""
    from netspec.pictures.canvas import ready_to_draw  # matplotlib only for commands that draw

    ready_to_draw(path)
    can_write(option, path)


def can_write(option: str, path: Path) -> None:
    """Stop now, not after a long run, if `path` could not be written.

    Nothing is created: the folders missing on the way are made when the file is written, and
    the deepest folder that exists is the one that must take new files.
    """
    existing = path.parent
    try:
        existing = next(folder for folder in path.parents if folder.exists())
        if not existing.is_dir():
            raise click.UsageError(f"{option} {path}: {existing} is a file, not a folder")
        if path.is_dir():
            raise click.UsageError(f"{option} {path} is a folder; name a file")
        tempfile.TemporaryFile(dir=existing).close()
    except OSError as err:
        raise click.UsageError(f"{option} {path}: cannot create a file in {existing} ({err.strerror})") from None


def refuse_overwrite(option: str, out: Path, inputs: Iterable[Path], writes: Iterable[Path] = ()) -> None:
    """Stop before any work if writing `out` (and `writes`, the files written with it) would replace an input."""
    read = {Path(path).resolve() for path in inputs}
    for written in (out, *writes):
        if written.resolve() in read:
            raise click.UsageError(
                f"{option} {out} would overwrite {written}, an input of this run; choose another name"
            )


def refuse_among_images(option: str, out: Path, folder: Path, below_its_root: bool = False) -> None:
    """Stop before any work if `out` is a picture that this run, or the next, would read from `folder`
    (a chart among the training images). With `below_its_root`, only its subfolders are read (training
    data reads the class folders, not the files beside them), and they are read through links."""
    if out.suffix.lower() not in IMAGE_SUFFIXES or not folder.is_dir():  # a .npz of data holds no pictures
        return
    places = [folder] if not below_its_root else [p for p in folder.iterdir() if p.is_dir() and p.name[0] != "."]
    target = out.resolve()
    for place in places:
        root = place.resolve()
        if target.is_relative_to(root) and not any(part.startswith(".") for part in target.relative_to(root).parts):
            raise click.UsageError(
                f"{option} {out} would be written among the images of {folder}, which this run reads; "
                "choose another place"
            )


def _thread_count(ctx: click.Context, param: click.Parameter, value: int | None) -> int | None:
    """--threads as given, else NETSPEC_NUM_THREADS (read here, so that a bad value names the variable)."""
    if value is not None:
        return value
    from netspec.threads import chosen

    try:
        return chosen()
    except ValueError as err:
        raise click.UsageError(str(err), ctx) from None


def threads(
    help_text: str = "BLAS threads for the matrix products (default: one where they are too small to gain from more).",
):
    """The --threads option (or NETSPEC_NUM_THREADS) of the commands that multiply matrices (netspec.threads)."""
    return click.option(
        "--threads",
        type=click.IntRange(min=1),
        callback=_thread_count,
        help=help_text + "  [env var: NETSPEC_NUM_THREADS]",
    )


def spec_inputs(spec_path: Path, spec) -> list[Path]:
    """The spec file and the array and label files it reads, which no output may replace."""
    read = [*spec.array_files(), *([spec.classes_file] if spec.classes_file else [])]
    return [spec_path, *(spec_path.parent / name for name in read)]
