"""One live graph: its state, its sequencer, its sessions.

Everything that changes a graph runs on the room's single sequencer task,
so there are no locks: the task takes what has arrived (joins, writes,
records from other nodes), resolves the writes against the state with the
pure engine, appends the records to the store in one commit (group commit:
whatever arrives during a commit goes in the next one), then acks each
writer and puts each broadcast, encoded once per audience, on every other
session's queue. A session joins between two commits, when the state is
exactly the committed log, so its first message and the broadcasts after
it meet with no gap and no overlap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .audiences import Audiences, encode
from .fanout.base import FanOut, PresenceEntry
from .fanout.inbox import FellBehind, RemoteInbox
from .metrics import Metrics
from .presence import PresenceRelay
from .session import CLOSE_TRY_AGAIN, Session
from .store.base import OpKey, Store, StoredGraph
from .sync.engine import GraphState, Writer
from .sync.errors import ProtocolError
from .sync.limits import Limits
from .sync.messages import Write
from .sync.policy import authorize_write, target_id
from .sync.records import OpRecord
from .sync.views import Clearance, catch_up_of, initial_state_of

__all__ = ["Room", "RoomClosed", "RoomSettings", "WriteOutcome", "PreconditionFailed", "encode"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RoomSettings:
    retention: int = 20_000
    """Records kept in the log past the latest snapshot, for catch-up and OT."""
    snapshot_every: int = 1_000
    """Snapshot after this many records (or a quarter of the annotation
    count, whichever is more, so big graphs are not re-encoded too often)."""
    recent_cache: int = 20_000
    """Records held in memory to answer catch-up without the store."""
    op_id_cache: int = 100_000
    """(client_id, op_id) pairs held in memory for dedupe; older ones are
    looked up in the store."""


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    seq: int
    duplicate: bool
    record: OpRecord | None
    """The applied record (None for a duplicate)."""


class PreconditionFailed(ProtocolError):
    """A write made conditional on the annotation's `seq` (REST `If-Match`)
    found it at another seq: it changed since the caller read it."""

    def __init__(self, message: str, op_id: str | None = None) -> None:
        super().__init__("conflict", message, op_id)


@dataclass
class _PendingWrite:
    write: Write
    writer: Writer
    session: Session | None
    result: asyncio.Future[WriteOutcome] | None
    expected_seq: int | None = None
    """Apply only if the annotation's `seq` is this (checked in sequence, so race-free)."""
    received: float = field(default_factory=time.perf_counter)


class RoomClosed(Exception):
    """The room failed (its store did) and closed its sessions; reconnect."""


