"""An in-memory store: the reference implementation, for tests and demos. Not durable."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..sync.records import OpRecord
from .base import BuildRecords, OpKey, Store, StoredGraph


@dataclass
class _Graph:
    records: list[OpRecord] = field(default_factory=list)
    snapshot: bytes | None = None
    snapshot_seq: int = 0
    trimmed_upto: int = 0
    head: int = 0
    op_ids: dict[OpKey, int] = field(default_factory=dict)
    writers: set[str] = field(default_factory=set)


class MemoryStore(Store):
    def __init__(self) -> None:
        self._graphs: dict[str, _Graph] = {}

    def _graph(self, graph_id: str) -> _Graph:
        return self._graphs.setdefault(graph_id, _Graph())

    async def load(self, graph_id: str) -> StoredGraph:
        graph = self._graph(graph_id)
        return StoredGraph(
            snapshot=graph.snapshot,
            snapshot_seq=graph.snapshot_seq,
            records=list(graph.records),
            trimmed_upto=graph.trimmed_upto,
        )

    async def append(self, graph_id: str, head: int, build: BuildRecords) -> list[OpRecord]:
        graph = self._graph(graph_id)
        missed = graph.records[_first_after(graph.records, head) :]
        records = build(missed)
        expected = graph.head + 1
        for record in records:
            if record.seq != expected:
                raise ValueError(f"record seq {record.seq} where {expected} was next")
            expected += 1
        for record in records:
            graph.records.append(record)
            if record.op_key is not None:
                graph.op_ids.setdefault(record.op_key, record.seq)
                graph.writers.add(record.op_key[0])
        if records:
            graph.head = records[-1].seq
        return records

    async def records_since(
        self, graph_id: str, since: int, upto: int | None = None, limit: int | None = None
    ) -> list[OpRecord]:
        records = self._graph(graph_id).records
        start = _first_after(records, since)
        end = len(records) if upto is None else _first_after(records, upto)
        if limit is not None:
            end = min(end, start + limit)
        return records[start:end]

    async def trimmed_upto(self, graph_id: str) -> int:
        return self._graph(graph_id).trimmed_upto

    async def find_ops(self, graph_id: str, keys: Sequence[OpKey]) -> dict[OpKey, int]:
        op_ids = self._graph(graph_id).op_ids
        return {key: op_ids[key] for key in keys if key in op_ids}

    async def writers_with_ops(self, graph_id: str, writers: Sequence[str]) -> set[str]:
        return self._graph(graph_id).writers.intersection(writers)

    async def save_snapshot(self, graph_id: str, seq: int, blob: bytes, trim_upto: int) -> None:
        graph = self._graph(graph_id)
        graph.snapshot, graph.snapshot_seq = blob, seq
        graph.trimmed_upto = max(graph.trimmed_upto, trim_upto)
        graph.records = [record for record in graph.records if record.seq > graph.trimmed_upto]


def _first_after(records: list[OpRecord], seq: int) -> int:
    """Index of the first record with a seq above `seq` (records are in seq order)."""
    return bisect_right(records, seq, key=lambda record: record.seq)
