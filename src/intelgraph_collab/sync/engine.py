"""The sync engine: resolve a client write against the graph state, and fold the log.

`GraphState.resolve` validates a write and returns the record it becomes
(raising ProtocolError, with nothing changed, when it is refused);
`GraphState.fold` applies a sequenced record. A write takes effect only
through `fold`, so the server applying its own writes and a replica (another
node, a restart replaying the log) applying records reach the same state.

Conflict rules (PROTOCOL.md): field-level last-writer-wins in server order;
`tags` deltas applied to the current set so concurrent additions survive;
delete wins over later updates unless they `recreate`; text ops transformed
against every text op on the same field since their base.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from . import text_ot
from .annotation import (
    NOT_TEXT_EDITABLE,
    Annotation,
    clean_payload,
    enclave_of,
    iso_utc,
)
from .errors import ProtocolError
from .limits import Limits
from .messages import AnnotationDelete, AnnotationUpdate, TextOp, Write
from .records import OpRecord, op_key
from .views import Clearance

_size_encoder = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class Writer:
    """Who is writing: stamped into the record, never taken from the payload.
    `role` and `clearance` are what `policy.authorize_write` checks."""

    client_id: str
    author: str | None
    role: str = "editor"
    clearance: Clearance = None
    """None: may write every enclave (auth off)."""
    authenticated: bool = False
    """`author` comes from a verified token: it scopes the writer's op_ids."""

    @property
    def owner(self) -> str | None:
        return self.author if self.authenticated else None

    def op_key(self, op_id: str) -> tuple[str, str]:
        return op_key(self.client_id, self.owner, op_id)


