"""20 clients through 1,000 random disconnect/reconnect cycles against the
real server process: 0 writes lost, 0 duplicated, all replicas agree soon
after the last write.

Each cycle: a few writes of every kind (updates, tag deltas, deletes,
recreates, OT text edits) by connected clients, then one client's
connection is reset (TCP abort: unsent frames and acks in flight are lost)
or closed, and the disconnected clients reconnect, with `since` (catch_up)
or, one time in ten, without (initial_state), resending their pending
writes with the same op_ids. Long version: COLLAB_CHURN_CYCLES=20000.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from pathlib import Path

from ..support.history_check import HistoryReport
from ..support.live_client import LiveClient, settle
from ..support.protocol_model import ModelClient
from ..support.server import ServerProcess, start_server
from ..support.workload import Workload
from .breakage import broken_env
from .figures import env_int, record

GRAPH = "churn"
CLIENTS = 20
ENV = {"COLLAB_MAX_CONNECTIONS_PER_USER": "0", "COLLAB_MAX_CONNECTIONS_PER_GRAPH": "0"}


@dataclass
class Churn:
    report: HistoryReport
    agreed_after: float
    figures: dict[str, object]


async def churn(
    server: ServerProcess, cycles: int, seed: int, agree_within: float | None = 2.0
) -> Churn:
    rng = random.Random(seed)

    def url_for(client_id: str, since: int | None) -> str:
        return server.ws_url(GRAPH, client_id=client_id, since=since, user=client_id)

    workload = Workload(rng)
    clients = [LiveClient(ModelClient(f"c{i}", user=f"c{i}"), url_for) for i in range(CLIENTS)]
    try:
        for client in clients:
            await client.connect()
        aborts = closes = writes = edits = 0
        for _ in range(cycles):
            for _ in range(rng.randint(1, 3)):
                writer = rng.choice(clients)
                if rng.random() < 0.35 and workload.edit(writer.model):
                    edits += 1
                else:
                    workload.write(writer.model)
                    writes += 1
                await writer.send_new()
            victim = rng.choice(clients)
            if victim.connected:
                abort = rng.random() < 0.7
                await victim.drop(abort=abort)
                aborts, closes = aborts + abort, closes + (not abort)
            for client in clients:
                if not client.connected and rng.random() < 0.7:
                    await client.ensure_connected(full=rng.random() < 0.1)
        # Every replica must agree within 2 s of the last write's ack.
        report, agreed_after = await settle(clients, url_for, agree_within=agree_within)
    finally:
        await asyncio.gather(*(client.drop() for client in clients), return_exceptions=True)
    models = [client.model for client in clients]
    figures = {
        "clients": CLIENTS,
        "cycles": cycles,
        "aborts": aborts,
        "clean_closes": closes,
        "writes": writes,
        "text_edits": edits,
        "connects": sum(client.connects for client in clients),
        "catch_ups": sum(m.stats.catch_ups for m in models),
        "initial_states": sum(m.stats.initial_states for m in models),
        "resends": sum(m.stats.resends for m in models),
        "duplicate_acks": sum(m.stats.duplicate_acks for m in models),
        "records": report.records,
        "acked": report.acked,
        "refused": report.refused,
        "lost": report.lost,
        "duplicated": report.duplicated,
        "agreed_seconds_after_last_write": round(agreed_after, 3),
    }
    return Churn(report, agreed_after, figures)


async def test_twenty_clients_through_random_reconnect_cycles_lose_nothing(tmp_path: Path) -> None:
    server = start_server(tmp_path, env=ENV)
    try:
        result = await churn(
            server, env_int("COLLAB_CHURN_CYCLES", 1000), env_int("COLLAB_CHURN_SEED", 9)
        )
        record("reconnect_churn", **result.figures)
        report = result.report
        assert report.ok, report.summary()
        assert report.lost == 0 and report.duplicated == 0
        assert result.figures["aborts"] and result.figures["duplicate_acks"]
    finally:
        server.stop()


async def test_without_dedupe_the_churn_test_finds_writes_applied_twice(tmp_path: Path) -> None:
    server = start_server(tmp_path, env={**ENV, **broken_env("dedupe")})
    try:
        result = await churn(server, 100, seed=9, agree_within=None)
        assert result.report.duplicated > 0, result.figures
    finally:
        server.stop()
