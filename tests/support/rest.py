"""Helpers for the REST API tests: an HTTP client on the real server, metric
reading with prometheus-client's own parser, and bounded polling."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
from prometheus_client.parser import text_string_to_metric_families

T = TypeVar("T")

JSON = {"content-type": "application/json"}


def new_graph_id(prefix: str = "g") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def annotation_url(graph_id: str, annotation_id: str = "") -> str:
    base = f"/api/graphs/{graph_id}/annotations"
    return f"{base}/{annotation_id}" if annotation_id else base


def samples(metrics_text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a /metrics page, keyed by (name, labels)."""
    found: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def metric(
    page: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    """One sample's value; 0 when absent (a labelled counter not yet touched)."""
    return page.get((name, frozenset(labels.items())), 0.0)


async def scrape(http: httpx.AsyncClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = await http.get("/metrics")
    assert response.status_code == 200
    return samples(response.text)


async def wait_until(
    probe: Callable[[], Awaitable[T | None]], within: float = 10.0, what: str = "condition"
) -> T:
    """Poll `probe` until it returns something other than None (or raise after `within` s)."""
    deadline = time.monotonic() + within
    while True:
        value = await probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The `{"code", "message"}` of an error response (asserting its shape)."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error
