"""A TCP proxy that a test can cut and restore: a network outage between
server nodes and a service, without stopping the service (others use it).

It runs its own event loop on a thread, so it works the same under a test's
event loop, a synchronous test, or server subprocesses pointed at it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._cut = False
        self._links: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    def start(self) -> TcpProxy:
        self._thread.start()
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        self.port = listener.getsockname()[1]
        self._server = self._call(asyncio.start_server(self._serve, sock=listener))
        return self

    def _call(self, coroutine: object) -> asyncio.Server:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)  # type: ignore[arg-type]

    def cut(self) -> None:
        """Break every open connection; refuse new ones (accept, then close) until restored."""

        def work() -> None:
            self._cut = True
            for writer in list(self._links):
                writer.transport.abort()
            self._links.clear()

        self._loop.call_soon_threadsafe(work)
        done = threading.Event()
        self._loop.call_soon_threadsafe(done.set)
        done.wait(10)

    def restore(self) -> None:
        self._loop.call_soon_threadsafe(setattr, self, "_cut", False)
        done = threading.Event()
        self._loop.call_soon_threadsafe(done.set)
        done.wait(10)

    def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._cut:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._links.update((writer, up_writer))
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(65536):
                writer.write(chunk)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._links.discard(writer)
            with contextlib.suppress(Exception):
                writer.transport.abort()
