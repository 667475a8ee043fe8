"""Revocation in cluster mode: two server nodes sharing PostgreSQL and Redis.
A user revoked on one node is refused, and their sessions closed, on the other."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conformance.services import (
    check_redis,
    delete_prefix,
    drop_database,
    postgres_database,
    redis_url_with_prefix,
    run_sync,
)
from tests.support.security import SECRET, joined, refused_close, token
from tests.support.server import ServerProcess


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    check_redis()
    database = postgres_database()
    prefix = f"collab-sec-{uuid.uuid4().hex[:8]}:"
    args = ["--store", database, "--fanout", redis_url_with_prefix(prefix)]
    nodes: list[ServerProcess] = []
    try:
        for name in ("a", "b"):
            nodes.append(
                ServerProcess(
                    tmp_path / f"{name}.db", env={"COLLAB_SECRET": SECRET}, args=args
                ).start()
            )
        yield nodes[0], nodes[1]
    finally:
        for node in nodes:
            node.stop()
        run_sync(drop_database(database))
        run_sync(delete_prefix(prefix))


async def test_a_revocation_reaches_every_node(
    cluster: tuple[ServerProcess, ServerProcess],
) -> None:
    node_a, node_b = cluster
    old = token("bob")
    tabs = [(await joined(node_b, "g-cluster", old))[0] for _ in range(2)]
    bystander, _ = await joined(node_b, "g-cluster", token("carol"))

    response = await asyncio.to_thread(
        httpx.post,
        f"{node_a.http_url}/api/admin/revoke",
        json={"user": "bob"},
        headers={"Authorization": f"Bearer {token('root', role='admin')}"},
        timeout=10.0,
    )
    assert response.status_code == 200
    assert response.json()["sessions_closed"] == 0  # bob was on the other node

    # Node b learns it within its poll interval and closes bob's sessions there.
    assert await asyncio.gather(*(tab.wait_closed(timeout=5.0) for tab in tabs)) == [4401, 4401]
    code, _ = await refused_close(node_b, "g-cluster", old)
    assert code == 4401
    op_id = await bystander.update({"id": "still-here"})
    assert (await bystander.ack(op_id))["type"] == "ack"

    # Kept in the database: a restarted node refuses the old token at once.
    node_b.restart()
    code, _ = await refused_close(node_b, "g-cluster", old)
    assert code == 4401
    fresh, first = await joined(node_b, "g-cluster", token("bob"))
    assert first["type"] == "initial_state"
    for client in (bystander, fresh):
        await client.close()
