"""`protocol_model.ModelClient` over a real WebSocket, for the fault tests.

`LiveClient` connects with the model's `since`, resends its pending writes,
applies every frame to the model, and notes each close code. Resyncs (a gap,
an ack it cannot apply) close the socket; `ensure_connected` or the
`supervise` loop (jittered exponential backoff, as the browser client)
reconnects. `settle` ends a run: every client connected and caught up,
nothing pending, one last write that everyone must see, then the server's
whole log (a catch_up from seq 0) and state (an initial_state) for
`history_check.check_history`.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from .fold_rules import Annotations, Message
from .history_check import HistoryReport, check_history
from .protocol_model import ModelClient
from .workload import Workload

UrlFor = Callable[[str, int | None], str]
"""(client_id, since) -> the WebSocket URL."""

_progress: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Event] = (
    weakref.WeakKeyDictionary()
)


def progress() -> asyncio.Event:
    """Set whenever any live client (of this loop) applies a frame or loses
    its connection."""
    loop = asyncio.get_running_loop()
    event = _progress.get(loop)
    if event is None:
        event = _progress[loop] = asyncio.Event()
    return event


async def wait_until(predicate: Callable[[], bool], within: float, what: str = "condition") -> None:
    """Wait (bounded) until `predicate()` holds, re-checking on every frame."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise TimeoutError(f"timed out after {within} s waiting for {what}")
        progress().clear()
        try:
            await asyncio.wait_for(progress().wait(), min(remaining, 0.25))
        except TimeoutError:
            pass


class LiveClient:
    def __init__(self, model: ModelClient, url_for: UrlFor, *, batch: bool = True) -> None:
        self.model = model
        self.url_for = url_for
        self.batch = batch
        self.ws: ClientConnection | None = None
        self.reader: asyncio.Task[None] | None = None
        self.close_codes: list[int | None] = []
        self.connects = 0
        self.handshakes: list[float] = []
        """Seconds from opening the socket to the first message applied."""
        self.reading = asyncio.Event()
        self.reading.set()
        self.disconnected = asyncio.Event()
        self.disconnected.set()
        self._opened_at = 0.0

    @property
    def connected(self) -> bool:
        return self.ws is not None

    async def connect(self, full: bool = False, within: float = 10.0, **options: Any) -> None:
        since = self.model.open(full=full)
        url = self.url_for(self.model.client_id, since)
        if self.batch:
            url += "&batch=1" if "?" in url else "?batch=1"
        self._opened_at = time.perf_counter()
        try:
            ws = await websockets.connect(
                url, max_size=None, open_timeout=within, ping_interval=None, **options
            )
        except BaseException:
            self.model.close()
            raise
        self.ws = ws
        self.connects += 1
        self.disconnected.clear()
        await self._flush()
        self.reader = asyncio.get_running_loop().create_task(self._read(ws))

    async def ensure_connected(self, full: bool = False) -> None:
        if self.ws is None:
            if self.reader is not None:
                await asyncio.gather(self.reader, return_exceptions=True)
            await self.connect(full=full)

    async def send_new(self) -> None:
        """Send what the model queued (new writes, resends)."""
        await self._flush()

    async def _flush(self) -> None:
        messages = self.model.take_outbox()
        ws = self.ws
        if not messages or ws is None:
            return
        frame = json.dumps(messages if len(messages) > 1 else messages[0])
        try:
            await ws.send(frame)
        except websockets.ConnectionClosed:
            pass  # the reader notices; the writes stay pending and are resent

    async def _read(self, ws: ClientConnection) -> None:
        first = True
        try:
            async for frame in ws:
                await self.reading.wait()
                document = json.loads(frame)
                for message in document if isinstance(document, list) else [document]:
                    self.model.receive(message)
                if first and self.model.synced:
                    first = False
                    self.handshakes.append(time.perf_counter() - self._opened_at)
                if self.model.needs_resync:
                    await ws.close()
                    break
                await self._flush()
                progress().set()
        except websockets.ConnectionClosed:
            pass
        except OSError:
            pass
        finally:
            self.close_codes.append(ws.close_code)
            if self.ws is ws:
                self.ws = None
                self.model.close()
                self.disconnected.set()
            progress().set()

    async def drop(self, abort: bool = True) -> None:
        """Break the connection: abort (a reset, nothing flushed) or close."""
        ws, reader = self.ws, self.reader
        if ws is None:
            return
        self.ws = None
        self.model.close()
        self.disconnected.set()
        if abort:
            ws.transport.abort()
        else:
            await ws.close()
        if reader is not None:
            await asyncio.gather(reader, return_exceptions=True)

    async def supervise(
        self, stop: asyncio.Event, rng: random.Random, base: float = 0.05, cap: float = 2.0
    ) -> None:
        """Reconnect whenever disconnected, with jittered exponential backoff."""
        attempt = 0
        while not stop.is_set():
            if self.ws is None:
                delay = min(cap, base * 2**attempt) * rng.uniform(0.5, 1.5)
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                    return
                except TimeoutError:
                    pass
                try:
                    await self.connect(full=rng.random() < 0.1)
                    attempt = 0
                except (OSError, websockets.InvalidHandshake, TimeoutError):
                    attempt += 1
                continue
            await _first(self.disconnected.wait(), stop.wait())

    async def close(self) -> None:
        await self.drop(abort=False)


