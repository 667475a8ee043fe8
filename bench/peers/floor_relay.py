"""The floor: the thinnest WebSocket relay we can write, the transport limit.

No parsing of messages, no storage, no framework: an asyncio Protocol on
uvloop that completes the handshake, sends an empty `initial_state` (so the
load generator's naive-protocol clients start as they do against the
original relay), then for every data frame unmasks it and writes the same
bytes, framed once, to every other socket of the same path. Whatever our
server costs above this is the price of parsing, validation, ordering,
durability and fan-out logic.

    python bench/peers/floor_relay.py --host 127.0.0.1 --port 8006
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import struct
from typing import cast

try:
    from websockets.speedups import apply_mask  # C, from the websockets package
except ImportError:  # pragma: no cover

    def apply_mask(data: bytes, mask: bytes) -> bytes:
        n = len(data)
        key = int.from_bytes((mask * (n // 4 + 1))[:n], "little")
        return (int.from_bytes(data, "little") ^ key).to_bytes(n, "little")


GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
INITIAL = b'{"type":"initial_state","seq":0,"data":{}}'
rooms: dict[bytes, set[Relay]] = {}


def frame(b0: int, payload: bytes) -> bytes:
    """A server frame (unmasked) whose first byte (FIN, opcode) is b0."""
    n = len(payload)
    if n < 126:
        return bytes((b0, n)) + payload
    if n < 65536:
        return bytes((b0, 126)) + struct.pack("!H", n) + payload
    return bytes((b0, 127)) + struct.pack("!Q", n) + payload


class Relay(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.room: set[Relay] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but quack alike.
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.room is not None:
            self.room.discard(self)

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        if self.room is None:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buf = buf
                return
            self.handshake(buf[:end])
            buf = buf[end + 4 :]
        pos, size = 0, len(buf)
        while size - pos >= 6:
            b0, b1 = buf[pos], buf[pos + 1]
            n, head = b1 & 0x7F, 2
            if n == 126:
                if size - pos < 8:
                    break
                n, head = struct.unpack_from("!H", buf, pos + 2)[0], 4
            elif n == 127:
                if size - pos < 14:
                    break
                n, head = struct.unpack_from("!Q", buf, pos + 2)[0], 10
            end = pos + head + 4 + n
            if end > size:
                break
            mask = buf[pos + head : pos + head + 4]
            payload = apply_mask(buf[pos + head + 4 : end], mask)
            pos = end
            opcode = b0 & 0x0F
            if opcode in (1, 2, 0):
                out = frame(b0 & 0x8F, payload)
                for peer in self.room or ():
                    if peer is not self and peer.transport is not None:
                        peer.transport.write(out)
            elif opcode == 9:
                assert self.transport is not None
                self.transport.write(frame(0x8A, payload))
            elif opcode == 8:
                assert self.transport is not None
                self.transport.write(frame(0x88, payload[:2]))
                self.transport.close()
                return
        self.buf = buf[pos:]

    def handshake(self, head: bytes) -> None:
        assert self.transport is not None
        lines = head.split(b"\r\n")
        path = lines[0].split(b" ")[1].split(b"?")[0]
        key = b""
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"sec-websocket-key":
                key = value.strip()
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        self.transport.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
            + frame(0x81, INITIAL)
        )
        self.room = rooms.setdefault(path, set())
        self.room.add(self)


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Relay, host, port, backlog=4096)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8006)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.run(serve(args.host, args.port))
    except ImportError:
        asyncio.run(serve(args.host, args.port))
