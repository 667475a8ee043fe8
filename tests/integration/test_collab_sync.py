"""The real server (subprocess, real SQLite file) and real WebSocket clients."""

from __future__ import annotations

import asyncio
import socket
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.support.client import Replica, TestClient
from tests.support.malformed import MALFORMED
from tests.support.server import ServerProcess


async def connect(server: ServerProcess, graph: str = "g1", **query: Any) -> TestClient:
    return await TestClient.connect(server.ws_url(graph, **query))


async def test_two_clients_see_each_others_updates_with_contiguous_seq(
    server: ServerProcess,
) -> None:
    alice = await connect(server, client_id="a", user="alice")
    bob = await connect(server, client_id="b", user="bob")
    assert (await alice.recv())["type"] == "initial_state"
    assert (await bob.recv()) == {"type": "initial_state", "seq": 0, "data": {}}
    op = await alice.update({"id": "a1", "color": "red"})
    ack = await alice.ack(op)
    seen = await bob.wait_type("annotation_update")
    assert ack == {"type": "ack", "op_id": op, "seq": 1, "ts": seen["ts"]}
    assert seen["seq"] == 1 and seen["prev"] == 0
    assert (seen["op_id"], seen["client_id"], seen["author"]) == (op, "a", "alice")
    assert abs(seen["ts"] - time.time() * 1000) < 60_000
    assert seen["payload"]["color"] == "red" and seen["payload"]["created_by"] == "alice"
    op = await bob.update({"id": "a1", "label": "suspect"})
    assert (await bob.ack(op))["seq"] == 2
    back = await alice.wait_type("annotation_update")
    assert (back["seq"], back["prev"], back["author"]) == (2, 1, "bob")
    await alice.close()
    await bob.close()


async def test_ten_clients_each_see_every_write_once_in_seq_order(server: ServerProcess) -> None:
    clients = [await connect(server, client_id=f"c{i}", batch=1) for i in range(12)]
    for client in clients:
        await client.wait_type("initial_state")
    per_client = 15
    sent: dict[int, list[str]] = {}
    for round_ in range(per_client):
        for index, client in enumerate(clients):
            sent.setdefault(index, []).append(
                await client.update({"id": f"n{index % 4}", "label": f"{index}-{round_}"})
            )
    total = per_client * len(clients)
    replicas = []
    for index, client in enumerate(clients):
        seqs: list[int] = []
        replica = Replica()
        own = set(sent[index])
        while len(seqs) < total:
            message = await client.recv(timeout=10)
            if message["type"] == "ack":
                assert message["op_id"] in own
                seqs.append(message["seq"])
                replica.seq = message["seq"]  # own write: the ack stands in for it
            elif message["type"] == "annotation_update":
                assert message["prev"] == seqs[-1] if seqs else message["prev"] == 0
                seqs.append(message["seq"])
                replica.apply(message)
        assert seqs == list(range(1, total + 1)), f"client {index} saw {seqs[:20]}..."
        replicas.append(replica)
    reader = await connect(server, client_id="reader")
    state = await reader.wait_type("initial_state")
    assert state["seq"] == total
    # Field-level LWW: each annotation's label is the write with the highest seq.
    for key, annotation in state["data"].items():
        assert annotation["seq"] == max(r.annotations.get(key, {}).get("seq", 0) for r in replicas)
    for client in [*clients, reader]:
        await client.close()


async def test_concurrent_edits_of_different_fields_merge(server: ServerProcess) -> None:
    a, b = await connect(server, client_id="a"), await connect(server, client_id="b")
    await a.wait_type("initial_state")
    await b.wait_type("initial_state")
    await a.ack(await a.update({"id": "x", "tags": ["base"]}))
    op_a = await a.update({"id": "x", "color": "red", "tags": {"add": ["from-a"]}})
    op_b = await b.update({"id": "x", "confidence": "HIGH", "tags": {"add": ["from-b"]}})
    await a.ack(op_a)
    await b.ack(op_b)
    reader = await connect(server, client_id="r")
    data = (await reader.wait_type("initial_state"))["data"]["x"]
    assert (data["color"], data["confidence"]) == ("red", "HIGH")
    assert data["tags"] == ["base", "from-a", "from-b"]
    for client in (a, b, reader):
        await client.close()


