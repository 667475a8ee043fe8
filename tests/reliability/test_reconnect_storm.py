"""A reconnect storm: 1,000 clients lose the server at once (kill -9) and
all come back with jittered exponential backoff; none is refused for good,
none loses anything, and the handshake latency of the storm is reported.

Handshake latency: from opening the socket to the first message
(initial_state or catch_up) applied. Long version: COLLAB_STORM_CLIENTS=5000.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from pathlib import Path

from ..support.live_client import LiveClient, UrlFor, settle, wait_until
from ..support.protocol_model import ModelClient
from ..support.server import start_server
from .figures import env_int, record

GRAPHS = ("storm-a", "storm-b", "storm-c", "storm-d")
ENV = {
    "COLLAB_MAX_CONNECTIONS_PER_USER": "0",
    "COLLAB_MAX_CONNECTIONS_PER_GRAPH": "0",
    "COLLAB_LOG_LEVEL": "error",
}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def test_a_thousand_clients_all_come_back_after_the_server_dies(tmp_path: Path) -> None:
    count = env_int("COLLAB_STORM_CLIENTS", 1000)
    server = start_server(tmp_path, env=ENV)
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    clients: list[LiveClient] = []
    try:

        def url_for(graph: str) -> UrlFor:
            def url(client_id: str, since: int | None) -> str:
                return server.ws_url(graph, client_id=client_id, since=since)

            return url

        urls = {graph: url_for(graph) for graph in GRAPHS}
        members: dict[str, list[LiveClient]] = {graph: [] for graph in GRAPHS}
        clients = []
        for index in range(count):
            graph = GRAPHS[index % len(GRAPHS)]
            client = LiveClient(ModelClient(f"s{index}"), urls[graph])
            members[graph].append(client)
            clients.append(client)
        for start in range(0, count, 50):
            await asyncio.gather(*(c.connect(within=30) for c in clients[start : start + 50]))
        writers = clients[: len(GRAPHS)]
        for writer in writers:
            for index in range(10):
                writer.model.update({"id": f"n{index}", "label": "before"})
            await writer.send_new()
        await wait_until(lambda: all(c.model.settled for c in writers), 30, "first writes")

        server.kill()
        await wait_until(lambda: not any(c.connected for c in clients), 30, "every client dropped")
        for writer in writers:  # written while the server is down: resent on reconnect
            writer.model.update({"id": "offline", "label": writer.model.client_id})
        loop = asyncio.get_running_loop()
        tasks += [
            loop.create_task(c.supervise(stop, random.Random(i), base=0.2, cap=4.0))
            for i, c in enumerate(clients)
        ]
        down_at = time.perf_counter()
        await asyncio.to_thread(server.start)
        up_at = time.perf_counter()

        def all_back() -> bool:
            return all(c.connected and c.model.synced for c in clients)

        await wait_until(all_back, 120, "every client back")
        all_back_after = time.perf_counter() - up_at
        storm = [c.handshakes[-1] for c in clients]
        reports = []
        for graph in GRAPHS:
            report, _ = await settle(members[graph], urls[graph])
            reports.append(report)
        record(
            "reconnect_storm",
            clients=count,
            graphs=len(GRAPHS),
            server_down_seconds=round(up_at - down_at, 2),
            all_back_seconds_after_restart=round(all_back_after, 2),
            connects=sum(c.connects for c in clients),
            handshake_p50_ms=round(statistics.median(storm) * 1000, 1),
            handshake_p99_ms=round(percentile(storm, 0.99) * 1000, 1),
            handshake_max_ms=round(max(storm) * 1000, 1),
            lost=sum(r.lost for r in reports),
            duplicated=sum(r.duplicated for r in reports),
        )
        for report in reports:
            assert report.ok, report.summary()
        assert all(c.connects >= 2 for c in clients)
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(c.drop() for c in clients), return_exceptions=True)
        server.stop()
