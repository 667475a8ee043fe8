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
    owner: str | None = None
    """The authenticated user who wrote it (None with auth off): dedupe is per
    (owner, client_id, op_id), so nobody can claim another user's op_ids by
    reusing their client_id. Not part of any message."""

    @property
    def op_key(self) -> tuple[str, str] | None:
        """This write's identity across resends, or None (no op_id)."""
        return None if self.op_id is None else op_key(self.client_id, self.owner, self.op_id)

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


def op_key(client_id: str, owner: str | None, op_id: str) -> tuple[str, str]:
    """(scoped client, op_id): the client_id is scoped by the authenticated
    owner, with a separator no handshake can put in a client_id or user name."""
    return (client_id if owner is None else f"{owner}\x00{client_id}", op_id)


record_encoder = msgspec.json.Encoder()
record_decoder = msgspec.json.Decoder(OpRecord)
