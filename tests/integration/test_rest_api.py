"""The REST annotation routes, through the real server (subprocess, SQLite, sockets).

One server serves the whole module; each test works in its own graph.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from tests.support.client import TestClient
from tests.support.rest import JSON, annotation_url, error_of, new_graph_id
from tests.support.server import ServerProcess, start_server


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = start_server(tmp_path_factory.mktemp("rest"))
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
async def http(api_server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api_server.http_url, timeout=10.0) as client:
        yield client


@pytest.fixture
def graph() -> str:
    return new_graph_id()


async def put(
    http: httpx.AsyncClient, graph: str, annotation_id: str, body: Any, **headers: str
) -> httpx.Response:
    return await http.put(
        annotation_url(graph, annotation_id), json=body, headers=_headers(headers)
    )


async def patch(
    http: httpx.AsyncClient, graph: str, annotation_id: str, body: Any, **headers: str
) -> httpx.Response:
    return await http.patch(
        annotation_url(graph, annotation_id), json=body, headers=_headers(headers)
    )


def _headers(headers: dict[str, str]) -> dict[str, str]:
    return {name.replace("_", "-"): value for name, value in headers.items()}


async def head_seq(http: httpx.AsyncClient, graph: str) -> int:
    response = await http.get(annotation_url(graph))
    assert response.status_code == 200
    seq: int = response.json()["seq"]
    return seq


async def op_count(http: httpx.AsyncClient, graph: str) -> int:
    response = await http.get(f"/api/graphs/{graph}/ops", params={"limit": 1000})
    return len(response.json()["ops"])


# -- create, read, replace, merge, delete ------------------------------------


async def test_put_creates_and_get_reads_it_back_with_its_seq_as_etag(
    http: httpx.AsyncClient, graph: str
) -> None:
    body = {
        "target_type": "ENTITY",
        "target_id": "e7",
        "kind": "note",
        "content": "seen",
        "tags": ["lead", "port"],
        "confidence": "HIGH",
        "x-ui": {"pinned": True},
    }
    created = await put(http, graph, "a1", body, x_user="alice")
    assert created.status_code == 201
    assert created.headers["location"] == f"/api/graphs/{graph}/annotations/a1"
    assert created.headers["etag"] == '"1"'
    result = created.json()
    assert result["seq"] == 1 and result["duplicate"] is False
    assert result["op"]["type"] == "annotation_update"
    assert result["op"]["author"] == "alice" and result["op"]["client_id"] == "rest:alice"
    annotation = result["annotation"]
    assert {key: annotation[key] for key in body} == body
    assert annotation["created_by"] == annotation["updated_by"] == "alice"
    assert annotation["seq"] == 1

    read = await http.get(annotation_url(graph, "a1"))
    assert read.status_code == 200
    assert read.headers["etag"] == '"1"'
    assert read.json() == {"graph_id": graph, "seq": 1, "annotation": annotation}


async def test_put_replaces_the_whole_annotation(http: httpx.AsyncClient, graph: str) -> None:
    await put(http, graph, "a1", {"kind": "note", "color": "red", "content": "old"})
    replaced = await put(http, graph, "a1", {"kind": "highlight", "label": "new"}, x_user="bob")
    assert replaced.status_code == 200  # replaced, not created
    assert replaced.json()["op"]["recreate"] is True
    annotation = replaced.json()["annotation"]
    assert annotation["kind"] == "highlight" and annotation["label"] == "new"
    assert "color" not in annotation and "content" not in annotation
    assert annotation["created_by"] == "bob"  # starts afresh: the replacing write created it
    assert annotation["seq"] == 2


async def test_patch_merges_fields_removes_nulls_and_applies_tag_deltas(
    http: httpx.AsyncClient, graph: str
) -> None:
    await put(
        http, graph, "a1", {"kind": "note", "content": "keep", "color": "red", "tags": ["a", "b"]}
    )
    response = await patch(
        http, graph, "a1", {"tags": {"add": ["c"], "remove": ["a"]}, "color": None, "label": "L"}
    )
    assert response.status_code == 200
    annotation = response.json()["annotation"]
    assert annotation["tags"] == ["b", "c"]
    assert "color" not in annotation
    assert annotation["label"] == "L" and annotation["content"] == "keep"
    assert response.json()["op"]["payload"]["tags"] == ["b", "c"]  # the delta as applied


async def test_concurrent_tag_additions_over_rest_all_survive(
    http: httpx.AsyncClient, graph: str
) -> None:
    await put(http, graph, "a1", {"kind": "tag", "tags": []})
    tags = [f"t{index}" for index in range(8)]
    responses = await asyncio.gather(
        *(patch(http, graph, "a1", {"tags": {"add": [tag]}}) for tag in tags)
    )
    assert all(response.status_code == 200 for response in responses)
    final = await http.get(annotation_url(graph, "a1"))
    assert final.json()["annotation"]["tags"] == sorted(tags)
    assert sorted(response.json()["seq"] for response in responses) == list(range(2, 10))


async def test_patch_of_an_unknown_id_creates_it(http: httpx.AsyncClient, graph: str) -> None:
    response = await patch(http, graph, "fresh", {"kind": "note"})
    assert response.status_code == 201
    assert response.json()["annotation"]["kind"] == "note"


async def test_delete_wins_over_patch_and_put_restores(http: httpx.AsyncClient, graph: str) -> None:
    await put(http, graph, "a1", {"kind": "note", "content": "x"})
    deleted = await http.delete(annotation_url(graph, "a1"))
    assert deleted.status_code == 200
    assert deleted.json()["seq"] == 2 and deleted.json()["annotation"] is None
    assert deleted.json()["op"] == {**deleted.json()["op"], "type": "annotation_delete", "id": "a1"}

    gone = await http.get(annotation_url(graph, "a1"))
    assert gone.status_code == 404 and error_of(gone)["code"] == "not_found"
    refused = await patch(http, graph, "a1", {"content": "late edit"})
    assert refused.status_code == 409 and error_of(refused)["code"] == "conflict"
    again = await http.delete(annotation_url(graph, "a1"))
    assert again.status_code == 404 and error_of(again)["code"] == "not_found"
    assert await head_seq(http, graph) == 2  # the refusals wrote nothing

    restored = await put(http, graph, "a1", {"kind": "note", "content": "back"})
    assert restored.status_code == 201
    assert restored.json()["annotation"]["content"] == "back"


async def test_list_filters_by_target_kind_and_tags(http: httpx.AsyncClient, graph: str) -> None:
    fixtures = {
        "n1": {"target_type": "ENTITY", "target_id": "e1", "kind": "note", "tags": ["x", "y"]},
        "n2": {"target_type": "ENTITY", "target_id": "e2", "kind": "note", "tags": ["x"]},
        "h1": {"target_type": "EDGE", "target_id": "e1", "kind": "highlight", "tags": ["y"]},
        "t1": {"target_type": "EDGE", "target_id": "r9", "kind": "tag"},
    }
    for annotation_id, body in fixtures.items():
        assert (await put(http, graph, annotation_id, body)).status_code == 201

    async def ids(**params: Any) -> list[str]:
        response = await http.get(annotation_url(graph), params=params)
        assert response.status_code == 200
        listing = response.json()
        assert listing["seq"] == len(fixtures) and listing["count"] == len(listing["annotations"])
        return sorted(annotation["id"] for annotation in listing["annotations"])

    assert await ids() == ["h1", "n1", "n2", "t1"]
    assert await ids(target_type="EDGE") == ["h1", "t1"]
    assert await ids(target_id="e1") == ["h1", "n1"]
    assert await ids(kind="note") == ["n1", "n2"]
    assert await ids(tag="y") == ["h1", "n1"]
    assert await ids(tag=["x", "y"]) == ["n1"]
    assert await ids(target_type="ENTITY", tag="y") == ["n1"]
    assert await ids(kind="absent") == []
    bad = await http.get(annotation_url(graph), params={"target_type": "NODE"})
    assert bad.status_code == 400 and error_of(bad)["code"] == "bad_message"


# -- optimistic concurrency ---------------------------------------------------


async def test_if_match_refuses_a_stale_write_with_412_and_changes_nothing(
    http: httpx.AsyncClient, graph: str
) -> None:
    await put(http, graph, "a1", {"kind": "note", "color": "red"})
    await patch(http, graph, "a1", {"color": "blue"})  # now at seq 2

    stale = await patch(http, graph, "a1", {"color": "green"}, if_match='"1"')
    assert stale.status_code == 412
    assert error_of(stale)["code"] == "conflict"
    stale_delete = await http.delete(annotation_url(graph, "a1"), headers={"If-Match": "1"})
    assert stale_delete.status_code == 412
    current = await http.get(annotation_url(graph, "a1"))
    assert current.json()["annotation"]["color"] == "blue"
    assert current.json()["seq"] == 2

    fresh = await patch(http, graph, "a1", {"color": "green"}, if_match=current.headers["etag"])
    assert fresh.status_code == 200 and fresh.json()["seq"] == 3
    weak = await put(http, graph, "a1", {"kind": "note"}, if_match='W/"3"')
    assert weak.status_code == 200 and weak.json()["seq"] == 4

    missing = await put(http, graph, "nope", {"kind": "note"}, if_match='"1"')
    assert missing.status_code == 412
    malformed = await patch(http, graph, "a1", {"color": "x"}, if_match="yesterday")
    assert malformed.status_code == 400 and error_of(malformed)["code"] == "bad_message"
    assert await head_seq(http, graph) == 4


async def test_if_match_is_checked_in_sequence_so_exactly_one_racer_wins(
    http: httpx.AsyncClient, graph: str
) -> None:
    await put(http, graph, "a1", {"kind": "note"})
    racers = await asyncio.gather(
        *(
            patch(http, graph, "a1", {"label": f"racer {index}"}, if_match='"1"')
            for index in range(6)
        )
    )
    statuses = sorted(response.status_code for response in racers)
    assert statuses == [200] + [412] * 5
    winner = next(response for response in racers if response.status_code == 200)
    current = await http.get(annotation_url(graph, "a1"))
    assert current.json()["annotation"]["label"] == winner.json()["annotation"]["label"]
    assert await head_seq(http, graph) == 2


# -- idempotency --------------------------------------------------------------


async def test_idempotency_key_replay_returns_the_original_result_without_a_second_write(
    http: httpx.AsyncClient, graph: str
) -> None:
    first = await put(
        http, graph, "a1", {"kind": "note", "content": "v1"}, idempotency_key="import-42"
    )
    assert first.status_code == 201
    await patch(http, graph, "a1", {"content": "v2"})  # someone else writes in between

    replay = await put(
        http, graph, "a1", {"kind": "note", "content": "v1"}, idempotency_key="import-42"
    )
    assert replay.status_code == 201  # the original status
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["seq"] == 1 and replay.json()["duplicate"] is True
    assert replay.json()["op"] == first.json()["op"]
    assert replay.json()["annotation"]["content"] == "v2"  # not written again
    assert await head_seq(http, graph) == 2
    assert await op_count(http, graph) == 2

    delete = await http.delete(annotation_url(graph, "a1"), headers={"Idempotency-Key": "d-1"})
    delete_again = await http.delete(
        annotation_url(graph, "a1"), headers={"Idempotency-Key": "d-1"}
    )
    assert delete.status_code == delete_again.status_code == 200  # not a 404 the second time
    assert delete_again.json()["seq"] == delete.json()["seq"] == 3
    assert delete_again.json()["duplicate"] is True


async def test_idempotency_keys_are_scoped_per_client_and_never_reused_across_writes(
    http: httpx.AsyncClient, graph: str
) -> None:
    await put(http, graph, "a1", {"kind": "note"}, idempotency_key="k")
    other_client = await put(
        http,
        graph,
        "a1",
        {"kind": "note", "label": "b"},
        idempotency_key="k",
        x_client_id="importer-2",
    )
    assert other_client.status_code == 200 and other_client.json()["duplicate"] is False
    assert other_client.json()["op"]["client_id"] == "importer-2"

    reused = await put(http, graph, "a2", {"kind": "note"}, idempotency_key="k")
    assert reused.status_code == 409 and error_of(reused)["code"] == "conflict"
    assert (await http.get(annotation_url(graph, "a2"))).status_code == 404
    assert await head_seq(http, graph) == 2


# -- the same room path as the WebSocket --------------------------------------


async def test_a_rest_write_reaches_websocket_clients_with_the_next_seq(
    http: httpx.AsyncClient, api_server: ServerProcess, graph: str
) -> None:
    viewer = await TestClient.connect(api_server.ws_url(graph, client_id="browser", user="carol"))
    try:
        assert (await viewer.wait_type("initial_state"))["seq"] == 0
        await viewer.update({"id": "w1", "kind": "note"})
        ack = await viewer.wait_type("ack")
        assert ack["seq"] == 1

        response = await put(
            http,
            graph,
            "a1",
            {"kind": "note", "content": "from curl"},
            x_user="alice",
            idempotency_key="curl-1",
        )
        assert response.json()["seq"] == 2
        broadcast = await viewer.wait_type("annotation_update")
        assert broadcast["seq"] == 2 and broadcast["prev"] == 1
        assert broadcast["client_id"] == "rest:alice" and broadcast["author"] == "alice"
        assert broadcast["op_id"] == "curl-1"
        assert broadcast["payload"] == response.json()["annotation"]

        await http.delete(annotation_url(graph, "a1"))
        removal = await viewer.wait_type("annotation_delete")
        assert removal == {**removal, "seq": 3, "prev": 2, "id": "a1"}

        # The writes the browser made are readable over REST too.
        listing = await http.get(annotation_url(graph))
        assert [a["id"] for a in listing.json()["annotations"]] == ["w1"]
        assert listing.json()["seq"] == 3
    finally:
        await viewer.close()


# -- refused input -------------------------------------------------------------

BAD_BODIES: list[tuple[str, Any, int, str]] = [
    ("not an object", [1, 2], 400, "bad_message"),
    ("tags not a list", {"tags": "x"}, 400, "bad_message"),
    ("tags delta with other keys", {"tags": {"add": ["x"], "drop": ["y"]}}, 400, "bad_message"),
    ("empty tags delta", {"tags": {}}, 400, "bad_message"),
    ("target_type unknown", {"target_type": "NODE"}, 400, "bad_message"),
    ("confidence unknown", {"confidence": "SURE"}, 400, "bad_message"),
    ("content not a string", {"content": 12}, 400, "bad_message"),
    ("id differs from the path", {"id": "other"}, 400, "bad_message"),
    ("number beyond 2^53", {"weight": 2**60}, 400, "bad_message"),
    ("nested too deep", {"deep": json.loads("[" * 20 + "]" * 20)}, 400, "bad_message"),
    ("field name too long", {"f" * 100: 1}, 400, "bad_message"),
    ("too many tags", {"tags": [f"t{i}" for i in range(300)]}, 413, "too_large"),
    ("body over the message limit", {"content": "x" * 70_000}, 413, "too_large"),
]


@pytest.mark.parametrize(
    ("case", "body", "status", "code"), BAD_BODIES, ids=[case[0] for case in BAD_BODIES]
)
async def test_bad_bodies_get_a_typed_error_and_change_nothing(
    http: httpx.AsyncClient, graph: str, case: str, body: Any, status: int, code: str
) -> None:
    await put(http, graph, "a1", {"kind": "note", "content": "original"})
    for method in ("PUT", "PATCH"):
        response = await http.request(method, annotation_url(graph, "a1"), json=body)
        assert response.status_code == status, (method, response.text)
        assert error_of(response)["code"] == code
    current = await http.get(annotation_url(graph, "a1"))
    assert current.json()["annotation"]["content"] == "original"
    assert current.json()["seq"] == 1


async def test_malformed_requests_get_json_errors(http: httpx.AsyncClient, graph: str) -> None:
    not_json = await http.put(annotation_url(graph, "a1"), content=b"{oops", headers=JSON)
    assert not_json.status_code == 400 and error_of(not_json)["code"] == "bad_message"
    no_type = await http.put(annotation_url(graph, "a1"), content=b'{"kind": "note"}')
    assert no_type.status_code == 400 and error_of(no_type)["code"] == "bad_message"
    bad_graph = await http.get("/api/graphs/bad graph!/annotations")
    assert bad_graph.status_code == 400 and error_of(bad_graph)["code"] == "bad_message"
    long_id = await http.get(annotation_url(graph, "x" * 129))
    assert long_id.status_code == 400
    long_key = await put(http, graph, "a1", {"kind": "note"}, idempotency_key="k" * 129)
    assert long_key.status_code == 400
    unknown = await http.get("/api/nothing-here")
    assert unknown.status_code == 404 and error_of(unknown)["code"] == "not_found"
    wrong_method = await http.post(annotation_url(graph, "a1"), json={})
    assert wrong_method.status_code == 405 and error_of(wrong_method)["code"] == "bad_message"

    async def chunks() -> AsyncIterator[bytes]:  # chunked: no Content-Length to refuse early
        for chunk in (b'{"content": "', b"x" * 70_000, b'"}'):
            yield chunk

    streamed = await http.put(annotation_url(graph, "a1"), content=chunks(), headers=JSON)
    assert streamed.status_code == 413 and error_of(streamed)["code"] == "too_large"
    assert await head_seq(http, graph) == 0


async def test_openapi_schema_and_docs_are_served(http: httpx.AsyncClient) -> None:
    schema = (await http.get("/openapi.json")).json()
    paths = schema["paths"]
    assert set(paths[annotation_url("{graph_id}", "{annotation_id}")]) == {
        "get",
        "put",
        "patch",
        "delete",
    }
    assert "/api/graphs/{graph_id}/ops" in paths
    assert "/api/graphs/{graph_id}/annotations/{annotation_id}/history" in paths
    assert {"/healthz", "/readyz", "/metrics"} <= set(paths)
    docs = await http.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
