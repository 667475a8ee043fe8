"""One stalled reader among 50 clients: the others are not slowed down, the
stalled one is dropped with 1013 once its send queue overflows, and when it
reconnects with `since` it catches up without losing anything.

The stalled client stops reading (a small socket receive buffer, and the
client library stops pulling frames), so the server's socket buffer and
then the session's bounded queue (COLLAB_SEND_QUEUE_MAX=256 here) fill up;
meanwhile ten writers keep writing 4 KB updates (one in flight each)
and every other client must see all of them. Long version: COLLAB_SLOW_WRITES=2000 (per writer).
"""

from __future__ import annotations

import asyncio
import random
import re
import socket
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from ..support.history_check import HistoryReport
from ..support.live_client import LiveClient, settle, wait_until
from ..support.protocol_model import ModelClient
from ..support.server import ServerProcess, start_server
from .breakage import broken_env
from .figures import env_int, record

GRAPH = "slow"
CLIENTS = 50
WRITERS = 10
ENV = {
    "COLLAB_SEND_QUEUE_MAX": "256",
    "COLLAB_MAX_CONNECTIONS_PER_USER": "0",
    "COLLAB_MAX_CONNECTIONS_PER_GRAPH": "0",
    "COLLAB_RATE_LIMIT": "0",
}


@dataclass
class Outcome:
    others_caught_up_seconds: float
    victim_close_codes: list[int | None]
    report: HistoryReport
    writes: int


def slow_reader_closes(server: ServerProcess) -> float:
    with urllib.request.urlopen(f"{server.http_url}/metrics", timeout=10) as response:
        text = response.read().decode()
    match = re.search(r"^collab_slow_reader_closes_total (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def dropped_as_slow(server: ServerProcess, within: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        if await asyncio.to_thread(slow_reader_closes, server) >= 1:
            return True
        await asyncio.sleep(0.1)  # polling another process's counter: no event to wait on
    return False


def small_buffer_socket(port: int) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    return sock


async def scenario(
    server: ServerProcess, writes_per_writer: int, drop_within: float = 30
) -> Outcome:
    def url_for(client_id: str, since: int | None) -> str:
        return server.ws_url(GRAPH, client_id=client_id, since=since, user=client_id)

    clients = [LiveClient(ModelClient(f"r{i}", user=f"r{i}"), url_for) for i in range(CLIENTS)]
    victim, others = clients[0], clients[1:]
    try:
        await victim.connect(sock=small_buffer_socket(server.port), max_queue=1)
        await wait_until(lambda: victim.model.synced, 10, "the victim's first message")
        victim.reading.clear()  # the stall: it reads nothing more
        for client in others:
            await client.connect()
        rng = random.Random(1)
        label = "y" * 4096
        started = time.perf_counter()
        last: dict[LiveClient, str] = {}

        async def write_paced(writer: LiveClient) -> None:
            # One write in flight per writer: the live readers keep up.
            for round_ in range(writes_per_writer):
                op_id = writer.model.update(
                    {"id": f"w{rng.randrange(20)}", "label": f"{round_}{label}"}
                )
                last[writer] = op_id
                await writer.send_new()
                await wait_until(lambda op_id=op_id: op_id in writer.model.acked, 60, "an ack")

        await asyncio.gather(*(write_paced(writer) for writer in others[:WRITERS]))
        head = max(w.model.acked[op_id] for w, op_id in last.items())
        await wait_until(
            lambda: all(c.model.seq >= head for c in others), 60, "the others caught up"
        )
        caught_up = time.perf_counter() - started
        assert await dropped_as_slow(server, drop_within), (
            "the stalled reader was never dropped (1013)"
        )
        victim.reading.set()
        await wait_until(lambda: not victim.connected, 30, "the victim to see its close")
        report, _ = await settle(clients, url_for)
        return Outcome(caught_up, list(victim.close_codes), report, WRITERS * writes_per_writer)
    finally:
        victim.reading.set()
        await asyncio.gather(*(c.drop() for c in clients), return_exceptions=True)


async def test_a_stalled_reader_is_dropped_without_slowing_the_others(tmp_path: Path) -> None:
    writes = env_int("COLLAB_SLOW_WRITES", 100)
    server = start_server(tmp_path, env=ENV)
    try:
        outcome = await scenario(server, writes)
        record(
            "slow_reader",
            clients=CLIENTS,
            writers=WRITERS,
            writes=outcome.writes,
            update_bytes=4096,
            send_queue_max=256,
            others_caught_up_seconds=round(outcome.others_caught_up_seconds, 3),
            victim_close_codes=outcome.victim_close_codes,
            lost=outcome.report.lost,
            duplicated=outcome.report.duplicated,
        )
        assert 1013 in outcome.victim_close_codes
        assert outcome.report.ok, outcome.report.summary()
    finally:
        server.stop()


async def test_without_the_queue_bound_the_stalled_reader_is_never_dropped(tmp_path: Path) -> None:
    server = start_server(tmp_path, env={**ENV, **broken_env("slow_reader")})
    try:
        with pytest.raises(AssertionError, match="never dropped"):
            await scenario(server, env_int("COLLAB_SLOW_WRITES", 100), drop_within=3)
    finally:
        server.stop()
