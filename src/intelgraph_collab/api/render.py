"""How the REST API puts records and state on the wire: JSON encoded once,
straight from the room's state, through the same per-clearance view as a
WebSocket broadcast."""

from __future__ import annotations

from typing import Any

import msgspec
from fastapi import Response

from ..sync.annotation import iso_utc
from ..sync.records import OpRecord
from ..sync.views import Clearance, view_of

_encoder = msgspec.json.Encoder()


class JsonBody(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return _encoder.encode(content)


def op_view(record: OpRecord, clearance: Clearance) -> dict[str, Any] | None:
    """The write as a client of `clearance` saw it broadcast (None: it saw
    nothing of it), without `prev` (which depends on the reader's position
    in the log), with `time` for people reading an audit trail."""
    message = view_of(record, clearance, record.seq - 1)
    if message is None:
        return None
    del message["prev"]
    message["time"] = iso_utc(record.ts)
    return message


def etag(seq: int) -> dict[str, str]:
    """The annotation's `seq` as an entity tag, for `If-Match`."""
    return {"ETag": f'"{seq}"'}
