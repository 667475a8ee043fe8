"""Roles and authorship through the real server, on both write paths
(WebSocket and REST): viewer, commenter, editor, and no forged author."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from tests.support.client import TestClient
from tests.support.security import joined, start_secure_server, token
from tests.support.server import ServerProcess


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = start_secure_server(tmp_path_factory.mktemp("roles"))
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def graph() -> str:
    return f"g-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def http(secure: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=secure.http_url, timeout=10.0) as client:
        yield client


async def answer(client: TestClient, message: dict[str, Any]) -> dict[str, Any]:
    """Send one write with a fresh op_id; its ack or error."""
    op_id = uuid.uuid4().hex
    await client.send({**message, "op_id": op_id})
    return await client.ack(op_id)


async def nothing_broadcast_before(watcher: TestClient, editor: TestClient) -> None:
    """The watcher's next broadcast is the editor's sentinel write: nothing was
    broadcast in between (broadcasts are delivered in seq order)."""
    sentinel = f"sentinel-{uuid.uuid4().hex}"
    reply = await answer(editor, {"type": "annotation_update", "payload": {"id": sentinel}})
    assert reply["type"] == "ack"
    broadcast = await watcher.wait_for(lambda m: "seq" in m and m["type"] != "catch_up")
    assert broadcast["type"] == "annotation_update"
    assert broadcast["payload"]["id"] == sentinel


async def test_viewer_reads_but_every_write_is_forbidden(secure: ServerProcess, graph: str) -> None:
    editor, _ = await joined(secure, graph, token("ed", role="editor"))
    note = {"id": "a1", "kind": "note", "content": "hi"}
    assert (await answer(editor, {"type": "annotation_update", "payload": note}))["type"] == "ack"
    viewer, first = await joined(secure, graph, token("vic", role="viewer"))
    assert first["data"]["a1"]["content"] == "hi"  # a viewer reads
    watcher, _ = await joined(secure, graph, token("wat", role="viewer"))

    writes = [
        {"type": "annotation_update", "payload": {"id": "a1", "content": "defaced"}},
        {"type": "annotation_update", "payload": {"id": "new", "kind": "note"}},
        {"type": "annotation_delete", "id": "a1"},
        {"type": "text_op", "id": "a1", "field": "content", "base": first["seq"], "ops": ["x", 2]},
    ]
    for write in writes:
        reply = await answer(viewer, write)
        assert (reply["type"], reply["code"]) == ("error", "forbidden"), write
    await nothing_broadcast_before(watcher, editor)
    # The viewer keeps its session and receives broadcasts.
    assert (await viewer.wait_type("annotation_update"))["payload"]["id"].startswith("sentinel-")
    for client in (editor, viewer, watcher):
        await client.close()


async def test_commenter_writes_notes_only(secure: ServerProcess, graph: str) -> None:
    editor, _ = await joined(secure, graph, token("ed", role="editor"))
    tag = {"id": "t1", "kind": "tag", "tags": ["x"]}
    assert (await answer(editor, {"type": "annotation_update", "payload": tag}))["type"] == "ack"
    commenter, first = await joined(secure, graph, token("cam", role="commenter"))
    watcher, _ = await joined(secure, graph, token("wat", role="viewer"))

    forbidden = [
        {"type": "annotation_update", "payload": {"id": "t2", "kind": "tag", "tags": ["y"]}},
        {"type": "annotation_update", "payload": {"id": "t3", "tags": ["no-kind"]}},
        {"type": "annotation_update", "payload": {"id": "t1", "tags": {"add": ["z"]}}},
        {"type": "annotation_update", "payload": {"id": "t1", "kind": "note"}},
        {"type": "annotation_update", "recreate": True, "payload": {"id": "t1", "kind": "note"}},
        {"type": "annotation_delete", "id": "t1"},
        {"type": "text_op", "id": "t1", "field": "text", "base": first["seq"], "ops": ["x"]},
    ]
    for write in forbidden:
        reply = await answer(commenter, write)
        assert (reply["type"], reply["code"]) == ("error", "forbidden"), write
    await nothing_broadcast_before(watcher, editor)

    note = {"type": "annotation_update", "payload": {"id": "n1", "kind": "note", "content": "ab"}}
    created = await answer(commenter, note)
    assert created["type"] == "ack"
    edited = await answer(
        commenter,
        {
            "type": "text_op",
            "id": "n1",
            "field": "content",
            "base": created["seq"],
            "ops": [2, "c"],
        },
    )
    assert edited["type"] == "ack"
    retyped = await answer(
        commenter, {"type": "annotation_update", "payload": {"id": "n1", "kind": "tag"}}
    )
    assert retyped["code"] == "forbidden"
    deleted = await answer(commenter, {"type": "annotation_delete", "id": "n1"})
    assert deleted["type"] == "ack"
    for client in (editor, commenter, watcher):
        await client.close()


async def test_forged_author_and_server_stamps_are_ignored(
    secure: ServerProcess, graph: str, http: httpx.AsyncClient
) -> None:
    alice, _ = await joined(secure, graph, token("alice"), user="mallory")
    watcher, _ = await joined(secure, graph, token("wat", role="viewer"))
    forged = {
        "id": "f1",
        "kind": "note",
        "created_by": "mallory",
        "updated_by": "mallory",
        "created_at": "2000-01-01T00:00:00.000Z",
        "seq": 999_999,
    }
    reply = await answer(
        alice,
        {
            "type": "annotation_update",
            "payload": forged,
            "author": "mallory",
            "client_id": "someone-else",
        },
    )
    assert reply["type"] == "ack"
    broadcast = await watcher.wait_type("annotation_update")
    assert broadcast["author"] == "alice"
    assert broadcast["client_id"] != "someone-else"
    payload = broadcast["payload"]
    assert (payload["created_by"], payload["updated_by"]) == ("alice", "alice")
    assert payload["seq"] == broadcast["seq"] == reply["seq"]
    assert payload["created_at"] != "2000-01-01T00:00:00.000Z"

    # REST: the token's user is the author whatever X-User or the body say.
    response = await http.put(
        f"/api/graphs/{graph}/annotations/f2",
        json={"kind": "note", "created_by": "mallory", "updated_by": "mallory"},
        headers={"Authorization": f"Bearer {token('alice')}", "X-User": "mallory"},
    )
    assert response.status_code in (200, 201), response.text
    via_rest = await watcher.wait_type("annotation_update")
    assert via_rest["author"] == "alice"
    assert via_rest["payload"]["created_by"] == "alice"
    stored = await http.get(
        f"/api/graphs/{graph}/annotations/f2",
        headers={"Authorization": f"Bearer {token('wat', role='viewer')}"},
    )
    assert stored.json()["annotation"]["created_by"] == "alice"
    for client in (alice, watcher):
        await client.close()


async def test_rest_path_applies_the_same_rules(
    secure: ServerProcess, graph: str, http: httpx.AsyncClient
) -> None:
    url = f"/api/graphs/{graph}/annotations/r1"
    anonymous = await http.put(url, json={"kind": "note"})
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    other_graph = await http.put(
        url,
        json={"kind": "note"},
        headers={"Authorization": f"Bearer {token('alice', graphs=['elsewhere'])}"},
    )
    assert other_graph.status_code == 403
    viewer = await http.put(
        url,
        json={"kind": "note"},
        headers={"Authorization": f"Bearer {token('vic', role='viewer')}"},
    )
    assert (viewer.status_code, viewer.json()["error"]["code"]) == (403, "forbidden")
    commenter_tag = await http.put(
        url,
        json={"kind": "tag"},
        headers={"Authorization": f"Bearer {token('cam', role='commenter')}"},
    )
    assert (commenter_tag.status_code, commenter_tag.json()["error"]["code"]) == (403, "forbidden")
    secret_write = await http.put(
        url,
        json={"kind": "note", "enclave": "FIVE_EYES"},
        headers={"Authorization": f"Bearer {token('bob', clearance=[])}"},
    )
    assert (secret_write.status_code, secret_write.json()["error"]["code"]) == (403, "forbidden")
    # Nothing of the above was applied.
    listed = await http.get(
        f"/api/graphs/{graph}/annotations",
        headers={"Authorization": f"Bearer {token('root', role='admin')}"},
    )
    assert listed.json()["annotations"] == []

    cleared = {"Authorization": f"Bearer {token('alice', clearance=['FIVE_EYES'])}"}
    created = await http.put(url, json={"kind": "note", "enclave": "FIVE_EYES"}, headers=cleared)
    assert created.status_code in (200, 201), created.text
    uncleared = {"Authorization": f"Bearer {token('bob')}"}
    assert (await http.get(url, headers=uncleared)).status_code == 404
    listed = await http.get(f"/api/graphs/{graph}/annotations", headers=uncleared)
    assert listed.json()["annotations"] == []
    assert (await http.get(url, headers=cleared)).json()["annotation"]["enclave"] == "FIVE_EYES"


async def test_admin_writes_like_an_editor(secure: ServerProcess, graph: str) -> None:
    admin, _ = await joined(secure, graph, token("root", role="admin"))
    tag = {"id": "x", "kind": "tag"}
    assert (await answer(admin, {"type": "annotation_update", "payload": tag}))["type"] == "ack"
    await admin.close()
