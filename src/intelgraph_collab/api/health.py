"""Operations endpoints: liveness, readiness, Prometheus metrics.

`/healthz` answers while the process serves HTTP at all (restart it if
not). `/readyz` answers 200 only when the store answers and the server is
not draining (send it traffic only then). `/metrics` is the Prometheus text
exposition of this server's registry.
"""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..logs import log_event
from .identity import ServiceDep
from .models import Health
from .render import JsonBody

log = logging.getLogger(__name__)

router = APIRouter(tags=["operations"])

READY_TIMEOUT_SECONDS = 2.0


@router.get("/healthz", response_model=Health)
async def healthz() -> Response:
    """Liveness: the process is up and serving."""
    return JsonBody({"status": "ok"})


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
async def readyz(service: ServiceDep) -> Response:
    """Readiness: the store is reachable and the server is not shutting down."""
    if service.draining:
        return JsonBody({"status": "unavailable", "reason": "shutting down"}, status_code=503)
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS):
            await service.store.ping()
    except Exception as exc:  # any failure to answer means not ready
        log_event(log, "not_ready", logging.WARNING, error=type(exc).__name__)
        return JsonBody({"status": "unavailable", "reason": "store unreachable"}, status_code=503)
    return JsonBody({"status": "ready"})


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(service: ServiceDep) -> Response:
    """Prometheus metrics (text exposition format)."""
    return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)
