"""The two servers a simulated history runs against.

`RoomServer` is the product: the real `Room` (sequencer task, group commit,
send queues, joins between commits, compaction, dedupe through the store)
driven in-process, with real `Session`s whose socket is a `network.Conn`,
on a MemoryStore or an SQLite file, wrapped in an `AuditStore` that keeps
every record ever committed (compaction trims the store's own log) and
makes every store call take a seeded number of loop turns, so that writes
arrive while a commit is in flight. `crash` is kill -9: every task of the
room dies where it is, and a new room loads what the store committed.

`EngineServer` is the pure engine (`GraphState.resolve/fold`, snapshots,
text history) behind the smallest sequencer PROTOCOL.md allows: it runs
many more histories per second and pins the engine's own rules.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from intelgraph_collab.inbound import handle_frame
from intelgraph_collab.metrics import Metrics
from intelgraph_collab.room import Room, RoomSettings
from intelgraph_collab.session import Identity, Session, TaskSession
from intelgraph_collab.store.base import BuildRecords, OpKey, Store, StoredGraph
from intelgraph_collab.store.memory import MemoryStore
from intelgraph_collab.store.sqlite import SQLiteStore
from intelgraph_collab.sync.engine import GraphState, Writer
from intelgraph_collab.sync.errors import ProtocolError
from intelgraph_collab.sync.limits import Limits
from intelgraph_collab.sync.messages import Ping, Presence, Write, decode_frame
from intelgraph_collab.sync.records import OpRecord

from ...support.fold_rules import Annotations, Message
from .network import Conn

T = TypeVar("T")
GRAPH = "sim-graph"
LIMITS = Limits()
_encoder = msgspec.json.Encoder()
_metrics: Metrics | None = None


def shared_metrics() -> Metrics:
    """One registry for every simulated room (building one costs more than a run)."""
    global _metrics
    if _metrics is None:
        _metrics = Metrics()
    return _metrics


def encode(message: dict[str, Any]) -> str:
    return _encoder.encode(message).decode()


class Clock:
    """Server time: deterministic, strictly increasing."""

    def __init__(self) -> None:
        self.now = 1_764_144_000_000

    def __call__(self) -> int:
        self.now += 7
        return self.now


class AuditStore(Store):
    """A store that records every committed record and takes its time."""

    def __init__(self, inner: Store, rng: random.Random, max_turns: int) -> None:
        self.inner = inner
        self.rng = rng
        self.max_turns = max_turns
        self.audit: dict[int, OpRecord] = {}
        self.problems: list[str] = []
        self.inflight = 0

    async def _turns(self) -> None:
        for _ in range(self.rng.randint(0, self.max_turns)):
            await asyncio.sleep(0)

    async def open(self) -> None:
        await self.inner.open()

    async def close(self) -> None:
        await self.inner.close()

    async def _call(self, work: Callable[[], Awaitable[T]]) -> T:
        self.inflight += 1
        try:
            await self._turns()
            result = await work()
            await self._turns()
            return result
        finally:
            self.inflight -= 1

    async def load(self, graph_id: str) -> StoredGraph:
        return await self._call(lambda: self.inner.load(graph_id))

    async def append(self, graph_id: str, head: int, build: BuildRecords) -> list[OpRecord]:
        def audited(missed: list[OpRecord]) -> list[OpRecord]:
            records = build(missed)
            for record in records:
                if record.seq in self.audit:
                    self.problems.append(f"seq {record.seq} committed twice")
                self.audit[record.seq] = record
            return records

        return await self._call(lambda: self.inner.append(graph_id, head, audited))

    async def records_since(
        self, graph_id: str, since: int, upto: int | None = None, limit: int | None = None
    ) -> list[OpRecord]:
        return await self._call(lambda: self.inner.records_since(graph_id, since, upto, limit))

    async def trimmed_upto(self, graph_id: str) -> int:
        return await self._call(lambda: self.inner.trimmed_upto(graph_id))

    async def find_ops(self, graph_id: str, keys: Sequence[OpKey]) -> dict[OpKey, int]:
        return await self._call(lambda: self.inner.find_ops(graph_id, keys))

    async def writers_with_ops(self, graph_id: str, writers: Sequence[str]) -> set[str]:
        return await self._call(lambda: self.inner.writers_with_ops(graph_id, writers))

    async def save_snapshot(self, graph_id: str, seq: int, blob: bytes, trim_upto: int) -> None:
        await self._call(lambda: self.inner.save_snapshot(graph_id, seq, blob, trim_upto))

    async def after_crash(self, graph_id: str) -> None:
        """Forget audited records the crash kept from committing."""
        if isinstance(self.inner, SQLiteStore):  # let its threads finish what they started
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self.inner._writer, lambda: None)
        head = (await self.inner.load(graph_id)).head
        for seq in [seq for seq in self.audit if seq > head]:
            del self.audit[seq]


class RoomServer:
    def __init__(
        self,
        rng: random.Random,
        settings: RoomSettings,
        *,
        sqlite_path: Path | None = None,
        max_queue: int = 10_000,
        store_turns: int = 3,
    ) -> None:
        self.rng = rng
        self.settings = settings
        inner: Store = SQLiteStore(str(sqlite_path)) if sqlite_path else MemoryStore()
        self.store = AuditStore(inner, rng, store_turns)
        self.clock = Clock()
        self.max_queue = max_queue
        self.room: Room | None = None
        self.sessions: dict[Conn, Session] = {}
        self.crashes = 0
        self.restarts = 0

    @property
    def threaded(self) -> bool:
        return isinstance(self.store.inner, SQLiteStore)

    async def start(self) -> None:
        await self.store.open()
        await self._load()

    async def _load(self) -> None:
        self.room = Room(GRAPH, self.store, LIMITS, self.settings, shared_metrics(), self.clock)
        await self.room.load()

    async def stop(self) -> None:
        await self.crash(count=False)
        await self.store.close()

    # -- the transport's part ---------------------------------------------

    def connect(self, conn: Conn, user: str | None, since: int | None, batch: bool) -> None:
        assert self.room is not None
        room = self.room

        async def close(code: int, reason: str) -> None:
            conn.server_close(code)
            room.leave(session)
            if self.sessions.get(conn) is session:
                del self.sessions[conn]

        session = TaskSession(
            Identity(client_id=conn.client_id, user=user),
            conn.server_send,
            close,
            batch=batch,
            max_queue=self.max_queue,
        )
        self.sessions[conn] = session
        room.join(session, since)

    def deliver(self, conn: Conn, frame: str) -> None:
        assert self.room is not None
        session = self.sessions[conn]
        handle_frame(frame, session, self.room, LIMITS, shared_metrics())

    def notice_close(self, conn: Conn) -> None:
        """The transport's receive loop ended: as `CollabConnection.finish`."""
        conn.server_open = False
        conn.wake()
        session = self.sessions.pop(conn, None)
        if session is not None and self.room is not None:
            session.detach()
            self.room.leave(session)

    # -- running the loop -------------------------------------------------

    async def spin(self, turns: int) -> None:
        for _ in range(turns):
            await asyncio.sleep(0)

    def busy(self) -> bool:
        room = self.room
        if room is None:
            return False
        if room._writes or room._joins or room._background or self.store.inflight:
            return True
        return any(
            session.queue_depth
            and not session.closed
            and conn.server_open
            and conn.client_open
            and len(conn.downlink) < conn.capacity
            for conn, session in self.sessions.items()
        )

    async def settle(self, limit: float = 10.0) -> None:
        """Run the loop until the room has nothing left to do by itself."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        quiet = 0
        while quiet < 3:
            if loop.time() > deadline:
                raise TimeoutError("the room did not settle")
            if self.busy():
                quiet = 0
                await asyncio.sleep(0.0005 if self.threaded and self.store.inflight else 0)
            else:
                quiet += 1
                await asyncio.sleep(0)

    # -- faults -----------------------------------------------------------

    async def crash(self, count: bool = True) -> None:
        """kill -9: every task dies where it is; the sockets reset."""
        current = asyncio.current_task()
        tasks = [task for task in asyncio.all_tasks() if task is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for conn in list(self.sessions):
            conn.server_close(1006)
        self.sessions.clear()
        await self.store.after_crash(GRAPH)
        self.room = None
        if count:
            self.crashes += 1
            await self._load()

    async def restart(self) -> None:
        """A graceful restart (or an idle unload and reload): queued writes are
        committed, then every session is closed with 1001."""
        assert self.room is not None
        await self.room.stop()
        for conn, session in list(self.sessions.items()):
            session.close(1001, "server shutting down")
            conn.server_close(1001)
        await self.spin(5)
        self.sessions.clear()
        self.restarts += 1
        await self._load()

    # -- what the checker reads -------------------------------------------

    @property
    def head(self) -> int:
        assert self.room is not None
        return self.room.head

    def state(self) -> Annotations:
        assert self.room is not None
        return self.room.state.annotations

    def log(self) -> list[Message]:
        audit = self.store.audit
        return [audit[seq].wire(seq - 1) for seq in sorted(audit)]

    def problems(self) -> list[str]:
        return list(self.store.problems)

    async def reloaded_state(self) -> Annotations:
        """The state a fresh load from the store gives (snapshot + retained log)."""
        room = Room(GRAPH, self.store, LIMITS, self.settings, shared_metrics(), self.clock)
        room._restore(await self.store.load(GRAPH))
        return room.state.annotations


class EngineServer:
    """The pure engine behind a synchronous sequencer: no tasks, no queues."""

    threaded = False

    def __init__(self, rng: random.Random, settings: RoomSettings) -> None:
        self.rng = rng
        self.settings = settings
        self.clock = Clock()
        self.state_ = GraphState()
        self.records: list[OpRecord] = []
        self.retained: list[OpRecord] = []
        self.snapshot: bytes | None = None
        self.snapshot_seq = 0
        self.trimmed_upto = 0
        self.op_seqs: dict[OpKey, int] = {}
        self.conns: dict[Conn, tuple[str | None, bool]] = {}
        self.crashes = 0
        self.restarts = 0

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def connect(self, conn: Conn, user: str | None, since: int | None, batch: bool) -> None:
        head = self.state_.seq
        if since is None or since > head or since < self.trimmed_upto:
            first = {"type": "initial_state", "seq": head, "data": self.state_.annotations}
        else:
            ops = [r.wire(r.seq - 1) for r in self.retained if r.seq > since]
            first = {"type": "catch_up", "seq": head, "ops": ops}
        self.conns[conn] = (user, batch)
        self._send(conn, encode(first))

    def _send(self, conn: Conn, text: str) -> None:
        if conn.server_open and conn.client_open:
            conn.downlink.append(text)
            conn.first_sent = True

    def deliver(self, conn: Conn, frame: str) -> None:
        user, _ = self.conns[conn]
        writer = Writer(conn.client_id, user)
        for message in decode_frame(frame, LIMITS):
            if isinstance(message, ProtocolError):
                self._send(conn, encode(message.to_message()))
            elif isinstance(message, Ping):
                self._send(conn, encode({"type": "pong"}))
            elif not isinstance(message, Presence):
                self._write(conn, message, writer)

    def _write(self, conn: Conn, write: Write, writer: Writer) -> None:
        key = (writer.client_id, write.op_id) if write.op_id is not None else None
        if key is not None and key in self.op_seqs:
            ack = {"type": "ack", "op_id": write.op_id, "seq": self.op_seqs[key], "duplicate": True}
            self._send(conn, encode(ack))
            return
        try:
            record = self.state_.resolve(write, writer, self.clock(), LIMITS)
        except ProtocolError as refusal:
            self._send(conn, encode(refusal.with_op_id(write.op_id).to_message()))
            return
        self.state_.fold(record)
        self.records.append(record)
        self.retained.append(record)
        if key is not None:
            self.op_seqs[key] = record.seq
        text = encode(record.wire(record.seq - 1))
        for other in self.conns:
            if other is not conn:
                self._send(other, text)
        self._send(
            conn, encode({"type": "ack", "op_id": write.op_id, "seq": record.seq, "ts": record.ts})
        )
        self._maybe_compact()

    def _maybe_compact(self) -> None:
        head = self.state_.seq
        if head - self.snapshot_seq < self.settings.snapshot_every:
            return
        self.snapshot, self.snapshot_seq = self.state_.snapshot(), head
        self.trimmed_upto = max(self.trimmed_upto, head - self.settings.retention)
        self.retained = [r for r in self.retained if r.seq > self.trimmed_upto]
        self.state_.forget_text_history(self.trimmed_upto)

    def notice_close(self, conn: Conn) -> None:
        conn.server_open = False
        self.conns.pop(conn, None)

    async def spin(self, turns: int) -> None:
        return None

    def busy(self) -> bool:
        return False

    async def settle(self, limit: float = 10.0) -> None:
        return None

    async def crash(self) -> None:
        """Restart from the snapshot and the retained log, as a reload does."""
        for conn in list(self.conns):
            conn.server_close(1006)
        self.conns.clear()
        state = GraphState.from_snapshot(self.snapshot) if self.snapshot else GraphState()
        state.remember_text_ops(self.retained, floor=self.trimmed_upto)
        for record in self.retained:
            if record.seq > state.seq:
                state.fold(record)
        self.state_ = state
        self.crashes += 1

    async def restart(self) -> None:
        await self.crash()

    @property
    def head(self) -> int:
        return self.state_.seq

    def state(self) -> Annotations:
        return self.state_.annotations

    def log(self) -> list[Message]:
        return [record.wire(record.seq - 1) for record in self.records]

    def problems(self) -> list[str]:
        return []

    async def reloaded_state(self) -> Annotations:
        await self.crash()
        return self.state_.annotations
