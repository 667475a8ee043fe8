"""kill -9 of one node mid-traffic.

Proves: its clients fail over to the other nodes with `since`, resend their
unacked writes, and nothing acked is lost and nothing is applied twice (the
log read back from PostgreSQL); the other nodes drop the dead node's
clients from presence once its heartbeats stop (presence expiry).
"""

from __future__ import annotations

import asyncio

from tests.cluster.conftest import PRESENCE_TTL, Cluster
from tests.cluster.run import Run, verify
from tests.support.client import TestClient

CLIENTS = 12
WRITES_PER_CLIENT = 24
VICTIM = 1


async def test_clients_of_a_killed_node_fail_over_and_lose_nothing(nodes: Cluster) -> None:
    run = Run.spread(nodes, "killed", CLIENTS, seed=7)
    # A client that stays with the doomed node: its presence must expire elsewhere.
    lurker = await TestClient.connect(nodes.nodes[VICTIM].ws_url("killed", client_id="lurker"))
    await lurker.wait_type("initial_state")
    await lurker.send({"type": "presence", "state": {"watching": True}})
    try:
        run.start()
        elsewhere = [p for p in run.peers if p.node != VICTIM]
        await run.ledger.until(lambda: all("lurker" in p.presence for p in elsewhere), 15)
        writing = asyncio.gather(*(peer.write(WRITES_PER_CLIENT) for peer in run.peers))
        await run.ledger.until(lambda: run.ledger.acked >= CLIENTS * WRITES_PER_CLIENT // 3, 60)
        victims = [p for p in run.peers if p.node == VICTIM]
        nodes.nodes[VICTIM].kill()
        await writing
        await verify(run)
        assert all(p.failovers >= 1 and p.node != VICTIM for p in victims)
        # The dead node's own client disappears from everyone's presence
        # within the TTL (no goodbye was ever sent).
        await run.ledger.until(
            lambda: all("lurker" not in p.presence for p in run.peers), PRESENCE_TTL * 4
        )
    finally:
        await run.stop()
        await lurker.close()
