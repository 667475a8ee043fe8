"""The REST reads that are not just state (history, ops, preconditions) with auth
on: the same tokens as the WebSocket, the same enclave filtering, no leaks."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from tests.support.rest import annotation_url, error_of, new_graph_id
from tests.support.security import start_secure_server, token
from tests.support.server import ServerProcess

SECRET_TEXT = "the source is in the harbour office"


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = start_secure_server(tmp_path_factory.mktemp("rest-security"))
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
async def http(secure: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=secure.http_url, timeout=10.0) as client:
        yield client


def bearer(user: str, **claims: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(user, **claims)}"}


CLEARED = bearer("alice", clearance=["FIVE_EYES"])
UNCLEARED = bearer("bob")


async def seed(http: httpx.AsyncClient, graph: str) -> None:
    """seq 1: open note; seq 2: secret note; seq 3: the open note moves into
    FIVE_EYES; seq 4: an open edit."""
    writes = [
        ("open", {"kind": "note", "content": "public"}),
        ("secret", {"kind": "note", "content": SECRET_TEXT, "enclave": "FIVE_EYES"}),
    ]
    for annotation_id, body in writes:
        response = await http.put(annotation_url(graph, annotation_id), json=body, headers=CLEARED)
        assert response.status_code == 201, response.text
    moved = await http.patch(
        annotation_url(graph, "open"),
        json={"enclave": "FIVE_EYES", "content": SECRET_TEXT},
        headers=CLEARED,
    )
    assert moved.status_code == 200
    other = await http.put(annotation_url(graph, "plain"), json={"kind": "note"}, headers=CLEARED)
    assert other.status_code == 201


async def test_ops_show_each_caller_only_what_its_clearance_may_see(
    http: httpx.AsyncClient,
) -> None:
    graph = new_graph_id()
    await seed(http, graph)

    everything = (await http.get(f"/api/graphs/{graph}/ops", headers=CLEARED)).json()
    assert [op["seq"] for op in everything["ops"]] == [1, 2, 3, 4]

    response = await http.get(f"/api/graphs/{graph}/ops", headers=UNCLEARED)
    assert response.status_code == 200
    page = response.json()
    # The secret write is never announced; the move out reaches bob as a delete.
    assert [(op["seq"], op["type"]) for op in page["ops"]] == [
        (1, "annotation_update"),
        (3, "annotation_delete"),
        (4, "annotation_update"),
    ]
    assert page["next_since"] == 4 and page["more"] is False
    assert SECRET_TEXT not in response.text and "FIVE_EYES" not in response.text


async def test_history_of_a_hidden_annotation_is_not_found_and_a_moved_one_ends_in_a_delete(
    http: httpx.AsyncClient,
) -> None:
    graph = new_graph_id()
    await seed(http, graph)

    hidden = await http.get(f"{annotation_url(graph, 'secret')}/history", headers=UNCLEARED)
    assert hidden.status_code == 404 and error_of(hidden)["code"] == "not_found"
    shown = await http.get(f"{annotation_url(graph, 'secret')}/history", headers=CLEARED)
    assert [change["author"] for change in shown.json()["changes"]] == ["alice"]

    moved = await http.get(f"{annotation_url(graph, 'open')}/history", headers=UNCLEARED)
    assert [change["type"] for change in moved.json()["changes"]] == [
        "annotation_update",
        "annotation_delete",
    ]
    assert SECRET_TEXT not in moved.text


async def test_a_precondition_on_a_hidden_annotation_tells_nothing_of_it(
    http: httpx.AsyncClient,
) -> None:
    graph = new_graph_id()
    await seed(http, graph)
    for method, body in (("PATCH", {"label": "x"}), ("DELETE", None)):
        response = await http.request(
            method,
            annotation_url(graph, "secret"),
            content=None if body is None else json.dumps(body),
            headers={**UNCLEARED, "If-Match": '"1"', "content-type": "application/json"},
        )
        assert response.status_code == 403 and error_of(response)["code"] == "forbidden"
        assert "seq 2" not in response.text and "FIVE_EYES" not in response.text


async def test_every_annotation_route_wants_a_token_for_the_graph(
    http: httpx.AsyncClient,
) -> None:
    graph = new_graph_id()
    routes = [
        annotation_url(graph),
        annotation_url(graph, "a1"),
        f"{annotation_url(graph, 'a1')}/history",
        f"/api/graphs/{graph}/ops",
    ]
    elsewhere = bearer("carol", graphs=["another-graph"])
    for route in routes:
        anonymous = await http.get(route)
        assert anonymous.status_code == 401, route
        assert anonymous.headers["www-authenticate"] == "Bearer"
        assert error_of(anonymous)["code"] == "forbidden"
        assert (await http.get(route, headers=elsewhere)).status_code == 403, route
        expired = bearer("dave", ttl=-10)
        assert (await http.get(route, headers=expired)).status_code == 401, route
    # Operations endpoints stay open to the orchestrator and Prometheus.
    for route in ("/healthz", "/readyz", "/metrics"):
        assert (await http.get(route)).status_code == 200
