"""REST routes for annotations: reads from the room's state, writes through the room.

A write here takes the WebSocket's path: validated by `decode_message`,
sequenced by the room, stored, deduplicated by (client id, Idempotency-Key)
and broadcast to every WebSocket client of the graph before the response
goes out. PUT is `annotation_update` with `recreate` (the annotation starts
afresh from the body, even after a delete), PATCH is a plain
`annotation_update` (field merge, tag deltas, refused after a delete),
DELETE is `annotation_delete`. `If-Match: <seq>` makes a write conditional
on the annotation's `seq`; the room checks it in sequence, so no write can
slip in between the check and the write.
"""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Header, Path, Query, Response

from ..room import Room
from ..sync.errors import ProtocolError
from ..sync.limits import Limits
from ..sync.messages import AnnotationDelete, AnnotationUpdate, decode_message
from ..sync.records import OpRecord
from ..sync.views import Clearance, may_see
from ..websocket.admission import GRAPH_ID
from .identity import Caller, ServiceDep, writer_of
from .models import (
    AnnotationFields,
    AnnotationList,
    AnnotationRead,
    ErrorBody,
    TargetType,
    WriteResult,
)
from .render import JsonBody, etag, op_view

router = APIRouter(prefix="/api/graphs/{graph_id}", tags=["annotations"])

GraphId = Annotated[
    str,
    Path(pattern=f"^{GRAPH_ID.pattern}$", description="1-128 of `A-Z a-z 0-9 _ . : -`"),
]
AnnotationId = Annotated[str, Path(min_length=1, max_length=128)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        min_length=1,
        max_length=128,
        description="Used as the write's `op_id`: a retry with the same key (and client id) "
        "returns the original result, with `duplicate: true`, and writes nothing.",
    ),
]
IfMatch = Annotated[
    str | None,
    Header(
        description='The annotation\'s `seq` (its ETag, e.g. `"42"`): the write is refused '
        "with 412 if the annotation changed (or is gone) since.",
    ),
]

_SEQ_TAG = re.compile(r'(?:W/)?"?([0-9]{1,15})"?')


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorBody} for status in statuses}


_READ_ERRORS = _errors(400, 404, 503)
_WRITE_ERRORS = _errors(400, 403, 404, 409, 412, 413, 422, 503)


@router.get("/annotations", response_model=AnnotationList, responses=_READ_ERRORS)
async def list_annotations(
    graph_id: GraphId,
    caller: Caller,
    service: ServiceDep,
    target_type: TargetType | None = None,
    target_id: Annotated[str | None, Query(max_length=1024)] = None,
    kind: Annotated[str | None, Query(max_length=1024)] = None,
    tag: Annotated[
        list[str] | None, Query(description="Repeat to ask for annotations with all of them.")
    ] = None,
) -> Response:
    """The graph's live annotations (those your clearance may see), with its `seq`."""
    wanted = {"target_type": target_type, "target_id": target_id, "kind": kind}
    wanted = {name: value for name, value in wanted.items() if value is not None}
    tags = set(tag or ())
    async with service.rooms.holding(graph_id) as room:
        selected = [
            annotation
            for annotation in room.state.annotations.values()
            if all(annotation.get(name) == value for name, value in wanted.items())
            and tags.issubset(annotation.get("tags") or ())
            and may_see(annotation.get("enclave"), caller.clearance)
        ]
        # Encoded here, before anything can await: the state is the log up to `seq`.
        body = {"graph_id": graph_id, "seq": room.head, "count": len(selected)}
        return JsonBody({**body, "annotations": selected})


@router.get("/annotations/{annotation_id}", response_model=AnnotationRead, responses=_READ_ERRORS)
async def get_annotation(
    graph_id: GraphId, annotation_id: AnnotationId, caller: Caller, service: ServiceDep
) -> Response:
    """One live annotation; its `seq` is also sent as the ETag, for If-Match."""
    async with service.rooms.holding(graph_id) as room:
        annotation = _visible(room, annotation_id, caller.clearance)
        if annotation is None:
            raise ProtocolError("not_found", f"no live annotation {annotation_id!r}")
        return JsonBody(
            {"graph_id": graph_id, "seq": room.head, "annotation": annotation},
            headers=etag(annotation["seq"]),
        )


@router.put(
    "/annotations/{annotation_id}",
    response_model=WriteResult,
    responses={201: {"model": WriteResult}, **_WRITE_ERRORS},
)
async def put_annotation(
    graph_id: GraphId,
    annotation_id: AnnotationId,
    fields: AnnotationFields,
    caller: Caller,
    service: ServiceDep,
    idempotency_key: IdempotencyKey = None,
    if_match: IfMatch = None,
) -> Response:
    """Create or replace: the annotation starts afresh from the body (fields not in
    it are gone; `created_by`/`created_at` are this write's). Restores a deleted one."""
    document = {
        "type": "annotation_update",
        "op_id": idempotency_key,
        "recreate": True,
        "payload": fields.model_dump(exclude_unset=True),
    }
    return await _write(service, graph_id, annotation_id, caller, document, if_match)


