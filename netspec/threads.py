"""How many BLAS threads for a piece of work: one where its matrix products are too small to gain from more.

OpenBLAS splits every product above a small size between all its threads. On a machine whose
cores are shared (2 vCPUs in the cloud, a laptop busy with other work) the second thread often
waits for a core, and a product of a fraction of a millisecond then takes several: training the
digits network took ten times as long as on one thread. Measured on this project's machines
(docs/performance.md): on an idle machine a second thread makes products faster from about 10
million multiply-adds, but below about 2^27 it makes them 2 to 15 times slower when another
process keeps a core busy; from 2^28 (some 3 ms of float32 work) it gains or breaks even either
way. So netspec runs smaller work on one thread and leaves larger work to BLAS's own setting
(one thread per core unless the user changed it).

The user's choice wins over that: a `threads` argument, else the NETSPEC_NUM_THREADS variable.
A limit is held while the work runs and the previous setting is restored after it, also after
an error; work inside work already limited (a forward pass during `fit`) keeps the outer limit.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from netspec import busy

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

ENVVAR = "NETSPEC_NUM_THREADS"
"""The variable that fixes the number of BLAS threads for all of netspec's work (as `--threads` does)."""

ONE_THREAD_BELOW = 1 << 28
"""Multiply-adds of float32 work (float64 counts twice) in a product, below which one thread is faster here."""

NOT_WORTH_A_LIMIT = 1 << 18
"""Products this small run on one thread inside OpenBLAS anyway: no limit, which costs microseconds."""


def chosen(threads: int | None = None) -> int | None:
    """The user's choice of BLAS threads: `threads` if given, else NETSPEC_NUM_THREADS if set, else None.

    Raises:
        ValueError: `threads` or NETSPEC_NUM_THREADS is not a whole number of at least 1.
    """
    if threads is None:
        text = os.environ.get(ENVVAR)
        if not text:
            return None
        try:
            threads = int(text)
        except ValueError:
            threads = 0
        if threads < 1:
            raise ValueError(f"{ENVVAR}={text!r}: expected a whole number of threads, at least 1; unset it or fix it")
        return threads
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads={threads!r}: expected a whole number of threads, at least 1, or None (automatic)")
    return threads


def for_work(multiply_adds: int, itemsize: int = 4, threads: int | None = None) -> int | None:
    """The BLAS threads for work whose largest matrix product takes `multiply_adds` of `itemsize`-byte numbers.

    The user's choice (`threads`, NETSPEC_NUM_THREADS) if any; else 1 for work too small to gain
    from more threads; else None: BLAS as it is set (by default, one thread per core). Work below
    NOT_WORTH_A_LIMIT gets None unless `threads` is given: OpenBLAS runs it on one thread anyway.
    """
    if threads is not None:
        return chosen(threads)
    if multiply_adds < NOT_WORTH_A_LIMIT:  # first, before reading the environment: every small forward asks
        return None
    threads = chosen()
    if threads is not None:
        return threads
    return AUTOMATIC_ONE if multiply_adds * itemsize < ONE_THREAD_BELOW * 4 else None


class _Automatic(int):
    """One BLAS thread chosen by netspec's rule for the work's size, not by the user: BLAS is held at
    one thread, but work split into parts of its own (netspec.layers.conv_forward) may still use the cores."""

    __slots__ = ()


AUTOMATIC_ONE = _Automatic(1)


