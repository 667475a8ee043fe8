"""A TCP proxy that a test can cut and restore: a network outage between
server nodes and a service, without stopping the service (others use it).

The proxy runs in a process of its own (`python -m tests.conformance.tcp_proxy
HOST PORT`), so relaying bytes never competes with the test's own event
loop for the interpreter; the test drives it over its stdin/stdout: it
prints its port, then answers each command (`cut`, `restore`) with `ok`
once done. Cutting breaks every open connection and refuses new ones
(accepted, then closed at once) until restored.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys

from tests.support.server import REPO


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> TcpProxy:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.conformance.tcp_proxy", *map(str, self.target)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        assert self._process.stdout is not None
        self.port = int(self._process.stdout.readline())
        return self

    def _command(self, command: str) -> None:
        process = self._process
        assert process is not None and process.stdin is not None and process.stdout is not None
        process.stdin.write(command + "\n")
        process.stdin.flush()
        answer = process.stdout.readline().strip()
        if answer != "ok":
            raise RuntimeError(f"proxy answered {answer!r} to {command!r}")

    def cut(self) -> None:
        self._command("cut")

    def restore(self) -> None:
        self._command("restore")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(10)


class _Relay:
    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.cut = False
        self.links: set[asyncio.StreamWriter] = set()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.links.update((writer, up_writer))
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(65536):
                writer.write(chunk)
                await writer.drain()
        except OSError:
            pass
        finally:
            self.links.discard(writer)
            with contextlib.suppress(Exception):
                writer.transport.abort()

    def break_all(self) -> None:
        self.cut = True
        for writer in list(self.links):
            writer.transport.abort()
        self.links.clear()


async def _main(host: str, port: int) -> None:
    relay = _Relay(host, port)
    server = await asyncio.start_server(relay.serve, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        command = line.strip()
        if command == "cut":
            relay.break_all()
        elif command == "restore":
            relay.cut = False
        print("ok", flush=True)
    server.close()


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1], int(sys.argv[2])))
