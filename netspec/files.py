"""Write files so that a crash, Ctrl-C or even a kill never leaves a half-written or clobbered result."""

from __future__ import annotations

import ctypes
import errno
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


def _umask() -> int:
    mask = os.umask(0)  # the only way to read it is to set it
    os.umask(mask)
    return mask


def _link_descriptor(fd: int, name: Path) -> bool:
    """linkat(2) with AT_SYMLINK_FOLLOW on /proc/self/fd: how a nameless (O_TMPFILE) file gets a name.

    Python's os.link does not follow that link, so libc is called directly. False: the name exists.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    at_fdcwd, at_symlink_follow = -100, 0x400
    if libc.linkat(at_fdcwd, f"/proc/self/fd/{fd}".encode(), at_fdcwd, os.fsencode(name), at_symlink_follow) == 0:
        return True
    error = ctypes.get_errno()
    if error == errno.EEXIST:
        return False
    raise OSError(error, os.strerror(error), str(name))


def _nameless_file_flag() -> int:
    """os.O_TMPFILE where nameless files can be made and later named (Linux with /proc), else 0."""
    flag = getattr(os, "O_TMPFILE", 0)
    return flag if flag and Path("/proc/self/fd").is_dir() else 0


@contextmanager
def atomic_write(path: Path) -> Iterator[BinaryIO]:
    """Yield a file to write; on success it is flushed, synced and put in place of `path` at once.

    Until then `path` keeps what it had. Where the system allows (Linux's O_TMPFILE) the file being
    written has no name at all, so a process killed mid-write (SIGKILL, a power cut) leaves nothing
    behind; elsewhere it is a hidden temporary file beside `path`, removed on any error. An OSError
    names `path`, never a temporary name the user has not heard of.
    """
    try:
        with _write_then_replace(path) as stream:
            yield stream
    except OSError as err:
        if err.filename is None or Path(err.filename) == path:  # a full disk names no file: nothing to change
            raise
        raise OSError(err.errno, err.strerror or str(err), str(path)) from err


@contextmanager
def _write_then_replace(path: Path) -> Iterator[BinaryIO]:
    mode = path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~_umask()
    anonymous = _nameless_file_flag()
    if anonymous:
        try:
            fd = os.open(path.parent, anonymous | os.O_WRONLY, mode)
        except OSError:  # the file system does not support it (or the folder is missing: said below)
            anonymous = 0
    if anonymous:
        with os.fdopen(fd, "wb") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
            _publish(stream.fileno(), path)
        return
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, mode)  # mkstemp makes the file private (0600): give it the mode open() would have
        with os.fdopen(fd, "wb") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _publish(fd: int, path: Path) -> None:
    """Give the nameless file a name beside `path`, then rename it onto `path` (one atomic step)."""
    for attempt in range(100):
        name = path.parent / f".{path.name}.{os.getpid()}.{attempt}.tmp"
        if _link_descriptor(fd, name):
            break
    else:  # pragma: no cover - a hundred leftovers of the same process id
        raise FileExistsError(f"cannot find a free temporary name beside {path}")
    try:
        os.replace(name, path)
    except BaseException:
        name.unlink(missing_ok=True)
        raise
