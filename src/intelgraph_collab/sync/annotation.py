"""The annotation model of PROTOCOL.md: field validation, server stamps, enclaves.

An annotation is a plain dict (it travels as JSON and is folded from the
log); this module owns the rules on what a client may put in it.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from .errors import ProtocolError
from .limits import Limits

Annotation = dict[str, Any]

SERVER_FIELDS = frozenset({"created_by", "updated_by", "created_at", "updated_at", "seq"})
"""Stamped and owned by the server; a client that sends them has them ignored."""

TARGET_TYPES = frozenset({"ENTITY", "EDGE"})
CONFIDENCES = frozenset({"HIGH", "MEDIUM", "LOW", "UNKNOWN"})
STRING_FIELDS = frozenset({"target_id", "kind", "content", "enclave", "color", "text", "label"})

NOT_TEXT_EDITABLE = (
    frozenset({"id", "tags", "confidence", "target_type", "enclave"}) | SERVER_FIELDS
)
"""Fields a `text_op` may not target: they are not free text, or (enclave)
moving them must go through the whole-field path that checks clearance."""

UNCLASSIFIED = "UNCLASSIFIED"


def enclave_of(annotation: Annotation | None) -> str:
    """The classification boundary of an annotation; none means UNCLASSIFIED."""
    if annotation is None:
        return UNCLASSIFIED
    enclave = annotation.get("enclave")
    return enclave if isinstance(enclave, str) else UNCLASSIFIED


def iso_utc(ts_ms: int) -> str:
    """ISO 8601 UTC with milliseconds, the same string JS's toISOString() gives."""
    moment = datetime.fromtimestamp(ts_ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts_ms % 1000:03d}Z"


def validate_id(value: object, limits: Limits) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= limits.max_id_chars:
        raise ProtocolError(
            "bad_message", f"`id` must be a string of 1-{limits.max_id_chars} characters"
        )
    return value


def clean_payload(payload: dict[str, Any], limits: Limits) -> dict[str, Any]:
    """Validate an update payload; return it without server-owned fields.

    Values: `None` removes a field; `tags` is a list of unique strings (a
    set, kept sorted) or a delta `{"add": [...], "remove": [...]}`.
    """
    validate_id(payload.get("id"), limits)
    fields = {name: value for name, value in payload.items() if name not in SERVER_FIELDS}
    if len(fields) - 1 > limits.max_fields:
        raise ProtocolError("too_large", f"more than {limits.max_fields} fields")
    for name, value in fields.items():
        if name == "id":
            continue
        if not 1 <= len(name) <= limits.max_field_name_chars:
            raise ProtocolError(
                "bad_message", f"field names must be 1-{limits.max_field_name_chars} characters"
            )
        if value is None:
            continue
        if name == "tags":
            fields[name] = _clean_tags(value, limits)
        else:
            _check_value(name, value, limits)
    return fields


def _clean_tags(value: object, limits: Limits) -> list[str] | dict[str, list[str]]:
    if isinstance(value, list):
        return sorted(set(_tag_list(value, "tags", limits)))
    if isinstance(value, dict):
        if not value or set(value) - {"add", "remove"}:
            raise ProtocolError("bad_message", "a tags delta has only `add` and `remove`")
        return {
            key: sorted(set(_tag_list(value.get(key, []), f"tags.{key}", limits)))
            for key in ("add", "remove")
        }
    raise ProtocolError("bad_message", "`tags` must be a list of strings or {add, remove}")


def _tag_list(value: object, where: str, limits: Limits) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(tag, str) for tag in value):
        raise ProtocolError("bad_message", f"`{where}` must be a list of strings")
    if len(value) > limits.max_tags:
        raise ProtocolError("too_large", f"more than {limits.max_tags} tags")
    if any(not 1 <= len(tag) <= limits.max_tag_chars for tag in value):
        raise ProtocolError("bad_message", f"tags must be 1-{limits.max_tag_chars} characters")
    return value


def _check_value(name: str, value: object, limits: Limits) -> None:
    # isinstance first: `in` a frozenset hashes the value, and a list or an
    # object from the client is unhashable (TypeError, not a refusal).
    if name == "target_type" and not (isinstance(value, str) and value in TARGET_TYPES):
        raise ProtocolError("bad_message", "`target_type` must be ENTITY or EDGE")
    if name == "confidence" and not (isinstance(value, str) and value in CONFIDENCES):
        raise ProtocolError("bad_message", "`confidence` must be HIGH, MEDIUM, LOW or UNKNOWN")
    if name in STRING_FIELDS and not isinstance(value, str):
        raise ProtocolError("bad_message", f"`{name}` must be a string")
    if name == "enclave" and not 1 <= len(str(value)) <= 64:
        raise ProtocolError("bad_message", "`enclave` must be 1-64 characters")
    _check_json(name, value, limits.max_value_depth)


_JS_SAFE_INTEGER = 2**53 - 1


def _check_json(name: str, value: object, depth_left: int) -> None:
    """Free-form values: nesting bounded, numbers every client can hold exactly
    (JavaScript's safe integers, finite floats)."""
    if isinstance(value, dict | list):
        if depth_left <= 0:
            raise ProtocolError("bad_message", f"`{name}` nests too deep")
        for item in value.values() if isinstance(value, dict) else value:
            _check_json(name, item, depth_left - 1)
    elif isinstance(value, bool):
        return
    elif isinstance(value, int):
        if abs(value) > _JS_SAFE_INTEGER:
            raise ProtocolError("bad_message", f"`{name}` holds an integer beyond 2^53")
    elif isinstance(value, float) and not math.isfinite(value):
        raise ProtocolError("bad_message", f"`{name}` holds a non-finite number")
