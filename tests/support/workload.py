"""Random writes of every kind for `protocol_model.ModelClient`s: field
updates, tag sets and deltas, removals, deletes, recreates, whole-field text
replacements and OT text edits, on a few annotation ids so they conflict.
Shared by the simulator and the fault tests over real sockets."""

from __future__ import annotations

import random

from .fold_rules import CharSource, Message, random_text_edit
from .protocol_model import TEXT_FIELDS, ModelClient

IDS = tuple(f"a{i}" for i in range(6))
COLORS = ("red", "green", "blue", "amber")
TAGS = ("t1", "t2", "t3", "t4", "t5")
CONFIDENCES = ("HIGH", "MEDIUM", "LOW", "UNKNOWN")


class Workload:
    def __init__(
        self, rng: random.Random, chars: CharSource | None = None, ids: tuple[str, ...] = IDS
    ) -> None:
        self.rng = rng
        self.chars = chars or CharSource()
        self.ids = ids

    def write(self, model: ModelClient) -> str:
        """One update, delete or recreate; its op_id."""
        rng = self.rng
        annotation_id = rng.choice(self.ids)
        roll = rng.random()
        if roll < 0.14:
            return model.delete(annotation_id)
        if roll < 0.26:
            return model.update(self.fresh_payload(annotation_id), recreate=True)
        return model.update(self.payload(model, annotation_id))

    def edit(self, model: ModelClient) -> bool:
        """One OT text edit of a live annotation, if there is one to edit."""
        editable = [
            (annotation_id, name)
            for annotation_id in sorted(model.annotations)
            for name in TEXT_FIELDS
            if model.may_edit_text(annotation_id, name)
        ]
        if not editable:
            return False
        target = self.rng.choice(editable)
        text = model.local_text(*target)
        assert text is not None
        model.edit_text(*target, random_text_edit(self.rng, text, self.chars))
        return True

    def fresh_payload(self, annotation_id: str) -> Message:
        rng = self.rng
        payload: Message = {"id": annotation_id, "color": rng.choice(COLORS)}
        if rng.random() < 0.6:
            payload["content"] = self.chars.take(rng.randint(0, 4))
        if rng.random() < 0.5:
            payload["tags"] = rng.sample(TAGS, rng.randint(0, 3))
        return payload

    def payload(self, model: ModelClient, annotation_id: str) -> Message:
        rng = self.rng
        payload: Message = {"id": annotation_id}
        for _ in range(rng.randint(1, 3)):
            roll = rng.random()
            if roll < 0.2:
                payload["color"] = rng.choice(COLORS)
            elif roll < 0.3:
                payload["label"] = rng.choice(("x", "y", None))
            elif roll < 0.4:
                payload["confidence"] = rng.choice(CONFIDENCES)
            elif roll < 0.55:
                payload["tags"] = rng.sample(TAGS, rng.randint(0, 3))
            elif roll < 0.8:
                payload["tags"] = {
                    "add": rng.sample(TAGS, rng.randint(0, 2)),
                    "remove": rng.sample(TAGS, rng.randint(0, 2)),
                }
            elif roll < 0.9:
                payload["color"] = None
            else:
                name = rng.choice(TEXT_FIELDS)
                if (annotation_id, name) not in model.fields:
                    payload[name] = self.chars.take(rng.randint(0, 4))
        return payload
