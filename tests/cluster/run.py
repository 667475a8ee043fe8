"""Running peers against the cluster, and judging the outcome.

`settle` waits (with timeouts, never bare sleeps) until every write was
answered and every peer is connected and at the log's head; `verify` then
reads the committed log straight from PostgreSQL and holds the run to the
reliability suite's invariants (contiguous seq, nothing lost, nothing
duplicated, text intents kept, every peer's state equal to the log's fold),
plus: every node serves a fresh reader that same state, and no peer ever
saw a gap.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import asyncpg

from intelgraph_collab.sync.records import record_decoder
from tests.cluster.conftest import Cluster, node_logs
from tests.cluster.live_peer import Ledger, LivePeer
from tests.support.client import TestClient
from tests.support.history_check import check_history
from tests.support.protocol_model import Message


@dataclass
class Run:
    cluster: Cluster
    graph_id: str
    peers: list[LivePeer]
    ledger: Ledger

    @classmethod
    def spread(cls, cluster: Cluster, graph_id: str, count: int, seed: int) -> Run:
        """`count` peers on one graph, round-robin over the nodes."""
        ledger = Ledger()
        peers = [
            LivePeer(
                f"{graph_id}-p{i}",
                graph_id,
                cluster.nodes,
                i % len(cluster.nodes),
                ledger,
                seed * 1000 + i,
            )
            for i in range(count)
        ]
        return cls(cluster, graph_id, peers, ledger)

    def start(self) -> None:
        for peer in self.peers:
            peer.start()

    async def stop(self) -> None:
        for peer in self.peers:
            await peer.stop()

    async def settle(self, within: float = 90) -> int:
        """Wait until every write is answered and every peer sits at the head; return it."""
        await self.ledger.until(lambda: all(p.live and p.model.settled for p in self.peers), within)
        head = await committed_head(self.cluster.postgres_url, self.graph_id)
        await self.ledger.until(
            lambda: all(p.live and p.model.seq == head for p in self.peers), within
        )
        return head


async def committed_head(postgres_url: str, graph_id: str) -> int:
    conn = await asyncpg.connect(postgres_url)
    try:
        head = await conn.fetchval("SELECT head FROM collab_graphs WHERE graph_id = $1", graph_id)
    finally:
        await conn.close()
    return int(head or 0)


async def committed_log(postgres_url: str, graph_id: str) -> list[Message]:
    """Every record of the graph, in wire form, as the store holds it."""
    conn = await asyncpg.connect(postgres_url)
    try:
        rows = await conn.fetch(
            "SELECT data FROM collab_ops WHERE graph_id = $1 ORDER BY seq", graph_id
        )
    finally:
        await conn.close()
    records = [record_decoder.decode(row["data"]) for row in rows]
    return [record.wire(record.seq - 1) for record in records]


async def fresh_state(cluster: Cluster, node: int, graph_id: str) -> Message:
    reader = await TestClient.connect(cluster.nodes[node].ws_url(graph_id, client_id="reader"))
    try:
        return await reader.wait_type("initial_state", timeout=15)
    finally:
        await reader.close()


async def verify(run: Run) -> None:
    head = await run.settle()
    log = await committed_log(run.cluster.postgres_url, run.graph_id)
    assert [m["seq"] for m in log] == list(range(1, head + 1)), "the log has a gap"
    alive = [i for i, node in enumerate(run.cluster.nodes) if node.process.poll() is None]
    states = [await fresh_state(run.cluster, i, run.graph_id) for i in alive]
    for i, state in zip(alive, states, strict=True):
        assert state["seq"] == head, f"node {i} serves seq {state['seq']}, the log is at {head}"
        assert state["data"] == states[0]["data"], f"node {i} serves a different state"
    report = check_history(log, [p.model for p in run.peers], states[0]["data"])
    assert report.ok, report.summary() + "\n" + node_logs(run.cluster)
    gaps = {p.client_id: p.model.stats.gaps for p in run.peers if p.model.stats.gaps}
    assert not gaps, f"peers saw gaps in seq: {gaps}"
    assert report.acked > 0 and report.lost == 0 and report.duplicated == 0
    print(
        f"\n{run.graph_id}: {head} records, {report.acked} acked, {report.refused} refused, "
        f"{report.text_ops} text ops, {sum(p.failovers for p in run.peers)} failovers, "
        f"{sum(p.model.stats.resends for p in run.peers)} resends, "
        f"{sum(p.model.stats.duplicate_acks for p in run.peers)} duplicate acks"
    )


def latency_line(label: str, samples: list[float]) -> str:
    if len(samples) < 2:
        return f"{label}: {len(samples)} samples"
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return f"{label}: p50 {cuts[49]:.1f} ms, p99 {cuts[98]:.1f} ms over {len(samples)} deliveries"
