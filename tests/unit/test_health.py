"""Readiness: 503 when the store does not answer or the server is draining.

The real app with a store that cannot be reached (a MemoryStore whose ping
fails): the one way to make a store unreachable on demand.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from intelgraph_collab.app import create_app
from intelgraph_collab.config import Config
from intelgraph_collab.store.base import Store, StoreUnavailable
from intelgraph_collab.store.memory import MemoryStore


class UnreachableStore(MemoryStore):
    async def ping(self) -> None:
        raise StoreUnavailable("connection refused")


@asynccontextmanager
async def running(store: Store) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(Config(), store=store)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://collab") as client:
            yield app, client


async def test_readyz_is_503_while_the_store_is_unreachable_and_healthz_stays_200() -> None:
    async with running(UnreachableStore()) as (_, client):
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json() == {"status": "unavailable", "reason": "store unreachable"}
        assert (await client.get("/healthz")).status_code == 200


async def test_readyz_is_503_once_the_server_drains() -> None:
    async with running(MemoryStore()) as (app, client):
        assert (await client.get("/readyz")).status_code == 200
        await app.state.service.stop()
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["reason"] == "shutting down"
