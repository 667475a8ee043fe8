"""The typed refusal every layer raises for a message it will not accept.

Codes are the closed set of PROTOCOL.md; the transport turns a ProtocolError
into an `error` message (WebSocket) or a JSON error body (REST).
"""

from __future__ import annotations

from typing import Literal

ErrorCode = Literal[
    "bad_message",
    "unknown_type",
    "too_large",
    "rate_limited",
    "forbidden",
    "conflict",
    "not_found",
    "invalid_op",
]


class ProtocolError(Exception):
    """A refused message. It changed nothing; the session goes on."""

    def __init__(self, code: ErrorCode, message: str, op_id: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code: ErrorCode = code
        self.message = message
        self.op_id = op_id

    def with_op_id(self, op_id: str | None) -> ProtocolError:
        """The same refusal, tagged with the op_id of the message it answers."""
        return ProtocolError(self.code, self.message, op_id)

    def to_message(self) -> dict[str, object]:
        message: dict[str, object] = {"type": "error", "code": self.code, "message": self.message}
        if self.op_id is not None:
            message["op_id"] = self.op_id
        return message


class InvalidOp(ProtocolError):
    """A text operation that is malformed or does not span the text it targets."""

    def __init__(self, message: str) -> None:
        super().__init__("invalid_op", message)
