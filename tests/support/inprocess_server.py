"""The real app served by uvicorn on a free port, in a thread of the test
process: real sockets, but the service's objects are reachable (run code on
the server's loop with `call`). For tests that must look inside the server
or restart its store quickly; `server.py` runs it as a separate process."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import uvicorn

from intelgraph_collab.app import create_app
from intelgraph_collab.config import Config
from intelgraph_collab.service import Service
from intelgraph_collab.store.base import Store
from intelgraph_collab.websocket.native import protocol_class

from .server import free_port, wait_for_port

T = TypeVar("T")


class InProcessServer:
    def __init__(
        self,
        db: Path,
        store_factory: Callable[[], Store] | None = None,
        *,
        asgi_websocket: bool = False,
        **config: Any,
    ) -> None:
        """`store_factory`: a store for each start (default: SQLite on `db`).
        `asgi_websocket`: serve /ws/collaborate through the ASGI route instead
        of the served fast path (`websocket/native.py`)."""
        self.db = db
        self.asgi_websocket = asgi_websocket
        self.store_factory = store_factory
        self.port = free_port()
        self.config_overrides = config
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    @property
    def service(self) -> Service:
        assert self.server is not None
        app: Any = self.server.config.app
        return app.state.service  # type: ignore[no-any-return]

    def ws_url(self, graph_id: str, **query: object) -> str:
        params = {key: str(value) for key, value in query.items() if value is not None}
        suffix = f"?{urlencode(params)}" if params else ""
        return f"ws://127.0.0.1:{self.port}/ws/collaborate/{graph_id}{suffix}"

    def start(self) -> InProcessServer:
        config = Config(host="127.0.0.1", port=self.port, db=str(self.db), **self.config_overrides)
        app = create_app(config, self.store_factory() if self.store_factory else None)
        uv = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            loop="asyncio",
            ws="websockets-sansio" if self.asgi_websocket else protocol_class(app.state.service),
            log_level="warning",
            lifespan="on",
            ws_ping_interval=None,
        )
        self.server = uvicorn.Server(uv)
        ready = threading.Event()

        def run() -> None:
            self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self.loop)
            ready.set()
            self.loop.run_until_complete(self.server.serve())  # type: ignore[union-attr]
            self.loop.close()

        self.thread = threading.Thread(target=run, name=f"collab-{self.port}", daemon=True)
        self.thread.start()
        ready.wait(10)
        wait_for_port(self.port)
        return self

    def call(self, work: Callable[[], Awaitable[T]], timeout: float = 10.0) -> T:
        """Run `work()` on the server's loop and return its result."""
        assert self.loop is not None

        async def run() -> T:
            return await work()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout)

    def stop(self) -> None:
        """A graceful stop (the lifespan closes the service and the store)."""
        if self.server is not None and self.thread is not None:
            self.server.should_exit = True
            self.thread.join(30)
            self.server = None

    def restart(self) -> InProcessServer:
        """Stop, then serve a fresh app on the same port and database."""
        self.stop()
        return self.start()
