"""A minimal protocol client for tests: real sockets, messages unpacked from batches,
and waits with timeouts (never bare sleeps)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import websockets

from .fold_rules import apply_broadcast

Message = dict[str, Any]


class TestClient:
    __test__ = False  # not a pytest class

    def __init__(self, url: str) -> None:
        self.url = url
        self.ws: Any = None
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.received: list[Message] = []
        self.frames = 0
        self.close_code: int | None = None
        self._reader: asyncio.Task[None] | None = None
        self._next_op = 0

    @classmethod
    async def connect(cls, url: str, **kwargs: Any) -> TestClient:
        client = cls(url)
        client.ws = await websockets.connect(url, max_size=None, **kwargs)
        client._reader = asyncio.get_running_loop().create_task(client._read())
        return client

    async def _read(self) -> None:
        try:
            async for frame in self.ws:
                self.frames += 1
                document = json.loads(frame)
                for message in document if isinstance(document, list) else [document]:
                    self.received.append(message)
                    self.inbox.put_nowait(message)
        except websockets.ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code

    async def send(self, message: Message | list[Message] | str) -> None:
        await self.ws.send(message if isinstance(message, str) else json.dumps(message))

    def next_op_id(self) -> str:
        self._next_op += 1
        return str(self._next_op)

    async def update(self, payload: Message, op_id: str | None = None, **extra: Any) -> str:
        op_id = op_id or self.next_op_id()
        await self.send({"type": "annotation_update", "op_id": op_id, "payload": payload, **extra})
        return op_id

    async def recv(self, timeout: float = 20.0) -> Message:
        return await asyncio.wait_for(self.inbox.get(), timeout)

    async def wait_for(
        self, predicate: Callable[[Message], bool], timeout: float = 20.0
    ) -> Message:
        """The next message matching `predicate` (earlier ones are consumed)."""

        async def scan() -> Message:
            while True:
                message = await self.inbox.get()
                if predicate(message):
                    return message

        return await asyncio.wait_for(scan(), timeout)

    async def wait_type(self, kind: str, timeout: float = 20.0) -> Message:
        return await self.wait_for(lambda m: m.get("type") == kind, timeout)

    async def ack(self, op_id: str, timeout: float = 20.0) -> Message:
        return await self.wait_for(
            lambda m: m.get("op_id") == op_id and m.get("type") in ("ack", "error"), timeout
        )

    async def wait_closed(self, timeout: float = 20.0) -> int | None:
        assert self._reader is not None
        await asyncio.wait_for(asyncio.shield(self._reader), timeout)
        return self.close_code

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)


class Replica:
    """A client-side copy of the graph state, built only from what the server sent."""

    def __init__(self) -> None:
        self.seq = 0
        self.annotations: dict[str, Message] = {}

    def apply(self, message: Message) -> None:
        kind = message["type"]
        if kind == "initial_state":
            self.annotations = {key: dict(value) for key, value in message["data"].items()}
            self.seq = message["seq"]
        elif kind == "catch_up":
            for op in message["ops"]:
                self.apply(op)
            self.seq = max(self.seq, message["seq"])
        elif kind in ("annotation_update", "annotation_delete", "text_op") and "seq" in message:
            assert message["prev"] <= self.seq, f"gap: prev {message['prev']} > applied {self.seq}"
            apply_broadcast(self.annotations, message)
            self.seq = message["seq"]
