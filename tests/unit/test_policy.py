"""The write policy and presence redaction (sync/policy.py), pure and with Hypothesis."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intelgraph_collab.sync.engine import Writer
from intelgraph_collab.sync.errors import ProtocolError
from intelgraph_collab.sync.messages import AnnotationDelete, AnnotationUpdate, TextOp, Write
from intelgraph_collab.sync.policy import (
    authorize_write,
    hidden_from,
    may_read,
    redact_presence,
    target_id,
)

ROLES = ["viewer", "commenter", "editor", "admin"]
ENCLAVES = ["UNCLASSIFIED", "FIVE_EYES", "NOFORN", "TOP_SECRET"]
KINDS = ["note", "tag", "highlight"]


def allowed(write: Write, writer: Writer, existing: dict[str, Any] | None) -> bool:
    try:
        authorize_write(write, writer, existing)
    except ProtocolError as refusal:
        assert refusal.code == "forbidden"
        assert refusal.op_id == write.op_id
        return False
    return True


clearances = st.none() | st.frozensets(st.sampled_from(ENCLAVES[1:]))
writers = st.builds(Writer, st.just("c1"), st.just("alice"), st.sampled_from(ROLES), clearances)
annotations = st.none() | st.fixed_dictionaries(
    {"id": st.just("a1")},
    optional={"enclave": st.sampled_from(ENCLAVES), "kind": st.sampled_from(KINDS)},
)
payloads = st.fixed_dictionaries(
    {"id": st.just("a1")},
    optional={
        "enclave": st.none() | st.sampled_from(ENCLAVES),
        "kind": st.none() | st.sampled_from(KINDS),
        "color": st.just("red"),
    },
)
writes: st.SearchStrategy[Write] = st.one_of(
    st.builds(AnnotationUpdate, payload=payloads, op_id=st.just("o1"), recreate=st.booleans()),
    st.builds(AnnotationDelete, id=st.just("a1"), op_id=st.just("o2")),
    st.builds(
        TextOp,
        id=st.just("a1"),
        field=st.just("content"),
        base=st.just(0),
        ops=st.just(["x"]),
        op_id=st.just("o3"),
    ),
)


def sees(clearance: frozenset[str] | None, enclave: str | None) -> bool:
    return clearance is None or enclave in (None, "UNCLASSIFIED") or enclave in clearance


@given(writes, writers, annotations)
def test_the_rules_of_the_issue(
    write: Write, writer: Writer, existing: dict[str, Any] | None
) -> None:
    """The policy, restated independently: a write is allowed exactly when all hold."""
    rules = [writer.role != "viewer"]
    if existing is not None:
        rules.append(sees(writer.clearance, existing.get("enclave")))
    kind_after: object = None if existing is None else existing.get("kind")
    if isinstance(write, AnnotationUpdate):
        fresh = existing is None or write.recreate
        if "enclave" in write.payload:
            enclave_after = write.payload["enclave"]
        else:
            enclave_after = None if fresh else existing.get("enclave")  # type: ignore[union-attr]
        rules.append(sees(writer.clearance, enclave_after))
        if "kind" in write.payload:
            kind_after = write.payload["kind"]
        elif fresh:
            kind_after = None
    if writer.role == "commenter":
        if existing is not None:
            rules.append(existing.get("kind") == "note")
        if isinstance(write, AnnotationUpdate):
            rules.append(kind_after == "note")
    assert allowed(write, writer, existing) == all(rules)


def test_refusals_never_name_a_hidden_enclave() -> None:
    secret = {"id": "a1", "enclave": "TOP_SECRET"}
    writer = Writer("c1", "bob", "editor", frozenset())
    for write in (
        AnnotationUpdate(payload={"id": "a1", "color": "red"}),
        AnnotationDelete(id="a1"),
        TextOp(id="a1", field="content", base=0, ops=["x"]),
    ):
        with pytest.raises(ProtocolError) as refused:
            authorize_write(write, writer, secret)
        assert "TOP_SECRET" not in refused.value.message


def test_a_non_string_enclave_is_left_to_the_engine() -> None:
    # The engine refuses it as bad_message; the policy must not let it
    # through as something else nor crash on it.
    writer = Writer("c1", "bob", "editor", frozenset())
    assert allowed(AnnotationUpdate(payload={"id": "a1", "enclave": 5}), writer, None)


def test_target_id() -> None:
    assert target_id(AnnotationUpdate(payload={"id": "a1"})) == "a1"
    assert target_id(AnnotationUpdate(payload={"id": ["unhashable"]})) is None
    assert target_id(AnnotationDelete(id="a2")) == "a2"


def test_may_read() -> None:
    assert may_read({"id": "a"}, frozenset())
    assert not may_read({"id": "a", "enclave": "FIVE_EYES"}, frozenset())
    assert may_read({"id": "a", "enclave": "FIVE_EYES"}, frozenset({"FIVE_EYES"}))
    assert may_read({"id": "a", "enclave": "FIVE_EYES"}, None)


# -- presence -------------------------------------------------------------------

STATE_ANNOTATIONS = {
    "open": {"id": "open"},
    "secret": {"id": "secret", "enclave": "FIVE_EYES"},
    "other": {"id": "other", "enclave": "NOFORN"},
}
ids = st.sampled_from(["open", "secret", "other", "entity-7", "name"])
json_values = st.recursive(
    ids | st.integers() | st.booleans() | st.none(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(ids, children, max_size=4),
    max_leaves=20,
)
states = st.dictionaries(ids, json_values, max_size=5)


def strings_in(value: Any) -> set[str]:
    found: set[str] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            found.add(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


@given(states, st.frozensets(st.sampled_from(["FIVE_EYES", "NOFORN"])))
def test_redacted_presence_mentions_nothing_hidden(
    state: dict[str, Any], clearance: frozenset[str]
) -> None:
    hidden = hidden_from(STATE_ANNOTATIONS, clearance)
    before = json.dumps(state)
    redacted = redact_presence(state, hidden)
    hidden_ids = {i for i in STATE_ANNOTATIONS if hidden(i)}
    assert strings_in(redacted).isdisjoint(hidden_ids)
    # What is visible stays: when nothing is hidden, the state is sent as is.
    if strings_in(state).isdisjoint(hidden_ids):
        assert redacted is state
    # The input is never modified (it is shared by every audience).
    assert json.dumps(state) == before


def test_redaction_example() -> None:
    state = {
        "selection": ["secret", "open", "entity-7"],
        "editing": "secret",
        "secret": {"x": 1},
        "nested": {"caret": {"id": "secret", "at": 3}, "keep": 1},
    }
    hidden = hidden_from(STATE_ANNOTATIONS, frozenset())
    assert redact_presence(state, hidden) == {
        "selection": ["open", "entity-7"],
        "nested": {"caret": {"at": 3}, "keep": 1},
    }
    assert state["selection"] == ["secret", "open", "entity-7"]


def test_redaction_survives_hostile_nesting() -> None:
    deep: Any = "secret"
    for _ in range(900):
        deep = [deep]
    hidden = hidden_from(STATE_ANNOTATIONS, frozenset())
    redacted = redact_presence({"deep": deep, "keep": "open"}, hidden)
    assert "secret" not in strings_in(redacted)
    assert redacted["keep"] == "open"
