"""The decoder: every malformed frame gets its typed refusal; good frames decode."""

from __future__ import annotations

import pytest

from intelgraph_collab.sync.errors import ProtocolError
from intelgraph_collab.sync.limits import Limits
from intelgraph_collab.sync.messages import (
    AnnotationDelete,
    AnnotationUpdate,
    Ping,
    Presence,
    TextOp,
    decode_frame,
)
from tests.support.malformed import MALFORMED

# Refused only against the graph's state or by the room, not by the decoder.
DECIDED_LATER = {"delete unknown id", "text_op unknown annotation", "presence too large"}


@pytest.mark.parametrize(("name", "frame", "code"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_frame_is_refused_with_its_code(name: str, frame: str, code: str) -> None:
    results = decode_frame(frame, Limits())
    if name in DECIDED_LATER:
        assert not isinstance(results[0], ProtocolError)
        return
    assert results, "a frame always yields at least one result"
    assert all(isinstance(result, ProtocolError) for result in results)
    assert isinstance(results[0], ProtocolError) and results[0].code == code


def test_there_are_at_least_fifty_kinds_of_malformed_frames() -> None:
    assert len({name for name, _, _ in MALFORMED}) >= 50


def test_each_message_type_decodes_to_its_struct() -> None:
    frame = (
        '[{"type":"ping"},{"type":"presence","state":{"s":1}},'
        '{"type":"annotation_update","op_id":"1","payload":{"id":"a","color":"red"}},'
        '{"type":"annotation_delete","op_id":"2","id":"a"},'
        '{"type":"text_op","op_id":"3","id":"a","field":"content","base":4,"ops":[1,"x",-1]}]'
    )
    kinds = [type(m) for m in decode_frame(frame, Limits())]
    assert kinds == [Ping, Presence, AnnotationUpdate, AnnotationDelete, TextOp]


def test_a_bad_element_of_a_batch_does_not_spoil_the_others() -> None:
    results = decode_frame(
        '[{"type":"ping"},{"type":"nope","op_id":"9"},{"type":"ping"}]', Limits()
    )
    assert isinstance(results[0], Ping) and isinstance(results[2], Ping)
    refusal = results[1]
    assert isinstance(refusal, ProtocolError)
    assert (refusal.code, refusal.op_id) == ("unknown_type", "9")


def test_refusals_carry_the_op_id_of_the_message() -> None:
    [refusal] = decode_frame(
        '{"type":"annotation_update","op_id":"x7","payload":{"id":5}}', Limits()
    )
    assert isinstance(refusal, ProtocolError)
    assert refusal.to_message() == {
        "type": "error",
        "code": "bad_message",
        "message": refusal.message,
        "op_id": "x7",
    }


def test_server_owned_fields_are_dropped_at_the_edge() -> None:
    [update] = decode_frame(
        '{"type":"annotation_update","payload":{"id":"a","created_by":"mallory","seq":99,'
        '"updated_at":"1999","color":"red"}}',
        Limits(),
    )
    assert isinstance(update, AnnotationUpdate)
    assert update.payload == {"id": "a", "color": "red"}
    assert update.op_id is None


def test_frame_and_message_size_limits_are_configurable() -> None:
    limits = Limits(max_frame_bytes=100, max_message_bytes=50)
    [too_big_frame] = decode_frame('{"type":"ping","pad":"' + "x" * 120 + '"}', limits)
    assert isinstance(too_big_frame, ProtocolError) and too_big_frame.code == "too_large"
    big_element = '{"type":"ping","pad":"' + "x" * 40 + '"}'
    results = decode_frame(f'[{big_element},{{"type":"ping"}}]', limits)
    assert isinstance(results[0], ProtocolError) and results[0].code == "too_large"
    assert isinstance(results[1], Ping)
