"""PostgreSQL briefly unreachable from every node (the proxy between them is
cut, then restored; the real server is never touched).

Proves: a commit that cannot reach the store is not acked; the room closes
its sessions with 1013 (a clear "reconnect"), joins are refused with 1013
while the store stays down; clients keep reconnecting and resending; once
the store is back the service resumes by itself, and nothing acked is lost
or duplicated.
"""

from __future__ import annotations

import asyncio

from tests.cluster.conftest import Cluster
from tests.cluster.run import Run, verify

CLIENTS = 12
WRITES_PER_CLIENT = 30


async def test_service_resumes_by_itself_after_a_store_outage(nodes: Cluster) -> None:
    run = Run.spread(nodes, "pg-outage", CLIENTS, seed=23)
    try:
        run.start()
        writing = asyncio.gather(*(peer.write(WRITES_PER_CLIENT) for peer in run.peers))
        total = CLIENTS * WRITES_PER_CLIENT
        await run.ledger.until(lambda: run.ledger.acked >= total // 3, 60)
        nodes.proxy.cut()
        acked_at_cut = run.ledger.acked
        disconnects_at_cut = run.ledger.disconnects
        # Every client is sent away (1013) and fails to get back in for now.
        await run.ledger.until(
            lambda: run.ledger.disconnects >= disconnects_at_cut + 2 * CLIENTS, 30
        )
        acked_during = run.ledger.acked - acked_at_cut
        nodes.proxy.restore()
        await writing
        await verify(run)
        assert all(1013 in p.close_codes for p in run.peers), [p.close_codes for p in run.peers]
        print(f"acked while the store was cut (commits in flight at the cut): {acked_during}")
    finally:
        await run.stop()
