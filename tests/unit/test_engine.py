"""The pure engine: conflict rules, stamps, fold, snapshots; properties with Hypothesis."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intelgraph_collab.sync.engine import GraphState, Writer
from intelgraph_collab.sync.errors import ProtocolError
from intelgraph_collab.sync.limits import Limits
from intelgraph_collab.sync.messages import (
    AnnotationDelete,
    AnnotationUpdate,
    TextOp,
    Write,
    decode_message,
)
from intelgraph_collab.sync.records import OpRecord
from tests.support.client import Replica

LIMITS = Limits()
ALICE = Writer("c-alice", "alice")
BOB = Writer("c-bob", "bob")
T0 = 1_764_144_000_000


def update(payload: dict[str, Any], op_id: str | None = None, recreate: bool = False) -> Write:
    message = decode_message(
        {"type": "annotation_update", "payload": payload, "op_id": op_id, "recreate": recreate}
        if op_id
        else {"type": "annotation_update", "payload": payload, "recreate": recreate},
        LIMITS,
    )
    assert not isinstance(message, ProtocolError), message
    return message  # type: ignore[return-value]


def apply(state: GraphState, write: Write, writer: Writer = ALICE, ts: int = T0) -> OpRecord:
    record = state.resolve(write, writer, ts, LIMITS)
    state.fold(record)
    return record


def test_first_update_creates_with_server_stamps() -> None:
    state = GraphState()
    record = apply(state, update({"id": "a1", "color": "red", "kind": "tag"}, "1"))
    assert record.seq == 1 and state.seq == 1
    assert state.annotations["a1"] == {
        "id": "a1",
        "color": "red",
        "kind": "tag",
        "created_by": "alice",
        "created_at": "2025-11-26T08:00:00.000Z",
        "updated_by": "alice",
        "updated_at": "2025-11-26T08:00:00.000Z",
        "seq": 1,
    }


def test_field_level_last_writer_wins_in_server_order() -> None:
    state = GraphState()
    apply(state, update({"id": "a", "color": "red", "label": "x"}))
    apply(state, update({"id": "a", "color": "blue"}), BOB, T0 + 5)
    apply(state, update({"id": "a", "label": "y"}), ALICE, T0 + 9)
    annotation = state.annotations["a"]
    assert (annotation["color"], annotation["label"]) == ("blue", "y")
    assert (annotation["created_by"], annotation["updated_by"], annotation["seq"]) == (
        "alice",
        "alice",
        3,
    )


def test_null_removes_a_field_and_absent_fields_stay() -> None:
    state = GraphState()
    apply(state, update({"id": "a", "color": "red", "label": "x"}))
    apply(state, update({"id": "a", "color": None}))
    assert "color" not in state.annotations["a"] and state.annotations["a"]["label"] == "x"


def test_concurrent_tag_additions_all_survive() -> None:
    state = GraphState()
    apply(state, update({"id": "a", "tags": ["seed"]}))
    apply(state, update({"id": "a", "tags": {"add": ["alice-tag"]}}), ALICE)
    apply(state, update({"id": "a", "tags": {"add": ["bob-tag"], "remove": ["seed"]}}), BOB)
    assert state.annotations["a"]["tags"] == ["alice-tag", "bob-tag"]


def test_tag_set_is_deduplicated_and_sorted() -> None:
    state = GraphState()
    apply(state, update({"id": "a", "tags": ["b", "a", "b"]}))
    assert state.annotations["a"]["tags"] == ["a", "b"]


def test_delete_wins_over_later_update_unless_recreated() -> None:
    state = GraphState()
    apply(state, update({"id": "a", "color": "red"}))
    apply(state, AnnotationDelete(id="a", op_id="d"))
    with pytest.raises(ProtocolError) as refused:
        state.resolve(update({"id": "a", "color": "blue"}), BOB, T0, LIMITS)
    assert refused.value.code == "conflict"
    assert "a" not in state.annotations and state.seq == 2
    apply(state, update({"id": "a", "label": "fresh"}, recreate=True), BOB)
    assert state.annotations["a"]["label"] == "fresh" and "color" not in state.annotations["a"]
    assert state.annotations["a"]["created_by"] == "bob"


def test_recreate_of_a_live_annotation_starts_afresh() -> None:
    state = GraphState()
    apply(state, update({"id": "a", "color": "red", "label": "old"}))
    record = apply(state, update({"id": "a", "label": "new"}, recreate=True))
    assert record.recreate
    assert "color" not in state.annotations["a"] and state.annotations["a"]["label"] == "new"


def test_delete_of_unknown_annotation_is_not_found() -> None:
    with pytest.raises(ProtocolError) as refused:
        GraphState().resolve(AnnotationDelete(id="ghost"), ALICE, T0, LIMITS)
    assert refused.value.code == "not_found"


def test_server_fields_from_the_client_are_ignored() -> None:
    state = GraphState()
    apply(state, update({"id": "a", "created_by": "mallory", "updated_by": "mallory", "seq": 999}))
    assert state.annotations["a"]["created_by"] == "alice" and state.annotations["a"]["seq"] == 1


def test_annotation_growing_past_the_size_limit_is_refused_and_changes_nothing() -> None:
    state = GraphState()
    limits = Limits(max_annotation_bytes=2_000)
    state.fold(state.resolve(update({"id": "a", "content": "x" * 1_000}), ALICE, T0, limits))
    before = dict(state.annotations["a"])
    with pytest.raises(ProtocolError) as refused:
        state.resolve(update({"id": "a", "label": "y" * 1_500}), ALICE, T0, limits)
    assert refused.value.code == "too_large"
    assert state.annotations["a"] == before and state.seq == 1


def test_text_op_rules() -> None:
    state = GraphState()
    apply(state, update({"id": "n", "kind": "note", "content": "hello"}))
    apply(state, TextOp(id="n", field="content", base=1, ops=[5, " world"]))
    apply(state, TextOp(id="n", field="content", base=1, ops=["> ", 5]), BOB)
    assert state.annotations["n"]["content"] == "> hello world"
    codes = {}
    for name, op in {
        "not spanning": TextOp(id="n", field="content", base=3, ops=[2, "x"]),
        "base ahead": TextOp(id="n", field="content", base=9, ops=["x", 13]),
        "not text": TextOp(id="n", field="tags", base=3, ops=["x"]),
        "deleted": TextOp(id="gone", field="content", base=3, ops=["x"]),
    }.items():
        with pytest.raises(ProtocolError) as refused:
            state.resolve(op, ALICE, T0, LIMITS)
        codes[name] = refused.value.code
    assert codes == {
        "not spanning": "invalid_op",
        "base ahead": "conflict",
        "not text": "invalid_op",
        "deleted": "not_found",
    }
    apply(state, update({"id": "n", "content": "replaced"}))
    with pytest.raises(ProtocolError) as refused:
        state.resolve(TextOp(id="n", field="content", base=3, ops=["x", 13]), ALICE, T0, LIMITS)
    assert refused.value.code == "conflict"


def test_snapshot_round_trip_then_fold_gives_the_same_state() -> None:
    state = GraphState()
    records = [
        apply(state, update({"id": "a", "tags": ["x"], "content": "ab"})),
        apply(state, TextOp(id="a", field="content", base=1, ops=[2, "c"])),
    ]
    restored = GraphState.from_snapshot(state.snapshot())
    restored.remember_text_ops(records, floor=0)
    assert restored.annotations == state.annotations and restored.seq == state.seq
    late = TextOp(id="a", field="content", base=1, ops=["<", 2])
    assert restored.resolve(late, BOB, T0, LIMITS).ops == state.resolve(late, BOB, T0, LIMITS).ops


def test_fold_refuses_a_record_out_of_order() -> None:
    state = GraphState()
    record = GraphState().resolve(update({"id": "a"}), ALICE, T0, LIMITS)
    state.fold(record)
    with pytest.raises(ValueError):
        state.fold(record)


# -- properties ----------------------------------------------------------

IDS = ["a", "b", "c"]
FIELDS = ["color", "label", "confidence", "kind"]
VALUES = {
    "color": ["red", "blue", None],
    "label": ["x", "y", None],
    "confidence": ["HIGH", "LOW", None],
    "kind": ["tag", "note"],
}
TAGS = ["t1", "t2", "t3", "t4"]

field_update = st.builds(
    lambda i, field_value: update({"id": i, field_value[0]: field_value[1]}),
    st.sampled_from(IDS),
    st.sampled_from(FIELDS).flatmap(lambda f: st.tuples(st.just(f), st.sampled_from(VALUES[f]))),
)
tag_delta = st.builds(
    lambda i, add, remove: update({"id": i, "tags": {"add": add, "remove": remove}}),
    st.sampled_from(IDS),
    st.lists(st.sampled_from(TAGS), max_size=2),
    st.lists(st.sampled_from(TAGS), max_size=1),
)
tag_set = st.builds(
    lambda i, tags: update({"id": i, "tags": tags}),
    st.sampled_from(IDS),
    st.lists(st.sampled_from(TAGS), max_size=3),
)
delete = st.builds(lambda i: AnnotationDelete(id=i), st.sampled_from(IDS))
recreate = st.builds(
    lambda i: update({"id": i, "label": "re"}, recreate=True), st.sampled_from(IDS)
)
text_edit = st.builds(
    lambda i, pos, text: ("text", i, pos, text),
    st.sampled_from(IDS),
    st.integers(0, 50),
    st.text(alphabet="xyz😀é", min_size=1, max_size=3),
)
writes = st.lists(
    st.tuples(
        st.sampled_from([ALICE, BOB, Writer("c-carol", "carol")]),
        st.one_of(field_update, tag_delta, tag_set, delete, recreate, text_edit),
    ),
    max_size=60,
)


def _materialize(state: GraphState, spec: Any) -> Write:
    """Turn a text-edit spec into a text op on the current text. (Stale bases
    and concurrent text are the text OT tests' subject: test_text_ot.py.)"""
    if not isinstance(spec, tuple):
        return spec  # type: ignore[no-any-return]
    _, annotation_id, pos, text = spec
    current = state.annotations.get(annotation_id, {}).get("content", "")
    at = min(pos, len(current))
    return TextOp(
        id=annotation_id,
        field="content",
        base=state.seq,
        ops=[op for op in (at, text, len(current) - at) if op != 0],
    )


@settings(max_examples=300, deadline=None)
@given(writes)
def test_replicas_applying_broadcasts_equal_the_server(history: list[Any]) -> None:
    """Writes from several clients folded in server order give the state that
    every replica reaches by applying the broadcasts, and the log replays to it."""
    server = GraphState()
    replica = Replica()
    records: list[OpRecord] = []
    for writer, spec in history:
        write = _materialize(server, spec)
        try:
            record = server.resolve(write, writer, T0 + len(records), LIMITS)
        except ProtocolError:
            continue
        server.fold(record)
        records.append(record)
        replica.apply(record.wire(record.seq - 1))
    assert replica.annotations == server.annotations
    assert [r.seq for r in records] == list(range(1, len(records) + 1))
    replayed = GraphState()
    for record in records:
        replayed.fold(record)
    assert replayed.annotations == server.annotations and replayed.seq == server.seq


@settings(max_examples=300, deadline=None)
@given(writes)
def test_tag_additions_are_never_lost_and_delete_wins(history: list[Any]) -> None:
    server = GraphState()
    must_have: dict[str, set[str]] = {}
    deleted: set[str] = set()
    for writer, spec in history:
        write = _materialize(server, spec)
        try:
            record = server.resolve(write, writer, T0, LIMITS)
        except ProtocolError as refusal:
            if (
                isinstance(write, AnnotationUpdate)
                and not write.recreate
                and write.payload["id"] in deleted
            ):
                assert refusal.code == "conflict"
            continue
        if isinstance(write, AnnotationUpdate) and write.payload["id"] in deleted:
            assert write.recreate, "an update of a deleted annotation went through"
        server.fold(record)
        annotation_id = record.id
        tags = (record.payload or {}).get("tags") if record.type == "annotation_update" else None
        if record.type == "annotation_delete":
            deleted.add(annotation_id)
            must_have.pop(annotation_id, None)
        elif record.type == "annotation_update":
            deleted.discard(annotation_id)
            sent = write.payload.get("tags") if isinstance(write, AnnotationUpdate) else None
            if record.recreate or isinstance(sent, list):
                must_have[annotation_id] = set(tags or [])
            elif isinstance(sent, dict):
                kept = must_have.setdefault(annotation_id, set())
                kept.difference_update(sent["remove"])
                kept.update(set(sent["add"]) - set(sent["remove"]))
            elif "tags" in write.payload:  # tags: null
                must_have[annotation_id] = set()
        for key, expected in must_have.items():
            assert expected <= set(server.annotations.get(key, {}).get("tags", [])), key
