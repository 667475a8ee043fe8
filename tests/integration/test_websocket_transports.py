"""The two ways /ws/collaborate is served: the fast path on the socket
(`websocket/native.py`, what `intelgraph-collab serve` uses) and the ASGI
route (`websocket/collab_ws.py`, for other ASGI servers). Same admission,
same protocol, real sockets; plus what only the fast path has to get right
itself (UTF-8, other WebSocket paths, writes batched per loop turn)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.frames import Frame, Opcode

from tests.support.client import TestClient
from tests.support.inprocess_server import InProcessServer
from tests.support.security import handshake_status


@pytest.fixture(params=["native", "asgi"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[InProcessServer]:
    running = InProcessServer(tmp_path / "collab.db", asgi_websocket=request.param == "asgi")
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def native(tmp_path: Path) -> Iterator[InProcessServer]:
    running = InProcessServer(tmp_path / "collab.db").start()
    try:
        yield running
    finally:
        running.stop()


async def test_both_transports_speak_the_protocol(server: InProcessServer) -> None:
    reader = await TestClient.connect(server.ws_url("g-both", client_id="reader", batch=1))
    writer = await TestClient.connect(server.ws_url("g-both", client_id="writer"))
    try:
        assert (await reader.wait_type("initial_state"))["seq"] == 0
        await writer.wait_type("initial_state")
        op_ids = [
            await writer.update({"id": f"n{i}", "target_type": "ENTITY", "tags": ["x"]})
            for i in range(5)
        ]
        acks = [await writer.ack(op_id) for op_id in op_ids]
        assert [ack["type"] for ack in acks] == ["ack"] * 5
        assert [ack["seq"] for ack in acks] == [1, 2, 3, 4, 5]
        seen = [await reader.wait_type("annotation_update") for _ in range(5)]
        assert [(m["seq"], m["prev"], m["payload"]["id"]) for m in seen] == [
            (i + 1, i, f"n{i}") for i in range(5)
        ]
    finally:
        await reader.close()
        await writer.close()


async def test_both_transports_refuse_a_foreign_origin_before_the_handshake(
    server: InProcessServer,
) -> None:
    url = server.ws_url("g-origin")
    assert await handshake_status(url, origin="https://evil.example") == 403
    assert await handshake_status(server.ws_url("bad$id")) == 403
    assert await handshake_status(url) is None


async def test_both_transports_close_bad_parameters_after_the_handshake(
    server: InProcessServer,
) -> None:
    client = await TestClient.connect(server.ws_url("g-params", since="minus-one"))
    assert await client.wait_closed() == 1008


async def test_invalid_utf8_in_a_text_frame_is_closed_1007(native: InProcessServer) -> None:
    client = await TestClient.connect(native.ws_url("g-utf8"))
    await client.wait_type("initial_state")
    client.ws.protocol.send_frame(Frame(Opcode.TEXT, b'{"type": "ping", "x": "\xff"}'))
    client.ws.send_data()
    assert await client.wait_closed() == 1007
    # The server goes on serving others.
    other = await TestClient.connect(native.ws_url("g-utf8"))
    try:
        assert (await other.wait_type("initial_state"))["seq"] == 0
    finally:
        await other.close()


async def test_other_websocket_paths_fall_through_to_the_app(native: InProcessServer) -> None:
    # The app has no WebSocket route there: Starlette refuses it (403), as it
    # would without the fast path; the collaboration path keeps working.
    assert await handshake_status(f"ws://127.0.0.1:{native.port}/ws/elsewhere") == 403
    client = await TestClient.connect(native.ws_url("g-fall"))
    try:
        await client.wait_type("initial_state")
    finally:
        await client.close()


async def test_one_commit_reaches_a_batching_client_in_one_frame(native: InProcessServer) -> None:
    reader = await TestClient.connect(native.ws_url("g-batch", client_id="reader", batch=1))
    writer = await TestClient.connect(native.ws_url("g-batch", client_id="writer"))
    try:
        await reader.wait_type("initial_state")
        await writer.wait_type("initial_state")
        frames_before = reader.frames
        batch = [
            {
                "type": "annotation_update",
                "op_id": f"b{i}",
                "payload": {"id": f"n{i}", "target_type": "ENTITY", "tags": [f"t{i}"]},
            }
            for i in range(8)
        ]
        await writer.send(batch)  # one frame: one commit, one write per client
        for i in range(8):
            assert (await reader.wait_type("annotation_update"))["payload"]["id"] == f"n{i}"
        assert reader.frames - frames_before == 1
    finally:
        await reader.close()
        await writer.close()
