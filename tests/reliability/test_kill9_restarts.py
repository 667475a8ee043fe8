"""`kill -9` of the server under continuous writes, again and again: every
acked write survives, unacked writes resent after the restart are applied
at most once.

Six clients write continuously (every kind of write, OT text edits among
them, up to twelve unacked at a time); between two kills each client gets a
few acks, then the server process is SIGKILLed wherever it is (mid-commit,
mid-fsync, mid-send) and started again on the same SQLite file. Clients
reconnect with jittered backoff and resend their pending writes with the
same op_ids. At the end the whole log is checked: every ack a client saw is
in it, once, at its seq; nothing appears twice.

CI runs 20 restarts (a restart costs a Python start-up, ~1 s on an idle
2-core machine); the issue's 50 and more: COLLAB_KILL_RESTARTS=50.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

from ..support.live_client import LiveClient, keep_writing, settle, wait_until
from ..support.protocol_model import ModelClient
from ..support.server import start_server
from ..support.workload import Workload
from .figures import env_int, record

GRAPH = "crashy"
CLIENTS = 6
ENV = {"COLLAB_MAX_CONNECTIONS_PER_USER": "0", "COLLAB_MAX_CONNECTIONS_PER_GRAPH": "0"}


async def test_acked_writes_survive_repeated_kill_9(tmp_path: Path) -> None:
    restarts = env_int("COLLAB_KILL_RESTARTS", 20)
    rng = random.Random(env_int("COLLAB_KILL_SEED", 5))
    server = start_server(tmp_path, env=ENV)
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    try:

        def url_for(client_id: str, since: int | None) -> str:
            return server.ws_url(GRAPH, client_id=client_id, since=since, user=client_id)

        workload = Workload(rng)
        clients = [LiveClient(ModelClient(f"k{i}", user=f"k{i}"), url_for) for i in range(CLIENTS)]
        for client in clients:
            await client.connect()

        def acked() -> int:
            return sum(len(c.model.acked) for c in clients)

        loop = asyncio.get_running_loop()
        tasks += [
            loop.create_task(c.supervise(stop, random.Random(i))) for i, c in enumerate(clients)
        ]
        tasks += [loop.create_task(keep_writing(c, workload, stop, unacked=12)) for c in clients]
        unacked_at_kills = 0
        for _ in range(restarts):
            wanted = acked() + rng.randint(1, 3 * CLIENTS)
            await wait_until(lambda wanted=wanted: acked() >= wanted, 60, "acks")
            server.kill()
            unacked_at_kills += sum(len(c.model.pending) for c in clients)
            await asyncio.to_thread(server.start)
        stop.set()
        await asyncio.gather(*tasks)
        report, _ = await settle(clients, url_for)
        models = [c.model for c in clients]
        record(
            "kill9_restarts",
            restarts=restarts,
            clients=CLIENTS,
            unacked_writes_at_kills=unacked_at_kills,
            writes=sum(len(m.sent) for m in models),
            acked=report.acked,
            refused=report.refused,
            records=report.records,
            resends=sum(m.stats.resends for m in models),
            duplicate_acks=sum(m.stats.duplicate_acks for m in models),
            lost=report.lost,
            duplicated=report.duplicated,
        )
        assert report.ok, report.summary()
        assert report.lost == 0 and report.duplicated == 0
        assert unacked_at_kills > 0, "no kill ever caught a write in flight"
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        server.stop()
