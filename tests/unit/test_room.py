"""The room in-process (memory store, sessions that capture what they are sent)."""

from __future__ import annotations

import asyncio
import gc
import json
import weakref
from typing import Any

from intelgraph_collab.metrics import Metrics
from intelgraph_collab.room import Room, RoomSettings
from intelgraph_collab.rooms import Rooms
from intelgraph_collab.session import Identity, Session, TaskSession
from intelgraph_collab.store.memory import MemoryStore
from intelgraph_collab.sync.engine import Writer
from intelgraph_collab.sync.limits import Limits
from intelgraph_collab.sync.messages import AnnotationUpdate, decode_message


class Capture:
    """A session's far end: every frame the session sends, decoded."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()
        self.closed_with: int | None = None

    async def send_text(self, text: str) -> None:
        document = json.loads(text)
        self.messages.extend(document if isinstance(document, list) else [document])
        self.arrived.set()

    async def close(self, code: int, reason: str) -> None:
        self.closed_with = code

    async def wait(self, count: int) -> list[dict[str, Any]]:
        async with asyncio.timeout(5):
            while len(self.messages) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.messages


def session(client_id: str) -> tuple[Session, Capture]:
    capture = Capture()
    return TaskSession(
        Identity(client_id, client_id), capture.send_text, capture.close, batch=True
    ), capture


def update(payload: dict[str, Any], op_id: str) -> AnnotationUpdate:
    message = decode_message(
        {"type": "annotation_update", "op_id": op_id, "payload": payload}, Limits()
    )
    assert isinstance(message, AnnotationUpdate)
    return message


async def loaded_room(store: MemoryStore) -> Room:
    room = Room("g", store, Limits(), RoomSettings(), Metrics())
    await room.load()
    return room


async def test_a_resent_write_is_acked_with_its_original_seq_and_not_broadcast_again() -> None:
    room = await loaded_room(MemoryStore())
    writer, writer_end = session("w")
    other, other_end = session("o")
    room.join(writer, None)
    room.join(other, None)
    for _ in range(2):
        room.submit(update({"id": "a", "tags": {"add": ["x"]}}, "op-1"), Writer("w", "w"), writer)
    messages = await writer_end.wait(3)
    assert messages[1]["seq"] == 1 and "duplicate" not in messages[1]
    assert messages[2] == {"type": "ack", "op_id": "op-1", "seq": 1, "duplicate": True}
    room.submit(update({"id": "b"}, "op-2"), Writer("w", "w"), writer)
    seen = await other_end.wait(3)
    assert [m["seq"] for m in seen[1:]] == [1, 2], "the duplicate was not broadcast"
    await room.stop()


async def test_dedupe_survives_a_reload_of_the_room_from_the_store() -> None:
    store = MemoryStore()
    room = await loaded_room(store)
    outcome = room.submit(update({"id": "a"}, "op-1"), Writer("w", "w"), None, want_result=True)
    assert outcome is not None and (await outcome).seq == 1
    await room.stop()
    reloaded = await loaded_room(store)
    again = reloaded.submit(
        update({"id": "a", "label": "x"}, "op-1"), Writer("w", "w"), None, want_result=True
    )
    assert again is not None
    result = await again
    assert (result.seq, result.duplicate) == (1, True) and reloaded.head == 1
    await reloaded.stop()


async def test_acks_and_broadcasts_reach_each_client_in_seq_order() -> None:
    room = await loaded_room(MemoryStore())
    a, a_end = session("a")
    b, b_end = session("b")
    room.join(a, None)
    room.join(b, None)
    for i in range(20):  # one group commit holds writes from both
        room.submit(
            update({"id": "x", "label": str(i)}, f"{i}"),
            Writer("a" if i % 2 else "b", None),
            a if i % 2 else b,
        )
    for end in (a_end, b_end):
        messages = await end.wait(21)
        assert [m["seq"] for m in messages[1:]] == list(range(1, 21))
    await room.stop()


async def test_a_join_during_a_commit_meets_the_broadcasts_with_no_gap_or_overlap() -> None:
    room = await loaded_room(MemoryStore())
    writer, _ = session("w")
    room.join(writer, None)
    late, late_end = session("late")
    for i in range(10):
        room.submit(update({"id": "x", "label": str(i)}, f"{i}"), Writer("w", None), writer)
        if i == 4:
            room.join(late, 0)
    messages = await late_end.wait(1)
    first = messages[0]
    covered = first["seq"]
    await late_end.wait(1 + 10 - covered)
    later = [m["seq"] for m in late_end.messages[1:]]
    assert later == list(range(covered + 1, 11))
    await room.stop()


async def test_rooms_unload_when_idle_and_reload_on_next_use() -> None:
    store = MemoryStore()
    rooms = Rooms(store, Limits(), RoomSettings(), Metrics(), idle_seconds=0.01)
    for graph in ("g1", "g2", "g3"):
        room = await rooms.acquire(graph)
        room.submit(update({"id": "a"}, "1"), Writer("w", None), None)
        rooms.release(graph)
    async with asyncio.timeout(5):
        while len(rooms):
            await asyncio.sleep(0.01)
    async with rooms.holding("g1") as again:
        assert again.head == 1 and again.state.annotations["a"]["seq"] == 1
    await rooms.close()


async def test_an_unloaded_room_is_freed_without_the_cyclic_gc() -> None:
    """The server makes full collections rare (cli.py): an unloaded room must
    be freed by reference counting alone, or memory grows with every graph
    ever opened."""
    rooms = Rooms(MemoryStore(), Limits(), RoomSettings(), Metrics(), idle_seconds=0.01)
    gc.disable()
    try:
        room = await rooms.acquire("g")
        alive = weakref.ref(room)
        member, _ = session("c")
        room.join(member, None)
        outcome = room.submit(update({"id": "a"}, "1"), Writer("c", None), member, want_result=True)
        assert outcome is not None
        await outcome
        room.set_presence(member, {"selection": ["a"]})
        await asyncio.sleep(0)
        room.leave(member)
        member.detach()
        rooms.release("g")
        del room, outcome
        async with asyncio.timeout(5):
            while len(rooms) or alive() is not None:
                await asyncio.sleep(0.01)
    finally:
        gc.enable()
