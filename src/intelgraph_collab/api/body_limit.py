"""A bound on REST request bodies, enforced while they are read.

A REST write is one message, so its body is bounded as a WebSocket message
is (`limits.max_message_bytes`). The body is refused as soon as it is known
to be too large (its Content-Length, or the bytes received so far), before
it is buffered whole; the refusal is a 413 `too_large` JSON error like
every other (the HTTPException raised here goes to the app's handlers).
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, prefix: str = "/api/") -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        too_large = HTTPException(413, f"request body exceeds {self.max_bytes} bytes")
        received = 0

        async def receive_bounded() -> Message:
            nonlocal received
            if (
                declared is not None
                and declared.isascii()
                and declared.isdigit()
                and (int(declared) > self.max_bytes)
            ):
                raise too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise too_large
            return message

        await self.app(scope, receive_bounded, send)
