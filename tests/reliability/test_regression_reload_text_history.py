"""A room reloaded from the store must transform text ops against each
earlier op once.

Found by the simulator (restarts between concurrent text edits): the reload
folded the retained log, which records each text op in the history, then
rebuilt the history from the same log again, so a text op based before a
retained one was transformed against it twice and refused as `invalid_op`.
"""

from __future__ import annotations

from intelgraph_collab.store.memory import MemoryStore
from intelgraph_collab.sync.engine import Writer

from .room_harness import capture_session, loaded_room, write


def text_op(op_id: str, base: int, ops: list[int | str]) -> dict[str, object]:
    return {
        "type": "text_op",
        "op_id": op_id,
        "id": "n",
        "field": "content",
        "base": base,
        "ops": ops,
    }


async def test_a_concurrent_text_op_after_a_reload_is_transformed_once() -> None:
    store = MemoryStore()
    room = await loaded_room(store)
    alice, alice_end = capture_session("alice")
    room.join(alice, None)
    alice_writes = Writer("alice", "alice")
    create = {"type": "annotation_update", "op_id": "1", "payload": {"id": "n", "content": ""}}
    room.submit(write(create), alice_writes, alice)
    room.submit(write(text_op("2", base=1, ops=["ab"])), alice_writes, alice)
    await alice_end.wait_for(2)
    await room.stop()

    reloaded = await loaded_room(store)
    bob, bob_end = capture_session("bob")
    reloaded.join(bob, None)
    # Bob edited the text as of seq 1 (empty), concurrently with alice's op at seq 2.
    reloaded.submit(write(text_op("b1", base=1, ops=["x"])), Writer("bob", "bob"), bob)
    [answer] = await bob_end.wait_for(1)
    assert answer["seq"] == 3, answer
    assert reloaded.state.annotations["n"]["content"] == "abx"
    await reloaded.stop()
