"""The cheapest WebSocket client there is, for connection churn: a raw TCP
socket that sends the upgrade request, reads the 101 and the server's first
frame, optionally sends one text frame, then resets the connection (RST, no
close handshake) or closes it cleanly."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
from typing import Any


def _frame(text: str) -> bytes:
    """A masked client text frame."""
    payload = text.encode()
    mask = os.urandom(4)
    header = bytes([0x81])
    if len(payload) < 126:
        header += bytes([0x80 | len(payload)])
    elif len(payload) < 65536:
        header += bytes([0x80 | 126]) + struct.pack("!H", len(payload))
    else:
        header += bytes([0x80 | 127]) + struct.pack("!Q", len(payload))
    masked = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
    return header + mask + masked


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    first, second = await reader.readexactly(2)
    length = second & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", await reader.readexactly(2))
    elif length == 127:
        (length,) = struct.unpack("!Q", await reader.readexactly(8))
    return await reader.readexactly(length)


async def connect_and_abort(
    port: int, path: str, send: dict[str, Any] | None = None, reset: bool = True
) -> dict[str, Any]:
    """Open, read the first message, maybe send one, then go away.
    Returns the first message the server sent."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        status = await reader.readuntil(b"\r\n\r\n")
        if not status.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(status.split(b"\r\n", 1)[0].decode(errors="replace"))
        first = json.loads(await _read_frame(reader))
        if send is not None:
            writer.write(_frame(json.dumps(send)))
            await writer.drain()
        return first if isinstance(first, dict) else first[0]
    finally:
        sock = writer.get_extra_info("socket")
        if reset and sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
