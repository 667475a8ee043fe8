"""Dedupe must not depend on the op_id cache: a batch whose own writes evict
a key from it must still see that key's resend as a duplicate.

Found by the simulator (small `op_id_cache`): the cache was consulted per
write while the batch was resolving, after the store lookup had skipped the
keys that were cached when the batch began; a write applied earlier, or
earlier in the same batch, was then applied again.
"""

from __future__ import annotations

from intelgraph_collab.room import RoomSettings
from intelgraph_collab.store.memory import MemoryStore
from intelgraph_collab.sync.engine import Writer

from .room_harness import capture_session, loaded_room, write

SMALL_CACHE = RoomSettings(op_id_cache=2)


def update(op_id: str, annotation_id: str) -> dict[str, object]:
    payload = {"id": annotation_id, "tags": {"add": [op_id]}}
    return {"type": "annotation_update", "op_id": op_id, "payload": payload}


async def test_a_resend_of_a_write_evicted_from_the_cache_by_its_own_batch_is_a_duplicate() -> None:
    store = MemoryStore()
    room = await loaded_room(store, SMALL_CACHE)
    session, received = capture_session("w")
    room.join(session, None)
    writer = Writer("w", "w")
    room.submit(write(update("op-a", "x")), writer, session)
    await received.wait_for(1)
    # One batch: two new writes evict op-a from the cache, then op-a again.
    for op_id in ("op-b", "op-c", "op-a"):
        room.submit(write(update(op_id, op_id)), writer, session)
    acks = await received.wait_for(4)
    assert acks[3] == {"type": "ack", "op_id": "op-a", "seq": 1, "duplicate": True}
    assert room.head == 3
    assert [r.op_id for r in (await store.load("g")).records] == ["op-a", "op-b", "op-c"]
    await room.stop()


async def test_a_copy_of_a_write_later_in_the_same_batch_is_a_duplicate_after_eviction() -> None:
    store = MemoryStore()
    room = await loaded_room(store, SMALL_CACHE)
    session, received = capture_session("w")
    room.join(session, None)
    writer = Writer("w", "w")
    for op_id in ("op-a", "op-b", "op-c", "op-a"):
        room.submit(write(update(op_id, "x")), writer, session)
    acks = await received.wait_for(4)
    assert acks[3] == {"type": "ack", "op_id": "op-a", "seq": 1, "duplicate": True}
    assert room.state.annotations["x"]["tags"] == ["op-a", "op-b", "op-c"]
    assert room.head == 3
    await room.stop()
