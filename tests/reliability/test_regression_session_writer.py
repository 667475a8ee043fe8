"""A client that goes away must not leave its session's writer task behind.

Found by the reliability tests: the endpoint left the room on disconnect
but never stopped the session's writer, which waited forever for a message
that would never come; only the cyclic GC reclaimed it, logging
"Task was destroyed but it is pending!" at ERROR level for every departed
client (thousands in the churn and memory tests).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from websockets.sync.client import connect

from ..support.inprocess_server import InProcessServer


def test_departed_clients_leave_no_writer_task(tmp_path: Path, no_gc: None) -> None:
    server = InProcessServer(tmp_path / "collab.db", room_idle_seconds=60.0).start()
    try:
        for index in range(5):
            with connect(server.ws_url("g", client_id=f"c{index}")) as ws:
                ws.recv(timeout=5)

        async def writers_left() -> int:
            async with asyncio.timeout(5):
                while server.service.sessions:  # noqa: ASYNC110 - polled from outside the service
                    await asyncio.sleep(0.01)
            await asyncio.sleep(0)
            return sum(
                1 for task in asyncio.all_tasks() if "Session._drain" in repr(task.get_coro())
            )

        assert server.call(writers_left) == 0
    finally:
        server.stop()