@router.patch(
    "/annotations/{annotation_id}",
    response_model=WriteResult,
    responses={201: {"model": WriteResult}, **_WRITE_ERRORS},
)
async def patch_annotation(
    graph_id: GraphId,
    annotation_id: AnnotationId,
    fields: AnnotationFields,
    caller: Caller,
    service: ServiceDep,
    idempotency_key: IdempotencyKey = None,
    if_match: IfMatch = None,
) -> Response:
    """Field merge, as `annotation_update`: fields sent are set, `null` removes
    one, others stay; `tags` may be `{add, remove}`. Creates an unknown id
    (201); refused with 409 after a delete (PUT restores)."""
    document = {
        "type": "annotation_update",
        "op_id": idempotency_key,
        "payload": fields.model_dump(exclude_unset=True),
    }
    return await _write(service, graph_id, annotation_id, caller, document, if_match)


@router.delete("/annotations/{annotation_id}", response_model=WriteResult, responses=_WRITE_ERRORS)
async def delete_annotation(
    graph_id: GraphId,
    annotation_id: AnnotationId,
    caller: Caller,
    service: ServiceDep,
    idempotency_key: IdempotencyKey = None,
    if_match: IfMatch = None,
) -> Response:
    """Delete (delete wins: later PATCHes are refused; a PUT re-creates it)."""
    document = {"type": "annotation_delete", "op_id": idempotency_key, "id": annotation_id}
    return await _write(service, graph_id, annotation_id, caller, document, if_match)


def _decode(
    document: dict[str, Any], annotation_id: str, if_match: str | None, limits: Limits
) -> tuple[AnnotationUpdate | AnnotationDelete, int | None]:
    """The typed write and its If-Match seq, validated as a WebSocket write is."""
    payload = document.get("payload")
    if payload is not None and payload.setdefault("id", annotation_id) != annotation_id:
        raise ProtocolError("bad_message", "the body's `id` differs from the path's")
    expected_seq = _expected_seq(if_match)
    message = decode_message(document, limits)
    if isinstance(message, ProtocolError):
        raise message
    assert isinstance(message, AnnotationUpdate | AnnotationDelete)
    return message, expected_seq


def _expected_seq(if_match: str | None) -> int | None:
    if if_match is None:
        return None
    match = _SEQ_TAG.fullmatch(if_match.strip())
    if match is None:
        raise ProtocolError("bad_message", 'If-Match must be one annotation seq, e.g. "42"')
    return int(match.group(1))


async def _write(
    service: ServiceDep,
    graph_id: str,
    annotation_id: str,
    caller: Caller,
    document: dict[str, Any],
    if_match: str | None,
) -> Response:
    try:
        message, expected_seq = _decode(document, annotation_id, if_match, service.config.limits)
    except ProtocolError as refusal:  # refused before the room: counted here
        service.metrics.refused(refusal.code, document["type"])
        raise
    async with service.rooms.holding(graph_id) as room:
        future = room.submit(
            message, writer_of(caller), None, want_result=True, expected_seq=expected_seq
        )
        assert future is not None
        outcome = await future
        record = outcome.record
        if outcome.duplicate:
            record = await _original(room, outcome.seq)
            if record is not None and (record.id != annotation_id or record.type != message.type):
                raise ProtocolError(
                    "conflict",
                    "this Idempotency-Key was used for another write (seq "
                    f"{outcome.seq}); use a new key per write",
                )
        annotation = _visible(room, annotation_id, caller.clearance)
        body = {
            "graph_id": graph_id,
            "seq": outcome.seq,
            "duplicate": outcome.duplicate,
            "op": None if record is None else op_view(record, caller.clearance),
            "annotation": annotation,
        }
        created = (
            record is not None
            and record.type == "annotation_update"
            and (record.enclave_before is None)
        )
        headers = etag(annotation["seq"]) if annotation is not None else {}
        if created:
            headers["Location"] = f"/api/graphs/{graph_id}/annotations/{quote(annotation_id)}"
        if outcome.duplicate:
            headers["Idempotent-Replayed"] = "true"
        return JsonBody(body, status_code=201 if created else 200, headers=headers)


def _visible(room: Room, annotation_id: str, clearance: Clearance) -> dict[str, Any] | None:
    annotation = room.state.annotations.get(annotation_id)
    if annotation is None or not may_see(annotation.get("enclave"), clearance):
        return None
    return annotation


async def _original(room: Room, seq: int) -> OpRecord | None:
    """The record of seq `seq`, for replaying a write's result: from memory
    if recent, else from the store (None once compacted away)."""
    recent = room.recent
    if recent and recent[0].seq <= seq <= recent[-1].seq:
        record = recent[seq - recent[0].seq]
        if record.seq == seq:
            return record
    records = await room.store.records_since(room.graph_id, seq - 1, seq)
    return records[0] if records else None
