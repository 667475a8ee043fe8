"""Collaborative text over the real server: three clients type into one note at
once (random delays, one forced reconnect); all end identical to the server,
with every character typed and not deleted present exactly once."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from tests.support.client import TestClient
from tests.support.server import ServerProcess
from tests.vectors.text_ot_sim import ClientPort

NOTE, FIELD = "note-1", "content"


class Typist:
    """A protocol client with the OT client state machine for one field."""

    def __init__(self, server: ServerProcess, name: str, alphabet_start: int) -> None:
        self.server, self.name = server, name
        self.next_char = alphabet_start
        self.inserted: set[str] = set()
        self.deleted: set[str] = set()
        self.port = ClientPort("", 0)
        self.applied = 0  # last seq applied of any kind: the `since` to resume from
        self.in_flight_op_id: str | None = None
        self.ops_sent = 0
        self.client: TestClient | None = None
        self.pump: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        since = self.applied if self.client is not None else None
        self.client = await TestClient.connect(
            self.server.ws_url("g", client_id=self.name, since=since, batch=1)
        )
        first = await self.client.recv()
        if first["type"] == "initial_state":
            self.port.reset(first["data"][NOTE].get(FIELD, ""), first["seq"])
            self.in_flight_op_id = None
            self.applied = first["seq"]
        else:
            for op in first["ops"]:
                await self._on_broadcast(op)
            self.applied = max(self.applied, first["seq"])
        resend = self.port.in_flight()
        if resend is not None and self.in_flight_op_id is not None:
            await self._send(resend, self.in_flight_op_id)  # same op_id: dedupe makes it safe
        self.pump = asyncio.get_running_loop().create_task(self._receive())

    async def drop(self) -> None:
        assert self.client is not None and self.pump is not None
        self.client.ws.transport.abort()
        await self.client.close()
        self.pump.cancel()
        await asyncio.gather(self.pump, return_exceptions=True)

    async def _receive(self) -> None:
        assert self.client is not None
        while True:
            message = await self.client.recv(timeout=30)
            if message["type"] == "ack" and message["op_id"] == self.in_flight_op_id:
                self.applied = max(self.applied, message["seq"])
                await self._acked(message["seq"])
            elif message["type"] == "text_op":
                await self._on_broadcast(message)
            elif message["type"] == "error":
                raise AssertionError(f"{self.name} refused: {message}")

    async def _on_broadcast(self, message: dict[str, Any]) -> None:
        self.applied = max(self.applied, message["seq"])
        if message.get("client_id") == self.name and message.get("op_id") == self.in_flight_op_id:
            # Our own write, applied before a drop lost its ack: it is the ack.
            await self._acked(message["seq"])
        elif message["type"] == "text_op":
            self.port.server_op(message["ops"], message["seq"])

    async def _acked(self, seq: int) -> None:
        next_op = self.port.server_ack(seq)
        self.in_flight_op_id = None
        if next_op is not None:
            await self._send_new(next_op)

    async def _send_new(self, op: tuple[int, list[int | str]]) -> None:
        self.ops_sent += 1
        self.in_flight_op_id = f"{self.name}-{self.ops_sent}"
        await self._send(op, self.in_flight_op_id)

    async def _send(self, op: tuple[int, list[int | str]], op_id: str) -> None:
        assert self.client is not None
        base, ops = op
        await self.client.send(
            {
                "type": "text_op",
                "op_id": op_id,
                "id": NOTE,
                "field": FIELD,
                "base": base,
                "ops": ops,
            }
        )

    async def type_something(self, rng: random.Random) -> None:
        text = self.port.text
        length = len(text)
        if length and rng.random() < 0.3:
            at = rng.randrange(length)
            count = rng.randint(1, min(3, length - at))
            self.deleted.update(text[at : at + count])
            ops: list[int | str] = [at, -count, length - at - count]
        else:
            at = rng.randint(0, length)
            char = chr(self.next_char)
            self.next_char += 1
            self.inserted.add(char)
            ops = [at, char, length - at]
        outgoing = self.port.local_edit([op for op in ops if op != 0])
        if outgoing is not None:
            await self._send_new(outgoing)

    @property
    def settled(self) -> bool:
        if self.pump is not None and self.pump.done() and not self.pump.cancelled():
            self.pump.result()  # a refusal or a broken stream fails the test here
        return self.port.in_flight() is None


async def test_three_typists_converge_with_every_keystroke_kept(server: ServerProcess) -> None:
    setup = await TestClient.connect(server.ws_url("g", client_id="setup"))
    await setup.wait_type("initial_state")
    await setup.ack(await setup.update({"id": NOTE, "kind": "note", "content": "start"}))
    await setup.close()
    rng = random.Random(20261126)
    typists = [Typist(server, f"t{i}", 0x4E00 + i * 2000) for i in range(3)]
    for typist in typists:
        await typist.connect()
    for step in range(240):
        typist = typists[step % 3]
        await typist.type_something(rng)
        if rng.random() < 0.3:
            await asyncio.sleep(rng.random() * 0.01)
        if step == 120:  # one forced reconnect mid-way, with an op likely in flight
            await typists[1].drop()
            await typists[1].connect()
    async with asyncio.timeout(20):
        while not all(t.settled for t in typists):
            await asyncio.sleep(0.02)
    reader = await TestClient.connect(server.ws_url("g", client_id="reader"))
    state = await reader.wait_type("initial_state")
    final = state["data"][NOTE][FIELD]
    async with asyncio.timeout(20):
        while any(t.port.revision < state["seq"] and t.settled for t in typists):
            await asyncio.sleep(0.02)
    assert all(t.port.text == final for t in typists)
    inserted = set().union(*(t.inserted for t in typists))
    deleted = set().union(*(t.deleted for t in typists))
    kept = [c for c in final if c in inserted]
    assert len(kept) == len(set(kept)), "no character applied twice"
    assert set(kept) == inserted - deleted, "every character typed and not deleted is there"
    for typist in typists:
        await typist.drop()
    await reader.close()
