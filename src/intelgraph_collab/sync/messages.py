"""Client-to-server messages: typed structs, decoded and validated once at the edge.

`decode_frame` turns one WebSocket text frame into a list of typed messages
and typed refusals (a batch may mix both: each bad element is refused on its
own, the good ones still go through, in order). Past this module, code
trusts the types.
"""

from __future__ import annotations

from typing import Any

import msgspec

from .annotation import clean_payload
from .errors import ProtocolError
from .limits import Limits


class AnnotationUpdate(msgspec.Struct, frozen=True, kw_only=True):
    """Built by `decode_message`, which validates the payload; the engine
    validates it again, since it is the last line before the state."""

    payload: dict[str, Any]
    op_id: str | None = None
    recreate: bool = False
    type: str = "annotation_update"


class AnnotationDelete(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    op_id: str | None = None
    type: str = "annotation_delete"


class TextOp(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    field: str
    base: int
    ops: list[int | str]
    op_id: str | None = None
    type: str = "text_op"


class Presence(msgspec.Struct, frozen=True, kw_only=True):
    state: dict[str, Any]
    type: str = "presence"


class Ping(msgspec.Struct, frozen=True, kw_only=True):
    type: str = "ping"


Write = AnnotationUpdate | AnnotationDelete | TextOp
ClientMessage = Write | Presence | Ping

_STRUCT_BY_TYPE: dict[str, type[msgspec.Struct]] = {
    "annotation_update": AnnotationUpdate,
    "annotation_delete": AnnotationDelete,
    "text_op": TextOp,
    "presence": Presence,
    "ping": Ping,
}

_json_decoder = msgspec.json.Decoder()
_json_encoder = msgspec.json.Encoder()


def decode_frame(frame: str | bytes, limits: Limits) -> list[ClientMessage | ProtocolError]:
    """Decode one frame into messages and refusals, in frame order.

    A frame that is not JSON, or neither an object nor an array, yields a
    single refusal. An array is a batch: each element is decoded on its own.
    """
    size = len(frame) if isinstance(frame, bytes) else len(frame.encode())
    if size > limits.max_frame_bytes:
        return [
            ProtocolError("too_large", f"frame of {size} bytes exceeds {limits.max_frame_bytes}")
        ]
    try:
        document = _json_decoder.decode(frame)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as exc:
        return [ProtocolError("bad_message", f"not valid JSON: {exc}")]
    if isinstance(document, dict):
        if size > limits.max_message_bytes:
            return [_too_large(document, size, limits)]
        return [decode_message(document, limits)]
    if isinstance(document, list):
        if len(document) > limits.max_batch_messages:
            return [
                ProtocolError(
                    "too_large",
                    f"batch of {len(document)} messages exceeds {limits.max_batch_messages}",
                )
            ]
        check_each_size = size > limits.max_message_bytes
        results: list[ClientMessage | ProtocolError] = []
        for element in document:
            if check_each_size:
                element_size = len(_json_encoder.encode(element))
                if element_size > limits.max_message_bytes:
                    results.append(_too_large(element, element_size, limits))
                    continue
            results.append(decode_message(element, limits))
        return results
    return [ProtocolError("bad_message", "a frame must hold a JSON object or an array of them")]


def decode_message(document: object, limits: Limits) -> ClientMessage | ProtocolError:
    """Validate one decoded JSON value as a client message."""
    if not isinstance(document, dict):
        return ProtocolError("bad_message", "a message must be a JSON object")
    op_id = _op_id_of(document)
    kind = document.get("type")
    if not isinstance(kind, str):
        return ProtocolError("bad_message", "`type` must be a string", op_id)
    struct_type = _STRUCT_BY_TYPE.get(kind)
    if struct_type is None:
        return ProtocolError("unknown_type", f"unknown message type {kind[:64]!r}", op_id)
    try:
        message: ClientMessage = msgspec.convert(document, struct_type, strict=True)  # type: ignore[assignment]
    except msgspec.ValidationError as exc:
        return ProtocolError("bad_message", str(exc), op_id)
    problem = _shape_problem(message, limits)
    if problem is not None:
        return ProtocolError("bad_message", problem, op_id)
    if isinstance(message, AnnotationUpdate):
        # Refuse a bad payload here, before it takes a place in the sequencer.
        try:
            payload = clean_payload(message.payload, limits)
        except ProtocolError as refusal:
            return refusal.with_op_id(op_id)
        message = msgspec.structs.replace(message, payload=payload)
    return message


def _op_id_of(document: dict[str, Any]) -> str | None:
    """The op_id to tag a refusal with, when the message carried a usable one."""
    op_id = document.get("op_id")
    return op_id if isinstance(op_id, str) and len(op_id) <= 128 else None


def _shape_problem(message: ClientMessage, limits: Limits) -> str | None:
    op_id = getattr(message, "op_id", None)
    if op_id is not None and not 1 <= len(op_id) <= limits.max_op_id_chars:
        return f"`op_id` must be 1-{limits.max_op_id_chars} characters"
    if isinstance(message, AnnotationDelete | TextOp):
        if not 1 <= len(message.id) <= limits.max_id_chars:
            return f"`id` must be 1-{limits.max_id_chars} characters"
    if isinstance(message, TextOp):
        if not 1 <= len(message.field) <= limits.max_field_name_chars:
            return f"`field` must be 1-{limits.max_field_name_chars} characters"
        if message.base < 0:
            return "`base` must be a seq (>= 0)"
    return None


def _too_large(document: object, size: int, limits: Limits) -> ProtocolError:
    op_id = _op_id_of(document) if isinstance(document, dict) else None
    return ProtocolError(
        "too_large", f"message of {size} bytes exceeds {limits.max_message_bytes}", op_id
    )