async def test_delete_wins_and_recreate_over_the_wire(server: ServerProcess) -> None:
    a = await connect(server, client_id="a")
    await a.wait_type("initial_state")
    await a.ack(await a.update({"id": "x", "color": "red"}))
    await a.send({"type": "annotation_delete", "op_id": "del", "id": "x"})
    assert (await a.ack("del"))["type"] == "ack"
    refused = await a.ack(await a.update({"id": "x", "color": "blue"}))
    assert (refused["type"], refused["code"]) == ("error", "conflict")
    recreated = await a.ack(await a.update({"id": "x", "label": "again"}, recreate=True))
    assert recreated["type"] == "ack"
    reader = await connect(server, client_id="r")
    assert (await reader.wait_type("initial_state"))["data"]["x"]["label"] == "again"
    await a.close()
    await reader.close()


async def test_resume_with_since_gets_exactly_the_missed_broadcasts(server: ServerProcess) -> None:
    writer = await connect(server, client_id="w")
    observer = await connect(server, client_id="o")
    await writer.wait_type("initial_state")
    await observer.wait_type("initial_state")
    for i in range(5):
        await writer.ack(await writer.update({"id": f"a{i}", "label": str(i)}))
    live = [await observer.wait_type("annotation_update") for _ in range(5)]
    late = await connect(server, client_id="late", since=2)
    catch_up = await late.recv()
    assert catch_up == {"type": "catch_up", "seq": 5, "ops": live[2:]}
    current = await connect(server, client_id="cur", since=5)
    assert await current.recv() == {"type": "catch_up", "seq": 5, "ops": []}
    ahead = await connect(server, client_id="ahead", since=99)
    assert (await ahead.recv())["type"] == "initial_state"
    for client in (writer, observer, late, current, ahead):
        await client.close()


async def test_unacked_writes_resent_after_a_drop_apply_once(server: ServerProcess) -> None:
    client = await connect(server, client_id="flaky")
    await client.wait_type("initial_state")
    for i in range(20):
        await client.update({"id": "counter", "tags": {"add": [f"t{i}"]}}, op_id=f"op{i}")
    client.ws.transport.abort()  # a drop: no close handshake, acks maybe lost
    await client.close()
    again = await connect(server, client_id="flaky", since=0)
    first = await again.recv()
    assert first["type"] == "catch_up"
    applied = {op["op_id"]: op["seq"] for op in first["ops"]}
    for i in range(20):  # resend everything, as a client that never saw an ack would
        await again.update({"id": "counter", "tags": {"add": [f"t{i}"]}}, op_id=f"op{i}")
    acks = [await again.ack(f"op{i}") for i in range(20)]
    for ack in acks:
        if ack["op_id"] in applied:
            assert ack == {
                "type": "ack",
                "op_id": ack["op_id"],
                "seq": applied[ack["op_id"]],
                "duplicate": True,
            }
    reader = await connect(server, client_id="reader")
    state = await reader.wait_type("initial_state")
    assert state["seq"] == 20, "each write applied exactly once"
    assert state["data"]["counter"]["tags"] == sorted(f"t{i}" for i in range(20))
    for c in (again, reader):
        await c.close()


@pytest.fixture
def small_queue_server(tmp_path: Path) -> Any:
    process = ServerProcess(tmp_path / "collab.db", env={"COLLAB_SEND_QUEUE_MAX": "256"}).start()
    yield process
    process.stop()


async def test_a_reader_that_stops_reading_is_closed_1013_and_resyncs_losslessly(
    small_queue_server: ServerProcess,
) -> None:
    server = small_queue_server
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    stalled = await websockets.connect(
        server.ws_url("g1", client_id="stalled"), sock=sock, max_queue=1, max_size=None
    )
    others = [await connect(server, client_id=f"o{i}", batch=1) for i in range(3)]
    for other in others:
        await other.wait_type("initial_state")
    writer = others[0]
    total = 600  # ~7 MB: more than the kernel's socket buffers can absorb
    ops = []
    for i in range(total):  # paced by acks: healthy readers keep up, the stalled one cannot
        ops.append(await writer.update({"id": f"a{i % 10}", "content": "x" * 12_000}))
        if i % 25 == 24:
            last_ack = await writer.ack(ops[-1], timeout=20)
    assert last_ack["seq"] == total
    for other in others[1:]:
        seen = [await other.wait_type("annotation_update", timeout=20) for _ in range(total)]
        assert [m["seq"] for m in seen] == list(range(1, total + 1))
    # The stalled client: the server gave up on it with 1013 ...
    deadline = time.monotonic() + 20
    while stalled.close_code is None and time.monotonic() < deadline:
        try:
            await asyncio.wait_for(stalled.recv(), 0.5)
        except (TimeoutError, websockets.ConnectionClosed):
            pass
    assert stalled.close_code == 1013
    # ... and coming back with since, it loses nothing.
    back = await connect(server, client_id="stalled", since=0)
    catch_up = await back.recv(timeout=10)
    assert catch_up["type"] == "catch_up" and [op["seq"] for op in catch_up["ops"]] == list(
        range(1, total + 1)
    )
    for client in [*others, back]:
        await client.close()


