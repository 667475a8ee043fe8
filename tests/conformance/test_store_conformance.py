"""One suite for every store: memory, SQLite, PostgreSQL (ShareDB's test/db.js).

The room relies on exactly these properties; a new store passes this suite
before it is used.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from intelgraph_collab.store.base import Store
from intelgraph_collab.store.memory import MemoryStore
from intelgraph_collab.store.postgres import PostgresStore
from intelgraph_collab.store.sqlite import SQLiteStore
from intelgraph_collab.sync.records import OpRecord


class Handles:
    """Opens new handles on one storage (another node, or a restart), closes them all."""

    def __init__(self, open_one: Callable[[], Awaitable[Store]]) -> None:
        self._open_one = open_one
        self.open: list[Store] = []

    async def __call__(self) -> Store:
        store = await self._open_one()
        self.open.append(store)
        return store

    async def close(self, store: Store) -> None:
        self.open.remove(store)
        if store not in self.open:  # the memory store hands out one shared instance
            await store.close()


OpenHandle = Handles


async def _handles(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[OpenHandle]:
    kind = request.param
    postgres_url = request.getfixturevalue("postgres_url") if kind == "postgresql" else ""
    shared_memory = MemoryStore()

    async def open_one() -> Store:
        if kind == "memory":
            store: Store = shared_memory
        elif kind == "sqlite":
            store = SQLiteStore(str(tmp_path / "collab.db"))
        else:
            store = PostgresStore(postgres_url)
        await store.open()
        return store

    handles = Handles(open_one)
    yield handles
    for store in list(handles.open):
        await handles.close(store)


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def open_handle(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[OpenHandle]:
    async for opener in _handles(request, tmp_path):
        yield opener


@pytest.fixture(params=["sqlite", "postgresql"])
async def open_durable(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[OpenHandle]:
    async for opener in _handles(request, tmp_path):
        yield opener


@pytest.fixture(params=["memory", "postgresql"])
async def open_shared(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[OpenHandle]:
    """Stores several nodes can append to at once (SQLite is one process's, by its lock)."""
    async for opener in _handles(request, tmp_path):
        yield opener


@pytest.fixture
async def store(open_handle: OpenHandle) -> Store:
    return await open_handle()


@pytest.fixture
def graph() -> str:
    return f"g-{uuid.uuid4().hex[:8]}"


def record(seq: int, client: str = "c1", op_id: str | None = "auto", **payload: object) -> OpRecord:
    return OpRecord(
        seq=seq,
        type="annotation_update",
        id="a1",
        client_id=client,
        author="alice",
        ts=1_764_144_000_000 + seq,
        op_id=str(seq) if op_id == "auto" else op_id,
        payload={"id": "a1", "n": seq, "text": "héllo ✓", **payload},
    )


def owned_delete(seq: int, client_id: str, user: str, op_id: str) -> OpRecord:
    """A write by an authenticated user: its op key is scoped by `user`."""
    return OpRecord(
        seq=seq,
        type="annotation_delete",
        id="a1",
        client_id=client_id,
        author=user,
        ts=0,
        op_id=op_id,
        owner=user,
    )


async def append_n(store: Store, graph: str, head: int, count: int) -> list[OpRecord]:
    return await store.append(
        graph, head, lambda missed: [record(head + 1 + i) for i in range(count)]
    )


async def test_new_graph_is_empty(store: Store, graph: str) -> None:
    stored = await store.load(graph)
    assert (stored.snapshot, stored.snapshot_seq, stored.records, stored.head) == (None, 0, [], 0)
    assert await store.records_since(graph, 0) == []
    assert await store.trimmed_upto(graph) == 0
    assert await store.find_ops(graph, [("c1", "1")]) == {}


async def test_append_returns_and_keeps_records_in_order(store: Store, graph: str) -> None:
    first = await append_n(store, graph, 0, 3)
    second = await append_n(store, graph, 3, 2)
    assert [r.seq for r in first + second] == [1, 2, 3, 4, 5]
    stored = await store.load(graph)
    assert stored.records == first + second
    assert stored.head == 5
    assert stored.records[0].payload == {"id": "a1", "n": 1, "text": "héllo ✓"}


async def test_empty_build_appends_nothing(store: Store, graph: str) -> None:
    await append_n(store, graph, 0, 2)
    assert await store.append(graph, 2, lambda missed: []) == []
    assert [r.seq for r in (await store.load(graph)).records] == [1, 2]


async def test_records_since_honours_since_upto_and_limit(store: Store, graph: str) -> None:
    await append_n(store, graph, 0, 10)
    assert [r.seq for r in await store.records_since(graph, 4)] == [5, 6, 7, 8, 9, 10]
    assert [r.seq for r in await store.records_since(graph, 4, upto=7)] == [5, 6, 7]
    assert [r.seq for r in await store.records_since(graph, 4, limit=2)] == [5, 6]
    assert await store.records_since(graph, 10) == []


async def test_find_ops_answers_only_accepted_writes(store: Store, graph: str) -> None:
    await store.append(
        graph, 0, lambda missed: [record(1, "c1", "x"), record(2, "c2", "x"), record(3, "c1", None)]
    )
    found = await store.find_ops(graph, [("c1", "x"), ("c2", "x"), ("c1", "y"), ("c3", "x")])
    assert found == {("c1", "x"): 1, ("c2", "x"): 2}
    assert await store.find_ops(f"{graph}-other", [("c1", "x")]) == {}


async def test_writers_with_ops_are_those_with_an_accepted_write(store: Store, graph: str) -> None:
    assert await store.writers_with_ops(graph, ["c1", "c2"]) == set()
    await store.append(graph, 0, lambda missed: [record(1, "c1", "x"), record(2, "c2", None)])
    assert await store.writers_with_ops(graph, ["c1", "c2", "c3"]) == {"c1"}
    assert await store.writers_with_ops(f"{graph}-other", ["c1"]) == set()
    owned = owned_delete(3, "tab", "al", "1")
    await store.append(graph, 2, lambda missed: [owned])
    assert owned.op_key is not None
    assert await store.writers_with_ops(graph, [owned.op_key[0], "tab"]) == {owned.op_key[0]}


async def test_writes_of_authenticated_users_are_keyed_by_owner(store: Store, graph: str) -> None:
    # With auth on, an op key scopes the client_id by its user (with a NUL
    # separator no handshake can produce): it must be stored and found as is.
    mine = owned_delete(1, "tab-1", "alice", "7")
    await store.append(graph, 0, lambda missed: [mine])
    assert mine.op_key is not None
    found = await store.find_ops(graph, [mine.op_key, ("tab-1", "7"), ("mallory\x00tab-1", "7")])
    assert found == {mine.op_key: 1}
    assert (await store.load(graph)).records == [mine]


async def test_graphs_are_independent(store: Store, graph: str) -> None:
    await append_n(store, graph, 0, 3)
    await append_n(store, f"{graph}-b", 0, 1)
    assert (await store.load(graph)).head == 3
    assert (await store.load(f"{graph}-b")).head == 1


async def test_snapshot_trims_the_log(store: Store, graph: str) -> None:
    await append_n(store, graph, 0, 10)
    await store.save_snapshot(graph, 6, b"state-at-6", trim_upto=4)
    stored = await store.load(graph)
    assert (stored.snapshot, stored.snapshot_seq, stored.trimmed_upto) == (b"state-at-6", 6, 4)
    assert [r.seq for r in stored.records] == [5, 6, 7, 8, 9, 10]
    assert stored.head == 10
    assert await store.trimmed_upto(graph) == 4
    assert [r.seq for r in await store.records_since(graph, 0)] == [5, 6, 7, 8, 9, 10]
    assert [r.seq for r in await append_n(store, graph, 10, 1)] == [11]


async def test_durable_across_reopen(open_durable: OpenHandle, graph: str) -> None:
    first = await open_durable()
    written = await append_n(first, graph, 0, 3)
    await open_durable.close(first)
    second = await open_durable()
    assert (await second.load(graph)).records == written
    assert await second.find_ops(graph, [("c1", "3")]) == {("c1", "3"): 3}


async def test_build_receives_what_other_nodes_appended(
    open_shared: OpenHandle, graph: str
) -> None:
    node_a, node_b = await open_shared(), await open_shared()
    theirs = await append_n(node_a, graph, 0, 2)
    seen: list[list[OpRecord]] = []

    def build(missed: list[OpRecord]) -> list[OpRecord]:
        seen.append(missed)
        return [record(3, "c2", "b1")]

    ours = await node_b.append(graph, 0, build)
    assert seen == [theirs]
    assert [r.seq for r in ours] == [3]
    assert [r.seq for r in (await node_a.load(graph)).records] == [1, 2, 3]


async def test_concurrent_appenders_keep_seq_contiguous(
    open_shared: OpenHandle, graph: str
) -> None:
    nodes = [await open_shared() for _ in range(3)]

    async def writer(node: Store, name: str) -> list[int]:
        head, mine = 0, []
        for i in range(15):

            def build(missed: list[OpRecord], i: int = i) -> list[OpRecord]:
                nonlocal head
                if missed:
                    assert missed[0].seq == head + 1
                    head = missed[-1].seq
                head += 1
                return [record(head, name, str(i))]

            appended = await node.append(graph, head, build)
            mine.append(appended[0].seq)
        return mine

    results = await asyncio.gather(*(writer(node, f"n{k}") for k, node in enumerate(nodes)))
    assert sorted(seq for seqs in results for seq in seqs) == list(range(1, 46))
    log = (await nodes[0].load(graph)).records
    assert [r.seq for r in log] == list(range(1, 46))
    assert len({(r.client_id, r.op_id) for r in log}) == 45
