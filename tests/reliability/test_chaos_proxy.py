"""Clients reach the real server through `support/chaos_proxy.py`: latency,
stalls, resets and frames sliced into tiny segments. Nothing is lost or
applied twice, and once the network calms down every replica converges.

Eight clients write continuously (every kind of write, OT text edits among
them) and reconnect with jittered backoff whenever the proxy resets them;
halfway, every connection is reset at once (an outage of the link). Long
version: COLLAB_CHAOS_ACKS=20000.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import asdict
from pathlib import Path

from ..support.chaos_proxy import ChaosProxy, ChaosSettings
from ..support.live_client import LiveClient, keep_writing, settle, wait_until
from ..support.protocol_model import ModelClient
from ..support.server import start_server
from ..support.workload import Workload
from .figures import env_int, record

GRAPH = "chaos"
CLIENTS = 8
ENV = {"COLLAB_MAX_CONNECTIONS_PER_USER": "0", "COLLAB_MAX_CONNECTIONS_PER_GRAPH": "0"}
CHAOS = ChaosSettings(
    latency=(0.0, 0.01),
    slice_max=7,
    slice_chance=0.4,
    stall_chance=0.01,
    stall=(0.05, 0.3),
    reset_chance=0.004,
)


async def test_writes_survive_latency_stalls_resets_and_sliced_frames(tmp_path: Path) -> None:
    target = env_int("COLLAB_CHAOS_ACKS", 400)
    seed = env_int("COLLAB_CHAOS_SEED", 3)
    server = start_server(tmp_path, env=ENV)
    proxy = await ChaosProxy(server.port, CHAOS, seed=seed).start()
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    try:

        def url_for(client_id: str, since: int | None) -> str:
            direct = server.ws_url(GRAPH, client_id=client_id, since=since, user=client_id)
            return direct.replace(f":{server.port}/", f":{proxy.port}/")

        rng = random.Random(seed)
        workload = Workload(rng)
        clients = [LiveClient(ModelClient(f"x{i}", user=f"x{i}"), url_for) for i in range(CLIENTS)]

        def acked() -> int:
            return sum(len(c.model.acked) for c in clients)

        loop = asyncio.get_running_loop()
        tasks += [
            loop.create_task(c.supervise(stop, random.Random(i))) for i, c in enumerate(clients)
        ]
        tasks += [loop.create_task(keep_writing(c, workload, stop)) for c in clients]
        await wait_until(lambda: acked() >= target // 2, 120, "acks under chaos")
        proxy.reset_all()
        await wait_until(lambda: acked() >= target, 120, "acks after the outage")
        proxy.calm()
        stop.set()
        await asyncio.gather(*tasks)
        report, agreed_after = await settle(clients, url_for)
        models = [c.model for c in clients]
        record(
            "chaos_proxy",
            clients=CLIENTS,
            settings=asdict(CHAOS),
            injected=asdict(proxy.counters),
            connects=sum(c.connects for c in clients),
            writes=sum(len(m.sent) for m in models),
            acked=report.acked,
            refused=report.refused,
            records=report.records,
            resends=sum(m.stats.resends for m in models),
            duplicate_acks=sum(m.stats.duplicate_acks for m in models),
            lost=report.lost,
            duplicated=report.duplicated,
            agreed_seconds_after_last_write=round(agreed_after, 3),
        )
        assert report.ok, report.summary()
        assert report.lost == 0 and report.duplicated == 0
        counters = proxy.counters
        assert (
            counters.resets
            and counters.stalls
            and counters.sliced_chunks
            and counters.delayed_chunks
        )
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await proxy.close()
        server.stop()
