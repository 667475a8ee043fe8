"""Three nodes, 30 clients spread across them, two graphs, every kind of write at once.

Proves: any node accepts writes and `seq` stays contiguous with no gap and
no duplicate (the log read back from PostgreSQL); every client sees every
write in seq order (no gap, no reorder) and ends with the state of the log,
which every node also serves a fresh reader; presence crosses nodes.
Cross-node delivery latency is printed, not asserted.
"""

from __future__ import annotations

import asyncio

from tests.cluster.conftest import Cluster
from tests.cluster.live_peer import LivePeer
from tests.cluster.run import Run, latency_line, verify

WRITES_PER_CLIENT = 20


async def test_thirty_clients_on_three_nodes_converge(nodes: Cluster) -> None:
    runs = [Run.spread(nodes, f"traffic-{name}", 15, seed) for seed, name in enumerate("ab")]
    try:
        for run in runs:
            run.start()
        await asyncio.gather(*(peer.write(WRITES_PER_CLIENT) for run in runs for peer in run.peers))
        for run in runs:
            await verify(run)
        await presence_crossed_nodes(runs[0].peers, runs[0])
    finally:
        for run in runs:
            await run.stop()
    for run in runs:
        cross, same = run.ledger.cross_node_ms, run.ledger.same_node_ms
        print(latency_line(f"{run.graph_id} cross-node delivery", cross))
        print(latency_line(f"{run.graph_id} same-node delivery", same))
        assert cross, "no write was delivered across nodes"


async def presence_crossed_nodes(peers: list[LivePeer], run: Run) -> None:
    """Every peer is told about every other peer's presence, whichever node it is on."""
    everyone = {peer.client_id for peer in peers}
    await run.ledger.until(
        lambda: all(set(p.presence) >= everyone - {p.client_id} for p in peers), 15
    )
    on_other_nodes = [(peer, other) for peer in peers for other in peers if peer.node != other.node]
    assert on_other_nodes
    assert all(other.client_id in peer.presence for peer, other in on_other_nodes)
