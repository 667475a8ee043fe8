"""What only the Redis fan-out has to show: it survives its link, and dead nodes expire.

The link is cut by killing this node's own pub/sub connection on the
server (CLIENT KILL by id: other users of the shared Redis are untouched).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from intelgraph_collab.fanout.base import PresenceEntry
from intelgraph_collab.fanout.redis import RedisFanOut
from intelgraph_collab.sync.records import OpRecord
from tests.conformance import services
from tests.conformance.recorder import Recorder


@pytest.fixture
async def admin(redis_prefix: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(services.REDIS_URL)
    yield client
    await client.aclose()


@pytest.fixture
async def url(redis_prefix: str) -> str:
    return services.redis_url_with_prefix(redis_prefix)


def record(seq: int) -> OpRecord:
    return OpRecord(seq=seq, type="annotation_delete", id="a1", client_id="c", author=None, ts=0)


async def kill_pubsub_link(admin: aioredis.Redis, node: RedisFanOut) -> int:
    clients = await admin.client_list(_type="pubsub")
    ids = [c["id"] for c in clients if c.get("name") == f"collab-{node.node_id}"]
    for client_id in ids:
        await admin.client_kill_filter(_id=client_id)
    return len(ids)


async def test_a_broken_link_resubscribes_and_asks_for_a_back_fill(
    admin: aioredis.Redis, url: str
) -> None:
    a, b = RedisFanOut(url), RedisFanOut(url)
    await a.open()
    await b.open()
    try:
        on_b = Recorder()
        await b.subscribe("g1", on_b)
        a.publish("g1", [record(1)])
        await on_b.until(lambda: on_b.records)
        assert await kill_pubsub_link(admin, b) == 1
        # Told to back-fill once the channel is subscribed again ...
        await on_b.until(lambda: on_b.resyncs >= 1, within=10)
        # ... and live delivery resumed.
        a.publish("g1", [record(2)])
        await on_b.until(lambda: len(on_b.records) >= 2)
        assert [r.seq for r in on_b.records] == [1, 2]
    finally:
        await a.close()
        await b.close()


async def test_presence_survives_a_broken_link(admin: aioredis.Redis, url: str) -> None:
    a, b = RedisFanOut(url), RedisFanOut(url)
    await a.open()
    await b.open()
    try:
        on_b = Recorder()
        await b.subscribe("g1", on_b)
        await kill_pubsub_link(admin, a)
        # Set while a's receiving link is down: sending goes on another connection.
        a.set_presence("g1", PresenceEntry(client_id="c1", user="al", state={"k": 1}))
        await on_b.until(lambda: on_b.presence)
        assert await b.presence("g1") == [PresenceEntry(client_id="c1", user="al", state={"k": 1})]
    finally:
        await a.close()
        await b.close()


async def test_a_dead_nodes_clients_expire(url: str) -> None:
    a = RedisFanOut(url, presence_ttl=1.0)
    b = RedisFanOut(url, presence_ttl=1.0)
    await a.open()
    await b.open()
    try:
        on_b = Recorder()
        await b.subscribe("g1", on_b)
        a.set_presence("g1", PresenceEntry(client_id="c-dead", user=None, state={}))
        await on_b.until(lambda: on_b.presence)
        # a dies without a word: its tasks stop, no leave, no goodbye.
        for task in a._tasks:
            task.cancel()
        await asyncio.gather(*a._tasks, return_exceptions=True)
        await on_b.until(lambda: on_b.leaves, within=5)
        assert on_b.leaves == ["c-dead"]
        # and a node loading the graph afterwards does not list it either.
        late = RedisFanOut(url, presence_ttl=1.0)
        await late.open()
        try:
            assert await late.presence("g1") == []
        finally:
            await late.close()
    finally:
        with contextlib.suppress(Exception):
            await a.close()
        await b.close()
