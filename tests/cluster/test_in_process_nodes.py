"""Several nodes in one process: rooms sharing one store and one LocalHub.

Proves, without processes or sockets, the room's cluster path: a record
committed on one node reaches the other node's sessions in seq order even
when the fan-out drops batches (gaps are back-filled from the store); a
write resent to another node is answered as a duplicate; presence crosses
nodes, and a joiner gets the other nodes' presence.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from intelgraph_collab.fanout.local import LocalFanOut, LocalHub
from intelgraph_collab.metrics import Metrics
from intelgraph_collab.room import Room, RoomSettings
from intelgraph_collab.session import Identity, TaskSession
from intelgraph_collab.store.memory import MemoryStore
from intelgraph_collab.sync.engine import Writer
from intelgraph_collab.sync.limits import Limits
from intelgraph_collab.sync.messages import AnnotationUpdate
from intelgraph_collab.sync.records import OpRecord


class LossyFanOut(LocalFanOut):
    """Drops the batches whose publish number is in `drop` (pub/sub may drop)."""

    def __init__(self, hub: LocalHub, drop: set[int]) -> None:
        super().__init__(hub)
        self.drop = drop
        self.published = 0

    def publish(self, graph_id: str, records: Sequence[OpRecord]) -> None:
        self.published += 1
        if self.published not in self.drop:
            super().publish(graph_id, records)


class Listener:
    """A session's far end: every message it was sent."""

    def __init__(self, client_id: str) -> None:
        self.messages: list[dict[str, Any]] = []
        self.changed = asyncio.Event()
        self.session = TaskSession(Identity(client_id, None), self._send, self._close, batch=True)

    async def _send(self, text: str) -> None:
        document = json.loads(text)
        self.messages.extend(document if isinstance(document, list) else [document])
        self.changed.set()

    async def _close(self, code: int, reason: str) -> None:
        self.changed.set()

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == kind]

    async def until(self, condition: Any, within: float = 5.0) -> None:
        async def wait() -> None:
            while not condition():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(wait(), within)


@pytest.fixture
def drop() -> set[int]:
    """Which of node a's published batches never reach node b."""
    return {2, 3}


@pytest.fixture
async def two_nodes(drop: set[int]) -> AsyncIterator[tuple[Room, Room]]:
    hub, store = LocalHub(), MemoryStore()
    fanouts = [LossyFanOut(hub, drop=drop), LocalFanOut(hub)]
    rooms = [
        Room("g", store, Limits(), RoomSettings(), Metrics(), fanout=fanout) for fanout in fanouts
    ]
    for room in rooms:
        await room.load()
    yield rooms[0], rooms[1]
    for room in rooms:
        await room.stop()


async def write(room: Room, client: str, op_id: str, **fields: object) -> Any:
    update = AnnotationUpdate(payload={"id": "a1", **fields}, op_id=op_id)
    future = room.submit(update, Writer(client, None), None, want_result=True)
    assert future is not None
    return await future


async def test_records_reach_the_other_node_in_order_despite_drops(
    two_nodes: tuple[Room, Room],
) -> None:
    a, b = two_nodes
    watcher = Listener("watcher")
    b.join(watcher.session, None)
    for i in range(1, 7):  # batches 2 and 3 never reach b
        assert (await write(a, "writer", str(i), n=i)).seq == i
    await watcher.until(lambda: len(watcher.of_type("annotation_update")) == 6)
    updates = watcher.of_type("annotation_update")
    assert [(m["seq"], m["prev"]) for m in updates] == [(i, i - 1) for i in range(1, 7)]
    assert b.state.annotations == a.state.annotations


async def test_a_write_resent_to_another_node_is_a_duplicate(two_nodes: tuple[Room, Room]) -> None:
    a, b = two_nodes
    first = await write(a, "c1", "op-1", color="red")
    again = await write(b, "c1", "op-1", color="red")
    assert (again.seq, again.duplicate) == (first.seq, True)
    assert b.head == a.head == 1


async def test_presence_crosses_nodes(two_nodes: tuple[Room, Room]) -> None:
    a, b = two_nodes
    alice, bob, carol = Listener("alice"), Listener("bob"), Listener("carol")
    a.join(alice.session, None)
    b.join(bob.session, None)
    a.set_presence(alice.session, {"selection": ["e1"]})
    await bob.until(lambda: bob.of_type("presence"))
    assert bob.of_type("presence")[0]["state"] == {"selection": ["e1"]}
    b.join(carol.session, None)  # joins later: gets it in the snapshot
    await carol.until(lambda: carol.of_type("presence"))
    assert carol.of_type("presence")[0]["client_id"] == "alice"
    a.set_presence(alice.session, {"selection": ["e2"]})
    await bob.until(lambda: len(bob.of_type("presence")) == 2)
    a.leave(alice.session)
    await bob.until(lambda: bob.of_type("presence_leave"))
    assert bob.of_type("presence_leave") == [{"type": "presence_leave", "client_id": "alice"}]


@pytest.mark.parametrize("drop", [{1, 2, 3}])
async def test_a_client_that_wrote_elsewhere_is_caught_up_not_reset(
    two_nodes: tuple[Room, Room],
) -> None:
    a, b = two_nodes
    for i in range(1, 4):  # none of these reach b by the fan-out
        await write(a, "c1", str(i), n=i)
    assert b.head == 0
    # c1 saw seq 3 on a; failing over to b, it is caught up, never sent backwards.
    failover = Listener("c1")
    b.join(failover.session, 2)
    await failover.until(lambda: failover.messages)
    first = failover.messages[0]
    assert first["type"] == "catch_up" and first["seq"] == 3
    assert [op["seq"] for op in first["ops"]] == [3]
