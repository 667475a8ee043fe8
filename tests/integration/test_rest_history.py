"""The audit trail over REST: `/ops` pages and per-annotation history, from the
real server's SQLite log, including after the log was compacted."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.client import TestClient
from tests.support.rest import annotation_url, error_of, new_graph_id, wait_until
from tests.support.server import ServerProcess, start_server


@pytest.fixture(scope="module")
def history_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = start_server(tmp_path_factory.mktemp("history"))
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
async def http(history_server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=history_server.http_url, timeout=10.0) as client:
        yield client


def iso_of(ts: int) -> str:
    return (
        datetime.fromtimestamp(ts / 1000, tz=UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


async def history(
    http: httpx.AsyncClient, graph: str, annotation_id: str, **params: Any
) -> dict[str, Any]:
    response = await http.get(f"{annotation_url(graph, annotation_id)}/history", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_ops_pages_through_every_write_in_order_with_author_time_and_client(
    http: httpx.AsyncClient, history_server: ServerProcess
) -> None:
    graph = new_graph_id()
    browser = await TestClient.connect(history_server.ws_url(graph, client_id="tab-1", user="bob"))
    try:
        await browser.wait_type("initial_state")
        expected: list[tuple[str, str | None]] = []
        for index in range(7):
            if index % 2:
                await browser.update({"id": f"a{index}", "kind": "note"})
                await browser.wait_type("ack")
                expected.append(("tab-1", "bob"))
            else:
                response = await http.put(
                    annotation_url(graph, f"a{index}"),
                    json={"kind": "tag"},
                    headers={"X-User": "alice"},
                )
                assert response.status_code == 201
                expected.append(("rest:alice", "alice"))
    finally:
        await browser.close()

    pages: list[dict[str, Any]] = []
    since = 0
    while True:
        page = (
            await http.get(f"/api/graphs/{graph}/ops", params={"since": since, "limit": 3})
        ).json()
        pages.append(page)
        assert page["since"] == since and page["trimmed_upto"] == 0
        since = page["next_since"]
        if not page["more"]:
            break
    assert [len(page["ops"]) for page in pages] == [3, 3, 1]
    ops = [op for page in pages for op in page["ops"]]
    assert [op["seq"] for op in ops] == list(range(1, 8))
    assert [(op["client_id"], op["author"]) for op in ops] == expected
    for index, op in enumerate(ops):
        assert op["type"] == "annotation_update"
        assert op["payload"]["id"] == f"a{index}"
        assert op["time"] == iso_of(op["ts"])
        assert "prev" not in op
    assert [op["ts"] for op in ops] == sorted(op["ts"] for op in ops)

    tail = (await http.get(f"/api/graphs/{graph}/ops", params={"since": 7})).json()
    assert tail["ops"] == [] and tail["more"] is False and tail["next_since"] == 7


async def test_annotation_history_lists_every_change_to_it_oldest_first(
    http: httpx.AsyncClient,
) -> None:
    graph = new_graph_id()
    url = annotation_url(graph, "a1")
    await http.put(url, json={"kind": "note", "content": "v1"}, headers={"X-User": "alice"})
    await http.put(annotation_url(graph, "other"), json={"kind": "tag"})
    await http.patch(url, json={"content": "v2", "tags": {"add": ["x"]}}, headers={"X-User": "bob"})
    await http.delete(url, headers={"X-User": "carol"})
    await http.put(url, json={"kind": "note", "content": "v3"}, headers={"X-User": "dave"})

    trail = await history(http, graph, "a1")
    changes = trail["changes"]
    assert [change["seq"] for change in changes] == [1, 3, 4, 5]
    assert [change["author"] for change in changes] == ["alice", "bob", "carol", "dave"]
    assert [change["type"] for change in changes] == [
        "annotation_update",
        "annotation_update",
        "annotation_delete",
        "annotation_update",
    ]
    assert changes[1]["payload"]["tags"] == ["x"] and changes[1]["payload"]["content"] == "v2"
    assert changes[3]["payload"]["created_by"] == "dave"  # re-created afresh after the delete
    assert trail["base"] is None and trail["trimmed_upto"] == 0

    first_page = await history(http, graph, "a1", limit=2)
    assert [c["seq"] for c in first_page["changes"]] == [1, 3] and first_page["more"] is True
    second_page = await history(http, graph, "a1", since=first_page["next_since"], limit=2)
    assert [c["seq"] for c in second_page["changes"]] == [4, 5] and second_page["more"] is False


async def test_history_of_an_annotation_never_written_is_not_found(
    http: httpx.AsyncClient,
) -> None:
    graph = new_graph_id()
    await http.put(annotation_url(graph, "a1"), json={"kind": "note"})
    response = await http.get(f"{annotation_url(graph, 'ghost')}/history")
    assert response.status_code == 404 and error_of(response)["code"] == "not_found"
    bad_page = await http.get(f"/api/graphs/{graph}/ops", params={"limit": 0})
    assert bad_page.status_code == 400 and error_of(bad_page)["code"] == "bad_message"
    negative = await http.get(f"/api/graphs/{graph}/ops", params={"since": -1})
    assert negative.status_code == 400


async def test_history_after_compaction_starts_from_the_snapshot_base(tmp_path: Path) -> None:
    # Snapshot every 10 writes, keep 4 records behind it: the log is trimmed early.
    compacting = {"COLLAB_SNAPSHOT_EVERY": "10", "COLLAB_LOG_RETENTION": "4"}
    server = start_server(tmp_path, env=compacting)
    graph = new_graph_id()
    try:
        async with httpx.AsyncClient(base_url=server.http_url, timeout=10.0) as http:
            await http.put(
                annotation_url(graph, "a1"),
                json={"kind": "note", "content": "first"},
                headers={"X-User": "alice"},
            )
            await http.put(annotation_url(graph, "gone"), json={"kind": "note"})
            await http.delete(annotation_url(graph, "gone"))
            for index in range(9):  # seq 4..12
                await http.patch(annotation_url(graph, "busy"), json={"label": str(index)})
            await http.patch(
                annotation_url(graph, "a1"), json={"content": "late"}, headers={"X-User": "bob"}
            )  # seq 13, after the snapshot

            async def trimmed() -> dict[str, Any] | None:
                page = (await http.get(f"/api/graphs/{graph}/ops")).json()
                return page if page["trimmed_upto"] > 0 else None

            ops_page = await wait_until(trimmed, what="the log to be compacted")
            assert ops_page["trimmed_upto"] == 6  # snapshot at 10, retention 4
            assert ops_page["ops"][0]["seq"] == 7
            assert [op["seq"] for op in ops_page["ops"]] == list(range(7, 14))

            trail = await history(http, graph, "a1")
            base = trail["base"]
            assert base["seq"] == 10 and base["deleted_at"] is None
            assert base["annotation"]["content"] == "first"
            assert base["annotation"]["created_by"] == "alice"
            assert [(c["seq"], c["author"]) for c in trail["changes"]] == [(13, "bob")]

            deleted = await history(http, graph, "gone")
            assert deleted["base"] == {"seq": 10, "annotation": None, "deleted_at": 3}
            assert deleted["changes"] == []

            # Asked only for what follows the trimmed part, no base is needed.
            recent = await history(http, graph, "a1", since=6)
            assert recent["base"] is None and [c["seq"] for c in recent["changes"]] == [13]
    finally:
        server.stop()
