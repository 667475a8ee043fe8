"""The real PostgreSQL and Redis the scale-out tests use, and what to do when one is missing.

Under CI=true a missing service fails the test (CI must not pass by
skipping); elsewhere the test is skipped with a message saying how to get
it. URLs: COLLAB_TEST_POSTGRES (an admin database to create test databases
from) and COLLAB_TEST_REDIS.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NoReturn, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import redis.asyncio as aioredis

POSTGRES_ADMIN_URL = os.environ.get(
    "COLLAB_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("COLLAB_TEST_REDIS", "redis://127.0.0.1:6379/0")

T = TypeVar("T")


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run `coroutine` to completion on its own loop, even from inside a running one."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def unavailable(service: str, url: str, error: BaseException) -> NoReturn:
    message = (
        f"{service} is not reachable at {url} ({error!r}); start it with "
        f"scripts/ensure-services.sh or point COLLAB_TEST_{service.upper()} at one"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true: {message}")
    pytest.skip(message)


def via_port(url: str, port: int) -> str:
    """`url` with its host and port replaced by 127.0.0.1:`port` (a proxy's)."""
    parts = urlsplit(url)
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{port}"))


def database_url(name: str) -> str:
    parts = urlsplit(POSTGRES_ADMIN_URL)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def create_database() -> str:
    """A fresh database for one test run; returns its URL."""
    name = f"collab_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return database_url(name)


async def drop_database(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    conn = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def postgres_database() -> str:
    """Create a database (sync, for session fixtures), or skip/fail if PostgreSQL is down."""
    try:
        return run_sync(create_database())
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        unavailable("postgres", POSTGRES_ADMIN_URL, exc)


def check_redis() -> None:
    async def ping() -> None:
        client = aioredis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
        try:
            await client.ping()
        finally:
            await client.aclose()

    try:
        run_sync(ping())
    except (OSError, aioredis.RedisError) as exc:
        unavailable("redis", REDIS_URL, exc)


async def delete_prefix(prefix: str) -> None:
    """Remove the keys a test run left under `prefix`."""
    client = aioredis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=500)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


def redis_address() -> tuple[str, int]:
    parts = urlsplit(REDIS_URL)
    return parts.hostname or "127.0.0.1", parts.port or 6379


def redis_listening() -> bool:
    import socket

    with socket.socket() as probe:
        probe.settimeout(2)
        return probe.connect_ex(redis_address()) == 0


def redis_url_with_prefix(prefix: str) -> str:
    separator = "&" if "?" in REDIS_URL else "?"
    return f"{REDIS_URL}{separator}prefix={prefix}"
