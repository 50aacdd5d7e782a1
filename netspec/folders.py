"""What a folder stands for: the files below it that netspec reads, found the same way everywhere."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from netspec.errors import InputError, Problem

SPEC_SUFFIXES = (".yaml", ".yml")
"""File names of specs, as written (*.YAML is not taken for one, as CI tools match)."""

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
"""File names of the image formats netspec reads (netspec.images.FORMATS), matched in any case."""


def files_below(
    folder: Path, suffixes: tuple[str, ...], code: str, any_case: bool = False, broken_links: bool = False
) -> tuple[list[Path], list[Problem]]:
    """The files below `folder` whose names end in one of `suffixes` (in any case if asked), in name
    order; and a problem (with `code`) for each folder below it that could not be read.

    Only regular files count (links to them too): pipes and devices are skipped, and so are broken
    links unless `broken_links` asks for them (to be reported as missing). Hidden files and folders
    (.git/, .github/, .cache/) are skipped; links to folders are not followed.
    """
    found: list[Path] = []
    unreadable: list[OSError] = []
    for root, folders, names in os.walk(folder, onerror=unreadable.append):
        folders[:] = [name for name in folders if not name.startswith(".")]
        for name in names:
            suffix = os.path.splitext(name)[1]
            if name.startswith(".") or (suffix.lower() if any_case else suffix) not in suffixes:
                continue
            path = os.path.join(root, name)
            if os.path.isfile(path) or (broken_links and os.path.islink(path) and not os.path.exists(path)):
                found.append(Path(path))
    problems = [Problem(code, f"cannot read the folder: {err.strerror}", file=err.filename) for err in unreadable]
    return sorted(found), problems


def files_given(
    paths: Iterable[str | Path], suffixes: tuple[str, ...], code: str, kind: str
) -> tuple[tuple[Path, ...], list[Problem]]:
    """The paths given, each folder replaced by the files below it named with `suffixes` (in any case:
    cameras write .JPG), in name order; and a problem (with `code`) for each folder below them that
    could not be read. Paths that are not folders are kept as they are, for reading them to say what is wrong.

    Raises:
        InputError: a folder given has no such file in it (`code`), said as "is a folder with no `kind` in it".
    """
    files: list[Path] = []
    problems: list[Problem] = []
    for path in map(Path, paths):
        try:
            is_folder = path.is_dir()
        except OSError:  # a folder on the way that may not be read: reading the file will say so
            is_folder = False
        if not is_folder:
            files.append(path)
            continue
        found, unreadable = files_below(path, suffixes, code, any_case=True)
        if not found and not unreadable:
            message = f"is a folder with no {kind} in it ({', '.join(suffixes)})"
            raise InputError(Problem(code, message, file=str(path)))
        problems += unreadable
        files += found
    return tuple(files), problems
