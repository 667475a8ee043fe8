"""Fuzz target for the message decoder and the engine: no input raises an
unhandled exception.

Whatever a client sends, `decode_frame` returns messages and refusals (never
raises), `GraphState.resolve` either returns a record or raises
ProtocolError with nothing changed, and `fold` applies every record it
returned; the encoded state still decodes. Three input shapes: raw bytes and
text, arbitrary JSON, and JSON shaped like protocol messages with hostile
values (the deep paths). CI: 150 examples per shape; long version: COLLAB_FUZZ_EXAMPLES=100000.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intelgraph_collab.sync.engine import GraphState, Writer
from intelgraph_collab.sync.errors import ProtocolError
from intelgraph_collab.sync.limits import Limits
from intelgraph_collab.sync.messages import AnnotationDelete, AnnotationUpdate, TextOp, decode_frame
from intelgraph_collab.sync.records import record_decoder, record_encoder
from intelgraph_collab.sync.views import view_of

from .figures import env_int

LIMITS = Limits(max_frame_bytes=64 * 1024, max_message_bytes=16 * 1024, max_batch_messages=50)
EXAMPLES = env_int("COLLAB_FUZZ_EXAMPLES", 150)
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
ids = st.sampled_from(["a", "b", "c", "", "x" * 129]) | st.text(max_size=4)
fields = st.sampled_from(
    ["content", "text", "label", "tags", "enclave", "seq", "id", "color", "confidence", "kind"]
) | st.text(max_size=6)
text_ops = st.lists(
    st.integers(min_value=-6, max_value=6) | st.text(max_size=3) | json_values, max_size=6
)
payloads = st.dictionaries(fields, json_values | st.text(max_size=6), max_size=5).flatmap(
    lambda payload: st.just(payload) | ids.map(lambda i: {**payload, "id": i})
)
tags = st.lists(st.text(max_size=5), max_size=4) | st.fixed_dictionaries(
    {}, optional={"add": st.lists(st.text(max_size=5)), "remove": st.lists(st.text(max_size=5))}
)
messages = st.one_of(
    st.fixed_dictionaries(
        {"type": st.just("annotation_update"), "payload": payloads},
        optional={
            "op_id": st.text(max_size=4) | json_values,
            "recreate": st.booleans() | json_values,
        },
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("annotation_update"),
            "payload": st.fixed_dictionaries({"id": ids, "tags": tags}),
        }
    ),
    st.fixed_dictionaries(
        {"type": st.just("annotation_delete"), "id": ids | json_values},
        optional={"op_id": st.text(max_size=4)},
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("text_op"),
            "id": ids,
            "field": fields,
            "base": st.integers(min_value=-2, max_value=8) | json_values,
            "ops": text_ops | json_values,
        },
        optional={"op_id": st.text(max_size=4)},
    ),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["presence", "ping", "nope", ""])}, optional={"state": json_values}
    ),
    st.dictionaries(st.sampled_from(["type", "op_id", "payload", "id"]), json_values, max_size=4),
)


def drive(frames: list[str | bytes]) -> GraphState:
    """Decode every frame and resolve every write; raise only on a bug."""
    state = GraphState()
    writer = Writer("fuzz", "fuzzer")
    for frame in frames:
        for message in decode_frame(frame, LIMITS):
            if not isinstance(message, AnnotationUpdate | AnnotationDelete | TextOp):
                continue
            try:
                record = state.resolve(message, writer, 1_764_144_000_000 + state.seq, LIMITS)
            except ProtocolError:
                continue
            state.fold(record)
            assert record_decoder.decode(record_encoder.encode(record)) == record
            for clearance in (None, frozenset({"SECRET"})):
                view_of(record, clearance, record.seq - 1)
    restored = GraphState.from_snapshot(state.snapshot())
    assert restored.annotations == state.annotations
    return state


@FUZZ
@given(st.lists(st.binary(max_size=200) | st.text(max_size=200), max_size=5))
def test_raw_frames_never_raise(frames: list[str | bytes]) -> None:
    drive(frames)


@FUZZ
@given(st.lists(json_values, max_size=5))
def test_arbitrary_json_never_raises(documents: list[Any]) -> None:
    drive([json.dumps(document) for document in documents])


@FUZZ
@given(st.lists(messages | st.lists(messages, max_size=4), min_size=1, max_size=12))
def test_protocol_shaped_messages_never_raise(documents: list[Any]) -> None:
    drive([json.dumps(document) for document in documents])


@FUZZ
@given(st.lists(messages, min_size=1, max_size=40))
def test_long_histories_on_few_ids_never_raise(documents: list[Any]) -> None:
    """Few ids, many writes: deletes, recreates and text ops meet."""
    drive([json.dumps(document) for document in documents])
