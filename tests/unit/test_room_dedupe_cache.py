"""Dedupe stays exact while the room skips store lookups for writers whose
every op id it holds (`Room._writer_cached`): whatever the cache forgets
(a tiny `op_id_cache`) and however often the room is reloaded."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from intelgraph_collab.metrics import Metrics
from intelgraph_collab.room import Room, RoomSettings
from intelgraph_collab.store.base import OpKey
from intelgraph_collab.store.memory import MemoryStore
from intelgraph_collab.sync.engine import Writer
from intelgraph_collab.sync.limits import Limits

from .test_room import update

METRICS = Metrics()


class CountingStore(MemoryStore):
    """The memory store, counting the dedupe lookups it is asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.looked_up: list[OpKey] = []

    async def find_ops(self, graph_id: str, keys: Sequence[OpKey]) -> dict[OpKey, int]:
        self.looked_up.extend(keys)
        return await super().find_ops(graph_id, keys)


async def loaded(store: MemoryStore, op_id_cache: int) -> Room:
    room = Room("g", store, Limits(), RoomSettings(op_id_cache=op_id_cache), METRICS)
    await room.load()
    return room


async def write(room: Room, writer: str, op_id: str, author: str | None = None) -> tuple[int, bool]:
    who = Writer(writer, author, authenticated=author is not None)
    future = room.submit(update({"id": f"{writer}-{op_id}"}, op_id), who, None, want_result=True)
    assert future is not None
    outcome = await future
    return outcome.seq, outcome.duplicate


step = st.tuples(
    st.sampled_from(["tab-1", "tab-2", "tab-3"]),
    st.integers(0, 9),
    st.sampled_from(["write", "write", "write", "reload"]),
)


@settings(max_examples=80, deadline=None)
@given(steps=st.lists(step, min_size=1, max_size=50), cache=st.integers(1, 4))
def test_each_op_id_is_applied_once_whatever_the_cache_forgets(
    steps: list[tuple[str, int, str]], cache: int
) -> None:
    async def scenario() -> None:
        store = MemoryStore()
        room = await loaded(store, cache)
        applied: dict[tuple[str, str], int] = {}
        for writer, op, action in steps:
            if action == "reload":
                await room.stop()
                room = await loaded(store, cache)
                continue
            seq, duplicate = await write(room, writer, str(op))
            first = applied.get((writer, str(op)))
            if first is None:
                assert (seq, duplicate) == (len(applied) + 1, False), f"{writer}/{op} not new"
                applied[(writer, str(op))] = seq
            else:
                assert (seq, duplicate) == (first, True), f"{writer}/{op} applied twice"
        assert room.head == len(applied), "every distinct op id applied exactly once"
        await room.stop()

    asyncio.run(scenario())


async def test_a_new_writer_is_looked_up_once_not_per_write() -> None:
    store = CountingStore()
    room = await loaded(store, op_id_cache=100)
    for op in range(5):
        assert await write(room, "fresh", str(op)) == (op + 1, False)
    assert store.looked_up == [], "a writer with nothing stored needs no per-write lookup"
    assert await write(room, "fresh", "0") == (1, True)  # a resend: from the cache
    await room.stop()


async def test_a_writer_known_to_the_store_is_still_looked_up() -> None:
    store = CountingStore()
    room = await loaded(store, op_id_cache=100)
    await write(room, "old", "1")
    await room.stop()
    room = await loaded(store, op_id_cache=100)  # its cache is empty; the store has "old"
    assert await write(room, "old", "2") == (2, False)
    assert await write(room, "old", "1") == (1, True)
    assert ("old", "2") in store.looked_up
    await room.stop()


async def test_an_evicted_op_id_sends_its_writer_back_to_the_store() -> None:
    store = CountingStore()
    room = await loaded(store, op_id_cache=2)
    for op in range(4):  # op ids 0 and 1 are evicted from a cache of 2
        await write(room, "w", str(op))
    # Op 2 evicted op 0: from then on the writer's misses go to the store.
    assert store.looked_up == [("w", "3")]
    assert await write(room, "w", "0") == (1, True)
    assert ("w", "0") in store.looked_up
    await room.stop()


async def test_authenticated_writers_are_scoped_by_their_user() -> None:
    store = CountingStore()
    room = await loaded(store, op_id_cache=100)
    assert await write(room, "tab", "1", author="alice") == (1, False)
    assert await write(room, "tab", "1", author="mallory") == (2, False)
    assert await write(room, "tab", "1", author="alice") == (1, True)
    await room.stop()
