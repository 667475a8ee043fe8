"""Helpers for the security tests: a server with auth on, tokens, connections."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import websockets

from intelgraph_collab.auth import mint_token
from tests.support.client import TestClient
from tests.support.server import ServerProcess

SECRET = "test-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
"""Long enough for HS256 (at least 32 bytes)."""

LOADED_MACHINE_TIMEOUT = 20.0
"""Upper bound of a wait for the server (CI shares two cores); never a timing assertion."""

ERROR_CODES = frozenset(
    {
        "bad_message",
        "unknown_type",
        "too_large",
        "rate_limited",
        "forbidden",
        "conflict",
        "not_found",
        "invalid_op",
    }
)


def token(
    user: str,
    role: str = "editor",
    graphs: Iterable[str] = ("*",),
    clearance: Iterable[str] = (),
    ttl: float = 600.0,
    secret: str = SECRET,
    now: float | None = None,
) -> str:
    return mint_token(
        secret, user=user, role=role, graphs=graphs, clearance=clearance, ttl_seconds=ttl, now=now
    )


def start_secure_server(
    tmp_path: Path, env: dict[str, str] | None = None, args: list[str] | None = None
) -> ServerProcess:
    """The real server with auth on (secret in COLLAB_SECRET)."""
    return ServerProcess(
        tmp_path / "collab.db", env={"COLLAB_SECRET": SECRET, **(env or {})}, args=args
    ).start()


async def connect(
    server: ServerProcess, graph: str, bearer: str | None = None, **query: Any
) -> TestClient:
    """A client on `graph`, its token in the Authorization header."""
    headers = {"Authorization": f"Bearer {bearer}"} if bearer is not None else None
    return await TestClient.connect(
        server.ws_url(graph, batch=1, **query), additional_headers=headers
    )


async def joined(
    server: ServerProcess, graph: str, bearer: str | None = None, **query: Any
) -> tuple[TestClient, dict[str, Any]]:
    """A connected client and its first message (initial_state or catch_up)."""
    client = await connect(server, graph, bearer, **query)
    first = await client.wait_for(
        lambda m: m["type"] in ("initial_state", "catch_up"), timeout=LOADED_MACHINE_TIMEOUT
    )
    return client, first


async def refused_close(
    server: ServerProcess, graph: str, bearer: str | None = None, **query: Any
) -> tuple[int | None, list[dict[str, Any]]]:
    """Connect expecting an accepted handshake closed at once: (code, messages)."""
    client = await connect(server, graph, bearer, **query)
    code = await client.wait_closed(timeout=LOADED_MACHINE_TIMEOUT)
    return code, client.received


async def handshake_status(url: str, **kwargs: Any) -> int | None:
    """The HTTP status of a refused handshake; None if it was accepted."""
    try:
        ws = await websockets.connect(url, **kwargs)
    except websockets.InvalidStatus as exc:
        return int(exc.response.status_code)
    await ws.close()
    return None
