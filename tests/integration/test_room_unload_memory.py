"""Graphs opened and closed leave nothing behind: once their rooms are
unloaded, the Room objects are garbage and memory is given back.

Real sockets against the real app (in this process, so that the server's
objects can be inspected), both transports. The server makes the cyclic GC
rare (cli.py); here it is off altogether, so only reference counting and the
release after unloads (memory_release.py) can free an unloaded room, as on
a quiet server.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from intelgraph_collab.memory_release import MemoryRelease
from intelgraph_collab.room import Room
from tests.support.client import TestClient
from tests.support.inprocess_server import InProcessServer

GRAPHS = 40

pytestmark = pytest.mark.usefixtures("no_gc")


@pytest.fixture(params=["native", "asgi"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[InProcessServer]:
    running = InProcessServer(
        tmp_path / "collab.db", asgi_websocket=request.param == "asgi", room_idle_seconds=0.05
    )
    running.start()
    try:
        yield running
    finally:
        running.stop()


class CountingTrim:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1


async def churn(server: InProcessServer, memory: MemoryRelease) -> int:
    """Open GRAPHS graphs (one client each, one write), close them, wait until
    their rooms are unloaded and `memory` has released once; how many of
    those Room objects are still alive."""

    async def use_memory() -> None:
        server.service.rooms.memory = memory

    server.call(use_memory)
    graphs = [f"churn-{index}" for index in range(GRAPHS)]
    clients = [await TestClient.connect(server.ws_url(graph)) for graph in graphs]
    for client in clients:
        await client.wait_type("initial_state")
        ack = await client.ack(await client.update({"id": "a1", "target_type": "ENTITY"}))
        assert ack["type"] == "ack"

    async def watch_rooms() -> list[weakref.ref[Room]]:
        rooms = [server.service.rooms.loaded(graph) for graph in graphs]
        return [weakref.ref(room) for room in rooms if room is not None]

    watched = server.call(watch_rooms)
    assert len(watched) == GRAPHS
    for client in clients:
        await client.close()
    del clients

    async def unloaded_and_released() -> int:
        rooms = server.service.rooms
        async with asyncio.timeout(10):
            while len(rooms) or memory.releases == 0:  # noqa: ASYNC110 - polled state
                await asyncio.sleep(0.01)
        return sum(1 for room in watched if room() is not None)

    return server.call(unloaded_and_released, timeout=15)


async def test_after_unloads_rooms_are_collected_and_the_heap_trimmed(
    server: InProcessServer,
) -> None:
    """The release after unloads (what the registry does by default): the
    young generations are collected, then the C heap is trimmed."""
    trim = CountingTrim()
    alive = await churn(server, MemoryRelease(quiet=0.05, min_interval=0, trim=trim))
    assert alive == 0
    assert trim.calls >= 1


async def test_unloaded_rooms_are_freed_by_reference_counting_alone(
    server: InProcessServer,
) -> None:
    """No cycle through a closed connection (protocol, session, connection)
    may keep an unloaded room: even with no collection at all it is freed."""
    nothing = MemoryRelease(quiet=0.05, min_interval=0, collect=lambda: 0, trim=None)
    assert await churn(server, nothing) == 0