async def _first(*waits: Awaitable[object]) -> None:
    tasks = [asyncio.ensure_future(wait) for wait in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


async def keep_writing(
    client: LiveClient, workload: Workload, stop: asyncio.Event, unacked: int = 4
) -> None:
    """Write whenever connected and caught up, with at most `unacked` writes
    unacked; one write in three an OT text edit when there is text to edit."""
    while not stop.is_set():
        model = client.model
        if client.connected and model.synced and len(model.pending) < unacked:
            if not (workload.rng.random() < 0.3 and workload.edit(model)):
                workload.write(model)
            await client.send_new()
            await asyncio.sleep(0)  # let the reader run between writes
            continue
        progress().clear()
        try:
            await asyncio.wait_for(progress().wait(), 0.25)
        except TimeoutError:
            pass


async def fetch_history(url_for: UrlFor) -> tuple[list[Message], Annotations, int]:
    """The server's whole log (catch_up from 0) and state (initial_state)."""
    async with websockets.connect(url_for("verifier-log", 0), max_size=None) as ws:
        catch_up = json.loads(await asyncio.wait_for(ws.recv(), 30))
    assert catch_up["type"] == "catch_up", f"the log was trimmed: {catch_up['type']}"
    state, head = await fetch_state(url_for)
    return catch_up["ops"], state, head


async def fetch_state(url_for: UrlFor) -> tuple[Annotations, int]:
    """The server's state as a new client gets it (initial_state)."""
    async with websockets.connect(url_for("verifier-state", None), max_size=None) as ws:
        initial = json.loads(await asyncio.wait_for(ws.recv(), 30))
    assert initial["type"] == "initial_state"
    return initial["data"], initial["seq"]


async def drive(
    clients: list[LiveClient], done: Callable[[], bool], within: float, what: str
) -> None:
    """Wait (bounded) until `done()`, reconnecting clients that lost their
    connection and resending pending writes whose ack is overdue."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not done():
        if loop.time() > deadline:
            raise TimeoutError(f"{what}: {_stuck(clients)}")
        for client in clients:
            if not client.connected:
                try:
                    await client.ensure_connected()
                except (OSError, websockets.InvalidHandshake, TimeoutError):
                    pass
        try:
            await wait_until(done, min(2.0, max(0.1, deadline - loop.time())), what)
        except TimeoutError:
            for client in clients:  # the ack timer: resend what is overdue
                if client.connected and client.model.synced and client.model.pending:
                    for op_id in sorted(client.model.pending):
                        client.model.resend(op_id)
                    await client.send_new()


History = Callable[[], Awaitable[tuple[list[Message], Annotations]]]
"""The server's whole log and its state, however a test can get them."""


async def settle(
    clients: Iterable[LiveClient],
    url_for: UrlFor,
    within: float = 60.0,
    history: History | None = None,
    agree_within: float | None = None,
) -> tuple[HistoryReport, float]:
    """Reconnect everyone, resend until nothing is pending, make one last
    write everyone must see, then check the whole history (by default a
    catch_up from seq 0: the log must not be trimmed). `agree_within`: how
    long every client may take to reach the last write once it is acked.
    Returns the report and the seconds that took."""
    clients = list(clients)

    def caught_up() -> bool:
        return all(c.connected and c.model.synced and c.model.settled for c in clients)

    await drive(clients, caught_up, within, "clients settled")
    last = clients[0]
    op_id = last.model.update({"id": "final", "label": f"{time.time():.3f}"})
    await last.send_new()
    await drive(clients, lambda: op_id in last.model.acked, within, "the last write's ack")
    acked_at = time.perf_counter()
    head = last.model.acked[op_id]
    await drive(
        clients,
        lambda: all(c.model.seq >= head and c.model.settled for c in clients),
        agree_within or within,
        "every client at the last write",
    )
    agreed_after = time.perf_counter() - acked_at
    if history is None:
        log, state, _ = await fetch_history(url_for)
    else:
        log, state = await history()
    report = check_history(log, [c.model for c in clients], state)
    return report, agreed_after


def _stuck(clients: list[LiveClient]) -> str:
    lines = []
    for c in clients:
        m = c.model
        if not (c.connected and m.synced and m.settled):
            lines.append(
                f"{m.client_id}: connected={c.connected} synced={m.synced} "
                f"pending={len(m.pending)} seq={m.seq} closes={c.close_codes[-3:]}"
            )
    return "clients not settled:\n" + "\n".join(lines)
