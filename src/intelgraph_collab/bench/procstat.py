"""CPU time and resident memory of a process by pid, from /proc (Linux only)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from .stats import cpu_percent

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid: int) -> int:
    """utime + stime of `pid` (all its threads), in clock ticks."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        raw = f.read()
    # The command name (field 2) may hold spaces: split after its closing ')'.
    fields = raw[raw.rindex(b")") + 2 :].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return int(fields[11]) + int(fields[12])


def rss_bytes(pid: int) -> int:
    """Resident set size of `pid` in bytes (VmRSS)."""
    with open(f"/proc/{pid}/status", "rb") as f:
        for line in f:
            if line.startswith(b"VmRSS:"):
                return int(line.split()[1]) * 1024
    raise ValueError(f"no VmRSS for pid {pid}")


def process_alive(pid: int) -> bool:
    """True while `pid` runs (a zombie, exited but not yet reaped, is not alive)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return False
    return raw[raw.rindex(b")") + 2 : raw.rindex(b")") + 3] != b"Z"


@dataclass
class CpuWindow:
    """CPU use of a set of pids between `start()` and `stop()`."""

    pids: tuple[int, ...]
    _ticks: dict[int, int] | None = None
    _t0: float = 0.0

    def start(self) -> None:
        self._ticks = {pid: cpu_ticks(pid) for pid in self.pids if process_alive(pid)}
        self._t0 = time.monotonic()

    def stop(self) -> float | None:
        """Percent of one core used, summed over the pids; None if not measurable."""
        if self._ticks is None:
            return None
        wall = time.monotonic() - self._t0
        if wall <= 0:
            return None
        delta = 0
        for pid, before in self._ticks.items():
            if not process_alive(pid):
                return None
            delta += cpu_ticks(pid) - before
        return cpu_percent(delta, wall, CLOCK_TICKS)


def machine_ticks() -> tuple[int, int]:
    """(busy, steal) clock ticks of the whole machine, all cores (/proc/stat)."""
    with open("/proc/stat", "rb") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return user + nice + system + irq + softirq, steal


@dataclass
class MachineWindow:
    """Whole-machine CPU use (percent of one core) and VM steal between start and stop.

    Busy minus the server's and the generator's own share is what other
    processes took: on a shared machine, the noise in a run.
    """

    _busy: int = 0
    _steal: int = 0
    _t0: float = 0.0

    def start(self) -> None:
        self._busy, self._steal = machine_ticks()
        self._t0 = time.monotonic()

    def stop(self) -> tuple[float, float]:
        wall = time.monotonic() - self._t0
        busy, steal = machine_ticks()
        return (
            cpu_percent(busy - self._busy, wall, CLOCK_TICKS),
            cpu_percent(steal - self._steal, wall, CLOCK_TICKS),
        )
