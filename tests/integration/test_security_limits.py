"""Origin checks and abuse limits through the real server: foreign Origins
refused before accept, message and frame size, the per-connection rate
limit, connections per user and per graph, no permessage-deflate."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import websockets

from tests.support.client import TestClient
from tests.support.security import (
    connect,
    handshake_status,
    joined,
    refused_close,
    start_secure_server,
    token,
)
from tests.support.server import ServerProcess

MAX_FRAME = 256 * 1024


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Default limits, except a small transport frame limit and few
    connections per user and per graph, to reach them cheaply."""
    process = start_secure_server(
        tmp_path_factory.mktemp("limits"),
        env={
            "COLLAB_WS_MAX_FRAME_BYTES": str(MAX_FRAME),
            "COLLAB_MAX_FRAME_BYTES": str(MAX_FRAME // 2),
            "COLLAB_MAX_CONNECTIONS_PER_USER": "3",
            "COLLAB_MAX_CONNECTIONS_PER_GRAPH": "4",
        },
    )
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def graph() -> str:
    return f"g-{uuid.uuid4().hex[:10]}"


# -- Origin -------------------------------------------------------------------


async def test_foreign_origin_is_refused_before_accept(secure: ServerProcess, graph: str) -> None:
    headers = {"Authorization": f"Bearer {token('alice')}"}
    url = secure.ws_url(graph)
    assert (
        await handshake_status(url, origin="https://evil.example", additional_headers=headers)
        == 403
    )
    assert await handshake_status(url, origin="null", additional_headers=headers) == 403
    # Another port on the same host is another origin.
    assert (
        await handshake_status(
            url, origin=f"http://127.0.0.1:{secure.port + 1}", additional_headers=headers
        )
        == 403
    )


async def test_own_origin_and_no_origin_are_accepted(secure: ServerProcess, graph: str) -> None:
    headers = {"Authorization": f"Bearer {token('alice')}"}
    url = secure.ws_url(graph)
    for origin in (f"http://127.0.0.1:{secure.port}", f"http://localhost:{secure.port}"):
        assert await handshake_status(url, origin=origin, additional_headers=headers) is None
    assert await handshake_status(url, additional_headers=headers) is None  # not a browser
    # No Origin is no pass: the token is still required.
    code, _ = await refused_close(secure, graph)
    assert code == 4401


async def test_configured_origins_replace_the_default(tmp_path: Path) -> None:
    server = start_secure_server(
        tmp_path, args=["--allowed-origins", "https://app.example, http://localhost:5173"]
    )
    try:
        headers = {"Authorization": f"Bearer {token('alice')}"}
        url = server.ws_url("g-origins")
        for origin in ("https://app.example", "http://localhost:5173"):
            assert await handshake_status(url, origin=origin, additional_headers=headers) is None
        for origin in ("https://evil.example", f"http://127.0.0.1:{server.port}"):
            assert await handshake_status(url, origin=origin, additional_headers=headers) == 403
    finally:
        server.stop()


# -- sizes --------------------------------------------------------------------


async def test_oversized_message_is_refused_and_the_session_goes_on(
    secure: ServerProcess, graph: str
) -> None:
    client, first = await joined(secure, graph, token("alice"))
    watcher, _ = await joined(secure, graph, token("wat", role="viewer"))
    big = {
        "type": "annotation_update",
        "op_id": "big",
        "payload": {"id": "a1", "content": "x" * (65 * 1024)},
    }
    await client.send(big)
    reply = await client.ack("big")
    assert (reply["type"], reply["code"]) == ("error", "too_large")
    # Still connected, and nothing was written.
    op_id = await client.update({"id": "small"})
    ack = await client.ack(op_id)
    assert ack["seq"] == first["seq"] + 1
    assert (await watcher.wait_type("annotation_update"))["payload"]["id"] == "small"
    for each in (client, watcher):
        await each.close()


async def test_frame_over_the_transport_limit_is_closed_1009(
    secure: ServerProcess, graph: str
) -> None:
    client, _ = await joined(secure, graph, token("alice"))
    await client.send("[" + ",".join(['{"type":"ping"}'] * (MAX_FRAME // 15)) + "]")
    assert await client.wait_closed() == 1009


async def test_permessage_deflate_is_off(secure: ServerProcess, graph: str) -> None:
    # The test client offers permessage-deflate (websockets does by default).
    client = await connect(secure, graph, token("alice"))
    assert "Sec-WebSocket-Extensions" not in client.ws.response.headers
    await client.close()


# -- rate ---------------------------------------------------------------------


async def test_flooder_is_limited_then_closed_while_others_flow_on(
    secure: ServerProcess, graph: str
) -> None:
    flooder, _ = await joined(secure, graph, token("flood"))
    writer, _ = await joined(secure, graph, token("alice"))
    watcher, _ = await joined(secure, graph, token("wat", role="viewer"))

    batch = [{"type": "ping"}] * 500
    for _ in range(6):  # 3,000 messages at once: past the default burst of 2,000
        await flooder.send(batch)
    limited = await flooder.wait_for(lambda m: m.get("code") == "rate_limited")
    assert limited["type"] == "error"

    # Meanwhile another client's writes are acked and broadcast.
    op_id = await writer.update({"id": "still-flowing"})
    assert (await writer.ack(op_id))["type"] == "ack"
    assert (await watcher.wait_type("annotation_update"))["payload"]["id"] == "still-flowing"

    # The flood goes on: 1008. How many frames that takes depends on timing:
    # a frame whose first message finds the bucket empty is refused whole,
    # undecoded, for one refusal; one that finds a token refills for it is
    # decoded and each further message is refused. So: flood until closed.
    sent = 0
    while flooder.close_code is None and sent < 5000:
        try:
            await flooder.send(batch)
        except websockets.ConnectionClosed:  # closed under our feet: that is the point
            break
        sent += 1
    code = await flooder.wait_closed()
    assert code == 1008
    pongs = sum(1 for m in flooder.received if m["type"] == "pong")
    assert 2000 <= pongs < 3000 + sent * 500
    # The writer's session is untouched by its neighbour's close.
    op_id = await writer.update({"id": "after-the-flood"})
    assert (await writer.ack(op_id))["type"] == "ack"
    for each in (writer, watcher):
        await each.close()


# -- connections ----------------------------------------------------------------


async def test_connections_per_user_are_limited(secure: ServerProcess) -> None:
    bearer = token("many-tabs")
    tabs = [(await joined(secure, f"g-tabs-{n}", bearer))[0] for n in range(3)]
    code, received = await refused_close(secure, "g-tabs-4", bearer)
    assert (code, received) == (1008, [])
    # Another user is not affected; closing a tab frees a place.
    other, _ = await joined(secure, "g-tabs-4", token("someone-else"))
    await tabs[0].close()
    again = await wait_for_place(secure, "g-tabs-4", bearer)
    for each in [*tabs[1:], other, again]:
        await each.close()


async def test_connections_per_graph_are_limited(secure: ServerProcess, graph: str) -> None:
    clients = [(await joined(secure, graph, token(f"user-{n}")))[0] for n in range(4)]
    code, received = await refused_close(secure, graph, token("user-5"))
    assert (code, received) == (1013, [])
    for each in clients:
        await each.close()


async def wait_for_place(server: ServerProcess, graph: str, bearer: str) -> TestClient:
    """Connect once the server has counted a closed tab out (it does so just
    after the close handshake, so a first try may still find no place)."""
    for _ in range(50):
        client = await connect(server, graph, bearer)
        first = asyncio.ensure_future(client.inbox.get())
        closed = asyncio.ensure_future(client.wait_closed(timeout=10.0))
        done, _ = await asyncio.wait({first, closed}, return_when=asyncio.FIRST_COMPLETED)
        if first in done:
            closed.cancel()
            return client
        first.cancel()
        assert closed.result() == 1008
    raise AssertionError("no place freed after a tab closed")
