"""One suite for every fan-out: in-process hub and Redis (ShareDB's pubsub tests).

Each test builds several nodes on one medium (one LocalHub, or one Redis
under a per-test prefix) and checks what the room relies on: records reach
every other node in publish order and never come back to their publisher;
subscriptions are per graph; presence is relayed, listed for late joiners
and withdrawn when a client or its node leaves.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from intelgraph_collab.fanout.base import FanOut, PresenceEntry
from intelgraph_collab.fanout.local import LocalFanOut, LocalHub
from intelgraph_collab.fanout.redis import RedisFanOut
from intelgraph_collab.sync.records import OpRecord
from tests.conformance import services
from tests.conformance.recorder import Recorder

MakeNode = Callable[[], Awaitable[FanOut]]


@pytest.fixture(params=["local", "redis"])
async def make_node(request: pytest.FixtureRequest) -> AsyncIterator[MakeNode]:
    hub = LocalHub()
    url = ""
    if request.param == "redis":
        url = services.redis_url_with_prefix(request.getfixturevalue("redis_prefix"))
    nodes: list[FanOut] = []

    async def make() -> FanOut:
        node: FanOut = LocalFanOut(hub) if request.param == "local" else RedisFanOut(url)
        await node.open()
        nodes.append(node)
        return node

    yield make
    for node in nodes:
        await node.close()


def record(seq: int, **payload: object) -> OpRecord:
    return OpRecord(
        seq=seq,
        type="annotation_update",
        id="a1",
        client_id="c1",
        author="alice",
        ts=1_764_144_000_000 + seq,
        op_id=f"op-{seq}",
        payload={"id": "a1", "seq": seq, "label": "naïve ✓ 文字", **payload},
        enclave_after="UNCLASSIFIED",
    )


async def test_records_reach_every_other_node_in_order(make_node: MakeNode) -> None:
    a, b, c = await make_node(), await make_node(), await make_node()
    on_a, on_b, on_c, elsewhere = Recorder(), Recorder(), Recorder(), Recorder()
    await a.subscribe("g1", on_a)
    await b.subscribe("g1", on_b)
    await c.subscribe("g1", on_c)
    await c.subscribe("g2", elsewhere)
    batches = [[record(1), record(2)], [record(3)], [record(4, tags=["x", "y"])]]
    for batch in batches:
        a.publish("g1", batch)
    expected = [r for batch in batches for r in batch]
    await on_b.until(lambda: len(on_b.records) >= 4)
    await on_c.until(lambda: len(on_c.records) >= 4)
    assert on_b.records == expected  # decoded equal, field by field
    assert on_c.records == expected
    a.publish("g2", [record(1)])  # a barrier: anything for g1 was delivered before it
    await elsewhere.until(lambda: elsewhere.records)
    assert on_a.records == []
    assert elsewhere.records == [record(1)]


async def test_unsubscribed_nodes_receive_nothing(make_node: MakeNode) -> None:
    a, b = await make_node(), await make_node()
    gone, barrier = Recorder(), Recorder()
    await b.subscribe("g1", gone)
    await b.subscribe("g2", barrier)
    await b.unsubscribe("g1", gone)
    a.publish("g1", [record(1)])
    a.publish("g2", [record(1)])
    await barrier.until(lambda: barrier.records)
    assert gone.records == []


async def test_presence_is_relayed_listed_and_withdrawn(make_node: MakeNode) -> None:
    a, b = await make_node(), await make_node()
    on_b = Recorder()
    await b.subscribe("g1", on_b)
    alice = PresenceEntry(client_id="c-alice", user="alice", state={"selection": ["e7"]})
    a.set_presence("g1", alice)
    await on_b.until(lambda: on_b.presence)
    assert on_b.presence == [alice]
    # A node loading the room later lists it; nobody lists its own clients.
    late = await make_node()
    assert await late.presence("g1") == [alice]
    assert await a.presence("g1") == []
    moved = PresenceEntry(client_id="c-alice", user="alice", state={"selection": ["e8"]})
    a.set_presence("g1", moved)
    await on_b.until(lambda: len(on_b.presence) == 2)
    assert on_b.presence[-1] == moved
    a.clear_presence("g1", "c-alice")
    await on_b.until(lambda: on_b.leaves)
    assert on_b.leaves == ["c-alice"]
    assert await late.presence("g1") == []


async def test_a_closing_node_withdraws_its_clients(make_node: MakeNode) -> None:
    a, b = await make_node(), await make_node()
    on_b = Recorder()
    await b.subscribe("g1", on_b)
    a.set_presence("g1", PresenceEntry(client_id="c1", user=None, state={}))
    a.set_presence("g1", PresenceEntry(client_id="c2", user="bob", state={"x": 1}))
    await on_b.until(lambda: len(on_b.presence) == 2)
    await a.close()
    await on_b.until(lambda: len(on_b.leaves) == 2)
    assert sorted(on_b.leaves) == ["c1", "c2"]
    assert await b.presence("g1") == []


async def test_solo_only_when_no_other_node_can_listen(
    make_node: MakeNode, request: pytest.FixtureRequest
) -> None:
    first = await make_node()
    if request.node.callspec.params["make_node"] == "local":
        assert first.solo  # alone on its hub: rooms skip publishing altogether
        second = await make_node()
        assert not first.solo and not second.solo
    else:
        assert not first.solo  # other processes may be subscribed
