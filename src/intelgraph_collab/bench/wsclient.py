"""A minimal, fast WebSocket client (RFC 6455) for the load generator.

Why not `websockets`' asyncio client: a generator that must find a server's
ceiling on one core cannot afford a future, a queue and a coroutine switch
per received message. Here a frame is parsed in `data_received` and handed
to a plain callback, synchronously; sending is one `transport.write`.

What it does not do, on purpose: extensions (no permessage-deflate is
offered, so none is used), TLS, redirects. Client frames are masked with an
all-zero key: RFC 6455 requires a mask, any key is valid, and a zero key
spares the generator the XOR (the server unmasks either way).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import socket
import struct
from collections.abc import Callable
from typing import cast

OP_CONT = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_ZERO_MASK = b"\x00\x00\x00\x00"
_LEN16 = struct.Struct("!H")
_LEN64 = struct.Struct("!Q")

#: on_message(opcode, payload): called once per complete data message.
MessageHandler = Callable[[int, bytes], None]


class HandshakeError(Exception):
    """The server refused the WebSocket upgrade (status line in the message)."""


def frame_header(opcode: int, length: int) -> bytes:
    """Header of a final, masked (zero key) client frame of `length` bytes."""
    if length < 126:
        return bytes((0x80 | opcode, 0x80 | length)) + _ZERO_MASK
    if length < 65536:
        return bytes((0x80 | opcode, 0x80 | 126)) + _LEN16.pack(length) + _ZERO_MASK
    return bytes((0x80 | opcode, 0x80 | 127)) + _LEN64.pack(length) + _ZERO_MASK


class WsClient(asyncio.Protocol):
    """One client connection; use `connect()` to open it."""

    def __init__(
        self, on_message: MessageHandler, on_open: Callable[[WsClient], None] | None = None
    ) -> None:
        self.on_message = on_message
        self.on_open = on_open
        self.on_close: Callable[[], None] | None = None
        self.transport: asyncio.Transport | None = None
        self.closed = asyncio.get_running_loop().create_future()
        self._handshake: asyncio.Future[None] | None = None
        self._key = b""
        # Bytes of an incomplete frame, kept as chunks and joined only once
        # `_need` bytes have arrived (a 20 MB initial_state must not be
        # re-copied on every 64 KiB read).
        self._chunks: list[bytes] = []
        self._have = 0
        self._need = 0
        self._upgraded = False
        self._close_sent = False
        self._fragments: list[bytes] = []
        self._fragment_op = 0
        self.close_code: int | None = None

    # -- asyncio.Protocol --------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but quack alike.
        self.transport = cast(asyncio.Transport, transport)
        if self.on_open is not None:  # before any message: the server may speak first
            self.on_open(self)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._handshake is not None and not self._handshake.done():
            self._handshake.set_exception(exc or ConnectionError("closed during handshake"))
        if not self.closed.done():
            self.closed.set_result(None)
        if self.on_close is not None:
            self.on_close()

    def data_received(self, data: bytes) -> None:
        if self._chunks:
            self._chunks.append(data)
            self._have += len(data)
            if self._have < self._need:
                return
            data = b"".join(self._chunks)
            self._chunks = []
        if not self._upgraded:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self._keep(data, len(data) + 1)
                return
            self._finish_handshake(data[: end + 4])
            data = data[end + 4 :]
        self._parse(data)

    # -- framing -----------------------------------------------------------

    def _parse(self, data: bytes) -> None:
        pos = 0
        size = len(data)
        on_message = self.on_message
        need = 2  # bytes the incomplete frame at `pos` needs before parsing can go on
        while size - pos >= 2:
            b0 = data[pos]
            n = data[pos + 1] & 0x7F
            head = 2
            if n == 126:
                if size - pos < 4:
                    need = 4
                    break
                n = _LEN16.unpack_from(data, pos + 2)[0]
                head = 4
            elif n == 127:
                if size - pos < 10:
                    need = 10
                    break
                n = _LEN64.unpack_from(data, pos + 2)[0]
                head = 10
            if data[pos + 1] & 0x80:  # servers must not mask; tolerate it anyway
                head += 4
            end = pos + head + n
            if end > size:
                need = end - pos
                break
            need = 2
            payload = data[pos + head : end]
            if data[pos + 1] & 0x80:
                mask = data[pos + head - 4 : pos + head]
                payload = _unmask(payload, mask)
            pos = end
            opcode = b0 & 0x0F
            if opcode == OP_TEXT or opcode == OP_BINARY:
                if b0 & 0x80:
                    on_message(opcode, payload)
                else:
                    self._fragment_op = opcode
                    self._fragments = [payload]
            elif opcode == OP_CONT:
                self._fragments.append(payload)
                if b0 & 0x80:
                    whole = b"".join(self._fragments)
                    self._fragments = []
                    on_message(self._fragment_op, whole)
            elif opcode == OP_PING:
                self._send_frame(OP_PONG, payload)
            elif opcode == OP_CLOSE:
                self.close_code = _LEN16.unpack_from(payload)[0] if len(payload) >= 2 else 1005
                if not self._close_sent:
                    self._send_frame(OP_CLOSE, payload[:2])
                if self.transport is not None:
                    self.transport.close()
                return
        if pos < size:
            self._keep(data[pos:], need)

    def _keep(self, rest: bytes, need: int) -> None:
        self._chunks = [rest]
        self._have = len(rest)
        self._need = need

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(frame_header(opcode, len(payload)) + payload)

    # -- public API --------------------------------------------------------

    def send_text(self, payload: bytes) -> None:
        """Send one text frame (payload already UTF-8 encoded)."""
        self._send_frame(OP_TEXT, payload)

    def send_binary(self, payload: bytes) -> None:
        self._send_frame(OP_BINARY, payload)

    def pause_reading(self) -> None:
        """Stop reading from the socket: the server sees a reader that stalled."""
        if self.transport is not None:
            self.transport.pause_reading()

    def close(self, code: int = 1000) -> None:
        """Send a close frame and drop the TCP connection (no closing handshake wait)."""
        transport = self.transport
        if transport is not None and not transport.is_closing():
            self._send_close(code)
            transport.close()

    async def aclose(self, code: int = 1000, limit_s: float = 2.0) -> None:
        """The closing handshake: send a close frame, wait for the server's, then
        drop TCP. Some servers misbehave when the TCP connection vanishes first."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        self._send_close(code)
        try:
            await asyncio.wait_for(asyncio.shield(self.closed), limit_s)
        except TimeoutError:
            transport.close()

    def _send_close(self, code: int) -> None:
        if not self._close_sent:
            self._close_sent = True
            self._send_frame(OP_CLOSE, _LEN16.pack(code))

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # -- handshake ---------------------------------------------------------

    def _finish_handshake(self, head: bytes) -> None:
        assert self._handshake is not None
        if self._handshake.done():  # timed out or cancelled meanwhile
            self._upgraded = True
            self.on_message = _ignore
            if self.transport is not None:
                self.transport.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        status = lines[0]
        if " 101 " not in status + " ":
            self._upgraded = True  # ignore the rest (the refusal's body)
            self.on_message = _ignore
            self._handshake.set_exception(HandshakeError(status))
            if self.transport is not None:
                self.transport.close()
            return
        expected = base64.b64encode(hashlib.sha1(self._key + _GUID).digest()).decode()
        accept = ""
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "sec-websocket-accept":
                accept = value.strip()
        if accept != expected:
            self._handshake.set_exception(HandshakeError("bad Sec-WebSocket-Accept"))
            return
        self._upgraded = True
        self._handshake.set_result(None)

    def _start_handshake(self, host: str, port: int, path: str, headers: dict[str, str]) -> None:
        assert self.transport is not None
        self._key = base64.b64encode(os.urandom(16))
        self._handshake = asyncio.get_running_loop().create_future()
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: {host}:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {self._key.decode()}",
            "Sec-WebSocket-Version: 13",
        ]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))


def _ignore(opcode: int, payload: bytes) -> None:
    pass


def _unmask(payload: bytes, mask: bytes) -> bytes:
    n = len(payload)
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "little")
    return (int.from_bytes(payload, "little") ^ key).to_bytes(n, "little")


async def connect(
    host: str,
    port: int,
    path: str,
    on_message: MessageHandler,
    *,
    on_open: Callable[[WsClient], None] | None = None,
    headers: dict[str, str] | None = None,
    rcvbuf: int | None = None,
    limit_s: float = 10.0,
) -> WsClient:
    """Open a WebSocket to ws://host:port/path; returns once upgraded.

    `rcvbuf` shrinks the socket's receive buffer (SO_RCVBUF) before
    connecting, so a client that stops reading fills its buffers quickly.
    """
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    try:
        await asyncio.wait_for(loop.sock_connect(sock, (host, port)), limit_s)
    except BaseException:
        sock.close()
        raise
    _, protocol = await loop.create_connection(lambda: WsClient(on_message, on_open), sock=sock)
    protocol._start_handshake(host, port, path, headers or {})
    assert protocol._handshake is not None
    await asyncio.wait_for(protocol._handshake, limit_s)
    return protocol
