"""Give memory back once rooms have been unloaded.

Unloading a room drops the registry's reference; two things can still keep
its memory from the operating system, both measured with bench/BENCHMARKS.md's
room-churn preset (1,000 graphs opened, written once and closed):

- **Reference cycles.** What is in a cycle is freed only by the cyclic GC,
  which the server makes rare (`cli.py`: start-up objects frozen, a young
  collection every 50,000 allocations): on a quiet server the next one may
  never come. When a closed connection's objects held its room in a cycle
  (fixed since in websocket/native.py and room.py), all 1,000 unloaded rooms
  stayed alive and every further 1,000 graphs added 16 MiB. uvicorn still
  leaves cycles of its own behind (its HTTP protocol and httptools parser,
  ~2,400 objects after room-churn). Collecting the *young* generations
  frees such garbage, wherever it comes from: that is where a quiet
  server's recent garbage waits. Not a full collection: that walks every
  live room's state (135 ms with one 100,000-annotation graph loaded).
- **The allocator.** glibc keeps freed heap pages for reuse;
  `malloc_trim(0)` hands the free ones back (6 MiB after room-churn). Where
  the C library has no `malloc_trim` (musl, macOS, Windows) only the
  collection runs. (CPython's own small-object allocator keeps every arena
  that still has one live block: those pages, 13-14 MiB after room-churn,
  are reused by the next graphs loaded, but not returned.)

Both run on the event loop (2-10 ms after room-churn), off the hot path:
once the unloads have paused for `quiet` seconds (a burst of unloads is
released together), at most once every `min_interval` seconds, and at the
latest `max_wait` seconds after the first unload waiting for them (so that
a steady trickle of unloads is released too).
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import logging
import time
from collections.abc import Callable

from .logs import log_event

log = logging.getLogger(__name__)


def _glibc_malloc_trim() -> Callable[[], object] | None:
    """glibc's `malloc_trim(0)`, or None where the C library has none."""
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: trim(0)


MALLOC_TRIM = _glibc_malloc_trim()


def collect_young() -> int:
    """Collect the young generations (0 and 1); the number of objects freed."""
    return gc.collect(1)


class MemoryRelease:
    def __init__(
        self,
        *,
        quiet: float = 1.0,
        min_interval: float = 10.0,
        max_wait: float = 30.0,
        collect: Callable[[], int] = collect_young,
        trim: Callable[[], object] | None = MALLOC_TRIM,
    ) -> None:
        self.quiet = quiet
        self.min_interval = min_interval
        self.max_wait = max_wait
        self._collect = collect
        self._trim = trim
        self.releases = 0
        """How many times memory was released (for tests and diagnostics)."""
        self._timer: asyncio.TimerHandle | None = None
        self._first_unload = 0.0
        self._last_unload = 0.0
        self._last_release = -float("inf")

    def unloaded(self) -> None:
        """A room was just unloaded: release memory once the unloads pause."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        self._last_unload = now
        if self._timer is None:
            self._first_unload = now
            self._timer = loop.call_at(self._due(), self._on_timer)

    def _due(self) -> float:
        settled = min(self._last_unload + self.quiet, self._first_unload + self.max_wait)
        return max(settled, self._last_release + self.min_interval)

    def _on_timer(self) -> None:
        # One timer per burst: unloads meanwhile only move `_last_unload`,
        # and the timer looks again here instead of being re-armed each time.
        loop = asyncio.get_running_loop()
        due = self._due()
        if loop.time() < due:
            self._timer = loop.call_at(due, self._on_timer)
            return
        self._timer = None
        self.release()

    def release(self) -> None:
        """Collect the young generations, then trim the C heap; now."""
        started = time.perf_counter()
        collected = self._collect()
        if self._trim is not None:
            self._trim()
        self._last_release = asyncio.get_running_loop().time()
        self.releases += 1
        log_event(
            log,
            "memory_released",
            logging.DEBUG,
            collected=collected,
            trimmed=self._trim is not None,
            ms=round((time.perf_counter() - started) * 1000, 1),
        )

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
