"""The applied write: what the log stores, what catch-up replays, what broadcasts carry.

A record is produced once by the engine when a write is sequenced, stored as
is, and turned into wire messages per audience (see `views.py`).
"""

from __future__ import annotations

from typing import Any

import msgspec


class OpRecord(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    seq: int
    type: str
    """`annotation_update`, `annotation_delete` or `text_op`."""
    id: str
    """The annotation written."""
    client_id: str
    author: str | None
    ts: int
    """Server time, ms since the epoch."""
    op_id: str | None = None
    payload: dict[str, Any] | None = None
    """annotation_update: the fields as applied (tags resolved to the set), with stamps."""
    recreate: bool = False
    field: str | None = None
    """text_op: the field, and `ops` transformed to apply at seq - 1."""
    ops: list[int | str] | None = None
    enclave_before: str | None = None
    """The annotation's enclave before the write (None: it did not exist)."""
    enclave_after: str | None = None
    """After the write (None: it no longer exists)."""
    full: dict[str, Any] | None = None
    """The whole annotation after the write, kept only when the enclave changed,
    so a client into whose clearance it moves gets all of it (also in catch-up)."""

    def wire(self, prev: int) -> dict[str, Any]:
        """The broadcast message of this write, for a client that may see all of it."""
        message: dict[str, Any] = {
            "type": self.type,
            "seq": self.seq,
            "prev": prev,
            "op_id": self.op_id,
            "client_id": self.client_id,
            "author": self.author,
            "ts": self.ts,
        }
        if self.type == "annotation_update":
            message["payload"] = self.payload
            if self.recreate:
                message["recreate"] = True
        elif self.type == "annotation_delete":
            message["id"] = self.id
        else:
            message.update(id=self.id, field=self.field, base=self.seq - 1, ops=self.ops)
        return message


record_encoder = msgspec.json.Encoder()
record_decoder = msgspec.json.Decoder(OpRecord)
