"""How many cores other processes kept busy lately: whether a second thread of ours would find a core.

On a machine shared with other jobs, splitting work between two threads pays only while the second
core is free: with another process on it, the thread there runs a fraction of the time and the
split waits for it (ResNet-20's training step at batch 64, load average 5-7 on 2 cores: 1.2-1.35×
slower split than on one thread). The kernel's count of busy time on the cores this process may use
(/proc/stat), minus this process's own CPU time over the same interval, is what the others used.
Read at most every SAMPLE seconds (a read costs ~25 µs), over the interval since the read before.
"""

from __future__ import annotations

import os
import threading
import time

SAMPLE = 0.25
"""Seconds between two reads of the machine's counters; the figure is the average over that interval."""

_TICK = 1 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.01
_MINE = frozenset(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else frozenset()
_lock = threading.Lock()
_last: tuple[float, float, float] | None = None
"""(wall clock, busy seconds of all cores, this process's CPU seconds) at the last read."""
_others = 0.0


def counters() -> tuple[float, float, float] | None:
    """(wall clock, busy seconds since boot of the cores this process may run on, this process's CPU
    seconds); None where the kernel does not say (not Linux). Only those cores count: in a container
    pinned to 2 cores of a 64-core host, the other 62 are not ours to wait for."""
    try:
        with open("/proc/stat", "rb") as stat:
            lines = stat.read().split(b"\n")
    except OSError:
        return None
    busy = 0
    for line in lines:
        fields = line.split()
        if not fields or not fields[0].startswith(b"cpu") or fields[0] == b"cpu":
            continue
        if int(fields[0][3:]) in _MINE:
            ticks = [int(value) for value in fields[1:9]]  # user nice system idle iowait irq softirq steal
            busy += sum(ticks) - ticks[3] - ticks[4]  # steal counts: the hypervisor gave the core to another machine
    return time.monotonic(), busy * _TICK, time.process_time()


def others() -> float:
    """The cores other processes (and other machines, through the hypervisor) kept busy over the last
    interval of at least SAMPLE seconds; 0 before there are two reads, or where it cannot be known."""
    global _last, _others
    now = time.monotonic()
    if _last is not None and now - _last[0] < SAMPLE:
        return _others
    with _lock:
        if _last is not None and now - _last[0] < SAMPLE:
            return _others
        read = counters()
        if read is not None and _last is not None and read[0] > _last[0]:
            wall, busy, own = (a - b for a, b in zip(read, _last))
            _others = max(0.0, (busy - own) / wall)
        _last = read
        return _others
