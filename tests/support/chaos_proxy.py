"""A small asyncio TCP proxy that injects network faults between clients and
the server: latency, stalls, connection resets, and frames sliced into tiny
TCP segments.

Every accepted connection gets its own upstream connection; each direction
is pumped chunk by chunk, in order (TCP's guarantee is kept: bytes are
delayed, split or cut off with the connection, never reordered or lost on a
live connection). Faults are drawn from a seeded generator, per chunk:

- latency: each chunk waits `latency` seconds (uniform in the range);
- slicing: a chunk is written as pieces of 1..`slice_max` bytes, each
  flushed on its own, so WebSocket frames (and their headers) straddle
  reads on the far side;
- stall: the direction stops for `stall` seconds (a frozen peer or a
  congested link), while the other one goes on;
- reset: both sides are aborted (RST), whatever was in flight is lost.

`calm()` turns every fault off (connections keep working) so that a test
can let the system converge and then check it.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass, field


@dataclass
class ChaosSettings:
    latency: tuple[float, float] = (0.0, 0.0)
    slice_max: int = 0
    """0: chunks go through whole."""
    slice_chance: float = 0.0
    stall_chance: float = 0.0
    stall: tuple[float, float] = (0.05, 0.3)
    reset_chance: float = 0.0


@dataclass
class ChaosCounters:
    connections: int = 0
    chunks: int = 0
    delayed_chunks: int = 0
    sliced_chunks: int = 0
    slices: int = 0
    stalls: int = 0
    resets: int = 0
    bytes_up: int = 0
    bytes_down: int = 0


@dataclass(eq=False)
class _Pair:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def abort(self) -> None:
        for writer in (self.client, self.upstream):
            transport = writer.transport
            if not transport.is_closing():
                transport.abort()


class ChaosProxy:
    def __init__(self, upstream_port: int, settings: ChaosSettings, seed: int = 0) -> None:
        self.upstream_port = upstream_port
        self.settings = settings
        self.rng = random.Random(seed)
        self.counters = ChaosCounters()
        self.port = 0
        self._server: asyncio.Server | None = None
        self._pairs: set[_Pair] = set()
        self._calm = False

    async def start(self) -> ChaosProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def calm(self) -> None:
        """No more faults; open connections go on as a plain proxy."""
        self._calm = True

    def reset_all(self) -> None:
        """Abort every open connection at once (an outage of the link)."""
        for pair in list(self._pairs):
            self.counters.resets += 1
            pair.abort()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for pair in list(self._pairs):
            pair.abort()
            for task in pair.tasks:
                task.cancel()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.transport.abort()
            return
        self.counters.connections += 1
        pair = _Pair(writer, up_writer)
        self._pairs.add(pair)
        loop = asyncio.get_running_loop()
        pair.tasks = [
            loop.create_task(self._pump(reader, up_writer, pair, upstream=True)),
            loop.create_task(self._pump(up_reader, writer, pair, upstream=False)),
        ]
        await asyncio.gather(*pair.tasks, return_exceptions=True)
        self._pairs.discard(pair)
        pair.abort()

    async def _pump(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, pair: _Pair, upstream: bool
    ) -> None:
        settings, rng, counters = self.settings, self.rng, self.counters
        try:
            while True:
                data = await source.read(65536)
                if not data:
                    if sink.can_write_eof():
                        sink.write_eof()
                    return
                counters.chunks += 1
                if upstream:
                    counters.bytes_up += len(data)
                else:
                    counters.bytes_down += len(data)
                if not self._calm:
                    if rng.random() < settings.reset_chance:
                        counters.resets += 1
                        pair.abort()
                        return
                    if rng.random() < settings.stall_chance:
                        counters.stalls += 1
                        await asyncio.sleep(rng.uniform(*settings.stall))
                    low, high = settings.latency
                    if high > 0:
                        counters.delayed_chunks += 1
                        await asyncio.sleep(rng.uniform(low, high))
                    if settings.slice_max and rng.random() < settings.slice_chance:
                        counters.sliced_chunks += 1
                        position = 0
                        while position < len(data):
                            size = rng.randint(1, settings.slice_max)
                            sink.write(data[position : position + size])
                            await sink.drain()
                            counters.slices += 1
                            position += size
                        continue
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pair.abort()