@dataclass
class GraphState:
    """Everything that decides how the next write resolves, for one graph."""

    seq: int = 0
    annotations: dict[str, Annotation] = field(default_factory=dict)
    tombstones: dict[str, int] = field(default_factory=dict)
    """Deleted ids -> seq of the delete: delete wins over later plain updates."""
    text_epochs: dict[str, dict[str, int]] = field(default_factory=dict)
    """id -> field -> seq of the last whole-field set (or the annotation's
    creation, under key ""): a text op based before it is refused."""
    text_history: dict[str, dict[str, list[tuple[int, list[int | str]]]]] = field(
        default_factory=dict
    )
    """id -> field -> the text ops since the field's epoch, for transforming."""
    history_floor: int = 0
    """text_history holds every text op with seq > history_floor."""

    # -- resolving a client write (pure: raises with nothing changed) -----

    def resolve(self, write: Write, writer: Writer, ts: int, limits: Limits) -> OpRecord:
        """The record `write` becomes at seq `self.seq + 1`; `fold` it to apply it."""
        if isinstance(write, AnnotationUpdate):
            return self._resolve_update(write, writer, ts, limits)
        if isinstance(write, AnnotationDelete):
            return self._resolve_delete(write, writer, ts)
        return self._resolve_text(write, writer, ts, limits)

    def _resolve_update(
        self, write: AnnotationUpdate, writer: Writer, ts: int, limits: Limits
    ) -> OpRecord:
        fields = clean_payload(write.payload, limits)
        annotation_id: str = fields["id"]
        existing = self.annotations.get(annotation_id)
        if existing is None and annotation_id in self.tombstones and not write.recreate:
            raise ProtocolError(
                "conflict", f"annotation {annotation_id!r} was deleted; send recreate to restore it"
            )
        seq = self.seq + 1
        stamp = {"updated_by": writer.author, "updated_at": iso_utc(ts), "seq": seq}
        fresh = existing is None or write.recreate
        if fresh:
            applied = {name: value for name, value in fields.items() if value is not None}
            if isinstance(applied.get("tags"), dict):
                applied["tags"] = applied["tags"]["add"]
            applied.update(created_by=writer.author, created_at=stamp["updated_at"], **stamp)
            result = applied
        else:
            assert existing is not None
            applied = dict(fields)
            if isinstance(applied.get("tags"), dict):
                delta = applied["tags"]
                current = set(existing.get("tags") or ())
                applied["tags"] = sorted((current | set(delta["add"])) - set(delta["remove"]))
            applied.update(stamp)
            result = _merged(existing, applied)
        _check_size(result, limits)
        enclave_before = None if existing is None else enclave_of(existing)
        enclave_after = enclave_of(result)
        moved = enclave_before is not None and enclave_before != enclave_after
        return _record(
            write,
            writer,
            ts,
            seq=seq,
            type="annotation_update",
            id=annotation_id,
            payload=applied,
            recreate=write.recreate and existing is not None,
            enclave_before=enclave_before,
            enclave_after=enclave_after,
            full=result if moved else None,
        )

    def _resolve_delete(self, write: AnnotationDelete, writer: Writer, ts: int) -> OpRecord:
        existing = self.annotations.get(write.id)
        if existing is None:
            raise ProtocolError("not_found", f"no live annotation {write.id!r}")
        return _record(
            write,
            writer,
            ts,
            seq=self.seq + 1,
            type="annotation_delete",
            id=write.id,
            enclave_before=enclave_of(existing),
        )

    def _resolve_text(self, write: TextOp, writer: Writer, ts: int, limits: Limits) -> OpRecord:
        existing = self.annotations.get(write.id)
        if existing is None:
            if write.id in self.tombstones:
                raise ProtocolError("conflict", f"annotation {write.id!r} was deleted")
            raise ProtocolError("not_found", f"no live annotation {write.id!r}")
        if write.field in NOT_TEXT_EDITABLE:
            raise ProtocolError("invalid_op", f"field {write.field!r} is not editable text")
        current = existing.get(write.field)
        if current is not None and not isinstance(current, str):
            raise ProtocolError("invalid_op", f"field {write.field!r} does not hold text")
        if write.base > self.seq:
            raise ProtocolError(
                "conflict", f"base {write.base} is ahead of the graph (seq {self.seq})"
            )
        epochs = self.text_epochs.get(write.id, {})
        epoch = max(epochs.get("", 0), epochs.get(write.field, 0))
        if write.base < epoch:
            raise ProtocolError(
                "conflict", f"{write.field!r} was replaced at seq {epoch}, after base {write.base}"
            )
        if write.base < self.history_floor:
            raise ProtocolError(
                "conflict", f"base {write.base} is older than the retained log; resync"
            )
        op = text_ot.check(write.ops, max_components=limits.max_text_op_components)
        history = self.text_history.get(write.id, {}).get(write.field, ())
        concurrent = [ops for seq, ops in history if seq > write.base]
        transformed = text_ot.transform_against(op, concurrent)
        new_text = text_ot.apply(current or "", transformed)
        _check_size({**existing, write.field: new_text}, limits)
        enclave = enclave_of(existing)
        return _record(
            write,
            writer,
            ts,
            seq=self.seq + 1,
            type="text_op",
            id=write.id,
            field=write.field,
            ops=transformed,
            enclave_before=enclave,
            enclave_after=enclave,
        )

    # -- folding a sequenced record (the only way state changes) ----------

    def fold(self, record: OpRecord) -> None:
        """Apply the record of seq `self.seq + 1`."""
        if record.seq != self.seq + 1:
            raise ValueError(f"record seq {record.seq} does not follow state seq {self.seq}")
        annotation_id = record.id
        if record.type == "annotation_update":
            payload = record.payload or {}
            existing = self.annotations.get(annotation_id)
            if existing is None or record.recreate:
                self.annotations[annotation_id] = {
                    name: value for name, value in payload.items() if value is not None
                }
                self.tombstones.pop(annotation_id, None)
                self.text_history.pop(annotation_id, None)
                self.text_epochs[annotation_id] = {"": record.seq}
            else:
                self.annotations[annotation_id] = _merged(existing, payload)
                epochs = self.text_epochs.setdefault(annotation_id, {})
                histories = self.text_history.get(annotation_id)
                for name in payload:
                    if name not in NOT_TEXT_EDITABLE:
                        epochs[name] = record.seq
                        if histories:
                            histories.pop(name, None)
        elif record.type == "annotation_delete":
            self.annotations.pop(annotation_id, None)
            self.tombstones[annotation_id] = record.seq
            self.text_epochs.pop(annotation_id, None)
            self.text_history.pop(annotation_id, None)
        else:
            assert record.field is not None and record.ops is not None
            annotation = self.annotations[annotation_id]
            annotation[record.field] = text_ot.apply(annotation.get(record.field) or "", record.ops)
            annotation.update(
                updated_by=record.author, updated_at=iso_utc(record.ts), seq=record.seq
            )
            self.text_history.setdefault(annotation_id, {}).setdefault(record.field, []).append(
                (record.seq, record.ops)
            )
        self.seq = record.seq

    def remember_text_ops(self, records: list[OpRecord], floor: int) -> None:
        """Rebuild text history from retained records at or before `seq`.

        After loading a snapshot at `seq`, the log may still hold text ops
        from (floor, seq]; a client's base may point into that range.
        """
        for record in records:
            if record.type != "text_op" or not floor < record.seq <= self.seq:
                continue
            assert record.field is not None and record.ops is not None
            epochs = self.text_epochs.get(record.id)
            if record.id not in self.annotations or epochs is None:
                continue
            if record.seq > max(epochs.get("", 0), epochs.get(record.field, 0)):
                self.text_history.setdefault(record.id, {}).setdefault(record.field, []).append(
                    (record.seq, record.ops)
                )
        for fields in self.text_history.values():
            for ops in fields.values():
                ops.sort(key=lambda entry: entry[0])
        self.history_floor = floor

    def forget_text_history(self, upto: int) -> None:
        """Drop text ops with seq <= upto (the log was trimmed there)."""
        self.history_floor = max(self.history_floor, upto)
        for fields in self.text_history.values():
            for name, ops in list(fields.items()):
                kept = [entry for entry in ops if entry[0] > upto]
                if kept:
                    fields[name] = kept
                else:
                    del fields[name]

    # -- snapshots --------------------------------------------------------

    def snapshot(self) -> bytes:
        """The state at `seq`, encoded; text history is rebuilt from the log."""
        return _snapshot_encoder.encode(
            _Snapshot(
                seq=self.seq,
                annotations=self.annotations,
                tombstones=self.tombstones,
                text_epochs=self.text_epochs,
            )
        )

    @classmethod
    def from_snapshot(cls, blob: bytes) -> GraphState:
        snap = _snapshot_decoder.decode(blob)
        return cls(
            seq=snap.seq,
            annotations=snap.annotations,
            tombstones=snap.tombstones,
            text_epochs=snap.text_epochs,
            history_floor=snap.seq,
        )


