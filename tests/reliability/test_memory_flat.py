"""Memory stays flat however many graphs are opened: 10,000 connect/abort
cycles over 1,000 graphs leave the server's RSS within 5% of where it was.

The server unloads a room `COLLAB_ROOM_IDLE_SECONDS` after its last client
(0.05 s here). A warm-up pass over 1,000 other graphs, with 8 KB writes, brings the process to its
steady state (allocator arenas, SQLite's page caches); then the measured
pass opens 1,000 graphs never seen before, 10 connections each, every
connection reset (RST) right after its first message, one write into each
graph on its first visit. RSS is read from /proc/PID/status once every room
is unloaded (the `collab_rooms_live` gauge back at 0).

CI runs the full 10,000 cycles (raw sockets keep a cycle cheap). Long
version: COLLAB_MEMORY_CYCLES=100000.
"""

from __future__ import annotations

import asyncio
import re
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from ..support.raw_ws import connect_and_abort
from ..support.server import ServerProcess, start_server
from .breakage import broken_env
from .figures import env_int, record

GRAPHS = 1000
ENV = {
    "COLLAB_ROOM_IDLE_SECONDS": "0.05",
    "COLLAB_MAX_CONNECTIONS_PER_USER": "0",
    "COLLAB_MAX_CONNECTIONS_PER_GRAPH": "0",
    "COLLAB_RATE_LIMIT": "0",
    "COLLAB_LOG_LEVEL": "error",
}


@dataclass
class Measurement:
    cycles: int
    rss_before_kb: int
    rss_after_kb: int
    rooms_after: float
    rooms_unloaded: bool

    @property
    def growth(self) -> float:
        return self.rss_after_kb / self.rss_before_kb - 1


def rss_kb(server: ServerProcess) -> int:
    assert server.process is not None
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    assert match is not None
    return int(match.group(1))


def rooms_live(server: ServerProcess) -> float:
    with urllib.request.urlopen(f"{server.http_url}/metrics", timeout=10) as response:
        text = response.read().decode()
    match = re.search(r"^collab_rooms_live (\S+)$", text, re.MULTILINE)
    assert match is not None, "no collab_rooms_live gauge"
    return float(match.group(1))


async def rooms_unloaded(server: ServerProcess, within: float = 30.0) -> bool:
    """Whether the live-room gauge gets back to 0 (polled; bounded)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        if await asyncio.to_thread(rooms_live, server) == 0:
            return True
        await asyncio.sleep(0.1)  # polling another process's gauge: no event to wait on
    return False


async def churn(
    server: ServerProcess, prefix: str, cycles: int, label_bytes: int = 1024, concurrency: int = 8
) -> None:
    label = "x" * label_bytes
    queue: asyncio.Queue[int] = asyncio.Queue()
    for cycle in range(cycles):
        queue.put_nowait(cycle)

    async def worker() -> None:
        while not queue.empty():
            cycle = queue.get_nowait()
            graph = f"{prefix}{cycle % GRAPHS}"
            write = None
            if cycle < GRAPHS:
                write = {
                    "type": "annotation_update",
                    "op_id": "1",
                    "payload": {"id": "a", "label": label},
                }
            first = await connect_and_abort(
                server.port, f"/ws/collaborate/{graph}?client_id=m{cycle}", send=write
            )
            assert first["type"] == "initial_state"

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def measure(
    server: ServerProcess, cycles: int, warmup: int = 2 * GRAPHS, within: float = 30.0
) -> Measurement:
    # Bigger writes in the warm-up fill SQLite's page caches (2 MB a
    # connection), which would otherwise still be growing when measured.
    await churn(server, "warm", warmup, label_bytes=8192)
    assert await rooms_unloaded(server, within), "rooms still loaded after the warm-up"
    before = rss_kb(server)
    await churn(server, "graph", cycles)
    unloaded = await rooms_unloaded(server)
    return Measurement(
        cycles, before, rss_kb(server), await asyncio.to_thread(rooms_live, server), unloaded
    )


async def test_memory_is_flat_across_connect_abort_cycles_over_many_graphs(tmp_path: Path) -> None:
    cycles = env_int("COLLAB_MEMORY_CYCLES", 10_000)
    server = start_server(tmp_path, env=ENV)
    try:
        result = await measure(server, cycles)
        record(
            "memory_flat",
            cycles=cycles,
            graphs=GRAPHS,
            rss_before_kb=result.rss_before_kb,
            rss_after_kb=result.rss_after_kb,
            growth_percent=round(result.growth * 100, 2),
            rooms_live_after=result.rooms_after,
        )
        assert result.rooms_unloaded, f"{result.rooms_after} rooms still loaded"
        assert result.growth <= 0.05, f"RSS grew {result.growth:.1%}: {result}"
        assert "Task was destroyed" not in server.log()
    finally:
        server.stop()


@pytest.mark.parametrize("mechanism", ["unload"])
async def test_without_room_unloading_the_memory_test_fails(tmp_path: Path, mechanism: str) -> None:
    server = start_server(tmp_path, env={**ENV, **broken_env(mechanism)})
    try:
        with pytest.raises(AssertionError, match="rooms still loaded"):
            await measure(server, cycles=GRAPHS, warmup=200, within=3.0)
    finally:
        server.stop()
