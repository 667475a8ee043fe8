"""Mount the REST API on an app: routers, error handlers, body size limit."""

from __future__ import annotations

from fastapi import FastAPI

from ..sync.limits import Limits
from .annotations import router as annotations_router
from .body_limit import BodyLimit
from .errors import install_error_handlers
from .health import router as health_router
from .history import router as history_router


def install_rest_api(app: FastAPI, limits: Limits) -> None:
    install_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=limits.max_message_bytes)
    app.include_router(annotations_router)
    app.include_router(history_router)
    app.include_router(health_router)
