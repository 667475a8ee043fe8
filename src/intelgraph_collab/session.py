"""One connected client as the room sees it: identity, clearance, outbound queue.

The room never awaits a client's socket: it puts encoded messages on the
session's bounded queue and returns. What happens to the queue depends on
the transport: `TaskSession` (any coroutine transport, e.g. ASGI) drains it
from its own writer task; `websocket.native.TransportSession` (the served
fast path) writes it to the socket's transport once per loop turn. Either
sends what has piled up as one frame (a JSON array) to clients that accept
batches. A reader too slow for its queue is closed with 1013; it comes back
with `since` and loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from .sync.views import Clearance

log = logging.getLogger(__name__)

SendText = Callable[[str], Awaitable[None]]
Close = Callable[[int, str], Awaitable[None]]

CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_TRY_AGAIN = 1013
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a session is and what it may do; fixed for the session's life."""

    client_id: str
    user: str | None
    role: str = "editor"
    clearance: Clearance = None
    """None: may see every enclave (auth off)."""
    authenticated: bool = False
    """`user` comes from a verified token (auth on)."""


class Session:
    """What every transport's session shares: who it is, its bounded queue,
    and the overflow and close rules. Subclasses decide how the queue reaches
    the socket (`_wake`, `start`, `_send_close`, `detach`, `flush`)."""

    def __init__(
        self, identity: Identity, *, batch: bool, max_queue: int = 10_000, max_batch: int = 512
    ) -> None:
        self.identity = identity
        self.batch = batch
        self._max_queue = max_queue
        self._max_batch = max_batch if batch else 1
        self._queue: deque[str] = deque()
        self.closed = False
        self.close_code: int | None = None
        self.on_slow_reader: Callable[[Session], None] | None = None
        """Called when the session is closed 1013 for a full queue (metrics, logs)."""

    @property
    def client_id(self) -> str:
        return self.identity.client_id

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    def enqueue(self, text: str) -> None:
        """Queue one encoded message. Never blocks; closes the session (1013) on overflow."""
        if self.closed:
            return
        if len(self._queue) >= self._max_queue:
            self._queue.clear()
            self.close(CLOSE_TRY_AGAIN, "reader too slow; reconnect with since")
            if self.on_slow_reader is not None:
                self.on_slow_reader(self)
            return
        self._queue.append(text)
        self._wake()

    def _next_frame(self) -> str:
        """Take the next frame's text off the non-empty queue: one message, or
        up to `max_batch` of them as a JSON array for a batching client."""
        queue = self._queue
        if len(queue) == 1 or self._max_batch == 1:
            return queue.popleft()
        count = min(len(queue), self._max_batch)
        return "[" + ",".join([queue.popleft() for _ in range(count)]) + "]"

    def _wake(self) -> None:
        """Something was queued: see that it gets sent."""
        raise NotImplementedError

    def start(self, first: str) -> None:
        """Put the first message (initial_state or catch_up) ahead of anything
        queued since the session joined, and start sending."""
        raise NotImplementedError

    def close(self, code: int, reason: str) -> None:
        """Close the connection with `code`; idempotent. Nothing queued is sent after this."""
        if self.closed:
            return
        self.closed = True
        self.close_code = code
        self._queue.clear()
        self._send_close(code, reason)

    def _send_close(self, code: int, reason: str) -> None:
        """Start the transport's closing handshake (once, from `close`)."""
        raise NotImplementedError

    def detach(self) -> None:
        """The connection is gone (the transport saw it end): stop sending,
        queue nothing more."""
        self.closed = True
        self._queue.clear()

    async def flush(self, within: float) -> None:
        """Wait, at most `within` seconds, until the queue is sent (before a
        graceful close)."""
        raise NotImplementedError


class TaskSession(Session):
    """A session over coroutine send/close functions (the ASGI route, tests):
    its own writer task drains the queue."""

    def __init__(
        self,
        identity: Identity,
        send_text: SendText,
        close: Close,
        *,
        batch: bool,
        max_queue: int = 10_000,
        max_batch: int = 512,
    ) -> None:
        super().__init__(identity, batch=batch, max_queue=max_queue, max_batch=max_batch)
        self._send_text = send_text
        self._close = close
        self._ready = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._writer: asyncio.Task[None] | None = None

    def _wake(self) -> None:
        self._ready.set()

    def start(self, first: str) -> None:
        if self.closed:
            return
        self._queue.appendleft(first)
        self._ready.set()
        self._writer = asyncio.get_running_loop().create_task(self._drain())

    def _send_close(self, code: int, reason: str) -> None:
        # The writer is not cancelled mid-frame (that would leave the
        # connection's framing broken): it stops after its current send.
        self._ready.set()
        asyncio.get_running_loop().create_task(self._close_quietly(code, reason))

    def detach(self) -> None:
        # Without the wake-up the writer would wait for the next message
        # forever, until the GC destroyed it pending.
        super().detach()
        self._ready.set()

    async def _close_quietly(self, code: int, reason: str) -> None:
        with contextlib.suppress(Exception):
            await self._close(code, reason)

    async def _drain(self) -> None:
        queue = self._queue
        try:
            while not self.closed:
                if not queue:
                    self._drained.set()
                    self._ready.clear()
                    await self._ready.wait()
                    continue
                self._drained.clear()
                await self._send_text(self._next_frame())
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the socket went away; the reader side notices too
            log.debug("send to %s failed: %r", self.client_id, exc)
            self.closed = True
        finally:
            self._drained.set()

    async def flush(self, within: float) -> None:
        if self._writer is None or not self._queue:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self._drained.wait()