async def test_kill_9_after_acks_loses_no_acked_write(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "collab.db").start()
    try:
        client = await connect(server, client_id="w")
        await client.wait_type("initial_state")
        ops = [await client.update({"id": f"k{i}", "label": str(i)}) for i in range(200)]
        acked = {ack["op_id"] for ack in [await client.ack(op) for op in ops]}
        assert len(acked) == 200
        server.kill()
        await client.close()
        server.start()
        reader = await connect(server, client_id="r")
        state = await reader.wait_type("initial_state")
        assert state["seq"] == 200 and set(state["data"]) == {f"k{i}" for i in range(200)}
        resumed = await connect(server, client_id="w", since=150)
        assert [op["seq"] for op in (await resumed.recv())["ops"]] == list(range(151, 201))
        for c in (reader, resumed):
            await c.close()
    finally:
        server.stop()


async def test_every_malformed_frame_gets_a_typed_error_and_the_session_survives(
    server: ServerProcess,
) -> None:
    client = await connect(server, client_id="fuzz")
    observer = await connect(server, client_id="obs")
    await client.wait_type("initial_state")
    await observer.wait_type("initial_state")
    for name, frame, code in MALFORMED:
        await client.send(frame)
        error = await client.wait_type("error")
        assert error["code"] == code, name
        await client.send({"type": "ping"})
        assert (await client.wait_type("pong"))["type"] == "pong", name
    await client.ws.send(b"\x00\x01binary")
    assert (await client.wait_type("error"))["code"] == "bad_message"
    reader = await connect(server, client_id="r")
    assert (await reader.wait_type("initial_state")) == {
        "type": "initial_state",
        "seq": 0,
        "data": {},
    }
    assert not [m for m in observer.received if m["type"] == "annotation_update"]
    for c in (client, observer, reader):
        await c.close()


async def test_batch_only_for_clients_that_asked(server: ServerProcess) -> None:
    plain = await connect(server, client_id="plain")
    batched = await connect(server, client_id="batched", batch=1)
    writer = await connect(server, client_id="w")
    for c in (plain, batched, writer):
        await c.wait_type("initial_state")
    await writer.send(
        [
            {"type": "annotation_update", "op_id": str(i), "payload": {"id": "b", "label": str(i)}}
            for i in range(200)
        ]
    )
    for c in (plain, batched):
        for _ in range(200):
            await c.wait_type("annotation_update", timeout=10)
    assert plain.frames == len(plain.received), "one message per frame without batch=1"
    assert batched.frames < len(batched.received), "a backlog goes out as arrays with batch=1"
    for c in (plain, batched, writer):
        await c.close()


async def test_presence_relay_join_snapshot_and_leave(server: ServerProcess) -> None:
    a = await connect(server, client_id="a", user="alice")
    await a.wait_type("initial_state")
    await a.send({"type": "presence", "state": {"selection": ["entity-7"]}})
    b = await connect(server, client_id="b", user="bob")
    assert (await b.recv())["type"] == "initial_state"
    snapshot = await b.wait_type("presence")
    assert snapshot == {
        "type": "presence",
        "client_id": "a",
        "user": "alice",
        "state": {"selection": ["entity-7"]},
    }
    for i in range(10):  # a burst: coalesced, the last state wins
        await b.send({"type": "presence", "state": {"selection": [f"e{i}"]}})
    await b.send({"type": "ping"})
    last = await a.wait_for(lambda m: m["type"] == "presence" and m["state"]["selection"] == ["e9"])
    assert last["user"] == "bob"
    await b.close()
    assert (await a.wait_type("presence_leave")) == {"type": "presence_leave", "client_id": "b"}
    await a.close()


async def test_handshake_rules(server: ServerProcess) -> None:
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(server.ws_url("bad%20graph"))
    assert refused.value.response.status_code in (403, 404)
    too_long = await connect(server, "g1", client_id="c" * 65)
    assert await too_long.wait_closed() == 1008
    for since in ("abc", "-1", "²", "1e3", "9" * 30):
        bad_since = await connect(server, "g1", since=since)
        assert await bad_since.wait_closed() == 1008, since
    anonymous = await connect(server, "g1")  # the server makes a client_id up
    assert (await anonymous.recv())["type"] == "initial_state"
    await anonymous.close()


