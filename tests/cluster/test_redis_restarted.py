"""Redis restarted mid-traffic (the local redis-server, with the project's
own start command; it is brought back even if the test fails).

Proves: while Redis is down, writes still commit (PostgreSQL is the
truth) and every node keeps serving its own clients; when it is back, the
nodes relink, resubscribe and back-fill what pub/sub lost from PostgreSQL,
and every client converges with nothing lost, nothing duplicated and no gap.
"""

from __future__ import annotations

import asyncio
import contextlib

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.cluster.conftest import Cluster, ensure_redis
from tests.cluster.run import Run, verify
from tests.conformance import services

CLIENTS = 12
WRITES_PER_CLIENT = 30


async def stop_redis() -> None:
    client = aioredis.Redis.from_url(services.REDIS_URL)
    with contextlib.suppress(RedisConnectionError):  # it hangs up as it goes
        await client.shutdown(nosave=True)
    await client.aclose()


async def test_nodes_relink_and_back_fill_after_a_redis_restart(nodes: Cluster) -> None:
    if services.redis_address() != ("127.0.0.1", 6379):
        services.unavailable(
            "redis",
            services.REDIS_URL,
            RuntimeError("this test restarts the local redis-server, which it is not"),
        )
    run = Run.spread(nodes, "redis-restart", CLIENTS, seed=11)
    try:
        run.start()
        writing = asyncio.gather(*(peer.write(WRITES_PER_CLIENT) for peer in run.peers))
        total = CLIENTS * WRITES_PER_CLIENT
        await run.ledger.until(lambda: run.ledger.acked >= total // 4, 60)
        await stop_redis()
        assert not services.redis_listening()
        acked_at_stop = run.ledger.acked
        # Writes go on committing without Redis.
        await run.ledger.until(lambda: run.ledger.acked >= acked_at_stop + total // 8, 60)
        await asyncio.get_running_loop().run_in_executor(None, ensure_redis)
        assert services.redis_listening()
        await writing
        await verify(run)
    finally:
        await run.stop()
        if not services.redis_listening():
            await asyncio.get_running_loop().run_in_executor(None, ensure_redis)