class Room:
    def __init__(
        self,
        graph_id: str,
        store: Store,
        limits: Limits,
        settings: RoomSettings,
        metrics: Metrics,
        clock: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        *,
        fanout: FanOut | None = None,
    ) -> None:
        self.graph_id = graph_id
        self.fanout = fanout
        """Other nodes of the cluster (None, or a solo fan-out: this node is alone)."""
        self._inbox = RemoteInbox()
        self.store = store
        self.limits = limits
        self.settings = settings
        self.metrics = metrics
        self.clock = clock
        self.state = GraphState()
        self.trimmed_upto = 0
        self.snapshot_seq = 0
        self.recent: deque[OpRecord] = deque(maxlen=settings.recent_cache)
        self._op_seqs: dict[OpKey, int] = {}
        self._writer_cached: dict[str, bool] = {}
        """Per writer (an OpKey's first part): True while every op id it ever had
        accepted in this graph is in `_op_seqs` (the store held none of them when
        first asked, and none was evicted since), so a cache miss is a new write
        and the store need not be asked. Records from other nodes are folded
        (and remembered) before a batch is resolved, so this holds in a cluster."""
        self._audiences = Audiences()
        self.presence = PresenceRelay(
            graph_id, self._audiences, self.state.annotations, limits, fanout
        )
        self._writes: list[_PendingWrite] = []
        self._joins: list[tuple[Session, int | None]] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self.failed = False
        self._committing = False

    # -- lifecycle --------------------------------------------------------

    async def load(self) -> None:
        # Subscribe before reading the store: nothing committed elsewhere in
        # between is missed (what is already in the state is dropped by seq).
        if self.fanout is not None:
            await self.fanout.subscribe(self.graph_id, self)
        try:
            stored = await self.store.load(self.graph_id)
        except BaseException:
            if self.fanout is not None:
                await self.fanout.unsubscribe(self.graph_id, self)
            raise
        self._restore(stored)
        if self.fanout is not None:
            self.presence.remember_remote(await self.fanout.presence(self.graph_id))
        self._task = asyncio.get_running_loop().create_task(self._sequencer())

    def _restore(self, stored: StoredGraph) -> None:
        state = GraphState.from_snapshot(stored.snapshot) if stored.snapshot else GraphState()
        # Before folding: it rebuilds the text history of the records the
        # snapshot already holds; fold adds those after it (twice would make
        # every later text op transform against the same op twice).
        state.remember_text_ops(stored.records, floor=stored.trimmed_upto)
        for record in stored.records:
            if record.seq > state.seq:
                state.fold(record)
        self.state = state
        self.presence.annotations = state.annotations
        self.trimmed_upto = stored.trimmed_upto
        self.snapshot_seq = stored.snapshot_seq
        self.recent.extend(stored.records)

    @property
    def head(self) -> int:
        return self.state.seq

    @property
    def sessions(self) -> list[Session]:
        return self._audiences.sessions

    @property
    def idle(self) -> bool:
        # The sequencer takes the queued writes before committing them: a
        # commit in flight is not idle (unloading now would cancel it).
        return not self._audiences and not self._writes and not self._joins and not self._committing

    async def stop(self) -> None:
        """Finish what is queued and the commit in flight, then stop the sequencer."""
        while self._writes or self._joins or self._committing:
            self._wakeup.set()
            await asyncio.sleep(0.005)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            # The cancelled task keeps its CancelledError, whose traceback
            # holds the sequencer's frame, which holds this room (and its last
            # batch's sessions): dropping the task breaks that cycle, so the
            # unloaded room is freed now, not at the next full collection.
            self._task = None
        for task in list(self._background):
            with contextlib.suppress(Exception):
                await task
        if self.fanout is not None:
            await self.fanout.unsubscribe(self.graph_id, self)

    # -- what transports call ---------------------------------------------

    def join(self, session: Session, since: int | None) -> None:
        """Subscribe `session`; its first message is queued between two commits."""
        if self.failed:
            session.close(CLOSE_TRY_AGAIN, "graph unavailable; reconnect")
            return
        self._joins.append((session, since))
        self._wakeup.set()

    def leave(self, session: Session) -> None:
        self._audiences.remove(session)
        self._joins = [(s, since) for s, since in self._joins if s is not session]
        self.presence.leave(session)

    def submit(
        self,
        write: Write,
        writer: Writer,
        session: Session | None,
        *,
        want_result: bool = False,
        expected_seq: int | None = None,
    ) -> asyncio.Future[WriteOutcome] | None:
        """Queue a write for the next commit. Its ack (or error) goes to
        `session`; a REST caller asks for a future instead. With
        `expected_seq`, the write is refused with PreconditionFailed unless
        the annotation it targets is at that seq when it is sequenced."""
        result: asyncio.Future[WriteOutcome] | None = None
        if want_result:
            result = asyncio.get_running_loop().create_future()
        if self.failed:
            error = ProtocolError("conflict", "graph unavailable; retry")
            if result is not None:
                result.set_exception(RoomClosed(error.message))
            return result
        self._writes.append(_PendingWrite(write, writer, session, result, expected_seq))
        self._wakeup.set()
        return result

    def set_presence(self, session: Session, state: dict[str, Any]) -> None:
        """Relay `state` to the others (see presence.py); ProtocolError if too large."""
        self.presence.set(session, state)

    # -- the sequencer ----------------------------------------------------

    async def _sequencer(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            if self._joins and self._behind_a_joiner():
                self._inbox.want_resync()  # it wrote on another node: catch up first
            if self._inbox:
                try:
                    self._fold_remote(await self._inbox.drain(self.head, self._read_since))
                except FellBehind as exc:
                    self._fail([], exc)
                    return
                except Exception as exc:  # the store is down: the inbox keeps it; retry
                    log.warning("graph %s: back-fill failed, retrying: %r", self.graph_id, exc)
                    asyncio.get_running_loop().call_later(1.0, self._wakeup.set)
            if self._joins:
                joins, self._joins = self._joins, []
                for session, since in joins:
                    self._serve_join(session, since)
            if self._writes:
                writes, self._writes = self._writes, []
                self._committing = True
                try:
                    await self._commit(writes)
                except Exception as exc:
                    self._fail(writes, exc)
                    return
                finally:
                    self._committing = False

    async def _commit(self, pending: list[_PendingWrite]) -> None:
        started = time.perf_counter()
        known = await self._lookup_duplicates(pending)
        outcomes: list[WriteOutcome | ProtocolError] = []

        def build(missed: list[OpRecord]) -> list[OpRecord]:
            # Records other nodes appended after our head are folded first;
            # only then are our writes resolved, against the latest state.
            self._fold_remote(missed)
            records: list[OpRecord] = []
            for item in pending:
                outcomes.append(self._resolve(item, known, records))
            return records

        head_before = self.state.seq
        records = await self.store.append(self.graph_id, head_before, build)
        if records and self.fanout is not None and not self.fanout.solo:
            self.fanout.publish(self.graph_id, records)
        self.metrics.commit(len(records), time.perf_counter() - started)
        self.recent.extend(records)
        # In seq order, each write's broadcast and its writer's ack together:
        # every client receives acks and broadcasts in seq order.
        for item, outcome in zip(pending, outcomes, strict=True):
            if isinstance(outcome, WriteOutcome) and outcome.record is not None:
                self._audiences.broadcast(outcome.record, item.session)
                self._answer(item, outcome)
                self.metrics.fanout(time.perf_counter() - item.received)
            else:
                self._answer(item, outcome)
        self._maybe_compact()

    async def _lookup_duplicates(self, pending: list[_PendingWrite]) -> dict[OpKey, int]:
        """The seq of every write in `pending` applied before, from the cache or
        the store. Taken from the cache now: resolving the batch evicts from it."""
        known: dict[OpKey, int] = {}
        misses: list[OpKey] = []
        for item in pending:
            if item.write.op_id is not None:
                key = item.writer.op_key(item.write.op_id)
                seq = self._op_seqs.get(key)
                if seq is None:
                    misses.append(key)
                else:
                    known[key] = seq
        if misses:
            misses = await self._drop_new_writes(misses)
        if misses:
            known.update(await self.store.find_ops(self.graph_id, misses))
        return known

    async def _drop_new_writes(self, misses: list[OpKey]) -> list[OpKey]:
        """`misses` without those of writers whose every op id is cached (see
        `_writer_cached`): one store query per writer for the room's life
        instead of one per write."""
        unknown = sorted({writer for writer, _ in misses} - self._writer_cached.keys())
        if unknown:
            with_ops = await self.store.writers_with_ops(self.graph_id, unknown)
            if len(self._writer_cached) + len(unknown) > self.settings.op_id_cache:
                self._writer_cached.clear()  # bounded: forgotten writers are asked again
            for writer in unknown:
                self._writer_cached[writer] = writer not in with_ops
        return [key for key in misses if not self._writer_cached.get(key[0])]

    def _resolve(
        self, item: _PendingWrite, known: dict[OpKey, int], records: list[OpRecord]
    ) -> WriteOutcome | ProtocolError:
        op_id = item.write.op_id
        key = item.writer.op_key(op_id) if op_id is not None else None
        if key is not None:
            seq = self._op_seqs.get(key) or known.get(key)
            if seq is not None:
                self.metrics.write_duplicate()
                return WriteOutcome(seq, True, None)
        # Role and clearance first: no later answer (a precondition's seq, a
        # conflict) may tell a writer about an annotation it may not see.
        target = target_id(item.write)
        try:
            existing = None if target is None else self.state.annotations.get(target)
            authorize_write(item.write, item.writer, existing)
        except ProtocolError as refusal:
            self.metrics.write_refused(item.write.type, refusal.code)
            return refusal.with_op_id(op_id)
        if item.expected_seq is not None:
            current_seq = None if existing is None else existing.get("seq")
            if current_seq != item.expected_seq:
                self.metrics.write_refused(item.write.type, "conflict")
                found = "does not exist" if current_seq is None else f"is at seq {current_seq}"
                return PreconditionFailed(f"the annotation {found}, not {item.expected_seq}", op_id)
        try:
            record = self.state.resolve(item.write, item.writer, self.clock(), self.limits)
        except ProtocolError as refusal:
            self.metrics.write_refused(item.write.type, refusal.code)
            return refusal.with_op_id(op_id)
        self.state.fold(record)
        records.append(record)
        if key is not None:
            known[key] = record.seq  # a copy later in this batch is a duplicate
            self._remember_op(key, record.seq)
        self.metrics.write_accepted(record.type)
        return WriteOutcome(record.seq, False, record)

    def _remember_op(self, key: OpKey, seq: int) -> None:
        self._op_seqs[key] = seq
        if len(self._op_seqs) > self.settings.op_id_cache:
            evicted = next(iter(self._op_seqs))
            del self._op_seqs[evicted]
            if self._writer_cached.get(evicted[0]):
                self._writer_cached[evicted[0]] = False  # its misses must be looked up again

    def _answer(self, item: _PendingWrite, outcome: WriteOutcome | ProtocolError) -> None:
        if item.session is not None:
            if isinstance(outcome, ProtocolError):
                item.session.enqueue(encode(outcome.to_message()))
            else:
                ack: dict[str, Any] = {"type": "ack", "op_id": item.write.op_id, "seq": outcome.seq}
                if outcome.duplicate:
                    ack["duplicate"] = True
                elif outcome.record is not None:
                    ack["ts"] = outcome.record.ts
                item.session.enqueue(encode(ack))
        if item.result is not None and not item.result.done():
            if isinstance(outcome, ProtocolError):
                item.result.set_exception(outcome)
            else:
                item.result.set_result(outcome)

    # -- other nodes (cluster mode; the fan-out calls these) ---------------

    def on_records(self, records: list[OpRecord]) -> None:
        if not self.failed:
            self._inbox.add(records)
            self._wakeup.set()

    def on_resync(self) -> None:
        if not self.failed:
            self._inbox.want_resync()
            self._wakeup.set()

    def on_presence(self, entry: PresenceEntry) -> None:
        self.presence.on_remote(entry)

    def on_presence_leave(self, client_id: str) -> None:
        self.presence.on_remote_leave(client_id)

    def _behind_a_joiner(self) -> bool:
        """A joiner has seen more than this node has (cluster mode only)."""
        if self.fanout is None or self.fanout.solo:
            return False
        return any(since is not None and since > self.head for _, since in self._joins)

    async def _read_since(self, seq: int) -> list[OpRecord]:
        return await self.store.records_since(self.graph_id, seq)

    def _fold_remote(self, records: list[OpRecord]) -> None:
        """Apply records other nodes committed (they follow the head) and announce them."""
        for record in records:
            self.state.fold(record)
            if record.op_key is not None:  # dedupe a write resent here after a failover
                self._remember_op(record.op_key, record.seq)
        if records:
            self._after_commit_remote(records)

    def _after_commit_remote(self, records: list[OpRecord]) -> None:
        """Announce records appended by other nodes (cluster mode)."""
        self.recent.extend(records)
        for record in records:
            self._audiences.broadcast(record, None)

    def _fail(self, pending: list[_PendingWrite], exc: Exception) -> None:
        """The store failed mid-commit: the in-memory state may be ahead of
        the durable log, so drop it all. Nothing was acked; clients reconnect
        with `since` and resend their pending writes."""
        log.error("graph %s: commit failed, closing the room: %r", self.graph_id, exc)
        self.failed = True
        for item in pending + self._writes:
            if item.result is not None and not item.result.done():
                item.result.set_exception(RoomClosed(str(exc)))
        self._writes.clear()
        for session in self.sessions + [s for s, _ in self._joins]:
            session.close(CLOSE_TRY_AGAIN, "storage unavailable; reconnect")
        self._audiences.clear()
        self._joins.clear()

    # -- joining ----------------------------------------------------------

    def _serve_join(self, session: Session, since: int | None) -> None:
        clearance = session.identity.clearance
        self._audiences.add(session, self.head)
        head = self.head
        if since is None or since > head or since < self.trimmed_upto:
            self.metrics.joined("initial_state")
            session.start(self._initial_state(clearance))
        elif not self.recent or self.recent[0].seq <= since + 1 or since == head:
            self.metrics.joined("catch_up")
            records = [record for record in self.recent if since < record.seq <= head]
            session.start(self._catch_up(records, clearance, since, head))
        else:
            self.metrics.joined("catch_up")
            task = asyncio.get_running_loop().create_task(
                self._catch_up_from_store(session, clearance, since, head)
            )
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        self.presence.send_snapshot(session)

    async def _catch_up_from_store(
        self, session: Session, clearance: Clearance, since: int, head: int
    ) -> None:
        try:
            records = await self.store.records_since(self.graph_id, since, head)
        except Exception as exc:
            log.warning("graph %s: catch-up read failed: %r", self.graph_id, exc)
            session.close(CLOSE_TRY_AGAIN, "storage unavailable; reconnect")
            return
        if len(records) != head - since:  # trimmed meanwhile: fall back to the state
            with contextlib.suppress(Exception):  # maybe by another node: learn how far
                self.trimmed_upto = max(
                    self.trimmed_upto, await self.store.trimmed_upto(self.graph_id)
                )
            session.close(CLOSE_TRY_AGAIN, "log compacted during catch-up; reconnect")
            return
        session.start(self._catch_up(records, clearance, since, head))

    def _initial_state(self, clearance: Clearance) -> str:
        return encode(initial_state_of(self.state.annotations, self.head, clearance))

    def _catch_up(
        self, records: list[OpRecord], clearance: Clearance, since: int, head: int
    ) -> str:
        return encode(catch_up_of(records, clearance, since, head))

    # -- compaction -------------------------------------------------------

    def _maybe_compact(self) -> None:
        threshold = max(self.settings.snapshot_every, len(self.state.annotations) // 4)
        if self.head - self.snapshot_seq < threshold:
            return
        seq, blob = self.head, self.state.snapshot()
        trim_upto = max(self.trimmed_upto, seq - self.settings.retention)
        self.snapshot_seq = seq
        task = asyncio.get_running_loop().create_task(self._save_snapshot(seq, blob, trim_upto))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _save_snapshot(self, seq: int, blob: bytes, trim_upto: int) -> None:
        try:
            await self.store.save_snapshot(self.graph_id, seq, blob, trim_upto)
        except Exception as exc:  # the log still holds everything; retry at the next threshold
            log.warning("graph %s: snapshot failed: %r", self.graph_id, exc)
            return
        self.trimmed_upto = trim_upto
        self.state.forget_text_history(trim_upto)
