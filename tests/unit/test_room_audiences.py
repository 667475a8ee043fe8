"""Per-clearance fan-out in the room: a broadcast is encoded once per
distinct clearance, not once per recipient, and each recipient gets its view."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

import intelgraph_collab.audiences as audiences_module
from intelgraph_collab.metrics import Metrics
from intelgraph_collab.room import Room, RoomSettings
from intelgraph_collab.session import Identity, TaskSession
from intelgraph_collab.store.memory import MemoryStore
from intelgraph_collab.sync.engine import Writer
from intelgraph_collab.sync.limits import Limits
from intelgraph_collab.sync.messages import AnnotationUpdate
from intelgraph_collab.sync.views import Clearance


class Received:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.changed = asyncio.Event()

    async def send_text(self, text: str) -> None:
        document = json.loads(text)
        self.messages.extend(document if isinstance(document, list) else [document])
        self.changed.set()

    async def close(self, code: int, reason: str) -> None:
        self.changed.set()

    async def wait_for(self, count: int) -> list[dict[str, Any]]:
        async with asyncio.timeout(5):
            while len(self.messages) < count:
                self.changed.clear()
                await self.changed.wait()
        return self.messages


def joined(room: Room, client_id: str, clearance: Clearance) -> Received:
    end = Received()
    identity = Identity(client_id, client_id, "editor", clearance)
    room.join(TaskSession(identity, end.send_text, end.close, batch=True), None)
    return end


async def test_one_encoding_per_clearance(monkeypatch: pytest.MonkeyPatch) -> None:
    room = Room("g", MemoryStore(), Limits(), RoomSettings(), Metrics())
    await room.load()
    clearances: list[Clearance] = [frozenset({"FIVE_EYES"})] * 3 + [frozenset()] * 3 + [None] * 2
    ends = [joined(room, f"c{n}", clearance) for n, clearance in enumerate(clearances)]
    for end in ends:
        await end.wait_for(1)  # initial_state

    encoded: list[dict[str, Any]] = []
    real_encode = audiences_module.encode

    def counting(message: dict[str, Any]) -> str:
        encoded.append(message)
        return real_encode(message)

    monkeypatch.setattr(audiences_module, "encode", counting)
    write = AnnotationUpdate(payload={"id": "a1", "kind": "note"}, op_id="o1")
    room.submit(write, Writer("outsider", "w"), None)
    for end in ends:
        assert (await end.wait_for(2))[1]["payload"]["id"] == "a1"
    broadcasts = [m for m in encoded if m["type"] == "annotation_update"]
    assert len(broadcasts) == 3  # three clearances, eight recipients

    # A write only some may see reaches only them, still once per clearance.
    encoded.clear()
    secret = AnnotationUpdate(payload={"id": "s1", "enclave": "FIVE_EYES"}, op_id="o2")
    room.submit(secret, Writer("outsider", "w", "editor", None), None)
    for end in ends[:3] + ends[6:]:
        assert (await end.wait_for(3))[2]["payload"]["id"] == "s1"
    assert len([m for m in encoded if m["type"] == "annotation_update"]) == 2
    # The uncleared get nothing for it: their next message is the next open write.
    room.submit(AnnotationUpdate(payload={"id": "a2"}, op_id="o3"), Writer("outsider", "w"), None)
    for end in ends[3:6]:
        third = (await end.wait_for(3))[2]
        assert (third["payload"]["id"], third["prev"]) == ("a2", 1)
    await room.stop()
