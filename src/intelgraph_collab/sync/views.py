"""What one audience may see of a record: the per-clearance view of a write.

An audience is a clearance (a set of enclaves), or None for a client that
may see everything (auth off). Writes a client may not see are never
announced to it; an annotation moving out of its clearance reaches it as an
`annotation_delete`, one moving in as an `annotation_update` carrying all of it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .annotation import UNCLASSIFIED, Annotation
from .records import OpRecord

Clearance = frozenset[str] | None


def may_see(enclave: str | None, clearance: Clearance) -> bool:
    """Whether an annotation in `enclave` may reach a client of `clearance`."""
    return clearance is None or enclave is None or enclave == UNCLASSIFIED or enclave in clearance


def view_of(record: OpRecord, clearance: Clearance, prev: int) -> dict[str, Any] | None:
    """The message a client of `clearance` receives for `record`, or None."""
    if clearance is None:
        return record.wire(prev)
    after_visible = record.enclave_after is not None and may_see(record.enclave_after, clearance)
    if record.enclave_before is None:
        # A creation: its payload is the whole annotation.
        return record.wire(prev) if after_visible else None
    before_visible = may_see(record.enclave_before, clearance)
    if record.type != "annotation_update":
        return record.wire(prev) if before_visible else None
    if before_visible and after_visible:
        return record.wire(prev)
    if before_visible:
        message = record.wire(prev)
        del message["payload"]
        message.pop("recreate", None)
        message.update(type="annotation_delete", id=record.id)
        return message
    if after_visible:
        message = record.wire(prev)
        message["payload"] = record.full if record.full is not None else record.payload
        message.pop("recreate", None)
        return message
    return None


def visible_to(record: OpRecord, clearance: Clearance) -> bool:
    """Whether a client of `clearance` receives anything for `record`."""
    if clearance is None:
        return True
    if record.enclave_before is not None and may_see(record.enclave_before, clearance):
        return True
    return record.enclave_after is not None and may_see(record.enclave_after, clearance)


def initial_state_of(
    annotations: Mapping[str, Annotation], seq: int, clearance: Clearance
) -> dict[str, Any]:
    """The `initial_state` message: every live annotation `clearance` may see."""
    if clearance is not None:
        annotations = {
            key: value
            for key, value in annotations.items()
            if may_see(value.get("enclave"), clearance)
        }
    return {"type": "initial_state", "seq": seq, "data": annotations}


def catch_up_of(
    records: Iterable[OpRecord], clearance: Clearance, since: int, head: int
) -> dict[str, Any]:
    """The `catch_up` message from `since` to `head`: each write as it was
    broadcast to `clearance`, with its own `prev` chain starting at `since`."""
    ops = []
    prev = since
    for record in records:
        message = view_of(record, clearance, prev)
        if message is not None:
            ops.append(message)
            prev = record.seq
    return {"type": "catch_up", "seq": head, "ops": ops}
