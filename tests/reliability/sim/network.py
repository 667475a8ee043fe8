"""One simulated connection: two FIFO pipes and the two ends' views of it.

The protocol's guarantees are TCP's: frames on one connection arrive in
order, or not at all once it breaks; nothing orders frames of different
connections. A connection broken by the client stays open on the server
until the server notices (a half-open socket): frames already in flight
towards the server may still arrive meanwhile, and everything the server
sends into it is lost.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Closed:
    """The close frame the server sent (or the socket's end after a crash)."""

    code: int


Frame = str | Closed

_ids = itertools.count(1)


@dataclass(eq=False)
class Conn:
    client_id: str
    capacity: int = 1_000_000
    """Frames the socket buffers towards the client before the server's send blocks."""
    id: int = field(default_factory=lambda: next(_ids))
    uplink: deque[str] = field(default_factory=deque)
    downlink: deque[Frame] = field(default_factory=deque)
    client_open: bool = True
    server_open: bool = True
    first_sent: bool = False
    """The server has put the first message (initial_state / catch_up) on the wire."""
    _space: asyncio.Event | None = None

    @property
    def zombie(self) -> bool:
        """Broken by the client, not yet noticed by the server."""
        return self.server_open and not self.client_open

    def space(self) -> asyncio.Event:
        if self._space is None:
            self._space = asyncio.Event()
        return self._space

    def wake(self) -> None:
        """The client read, or the connection broke: blocked sends re-check."""
        if self._space is not None:
            self._space.set()

    async def server_send(self, text: str) -> None:
        """What the server's socket does with one frame: buffer it, block
        while the buffer is full, fail once the connection is gone."""
        while self.server_open and self.client_open and len(self.downlink) >= self.capacity:
            event = self.space()
            event.clear()
            await event.wait()
        if not self.server_open:
            raise ConnectionResetError("connection closed")
        if self.client_open:
            self.downlink.append(text)
            self.first_sent = True

    def server_close(self, code: int) -> None:
        if self.server_open and self.client_open:
            self.downlink.append(Closed(code))
        self.server_open = False
        self.wake()

    def client_break(self, keep_uplink: int) -> None:
        """The client drops the connection: what it had not yet read is lost,
        only the first `keep_uplink` frames in flight may still arrive."""
        self.client_open = False
        self.downlink.clear()
        while len(self.uplink) > keep_uplink:
            self.uplink.pop()
        self.wake()
