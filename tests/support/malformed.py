"""Malformed and hostile frames, each with the error code the server must answer with.

Used by the decoder's unit tests and by the integration test that sends
every one of them over a real socket and checks the session survives.
"""

from __future__ import annotations

import json

_BIG = "x" * (70 * 1024)


def _j(value: object) -> str:
    return json.dumps(value)


def _update(payload: object, **extra: object) -> str:
    return _j({"type": "annotation_update", "op_id": "m", "payload": payload, **extra})


MALFORMED: list[tuple[str, str, str]] = [
    # (name, frame, expected error code)
    ("not json", "hello", "bad_message"),
    ("truncated json", '{"type": "ping"', "bad_message"),
    ("empty frame", "", "bad_message"),
    ("json number", "42", "bad_message"),
    ("json string", '"ping"', "bad_message"),
    ("json null", "null", "bad_message"),
    ("json true", "true", "bad_message"),
    ("batch of numbers", "[1, 2]", "bad_message"),
    ("batch with null", "[null]", "bad_message"),
    ("object without type", _j({"op_id": "1"}), "bad_message"),
    ("type is number", _j({"type": 5}), "bad_message"),
    ("type is null", _j({"type": None}), "bad_message"),
    ("type is list", _j({"type": ["ping"]}), "bad_message"),
    ("unknown type", _j({"type": "annotation_explode"}), "unknown_type"),
    ("unknown type empty", _j({"type": ""}), "unknown_type"),
    ("server-only type ack", _j({"type": "ack", "op_id": "1", "seq": 3}), "unknown_type"),
    (
        "server-only type initial_state",
        _j({"type": "initial_state", "seq": 0, "data": {}}),
        "unknown_type",
    ),
    ("update without payload", _j({"type": "annotation_update", "op_id": "1"}), "bad_message"),
    ("update payload is list", _update([1, 2]), "bad_message"),
    ("update payload is string", _update("a1"), "bad_message"),
    ("update payload without id", _update({"color": "red"}), "bad_message"),
    ("update id is number", _update({"id": 7}), "bad_message"),
    ("update id empty", _update({"id": ""}), "bad_message"),
    ("update id too long", _update({"id": "a" * 129}), "bad_message"),
    ("update id null", _update({"id": None}), "bad_message"),
    (
        "op_id is number",
        _j({"type": "annotation_update", "op_id": 5, "payload": {"id": "a"}}),
        "bad_message",
    ),
    (
        "op_id empty",
        _j({"type": "annotation_update", "op_id": "", "payload": {"id": "a"}}),
        "bad_message",
    ),
    (
        "op_id too long",
        _j({"type": "annotation_update", "op_id": "o" * 200, "payload": {"id": "a"}}),
        "bad_message",
    ),
    ("recreate not bool", _update({"id": "a"}, recreate="yes"), "bad_message"),
    ("target_type invalid", _update({"id": "a", "target_type": "NODE"}), "bad_message"),
    ("confidence invalid", _update({"id": "a", "confidence": "SURE"}), "bad_message"),
    ("confidence number", _update({"id": "a", "confidence": 1}), "bad_message"),
    ("color not string", _update({"id": "a", "color": 12}), "bad_message"),
    ("content not string", _update({"id": "a", "content": ["x"]}), "bad_message"),
    ("enclave empty", _update({"id": "a", "enclave": ""}), "bad_message"),
    ("enclave not string", _update({"id": "a", "enclave": {"x": 1}}), "bad_message"),
    ("tags not list", _update({"id": "a", "tags": "t1"}), "bad_message"),
    ("tags with number", _update({"id": "a", "tags": ["t", 1]}), "bad_message"),
    ("tags with empty", _update({"id": "a", "tags": [""]}), "bad_message"),
    (
        "tags delta unknown key",
        _update({"id": "a", "tags": {"add": ["x"], "drop": ["y"]}}),
        "bad_message",
    ),
    ("tags delta empty", _update({"id": "a", "tags": {}}), "bad_message"),
    ("tags delta add not list", _update({"id": "a", "tags": {"add": "x"}}), "bad_message"),
    ("too many tags", _update({"id": "a", "tags": [f"t{i}" for i in range(300)]}), "too_large"),
    ("too many fields", _update({"id": "a", **{f"f{i}": i for i in range(80)}}), "too_large"),
    ("field name too long", _update({"id": "a", "f" * 100: 1}), "bad_message"),
    (
        "nesting too deep",
        _update({"id": "a", "ui": json.loads("[" * 20 + "]" * 20)}),
        "bad_message",
    ),
    ("oversized message", _update({"id": "a", "content": _BIG}), "too_large"),
    ("delete without id", _j({"type": "annotation_delete", "op_id": "1"}), "bad_message"),
    ("delete id number", _j({"type": "annotation_delete", "op_id": "1", "id": 3}), "bad_message"),
    (
        "delete unknown id",
        _j({"type": "annotation_delete", "op_id": "1", "id": "nope"}),
        "not_found",
    ),
    (
        "text_op without ops",
        _j({"type": "text_op", "op_id": "1", "id": "a", "field": "content", "base": 0}),
        "bad_message",
    ),
    (
        "text_op base negative",
        _j(
            {
                "type": "text_op",
                "op_id": "1",
                "id": "a",
                "field": "content",
                "base": -1,
                "ops": ["x"],
            }
        ),
        "bad_message",
    ),
    (
        "text_op base string",
        _j(
            {
                "type": "text_op",
                "op_id": "1",
                "id": "a",
                "field": "content",
                "base": "0",
                "ops": ["x"],
            }
        ),
        "bad_message",
    ),
    (
        "text_op ops bool",
        _j(
            {
                "type": "text_op",
                "op_id": "1",
                "id": "a",
                "field": "content",
                "base": 0,
                "ops": [True],
            }
        ),
        "bad_message",
    ),
    (
        "text_op ops float",
        _j(
            {
                "type": "text_op",
                "op_id": "1",
                "id": "a",
                "field": "content",
                "base": 0,
                "ops": [1.5],
            }
        ),
        "bad_message",
    ),
    (
        "text_op unknown annotation",
        _j(
            {
                "type": "text_op",
                "op_id": "1",
                "id": "nope",
                "field": "content",
                "base": 0,
                "ops": ["x"],
            }
        ),
        "not_found",
    ),
    ("presence state not object", _j({"type": "presence", "state": [1]}), "bad_message"),
    ("presence too large", _j({"type": "presence", "state": {"x": "y" * 5000}}), "too_large"),
    (
        "huge number",
        '{"type": "annotation_update", "op_id": "1", "payload": {"id": "a", "n": 1'
        + "0" * 400
        + "}}",
        "bad_message",
    ),
    ("deep nesting bomb", "[" * 100_000 + "]" * 100_000, "bad_message"),
    (
        "lone surrogate escape",
        '{"type": "annotation_update", "op_id": "1", "payload": {"id": "\\ud800"}}',
        "bad_message",
    ),
]
