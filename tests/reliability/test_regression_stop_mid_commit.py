"""A room is not idle while a commit is in flight, and stopping it finishes
that commit.

Found while sizing the memory test (rooms unloaded 50 ms after their last
client): the sequencer takes the queued writes before committing them, so
`idle` read True mid-commit and an idle unload cancelled the commit. The
writes were then neither acked nor refused (a REST caller's future never
resolved), and with the SQLite store the commit could land after a new room
had loaded the graph, which then reused its seq.
"""

from __future__ import annotations

import asyncio

from intelgraph_collab.store.base import BuildRecords
from intelgraph_collab.store.memory import MemoryStore
from intelgraph_collab.sync.engine import Writer
from intelgraph_collab.sync.records import OpRecord

from .room_harness import loaded_room, write


class GatedStore(MemoryStore):
    """A store whose appends wait until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()

    async def append(self, graph_id: str, head: int, build: BuildRecords) -> list[OpRecord]:
        self.entered.set()
        await self.gate.wait()
        return await super().append(graph_id, head, build)


async def test_stopping_a_room_mid_commit_finishes_the_commit() -> None:
    store = GatedStore()
    room = await loaded_room(store)
    update = {"type": "annotation_update", "op_id": "1", "payload": {"id": "a"}}
    result = room.submit(write(update), Writer("w", "w"), None, want_result=True)
    assert result is not None
    await asyncio.wait_for(store.entered.wait(), 5)
    assert not room.idle, "a room mid-commit must not be unloaded"
    stopping = asyncio.get_running_loop().create_task(room.stop())
    await asyncio.sleep(0)  # let stop() start while the commit is held
    store.gate.set()
    await asyncio.wait_for(stopping, 5)
    outcome = await asyncio.wait_for(result, 5)
    assert outcome.seq == 1
    assert (await store.load("g")).head == 1
