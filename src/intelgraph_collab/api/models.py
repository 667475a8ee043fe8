"""The shapes of the REST API, as the OpenAPI schema (`/openapi.json`) states them.

Request bodies are parsed with these models (types from PROTOCOL.md's field
table); the sync engine then validates them exactly as it validates a
WebSocket write, so both transports accept and refuse the same things.
Responses are encoded straight from the room's state (no copy through a
model); these classes document them, and the schemathesis test checks
every response against them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..sync.errors import ErrorCode

TargetType = Literal["ENTITY", "EDGE"]
Confidence = Literal["HIGH", "MEDIUM", "LOW", "UNKNOWN"]


class TagDelta(BaseModel):
    """Tags added to and removed from the current set (concurrent additions all survive)."""

    model_config = ConfigDict(extra="forbid")
    add: list[str] = Field(default_factory=list)
    remove: list[str] = Field(default_factory=list)


class AnnotationFields(BaseModel):
    """Fields of an annotation as a client writes them. Other fields are
    allowed (free-form UI properties). In a PATCH, `null` removes a field;
    server stamps (`created_by`, `updated_at`, `seq`...) are ignored."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "example": {
                "target_type": "ENTITY",
                "target_id": "entity-7",
                "kind": "note",
                "content": "seen at the port",
                "tags": ["lead"],
                "confidence": "MEDIUM",
            }
        },
    )
    id: str | None = Field(None, description="Optional; must equal the id in the path.")
    target_type: TargetType | None = None
    target_id: str | None = None
    kind: str | None = Field(None, description='e.g. "tag", "highlight", "note"')
    content: str | None = None
    tags: list[str] | TagDelta | None = Field(
        None, description="The whole set, or (PATCH) a delta {add, remove} applied to it."
    )
    confidence: Confidence | None = None
    enclave: str | None = Field(None, description="Classification boundary; none: UNCLASSIFIED.")
    color: str | None = None
    text: str | None = None
    label: str | None = None


class Annotation(BaseModel):
    """An annotation as stored: the client's fields plus the server's stamps."""

    model_config = ConfigDict(extra="allow")
    id: str
    seq: int = Field(description="The seq of the last write to it: the value for If-Match.")
    created_by: str | None = None
    created_at: str | None = None
    updated_by: str | None = None
    updated_at: str | None = None
    target_type: TargetType | None = None
    target_id: str | None = None
    kind: str | None = None
    content: str | None = None
    tags: list[str] | None = None
    confidence: Confidence | None = None
    enclave: str | None = None


class AnnotationList(BaseModel):
    graph_id: str
    seq: int = Field(description="The graph's seq: the state is exactly the log up to it.")
    count: int
    annotations: list[Annotation]


class AnnotationRead(BaseModel):
    graph_id: str
    seq: int = Field(description="The graph's seq when read.")
    annotation: Annotation


class Op(BaseModel):
    """One accepted write as it was applied: the WebSocket broadcast of it,
    without `prev`, plus `time` (ISO 8601 UTC of `ts`)."""

    model_config = ConfigDict(extra="allow")
    type: Literal["annotation_update", "annotation_delete", "text_op"]
    seq: int
    op_id: str | None
    client_id: str
    author: str | None = Field(description="The writer's user name (null when anonymous).")
    ts: int = Field(description="Server time, ms since the epoch.")
    time: str
    payload: dict[str, Any] | None = Field(
        None, description="annotation_update: the fields as applied, with the server's stamps."
    )
    recreate: bool | None = None
    id: str | None = Field(None, description="annotation_delete and text_op: the annotation.")
    field: str | None = None
    base: int | None = None
    ops: list[int | str] | None = None


class WriteResult(BaseModel):
    graph_id: str
    seq: int = Field(description="The seq the write was given (the original one for a replay).")
    duplicate: bool = Field(description="True: an Idempotency-Key replay; nothing was written.")
    op: Op | None = Field(description="The write as applied (null if no longer retained).")
    annotation: Annotation | None = Field(
        description="The annotation now (null once deleted); its seq may be later than the "
        "write's if another write followed at once."
    )


class OpsPage(BaseModel):
    graph_id: str
    since: int
    trimmed_upto: int = Field(
        description="Writes up to this seq were compacted into a snapshot and are gone from "
        "the log; a page asked for since an earlier seq starts after it."
    )
    ops: list[Op]
    next_since: int = Field(description="Pass as `since` for the next page.")
    more: bool = Field(description="True: the log holds writes after this page.")


class HistoryBase(BaseModel):
    """The annotation as of the compaction snapshot, for a log trimmed below `since`."""

    seq: int = Field(description="The snapshot's seq; listed changes up to it are folded in.")
    annotation: Annotation | None = Field(description="Null if it was deleted by then.")
    deleted_at: int | None = Field(description="The seq of its delete, if deleted by then.")


class AnnotationHistory(BaseModel):
    graph_id: str
    id: str
    trimmed_upto: int
    base: HistoryBase | None
    changes: list[Op]
    next_since: int
    more: bool


class ErrorDetail(BaseModel):
    code: ErrorCode
    message: str


class ErrorBody(BaseModel):
    """Every error: the codes of the WebSocket `error` message (PROTOCOL.md)."""

    error: ErrorDetail


class Health(BaseModel):
    status: Literal["ok", "ready", "unavailable"]
    reason: str | None = None