async def test_sigterm_flushes_and_closes_with_1001(server: ServerProcess) -> None:
    client = await connect(server, client_id="c")
    await client.wait_type("initial_state")
    op = await client.update({"id": "z", "label": "last"})
    await client.ack(op)
    server.stop()
    assert await client.wait_closed(timeout=10) == 1001
    server.start()
    reader = await connect(server, client_id="r")
    assert (await reader.wait_type("initial_state"))["data"]["z"]["label"] == "last"
    await reader.close()


async def test_since_older_than_the_compacted_log_gets_initial_state(tmp_path: Path) -> None:
    server = ServerProcess(
        tmp_path / "collab.db", env={"COLLAB_LOG_RETENTION": "10", "COLLAB_SNAPSHOT_EVERY": "20"}
    ).start()
    try:
        client = await connect(server, client_id="w")
        await client.wait_type("initial_state")
        ops = [await client.update({"id": f"a{i % 3}", "label": str(i)}) for i in range(60)]
        await client.ack(ops[-1])
        # Snapshots are taken after a commit that leaves the head 20 past the
        # last one (where that falls depends on how writes were batched) and
        # saved in the background: wait until the log is trimmed past since=3.
        async with httpx.AsyncClient(base_url=server.http_url) as http:
            async with asyncio.timeout(20):
                while (await http.get("/api/graphs/g1/ops?limit=1")).json()["trimmed_upto"] <= 3:
                    await asyncio.sleep(0.05)
        server.restart()  # load from snapshot + retained log
        old = await connect(server, client_id="old", since=3)
        state = await old.recv()
        assert state["type"] == "initial_state" and state["seq"] == 60
        assert state["data"]["a2"]["label"] == "59"
        recent = await connect(server, client_id="recent", since=55)
        assert [op["seq"] for op in (await recent.recv())["ops"]] == [56, 57, 58, 59, 60]
        for c in (client, old, recent):
            await c.close()
    finally:
        server.stop()


async def test_sync_latency_report(server: ServerProcess) -> None:
    """Measures one-way delivery latency (reported, not asserted) while asserting
    that every client received every write."""
    n = 10
    clients = [await connect(server, client_id=f"l{i}", batch=1) for i in range(n)]
    for c in clients:
        await c.wait_type("initial_state")
    writes = 50
    latencies: list[float] = []
    for i in range(writes):
        sender = clients[i % n]
        sent_at = time.perf_counter()
        await sender.update({"id": "lat", "label": str(i)})
        for receiver in clients:
            if receiver is sender:
                continue
            message = await receiver.wait_type("annotation_update")
            assert message["seq"] == i + 1
            latencies.append((time.perf_counter() - sent_at) * 1000)
    assert len(latencies) == writes * (n - 1)
    quantiles = statistics.quantiles(latencies, n=100)
    print(f"\nsync latency, {n} clients: p50 {quantiles[49]:.2f} ms, p99 {quantiles[98]:.2f} ms")
    for c in clients:
        await c.close()


@pytest.fixture
def fast_ping_server(tmp_path: Path) -> Any:
    env = {"COLLAB_WS_PING_INTERVAL": "0.5", "COLLAB_WS_PING_TIMEOUT": "1"}
    process = ServerProcess(tmp_path / "collab.db", env=env).start()
    yield process
    process.stop()


async def test_websocket_ping_frames_drop_a_dead_peer(fast_ping_server: ServerProcess) -> None:
    """A peer that stops answering (a laptop lid closed, a cable pulled: no
    FIN ever comes) is dropped by the server's ping frames; the others see it leave."""
    server = fast_ping_server
    watcher = await connect(server, client_id="watcher")
    dead = await connect(server, client_id="dead")
    await watcher.wait_type("initial_state")
    await dead.wait_type("initial_state")
    await dead.send({"type": "presence", "state": {"selection": ["e1"]}})
    await watcher.wait_type("presence")
    dead.ws.transport.pause_reading()  # it no longer reads, so never answers a ping
    gone = await watcher.wait_type("presence_leave", timeout=30)
    assert gone == {"type": "presence_leave", "client_id": "dead"}
    await watcher.close()
    dead.ws.transport.abort()
