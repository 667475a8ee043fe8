"""Who may write what, and what of a presence state a clearance may see.

Pure rules over plain data, applied on the room's resolve path to every
write whatever transport brought it (WebSocket, REST), before the engine
resolves it:

- roles: a `viewer` writes nothing; a `commenter` writes annotations of
  kind `note` only (creating, editing, deleting one, never turning one into
  another kind); `editor` and `admin` write anything their clearance allows;
- enclaves: a writer must be cleared for the annotation's current enclave
  and for the enclave it will be in after the write.

A refusal is a `forbidden` ProtocolError; its message never names the
enclave of an annotation the writer may not see.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .annotation import UNCLASSIFIED, Annotation, enclave_of
from .engine import Writer
from .errors import ProtocolError
from .messages import AnnotationUpdate, Write
from .views import Clearance, may_see

WRITE_ROLES = frozenset({"commenter", "editor", "admin"})
ANY_KIND_ROLES = frozenset({"editor", "admin"})
COMMENTER_KIND = "note"


def target_id(write: Write) -> str | None:
    """The id of the annotation `write` touches (None when the payload has no
    usable id: the engine refuses it as `bad_message`)."""
    if isinstance(write, AnnotationUpdate):
        value = write.payload.get("id")
        return value if isinstance(value, str) else None
    return write.id


def authorize_write(write: Write, writer: Writer, existing: Annotation | None) -> None:
    """Raise `forbidden` unless `writer` may apply `write` to `existing` (the
    live annotation it targets, None if there is none)."""
    if writer.role not in WRITE_ROLES:
        raise ProtocolError("forbidden", f"role {writer.role!r} may not write", write.op_id)
    if existing is not None and not may_see(enclave_of(existing), writer.clearance):
        raise ProtocolError("forbidden", "the annotation is outside your clearance", write.op_id)
    if isinstance(write, AnnotationUpdate):
        enclave_after = _enclave_after(write, existing)
        if not may_see(enclave_after, writer.clearance):
            raise ProtocolError(
                "forbidden",
                f"enclave {enclave_after[:64]!r} is outside your clearance",
                write.op_id,
            )
    if writer.role not in ANY_KIND_ROLES:
        _check_commenter(write, existing)


def _enclave_after(write: AnnotationUpdate, existing: Annotation | None) -> str:
    if "enclave" in write.payload:
        value = write.payload["enclave"]
        # None removes the field (UNCLASSIFIED); a non-string is refused by
        # the engine as `bad_message`, so it never becomes an enclave.
        return value if isinstance(value, str) else UNCLASSIFIED
    if existing is None or write.recreate:
        return UNCLASSIFIED
    return enclave_of(existing)


def _check_commenter(write: Write, existing: Annotation | None) -> None:
    if existing is not None and existing.get("kind") != COMMENTER_KIND:
        raise ProtocolError(
            "forbidden",
            f"a commenter may only write annotations of kind {COMMENTER_KIND!r}",
            write.op_id,
        )
    if isinstance(write, AnnotationUpdate):
        if "kind" in write.payload:
            kind_after = write.payload["kind"]
        elif existing is None or write.recreate:
            kind_after = None
        else:
            kind_after = existing.get("kind")
        if kind_after != COMMENTER_KIND:
            raise ProtocolError(
                "forbidden",
                f"a commenter may only write annotations of kind {COMMENTER_KIND!r}",
                write.op_id,
            )


def may_read(annotation: Annotation, clearance: Clearance) -> bool:
    """Whether a reader of `clearance` may receive `annotation` (REST reads too)."""
    return may_see(enclave_of(annotation), clearance)


# -- presence ---------------------------------------------------------------

HiddenId = Callable[[str], bool]


def hidden_from(annotations: Mapping[str, Annotation], clearance: Clearance) -> HiddenId:
    """A test telling whether a string is the id of a live annotation that a
    client of `clearance` may not see."""

    def hidden(value: str) -> bool:
        annotation = annotations.get(value)
        return annotation is not None and not may_see(enclave_of(annotation), clearance)

    return hidden


_DROP = object()
_MAX_REBUILD_DEPTH = 32


def redact_presence(state: dict[str, Any], hidden: HiddenId) -> dict[str, Any]:
    """`state` without any mention of a hidden annotation: list items and
    object entries whose value (or key) is such an id are dropped, wherever
    they are nested. Returns `state` itself when it mentions none."""
    if not _mentions(state, hidden):
        return state
    redacted = _redact(state, hidden, 0)
    return redacted if isinstance(redacted, dict) else {}


def _mentions(value: object, hidden: HiddenId) -> bool:
    """Iterative (a hostile state may nest as deep as the decoder allows)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if hidden(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _redact(value: object, hidden: HiddenId, depth: int) -> object:
    if isinstance(value, str):
        return _DROP if hidden(value) else value
    if not isinstance(value, dict | list) or not _mentions(value, hidden):
        return value
    if depth >= _MAX_REBUILD_DEPTH:
        return _DROP  # deeper than any real presence state: drop the whole branch
    if isinstance(value, dict):
        result: dict[str, Any] = {}
        for key, item in value.items():
            if hidden(key):
                continue
            kept = _redact(item, hidden, depth + 1)
            if kept is not _DROP:
                result[key] = kept
        return result
    kept_items = [_redact(item, hidden, depth + 1) for item in value]
    return [item for item in kept_items if item is not _DROP]
