"""Mount the REST API on an app: routers, error handlers, body size limit."""

from __future__ import annotations

from fastapi import FastAPI

from ..sync.limits import Limits
from .annotations import router as annotations_router
from .errors import install_error_handlers
from .health import router as health_router
from .history import router as history_router


def install_rest_api(app: FastAPI, limits: Limits) -> None:
    install_error_handlers(app)
    # A REST write is one message: bodies are bounded as WebSocket messages are,
    # and refused (413 too_large) before they are read whole.
    app.include_router(annotations_router, max_body_size=limits.max_message_bytes)
    app.include_router(history_router)
    app.include_router(health_router)
