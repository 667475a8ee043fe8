"""A protocol client of the cluster: the reliability suite's `ModelClient`
(a correct client, sans I/O) pumped over a real WebSocket, failing over
from node to node.

On any disconnect (a killed node, 1013 from a failed room, a refused
handshake) it reconnects to the next node with `since`, and the model
resends every unacked write with its `op_id`. It also sends its presence
on every connection, remembers the presence it sees, and reports each
broadcast's delivery latency from the writer's send (same node or cross-node).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import websockets

from tests.support.fold_rules import CharSource, Message, random_text_edit
from tests.support.protocol_model import WRITE_TYPES, ModelClient
from tests.support.server import ServerProcess

COLORS = ["red", "green", "blue", "amber"]
TAGS = ["person", "place", "org", "event", "vehicle", "finance"]


@dataclass
class Ledger:
    """What all peers of a run share: send times, latencies, a progress signal."""

    chars: CharSource = field(default_factory=CharSource)
    sent_at: dict[tuple[str, str], tuple[float, int]] = field(default_factory=dict)
    """(client_id, op_id) -> (monotonic time of the first send, node index)."""
    cross_node_ms: list[float] = field(default_factory=list)
    same_node_ms: list[float] = field(default_factory=list)
    acked: int = 0
    disconnects: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def until(self, condition: Callable[[], bool], within: float) -> None:
        async def wait() -> None:
            while not condition():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(wait(), within)


class LivePeer:
    def __init__(
        self,
        name: str,
        graph_id: str,
        nodes: list[ServerProcess],
        node: int,
        ledger: Ledger,
        seed: int,
    ) -> None:
        self.model = ModelClient(name, user=f"user-{name}")
        self.graph_id = graph_id
        self.nodes = nodes
        self.node = node
        self.ledger = ledger
        self.rng = random.Random(seed)
        self.ids = [f"{graph_id}-a{i}" for i in range(8)]
        self.presence: dict[str, Any] = {}
        """client_id -> state, as this peer was told (presence / presence_leave)."""
        self.failovers = 0
        self.close_codes: list[int | None] = []
        self._ws: Any = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def client_id(self) -> str:
        return self.model.client_id

    @property
    def live(self) -> bool:
        return self._ws is not None and self.model.connected and self.model.synced

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        self._stopping = True
        if self._ws is not None:
            await self._ws.close()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    # -- the connection loop ----------------------------------------------

    async def _run(self) -> None:
        backoff = 0.05
        first = True
        while not self._stopping:
            if not first:
                self.node = (self.node + 1) % len(self.nodes)  # fail over to the next node
                self.failovers += 1
            first = False
            try:
                await self._session(self.nodes[self.node])
                backoff = 0.05
            except (OSError, websockets.WebSocketException, TimeoutError):
                pass
            if self._stopping:
                return
            self.ledger.disconnects += 1
            self.ledger.changed.set()
            await asyncio.sleep(backoff * (0.5 + self.rng.random()))  # reconnect backoff, jittered
            backoff = min(backoff * 2, 1.0)

    async def _session(self, server: ServerProcess) -> None:
        since = self.model.open()
        url = server.ws_url(
            self.graph_id, client_id=self.client_id, since=since, user=self.model.user, batch=1
        )
        try:
            ws = await websockets.connect(url, max_size=None, open_timeout=5)
        except BaseException:
            self.model.close()
            raise
        self._ws = ws
        try:
            await self._flush()
            async for frame in ws:
                document = json.loads(frame)
                for message in document if isinstance(document, list) else [document]:
                    self._receive(message)
                self.ledger.changed.set()
                if self.model.needs_resync:
                    break  # reconnect with since
                await self._flush()
        finally:
            self._ws = None
            self.model.close()
            self.close_codes.append(ws.close_code)
            with contextlib.suppress(Exception):
                await ws.close()

    def _receive(self, message: Message) -> None:
        kind = message.get("type")
        was_synced = self.model.synced
        acked_before = len(self.model.acked)
        self.model.receive(message)
        self.ledger.acked += len(self.model.acked) - acked_before
        if kind == "presence":
            self.presence[message["client_id"]] = message["state"]
        elif kind == "presence_leave":
            self.presence.pop(message["client_id"], None)
        elif kind in WRITE_TYPES and "seq" in message:
            self._measure(message)
        if not was_synced and self.model.synced:
            self.model.outbox.append({"type": "presence", "state": {"node": self.node}})

    def _measure(self, message: Message) -> None:
        sent = self.ledger.sent_at.get((message.get("client_id") or "", message.get("op_id") or ""))
        if sent is None:
            return
        elapsed_ms = (time.monotonic() - sent[0]) * 1000
        (self.ledger.cross_node_ms if sent[1] != self.node else self.ledger.same_node_ms).append(
            elapsed_ms
        )

    async def _flush(self) -> None:
        ws = self._ws
        outgoing = self.model.take_outbox()
        if ws is None or not outgoing:
            return
        now = time.monotonic()
        for message in outgoing:
            op_id = message.get("op_id")
            if op_id is not None:
                self.ledger.sent_at.setdefault((self.client_id, op_id), (now, self.node))
        with contextlib.suppress(websockets.ConnectionClosed):
            await ws.send(json.dumps(outgoing))  # lost frames are resent after reconnecting

    # -- the workload -----------------------------------------------------

    async def write(self, count: int, window: int = 2) -> None:
        """`count` writes of every kind, at most `window` unacked at a time."""
        for _ in range(count):
            await self.ledger.until(lambda: self.live and len(self.model.pending) < window, 60)
            self._one_write()
            await self._flush()

    def _one_write(self) -> None:
        model, rng = self.model, self.rng
        annotation_id = rng.choice(self.ids)
        current = model.annotations.get(annotation_id)
        roll = rng.random()
        if current is None:
            payload = {
                "id": annotation_id,
                "kind": "note",
                "target_type": "ENTITY",
                "target_id": f"entity-{rng.randint(1, 50)}",
                "content": self.ledger.chars.take(4),
                "color": rng.choice(COLORS),
            }
            model.update(payload, recreate=True)
        elif roll < 0.35:
            model.update(
                {"id": annotation_id, "color": rng.choice(COLORS), "label": f"L{rng.randint(1, 9)}"}
            )
        elif roll < 0.6:
            add = rng.sample(TAGS, rng.randint(1, 2))
            remove = [rng.choice(TAGS)]
            model.update({"id": annotation_id, "tags": {"add": add, "remove": remove}})
        elif roll < 0.92:
            if model.may_edit_text(annotation_id, "content"):
                text = model.local_text(annotation_id, "content") or ""
                model.edit_text(
                    annotation_id, "content", random_text_edit(rng, text, self.ledger.chars)
                )
            else:
                model.update({"id": annotation_id, "confidence": rng.choice(["HIGH", "LOW"])})
        else:
            model.delete(annotation_id)
