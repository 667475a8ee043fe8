"""Fixtures of the conformance suites: a PostgreSQL database and a Redis
prefix per test run, each adapter behind the same fixture."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.conformance import services


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    url = services.postgres_database()
    try:
        yield url
    finally:
        services.run_sync(services.drop_database(url))


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    services.check_redis()
    prefix = f"collab-test-{uuid.uuid4().hex[:10]}:"
    try:
        yield prefix
    finally:
        services.run_sync(services.delete_prefix(prefix))