class limited:
    """Holds BLAS at `threads` threads inside a `with` block (None: leaves it as it is).

    The previous setting comes back when the block ends, however it ends. The first block to
    enter decides: blocks inside it (or entered by other Python threads meanwhile) keep its
    limit, and the setting is restored when the last of them leaves, so threads that limit at
    once cannot leave BLAS limited for good.
    """

    __slots__ = ("threads", "held")

    def __init__(self, threads: int | None):
        self.threads = threads
        self.held = False

    def __enter__(self) -> limited:
        if self.threads is not None:
            global _depth, _saved, _outer
            with _lock:
                if _depth == 0:
                    _outer = self.threads
                    _saved = [(library, library.num_threads) for library in _blas_libraries()]
                    for library, now in _saved:
                        if now != self.threads:
                            library.set_num_threads(self.threads)
                _depth += 1
                self.held = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self.held:
            global _depth, _saved, _outer
            with _lock:
                _depth -= 1
                self.held = False
                if _depth == 0:
                    for library, before in _saved:  # those limited, even if another was loaded meanwhile
                        if library.num_threads != before:
                            library.set_num_threads(before)
                    _saved = None
                    _outer = None


_lock = threading.Lock()
_depth = 0
_saved: list | None = None
_outer: int | None = None
"""The limit held by the outermost `limited` block, while one is."""
_libraries: list | None = None
_modules_seen = 0


def _blas_libraries() -> list:
    """threadpoolctl's controllers of the BLAS libraries loaded.

    Finding them takes half a millisecond, so they are looked for again only when modules were
    imported since (PyTorch and SciPy, for example, bring BLAS libraries of their own).
    """
    global _libraries, _modules_seen
    if _libraries is None or len(sys.modules) != _modules_seen:
        from threadpoolctl import ThreadpoolController

        _libraries = ThreadpoolController().select(user_api="blas").lib_controllers
        _modules_seen = len(sys.modules)
    return _libraries


CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
"""The cores this process may run on."""


def workers() -> int:
    """How many Python threads may share a piece of work that splits into parts of its own (the
    blocks of a convolution), each part's products on one BLAS thread.

    The user's choice held (a `threads` argument, NETSPEC_NUM_THREADS): that many. Else the cores
    this process may use, also while netspec's rule holds BLAS at one thread (that rule is about
    OpenBLAS splitting one small product, not about parts of milliseconds each), less those other
    processes kept busy lately (netspec.busy: at least half a core's use takes a core). Inside one
    part of work already split (`one_part`): 1.
    """
    if getattr(_parts, "inside", False):
        return 1
    outer = _outer
    if outer is not None and type(outer) is int:
        return outer
    given = chosen()
    if given is not None:
        return given
    # The cores other processes leave free: a thread on a core another job keeps busy runs a fraction of
    # the time, and split work waits for it.
    return max(1, min(CORES, round(CORES - busy.others())))


_parts = threading.local()
"""`inside`: this thread runs one part of work already split between threads (`one_part`)."""


@contextmanager
def one_part() -> Iterator[None]:
    """Marks the work inside as one thread's part of work already split: `workers()` is 1 in it, so work
    that would split again (a convolution inside a part) runs on this thread rather than waiting for
    pool threads that are busy with the other parts."""
    before = getattr(_parts, "inside", False)
    _parts.inside = True
    try:
        yield
    finally:
        _parts.inside = before


_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_pool_pid = 0
"""The process that made the pool: a child made by fork has none of its threads, so it makes its own."""


def pool(size: int) -> ThreadPoolExecutor:
    """A pool of at least `size` threads, made at the first call that needs it and kept."""
    global _pool, _pool_size, _pool_pid
    with _lock:
        if _pool is None or _pool_size < size or _pool_pid != os.getpid():
            if _pool is not None and _pool_pid == os.getpid():
                _pool.shutdown(wait=False)
            from concurrent.futures import ThreadPoolExecutor  # here: `netspec run` on one image never needs it

            _pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="netspec")
            _pool_size, _pool_pid = size, os.getpid()
        return _pool


@contextmanager
def one_each() -> Iterator[None]:
    """BLAS held at one thread while Python threads share the work, whatever limit is held outside;
    the setting before comes back after."""
    with _lock:
        before = [(library, library.num_threads) for library in _blas_libraries()]
        for library, now in before:
            if now != 1:
                library.set_num_threads(1)
    try:
        yield
    finally:
        with _lock:
            for library, now in before:
                if now != 1:
                    library.set_num_threads(now)
