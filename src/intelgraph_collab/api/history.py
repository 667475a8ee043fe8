"""The audit trail: who changed what, when, read from the store's log.

`/ops` pages through the graph's accepted writes in seq order; each one as
it was broadcast (author, client, server time, the applied payload), seen
through the caller's clearance. `/annotations/{id}/history` lists every
retained change to one annotation. Once the log has been compacted, writes
up to `trimmed_upto` are gone: the annotation's history then starts from
its `base`, the annotation as the compaction snapshot holds it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from ..store.base import StoredGraph
from ..sync.engine import GraphState
from ..sync.errors import ProtocolError
from ..sync.views import Clearance, may_see
from .annotations import AnnotationId, GraphId
from .identity import Caller, ServiceDep
from .models import AnnotationHistory, ErrorBody, OpsPage
from .render import JsonBody, op_view

router = APIRouter(prefix="/api/graphs/{graph_id}", tags=["history"])

MAX_SEQ = 2**53 - 1
"""The largest seq any client (JavaScript) can hold exactly."""

Since = Annotated[
    int, Query(ge=0, le=MAX_SEQ, description="Return writes with a seq greater than this.")
]
Limit = Annotated[int, Query(ge=1, le=1000, description="At most this many writes per page.")]

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody} for status in (400, 404, 503)
}


@router.get("/ops", response_model=OpsPage, responses=_ERRORS)
async def list_ops(
    graph_id: GraphId, caller: Caller, service: ServiceDep, since: Since = 0, limit: Limit = 100
) -> Response:
    """The accepted writes after `since`, in seq order, as far as the log still holds them."""
    records = await service.store.records_since(graph_id, since, None, limit + 1)
    trimmed_upto = await service.store.trimmed_upto(graph_id)
    page = records[:limit]
    ops = [view for record in page if (view := op_view(record, caller.clearance)) is not None]
    return JsonBody(
        {
            "graph_id": graph_id,
            "since": since,
            "trimmed_upto": trimmed_upto,
            "ops": ops,
            "next_since": page[-1].seq if page else since,
            "more": len(records) > limit,
        }
    )


@router.get(
    "/annotations/{annotation_id}/history", response_model=AnnotationHistory, responses=_ERRORS
)
async def annotation_history(
    graph_id: GraphId,
    annotation_id: AnnotationId,
    caller: Caller,
    service: ServiceDep,
    since: Since = 0,
    limit: Limit = 100,
) -> Response:
    """Every retained change to one annotation after `since`, oldest first,
    with its snapshot `base` when the log was compacted past `since`."""
    stored = await service.store.load(graph_id)
    changes = [
        (record.seq, view)
        for record in stored.records
        if record.id == annotation_id and (view := op_view(record, caller.clearance)) is not None
    ]
    compacted_past_since = stored.trimmed_upto > since
    base = None
    if compacted_past_since or not changes:
        base = _base(stored, annotation_id, caller.clearance, bool(changes))
    if not changes and base is None:
        raise ProtocolError("not_found", f"no history of annotation {annotation_id!r}")
    after = [view for seq, view in changes if seq > since]
    page = after[:limit]
    return JsonBody(
        {
            "graph_id": graph_id,
            "id": annotation_id,
            "trimmed_upto": stored.trimmed_upto,
            "base": base if compacted_past_since else None,
            "changes": page,
            "next_since": page[-1]["seq"] if page else since,
            "more": len(after) > limit,
        }
    )


def _base(
    stored: StoredGraph, annotation_id: str, clearance: Clearance, has_changes: bool
) -> dict[str, Any] | None:
    """The annotation as of the snapshot (None if the snapshot never saw it,
    or the caller may not)."""
    if stored.snapshot is None:
        return None
    snapshot = GraphState.from_snapshot(stored.snapshot)
    annotation = snapshot.annotations.get(annotation_id)
    deleted_at = snapshot.tombstones.get(annotation_id)
    if annotation is not None:
        if not may_see(annotation.get("enclave"), clearance):
            return None
    elif deleted_at is None or (clearance is not None and not has_changes):
        # A bare tombstone says nothing of the enclave: show it only to a
        # caller who may see everything, or who sees some of its changes.
        return None
    return {"seq": stored.snapshot_seq, "annotation": annotation, "deleted_at": deleted_at}
