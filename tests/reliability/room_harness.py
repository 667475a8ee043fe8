"""A Room in-process with sessions that capture what they are sent (for the
regression tests of core bugs the simulator found)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from intelgraph_collab.metrics import Metrics
from intelgraph_collab.room import Room, RoomSettings
from intelgraph_collab.session import Identity, Session, TaskSession
from intelgraph_collab.store.base import Store
from intelgraph_collab.sync.limits import Limits
from intelgraph_collab.sync.messages import Write, decode_message

_metrics = Metrics()


class Capture:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()

    async def send_text(self, text: str) -> None:
        document = json.loads(text)
        self.messages.extend(document if isinstance(document, list) else [document])
        self.arrived.set()

    async def close(self, code: int, reason: str) -> None:
        return None

    async def wait_for(
        self, count: int, kinds: tuple[str, ...] = ("ack", "error")
    ) -> list[dict[str, Any]]:
        """The first `count` messages of `kinds` (waits, bounded)."""
        async with asyncio.timeout(5):
            while len(found := [m for m in self.messages if m["type"] in kinds]) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return found[:count]


def capture_session(client_id: str) -> tuple[Session, Capture]:
    capture = Capture()
    session = TaskSession(
        Identity(client_id, client_id), capture.send_text, capture.close, batch=True
    )
    return session, capture


def write(message: dict[str, Any]) -> Write:
    decoded = decode_message(message, Limits())
    assert not isinstance(decoded, Exception), decoded
    return decoded  # type: ignore[return-value]


async def loaded_room(store: Store, settings: RoomSettings | None = None) -> Room:
    room = Room("g", store, Limits(), settings or RoomSettings(), _metrics)
    await room.load()
    return room
