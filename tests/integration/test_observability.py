"""Health, readiness, Prometheus metrics and structured logs of the real server."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import websockets

from tests.support.client import TestClient
from tests.support.rest import annotation_url, metric, new_graph_id, scrape, wait_until
from tests.support.server import ServerProcess, start_server


@pytest.fixture
async def http(server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.http_url, timeout=10.0) as client:
        yield client


async def test_health_and_readiness(http: httpx.AsyncClient) -> None:
    live = await http.get("/healthz")
    assert live.status_code == 200 and live.json() == {"status": "ok"}
    ready = await http.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}


async def test_metrics_move_when_traffic_happens(
    http: httpx.AsyncClient, server: ServerProcess
) -> None:
    graph = new_graph_id()
    before = await scrape(http)
    assert metric(before, "collab_connections") == 0
    assert metric(before, "collab_rooms_live") == 0

    client = await TestClient.connect(server.ws_url(graph, client_id="c1"))
    await client.wait_type("initial_state")
    for index in range(3):
        op_id = await client.update({"id": f"w{index}", "kind": "note"})
        assert (await client.ack(op_id))["type"] == "ack"
    await client.send("not json")
    await client.wait_type("error")
    assert (await http.put(annotation_url(graph, "r1"), json={"kind": "note"})).status_code == 201
    await http.delete(annotation_url(graph, "r1"))
    refused = await http.patch(annotation_url(graph, "r1"), json={"label": "late"})
    assert refused.status_code == 409
    bad_body = await http.put(annotation_url(graph, "r2"), json={"tags": "not a list"})
    assert bad_body.status_code == 400

    during = await scrape(http)
    assert metric(during, "collab_connections") == 1
    assert metric(during, "collab_rooms_live") == 1
    assert metric(during, "collab_joins_total", kind="initial_state") == 1
    # 3 WebSocket writes and 1 REST write
    assert metric(during, "collab_writes_total", type="annotation_update", outcome="accepted") == 4
    assert metric(during, "collab_writes_total", type="annotation_delete", outcome="accepted") == 1
    assert metric(during, "collab_refused_total", type="annotation_update", code="conflict") == 1
    assert metric(during, "collab_refused_total", type="annotation_update", code="bad_message") == 1
    assert metric(during, "collab_refused_total", type="message", code="bad_message") == 1
    assert metric(during, "collab_commit_batch_size_sum") == 5  # records committed
    assert metric(during, "collab_commit_seconds_count") >= 1  # group commit may batch writes
    assert metric(during, "collab_fanout_seconds_count") == 5  # one per accepted write
    assert metric(during, "collab_send_queue_depth_max") >= 0
    assert ("collab_send_queue_messages", frozenset()) in during

    # A reconnect within the retained log is served a catch-up.
    await client.close()
    again = await TestClient.connect(server.ws_url(graph, client_id="c1", since=2))
    catch_up = await again.wait_type("catch_up")
    assert [op["seq"] for op in catch_up["ops"]] == [3, 4, 5]
    await again.close()

    async def settled() -> dict[Any, float] | None:
        page = await scrape(http)
        return page if metric(page, "collab_connections") == 0 else None

    after = await wait_until(settled, what="the sessions to be gone")
    assert metric(after, "collab_joins_total", kind="catch_up") == 1
    assert metric(after, "collab_joins_total", kind="initial_state") == 1


def _tiny_receive_buffer_socket(url: str) -> socket.socket:
    """A connected socket whose receive window stays tiny: a reader that falls behind fast."""
    parts = urlsplit(url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((parts.hostname, parts.port))
    sock.setblocking(False)
    return sock


async def test_a_slow_reader_is_closed_1013_counted_and_logged(tmp_path: Path) -> None:
    server = start_server(tmp_path, env={"COLLAB_SEND_QUEUE_MAX": "64", "COLLAB_LOG_LEVEL": "info"})
    graph = new_graph_id()
    try:
        async with httpx.AsyncClient(base_url=server.http_url, timeout=10.0) as http:
            url = server.ws_url(graph, client_id="slow-tab")
            # It reads its first message, then nothing more (a frozen tab).
            slow = await websockets.connect(
                url, sock=_tiny_receive_buffer_socket(url), max_queue=1, max_size=None
            )
            assert json.loads(await slow.recv())["type"] == "initial_state"
            writer = await TestClient.connect(server.ws_url(graph, client_id="writer", batch=1))
            await writer.wait_type("initial_state")

            big = "x" * 30_000
            rounds = 0

            async def slow_reader_closed() -> float | None:
                nonlocal rounds
                rounds += 1
                frame = [
                    {
                        "type": "annotation_update",
                        "op_id": f"{rounds}-{index}",
                        "payload": {"id": f"a{index}", "content": big, "round": rounds},
                    }
                    for index in range(16)
                ]
                await writer.send(frame)
                await writer.ack(f"{rounds}-15")
                closes = metric(await scrape(http), "collab_slow_reader_closes_total")
                return closes if closes > 0 else None

            # Each round pushes ~0.5 MB at the frozen reader until its queue overflows.
            assert await wait_until(slow_reader_closed, within=60.0, what="a 1013") == 1
            # Everything the writer sent was still committed and acked.
            listing = (await http.get(annotation_url(graph))).json()
            assert listing["seq"] == rounds * 16
            await writer.close()

            # The frozen tab, once it reads again, finds the close code 1013.
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(slow.recv(), 10.0)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
    finally:
        server.stop()
    assert "event=slow_reader_close client=slow-tab code=1013" in server.log()


async def test_logs_are_one_line_per_event_escaped_and_never_hold_bodies(tmp_path: Path) -> None:
    server = start_server(tmp_path, env={"COLLAB_LOG_LEVEL": "info"})
    graph = new_graph_id()
    secret = "TOP-SECRET-CONTENT-7d1"
    try:
        forged = "evil\nevent=forged admin=true"
        client = await TestClient.connect(server.ws_url(graph, client_id=forged, user="mallory"))
        await client.wait_type("initial_state")
        await client.update({"id": "a1", "content": secret})
        await client.wait_type("ack")
        await client.send(
            json.dumps({"type": "annotation_update", "payload": {"id": 5, "x": secret}})
        )
        await client.wait_type("error")
        await client.close()
        async with httpx.AsyncClient(base_url=server.http_url, timeout=10.0) as http:
            await http.put(annotation_url(graph, "a2"), json={"content": secret, "tags": secret})

        async def disconnect_logged() -> str | None:
            log = server.log()
            return log if "event=disconnect" in log else None

        log = await wait_until(disconnect_logged, what="the disconnect line")
    finally:
        server.stop()
    events = [line for line in log.splitlines() if "event=" in line]
    assert any(
        "event=connect" in line
        and 'client="evil\\nevent=forged admin=true"' in line
        and "user=mallory" in line
        for line in events
    )
    assert any(line.split("event=", 1)[1].startswith("refused client=") for line in events)
    assert any("event=http_error method=PUT" in line and "status=400" in line for line in events)
    assert not any(line.startswith("event=forged") for line in log.splitlines())
    assert secret not in log
