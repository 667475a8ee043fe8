"""What only the PostgreSQL store has to show: the cluster's guarantees.

A write committed concurrently on another node makes the transaction fail
with nothing appended; a record out of sequence is refused; the schema
migrates once however many nodes start together; a lost connection is a
StoreUnavailable, and the pool comes back by itself when PostgreSQL does.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import asyncpg
import pytest

from intelgraph_collab.store.base import StoreUnavailable
from intelgraph_collab.store.postgres import PostgresStore
from intelgraph_collab.sync.records import OpRecord
from tests.conformance import services
from tests.conformance.tcp_proxy import TcpProxy
from tests.conformance.test_store_conformance import append_n, record


@pytest.fixture
async def store(postgres_url: str) -> AsyncIterator[PostgresStore]:
    store = PostgresStore(postgres_url)
    await store.open()
    yield store
    await store.close()


@pytest.fixture
def graph() -> str:
    return f"g-{uuid.uuid4().hex[:8]}"


async def test_a_write_committed_elsewhere_fails_the_whole_commit(
    store: PostgresStore, graph: str
) -> None:
    await store.append(graph, 0, lambda missed: [record(1, "c1", "op-7")])
    # Another node did not know of seq 1 and resolved the same write again.
    with pytest.raises(StoreUnavailable, match="committed concurrently"):
        await store.append(graph, 1, lambda missed: [record(2, "c2", "x"), record(3, "c1", "op-7")])
    stored = await store.load(graph)
    assert [r.seq for r in stored.records] == [1]
    assert await store.find_ops(graph, [("c2", "x")]) == {}
    assert [r.seq for r in await append_n(store, graph, 1, 1)] == [2]


async def test_a_record_out_of_sequence_is_refused(store: PostgresStore, graph: str) -> None:
    await append_n(store, graph, 0, 2)
    with pytest.raises(ValueError, match="where 3 was next"):
        await store.append(graph, 2, lambda missed: [record(4)])
    assert (await store.load(graph)).head == 2


async def test_schema_migrates_once_when_nodes_start_together() -> None:
    url = await _fresh_database()
    try:
        nodes = [PostgresStore(url) for _ in range(4)]
        await asyncio.gather(*(node.open() for node in nodes))
        await asyncio.gather(*(node.close() for node in nodes))
        again = PostgresStore(url)
        await again.open()
        await again.close()
        conn = await asyncpg.connect(url)
        try:
            versions = await conn.fetch("SELECT version FROM collab_schema ORDER BY version")
            tables = await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE tablename LIKE 'collab_%' ORDER BY 1"
            )
        finally:
            await conn.close()
        assert [v["version"] for v in versions] == [1]
        assert [t["tablename"] for t in tables] == [
            "collab_graphs",
            "collab_op_ids",
            "collab_ops",
            "collab_schema",
        ]
    finally:
        await services.drop_database(url)


async def _fresh_database() -> str:
    try:
        return await services.create_database()
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        services.unavailable("postgres", services.POSTGRES_ADMIN_URL, exc)


async def test_connection_loss_is_unavailable_and_recovers_by_itself(
    postgres_url: str, graph: str
) -> None:
    parts = urlsplit(postgres_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432).start()
    store = PostgresStore(services.via_port(postgres_url, proxy.port), connect_timeout=2.0)
    try:
        await store.open()
        acked = await append_n(store, graph, 0, 3)
        proxy.cut()
        with pytest.raises(StoreUnavailable):
            await append_n(store, graph, 3, 1)
        with pytest.raises(StoreUnavailable):
            await store.load(graph)
        with pytest.raises(StoreUnavailable):
            await store.ping()
        proxy.restore()
        after: list[OpRecord] = await append_n(store, graph, 3, 1)
        assert [r.seq for r in after] == [4]
        assert (await store.load(graph)).records == acked + after
    finally:
        await store.close()
        proxy.stop()
