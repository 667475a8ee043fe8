"""When memory is given back after unloads (memory_release.py): once per
burst, never more often than `min_interval`, at the latest `max_wait` after
the first unload waiting; and where the C library has no malloc_trim, only
the collection runs."""

from __future__ import annotations

import asyncio
import platform
import sys

import pytest

from intelgraph_collab.memory_release import MALLOC_TRIM, MemoryRelease


class Calls:
    def __init__(self) -> None:
        self.collects = 0
        self.trims = 0

    def collect(self) -> int:
        self.collects += 1
        return 0

    def trim(self) -> None:
        self.trims += 1


async def released(memory: MemoryRelease, count: int) -> None:
    async with asyncio.timeout(5):
        while memory.releases < count:
            await asyncio.sleep(0.005)


async def test_a_burst_of_unloads_is_released_once() -> None:
    calls = Calls()
    memory = MemoryRelease(
        quiet=0.05, min_interval=0, max_wait=60, collect=calls.collect, trim=calls.trim
    )
    for _ in range(20):
        memory.unloaded()
        await asyncio.sleep(0)
    await released(memory, 1)
    await asyncio.sleep(0.2)  # nothing more was unloaded: nothing more to release
    assert (memory.releases, calls.collects, calls.trims) == (1, 1, 1)


async def test_releases_are_at_least_min_interval_apart() -> None:
    calls = Calls()
    memory = MemoryRelease(
        quiet=0, min_interval=3600, max_wait=0, collect=calls.collect, trim=calls.trim
    )
    memory.unloaded()
    await released(memory, 1)
    memory.unloaded()  # the next release is due an hour after the first
    await asyncio.sleep(0.1)
    assert memory.releases == 1
    memory.close()  # and closing cancels it


async def test_a_steady_trickle_of_unloads_is_released_by_max_wait() -> None:
    calls = Calls()
    memory = MemoryRelease(
        quiet=3600, min_interval=0, max_wait=0.05, collect=calls.collect, trim=calls.trim
    )
    async with asyncio.timeout(5):
        while memory.releases == 0:  # unloads never pause for `quiet`
            memory.unloaded()
            await asyncio.sleep(0.005)
    assert calls.trims == 1


async def test_without_malloc_trim_only_the_collection_runs() -> None:
    calls = Calls()
    memory = MemoryRelease(collect=calls.collect, trim=None)
    memory.release()
    assert (memory.releases, calls.collects) == (1, 1)


@pytest.mark.skipif(
    sys.platform != "linux" or platform.libc_ver()[0] != "glibc", reason="glibc only"
)
def test_glibc_has_malloc_trim() -> None:
    assert MALLOC_TRIM is not None
    MALLOC_TRIM()
