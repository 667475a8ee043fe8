"""The composition root: build the service from configuration and mount the transports."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from .api.admin import router as admin_router
from .api.routes import install_rest_api
from .config import Config
from .service import Service
from .store.base import Store
from .web import install_demo
from .websocket.collab_ws import router as websocket_router


def create_app(config: Config | None = None, store: Store | None = None) -> FastAPI:
    config = config or Config.from_env()
    service = Service(config, store)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(title="IntelGraph Collab", version="1", lifespan=lifespan)
    app.state.service = service
    app.include_router(websocket_router)
    app.include_router(admin_router)
    install_rest_api(app, config.limits)
    install_demo(app)
    return app
