"""Classification enclaves through the real server: what a client of a
clearance receives in initial_state, broadcasts, catch_up and presence, how
annotations moving out of or into its clearance reach it, and that nobody
writes outside their clearance (PROTOCOL.md "Security")."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.client import Replica, TestClient
from tests.support.security import joined, start_secure_server, token
from tests.support.server import ServerProcess

SECRET_ENCLAVE = "FIVE_EYES"


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = start_secure_server(tmp_path_factory.mktemp("enclaves"))
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def graph() -> str:
    return f"g-{uuid.uuid4().hex[:10]}"


def cleared() -> str:
    return token("alice", clearance=[SECRET_ENCLAVE])


def uncleared() -> str:
    return token("bob", clearance=["UNCLASSIFIED"])


async def write(client: TestClient, payload: dict[str, Any], **extra: Any) -> dict[str, Any]:
    op_id = await client.update(payload, **extra)
    reply = await client.ack(op_id)
    assert reply["type"] == "ack", reply
    return reply


def mentions(messages: list[dict[str, Any]], *needles: str) -> list[str]:
    """The needles that appear anywhere in the encoded messages."""
    text = json.dumps(messages)
    return [needle for needle in needles if needle in text]


WRITE_TYPES = ("annotation_update", "annotation_delete", "text_op")


async def next_write(client: TestClient) -> dict[str, Any]:
    """The next broadcast write the client receives."""
    return await client.wait_for(lambda m: m["type"] in WRITE_TYPES and "seq" in m)


async def test_initial_state_and_broadcasts_are_filtered(secure: ServerProcess, graph: str) -> None:
    alice, _ = await joined(secure, graph, cleared())
    await write(alice, {"id": "open-1", "kind": "note"})
    await write(
        alice,
        {
            "id": "secret-1",
            "kind": "note",
            "enclave": SECRET_ENCLAVE,
            "content": "the source is codename-x",
        },
    )

    bob, bob_first = await joined(secure, graph, uncleared())
    assert set(bob_first["data"]) == {"open-1"}
    peer, peer_first = await joined(secure, graph, token("carol", clearance=[SECRET_ENCLAVE]))
    assert set(peer_first["data"]) == {"open-1", "secret-1"}

    await write(alice, {"id": "secret-2", "enclave": SECRET_ENCLAVE, "label": "codename-y"})
    await alice.send(
        {
            "type": "text_op",
            "op_id": "t1",
            "id": "secret-1",
            "field": "content",
            "base": bob_first["seq"],
            "ops": [24, "!"],
        }
    )
    assert (await alice.ack("t1"))["type"] == "ack"
    last = await write(alice, {"id": "open-2", "kind": "note"})

    # Bob sees only open-2, announced with prev = the last write he may see:
    # the hidden writes leave no gap for him to notice.
    seen = await next_write(bob)
    assert seen["payload"]["id"] == "open-2"
    assert seen["prev"] == bob_first["seq"]
    assert seen["seq"] == last["seq"] == bob_first["seq"] + 3
    replica = Replica()
    for message in [bob_first, seen]:
        replica.apply(message)
    assert set(replica.annotations) == {"open-1", "open-2"}
    # The cleared peer sees all three writes, each with prev = seq - 1.
    for _ in range(3):
        message = await next_write(peer)
        assert message["prev"] == message["seq"] - 1
    await bob.send({"type": "ping"})
    await bob.wait_type("pong")
    assert mentions(bob.received, "secret-", SECRET_ENCLAVE, "codename") == []
    for client in (alice, bob, peer):
        await client.close()


async def test_catch_up_after_reconnect_is_filtered(secure: ServerProcess, graph: str) -> None:
    alice, _ = await joined(secure, graph, cleared())
    bob, first = await joined(secure, graph, uncleared(), client_id="bob-tab")
    since = first["seq"]
    await bob.close()

    await write(alice, {"id": "secret-3", "enclave": SECRET_ENCLAVE, "text": "codename-z"})
    visible = await write(alice, {"id": "open-3", "kind": "note"})
    await write(alice, {"id": "secret-3", "label": "more codename-z"})

    back, catch_up = await joined(secure, graph, uncleared(), client_id="bob-tab", since=since)
    assert catch_up["type"] == "catch_up"
    assert catch_up["seq"] == visible["seq"] + 1  # the head, though its last write is hidden
    assert [op["payload"]["id"] for op in catch_up["ops"]] == ["open-3"]
    assert catch_up["ops"][0]["prev"] == since
    assert mentions([catch_up], "secret-", SECRET_ENCLAVE, "codename") == []

    # A cleared client catching up over the same range gets everything.
    full, full_catch_up = await joined(secure, graph, cleared(), since=since)
    ids = [op["payload"]["id"] for op in full_catch_up["ops"]]
    assert ids == ["secret-3", "open-3", "secret-3"]
    for client in (alice, back, full):
        await client.close()


async def test_presence_does_not_reveal_hidden_selections(
    secure: ServerProcess, graph: str
) -> None:
    alice, _ = await joined(secure, graph, cleared(), client_id="alice-tab")
    await write(alice, {"id": "secret-sel", "enclave": SECRET_ENCLAVE})
    await write(alice, {"id": "open-sel"})
    bob, _ = await joined(secure, graph, uncleared())
    peer, _ = await joined(secure, graph, token("carol", clearance=[SECRET_ENCLAVE]))

    state = {
        "selection": ["secret-sel", "open-sel", "entity-7"],
        "editing": "secret-sel",
        "name": "Alice",
    }
    await alice.send({"type": "presence", "state": state})
    to_bob = await bob.wait_type("presence")
    assert to_bob["client_id"] == "alice-tab"
    assert to_bob["state"] == {"selection": ["open-sel", "entity-7"], "name": "Alice"}
    assert (await peer.wait_type("presence"))["state"] == state

    # A client joining later gets the current presence, filtered the same way.
    late, _ = await joined(secure, graph, uncleared())
    snapshot = await late.wait_type("presence")
    assert snapshot["state"] == {"selection": ["open-sel", "entity-7"], "name": "Alice"}
    assert mentions(bob.received + late.received, "secret-sel", SECRET_ENCLAVE) == []
    for client in (alice, bob, peer, late):
        await client.close()


async def test_moving_out_of_and_into_a_clearance(secure: ServerProcess, graph: str) -> None:
    alice, _ = await joined(secure, graph, cleared())
    await write(alice, {"id": "mover", "kind": "note", "content": "visible for now"})
    await write(
        alice,
        {
            "id": "hidden",
            "kind": "note",
            "enclave": SECRET_ENCLAVE,
            "content": "was secret",
            "tags": ["t1"],
        },
    )
    bob, first = await joined(secure, graph, uncleared(), client_id="bob-moves")
    assert set(first["data"]) == {"mover"}

    out = await write(alice, {"id": "mover", "enclave": SECRET_ENCLAVE})
    gone = await next_write(bob)
    assert gone["type"] == "annotation_delete"
    assert (gone["id"], gone["seq"], gone["prev"]) == ("mover", out["seq"], first["seq"])
    assert "payload" not in gone

    moved_in = await write(alice, {"id": "hidden", "enclave": None})
    arrived = await next_write(bob)
    assert arrived["type"] == "annotation_update"
    assert arrived["seq"] == moved_in["seq"]
    whole = arrived["payload"]
    assert (whole["id"], whole["content"], whole["tags"]) == ("hidden", "was secret", ["t1"])
    assert "enclave" not in whole
    assert whole["created_by"] == "alice"

    replica = Replica()
    for message in [first, gone, arrived]:
        replica.apply(message)
    assert set(replica.annotations) == {"hidden"}
    assert replica.annotations["hidden"]["content"] == "was secret"

    # The same moves reach a client catching up later, in the same shape.
    late, catch_up = await joined(secure, graph, uncleared(), since=first["seq"])
    assert [(op["type"], op.get("id") or op["payload"]["id"]) for op in catch_up["ops"]] == [
        ("annotation_delete", "mover"),
        ("annotation_update", "hidden"),
    ]
    assert catch_up["ops"][1]["payload"]["content"] == "was secret"
    for client in (alice, bob, late):
        await client.close()


async def test_writes_outside_the_clearance_are_forbidden(
    secure: ServerProcess, graph: str
) -> None:
    alice, _ = await joined(secure, graph, cleared())
    await write(alice, {"id": "secret-w", "enclave": SECRET_ENCLAVE, "content": "abc"})
    await write(alice, {"id": "open-w", "content": "abc"})
    bob, first = await joined(secure, graph, uncleared())

    attempts = [
        {"type": "annotation_update", "payload": {"id": "new-w", "enclave": SECRET_ENCLAVE}},
        {"type": "annotation_update", "payload": {"id": "new-w", "enclave": "TOP_SECRET"}},
        {"type": "annotation_update", "payload": {"id": "open-w", "enclave": SECRET_ENCLAVE}},
        {"type": "annotation_update", "payload": {"id": "secret-w", "content": "overwritten"}},
        {"type": "annotation_update", "payload": {"id": "secret-w", "enclave": None}},
        {"type": "annotation_update", "recreate": True, "payload": {"id": "secret-w"}},
        {"type": "annotation_delete", "id": "secret-w"},
        {
            "type": "text_op",
            "id": "secret-w",
            "field": "content",
            "base": first["seq"],
            "ops": [3, "!"],
        },
    ]
    for attempt in attempts:
        op_id = uuid.uuid4().hex
        await bob.send({**attempt, "op_id": op_id})
        reply = await bob.ack(op_id)
        assert (reply["type"], reply["code"]) == ("error", "forbidden"), attempt
        if SECRET_ENCLAVE not in json.dumps(attempt):  # never named to someone not cleared
            assert SECRET_ENCLAVE not in reply["message"]
    # Even alice, cleared for FIVE_EYES, may not write into another enclave.
    op_id = await alice.update({"id": "secret-w", "enclave": "TOP_SECRET"})
    assert (await alice.ack(op_id))["code"] == "forbidden"

    # Nothing changed: alice's next broadcast is bob's harmless write.
    sentinel = await write(bob, {"id": "open-sentinel"})
    seen = await next_write(alice)
    assert (seen["seq"], seen["payload"]["id"]) == (sentinel["seq"], "open-sentinel")
    assert sentinel["seq"] == first["seq"] + 1
    check, state = await joined(secure, graph, cleared())
    assert state["data"]["secret-w"]["content"] == "abc"
    assert state["data"]["secret-w"]["enclave"] == SECRET_ENCLAVE
    assert "new-w" not in state["data"]
    for client in (alice, bob, check):
        await client.close()
