"""The protocol's rules as a client applies them, and the run's unique
characters: pure functions shared by the model client, the history checker
and the workload."""

from __future__ import annotations

import random
from typing import Any

from intelgraph_collab.sync import text_ot
from intelgraph_collab.sync.annotation import SERVER_FIELDS, iso_utc
from intelgraph_collab.sync.text_ot import Op

Message = dict[str, Any]
Annotations = dict[str, dict[str, Any]]


class CharSource:
    """Hands out characters never handed out before in this run, so that the
    checker can follow every inserted character through the history."""

    RANGES = ((0x4E00, 0xA000), (0x3400, 0x4DC0), (0xAC00, 0xD7A4), (0x20000, 0x2A6E0))
    """CJK, CJK extension A, Hangul, CJK extension B: ~80,000 characters,
    each one code point (no surrogates, no combining marks)."""

    def __init__(self) -> None:
        self._codes = (code for start, stop in self.RANGES for code in range(start, stop))

    def take(self, count: int) -> str:
        codes = [next(self._codes, None) for _ in range(count)]
        if None in codes:
            raise RuntimeError("character source exhausted: shorten the run")
        return "".join(chr(code) for code in codes if code is not None)


def apply_broadcast(annotations: Annotations, message: Message) -> None:
    """Apply one write as the server broadcast it (PROTOCOL.md rules)."""
    kind = message["type"]
    if kind == "annotation_update":
        payload = message["payload"]
        current = annotations.get(payload["id"])
        if current is None or message.get("recreate"):
            annotations[payload["id"]] = {k: v for k, v in payload.items() if v is not None}
        else:
            for key, value in payload.items():
                if value is None:
                    current.pop(key, None)
                else:
                    current[key] = value
    elif kind == "annotation_delete":
        annotations.pop(message["id"], None)
    else:
        annotation = annotations[message["id"]]
        name = message["field"]
        annotation[name] = text_ot.apply(annotation.get(name) or "", message["ops"])
        annotation.update(
            updated_by=message["author"], updated_at=iso_utc(message["ts"]), seq=message["seq"]
        )


def apply_own_update(
    annotations: Annotations, message: Message, author: str | None, ts: int, seq: int
) -> None:
    """Reproduce the server's resolution of our own acked `annotation_update`:
    the ack carries no payload, so a client folds its write itself."""
    payload = message["payload"]
    annotation_id = payload["id"]
    fields = {k: v for k, v in payload.items() if k not in SERVER_FIELDS}
    existing = annotations.get(annotation_id)
    stamp = {"updated_by": author, "updated_at": iso_utc(ts), "seq": seq}
    if existing is None or message.get("recreate"):
        fresh = {k: v for k, v in fields.items() if v is not None}
        if isinstance(fresh.get("tags"), dict):
            fresh["tags"] = fresh["tags"].get("add", [])
        if "tags" in fresh:
            fresh["tags"] = sorted(set(fresh["tags"]))
        fresh.update(created_by=author, created_at=stamp["updated_at"], **stamp)
        annotations[annotation_id] = {k: v for k, v in fresh.items() if v is not None}
        return
    merged = dict(existing)
    for key, value in {**fields, **stamp}.items():
        if key == "tags" and isinstance(value, dict):
            current = set(existing.get("tags") or ())
            value = sorted((current | set(value.get("add", []))) - set(value.get("remove", [])))
        elif key == "tags" and isinstance(value, list):
            value = sorted(set(value))
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    annotations[annotation_id] = merged


def text_effect(text: str, op: Op) -> tuple[str, frozenset[str]]:
    """(inserted characters, deleted characters) of `op` applied to `text`."""
    inserted: list[str] = []
    deleted: set[str] = set()
    position = 0
    for component in op:
        if isinstance(component, str):
            inserted.append(component)
        elif component > 0:
            position += component
        else:
            deleted.update(text[position : position - component])
            position -= component
    return "".join(inserted), frozenset(deleted)


def random_text_edit(rng: random.Random, text: str, chars: CharSource) -> Op:
    """Delete up to 3 characters and/or insert up to 3 fresh ones somewhere."""
    position = rng.randint(0, len(text))
    deleting = rng.randint(0, min(3, len(text) - position))
    inserting = rng.randint(0 if deleting else 1, 3)
    op: Op = []
    if position:
        op.append(position)
    if inserting:
        op.append(chars.take(inserting))
    if deleting:
        op.append(-deleting)
    rest = len(text) - position - deleting
    if rest:
        op.append(rest)
    return text_ot.normalize(op)