class _Snapshot(msgspec.Struct, frozen=True):
    seq: int
    annotations: dict[str, dict[str, Any]]
    tombstones: dict[str, int]
    text_epochs: dict[str, dict[str, int]]


_snapshot_encoder = msgspec.json.Encoder()
_snapshot_decoder = msgspec.json.Decoder(_Snapshot)


def _record(write: Write, writer: Writer, ts: int, **fields: Any) -> OpRecord:
    """A record of `write`, stamped with who wrote it and when."""
    return OpRecord(
        client_id=writer.client_id,
        author=writer.author,
        ts=ts,
        op_id=write.op_id,
        owner=writer.owner,
        **fields,
    )


def _merged(existing: Annotation, applied: dict[str, Any]) -> Annotation:
    result = dict(existing)
    for name, value in applied.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = value
    return result


def _check_size(annotation: Annotation, limits: Limits) -> None:
    if len(annotation) > limits.max_fields + 6:  # id + five server stamps
        raise ProtocolError(
            "too_large", f"an annotation may hold at most {limits.max_fields} fields"
        )
    size = len(_size_encoder.encode(annotation))
    if size > limits.max_annotation_bytes:
        raise ProtocolError(
            "too_large", f"annotation of {size} bytes exceeds {limits.max_annotation_bytes}"
        )
