"""The demo page and the browser client's modules, served as files (no build step).

`GET /` and `GET /graphs/{graph_id}` answer the demo page; `/frontend/...` is
the repository's `frontend/` directory (the ES modules of the client and the
page); `/vendor/cytoscape.esm.min.mjs` is Cytoscape.js from `node_modules`,
so the page needs no CDN. The directories are found relative to the
repository (the package is installed editable from `src/`), or from
`COLLAB_FRONTEND_DIR` and `COLLAB_NODE_MODULES_DIR`.
"""

from __future__ import annotations

import os
from os import PathLike
from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import Scope

from .websocket.admission import GRAPH_ID

REPO = Path(__file__).resolve().parents[2]
CYTOSCAPE = Path("cytoscape") / "dist" / "cytoscape.esm.min.mjs"
JAVASCRIPT = "text/javascript; charset=utf-8"
# The page is small and changes with the code: always revalidate (ETags make it cheap).
REVALIDATE = {"Cache-Control": "no-cache"}
VENDOR_CACHE = {"Cache-Control": "max-age=3600"}


def frontend_dir() -> Path:
    return Path(os.environ.get("COLLAB_FRONTEND_DIR") or REPO / "frontend")


def node_modules_dir() -> Path:
    return Path(os.environ.get("COLLAB_NODE_MODULES_DIR") or REPO / "node_modules")


def install_demo(app: FastAPI) -> None:
    """Mount the demo page, the client modules and the vendored Cytoscape.js on `app`."""
    frontend = frontend_dir()
    index = frontend / "app" / "index.html"
    cytoscape = node_modules_dir() / CYTOSCAPE

    def page() -> FileResponse:
        if not index.is_file():
            raise HTTPException(404, f"demo page not found at {index} (set COLLAB_FRONTEND_DIR)")
        return FileResponse(index, media_type="text/html; charset=utf-8", headers=REVALIDATE)

    @app.get("/", include_in_schema=False)
    async def demo_home() -> FileResponse:
        return page()

    @app.get("/graphs/{graph_id}", include_in_schema=False)
    async def demo_graph(graph_id: str) -> FileResponse:
        if not GRAPH_ID.fullmatch(graph_id):
            raise HTTPException(404, "a graph id is 1-128 characters of A-Z a-z 0-9 _ . : -")
        return page()

    @app.get("/vendor/cytoscape.esm.min.mjs", include_in_schema=False)
    async def vendor_cytoscape() -> FileResponse:
        if not cytoscape.is_file():
            raise HTTPException(404, f"Cytoscape.js not found at {cytoscape} (run npm install)")
        # Module scripts need a JavaScript MIME type; .mjs is unknown to some mimetypes tables.
        return FileResponse(cytoscape, media_type=JAVASCRIPT, headers=VENDOR_CACHE)

    app.mount("/frontend", _ModuleFiles(directory=frontend, check_dir=False), name="frontend")


class _ModuleFiles(StaticFiles):
    """StaticFiles whose answers browsers revalidate, and whose modules are JavaScript."""

    def file_response(
        self,
        full_path: PathLike[str] | str,
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        # Module scripts need a JavaScript MIME type; some hosts' mimetypes lack .mjs.
        if str(full_path).endswith((".js", ".mjs")):
            response.headers["content-type"] = JAVASCRIPT
        response.headers["cache-control"] = "no-cache"
        return response
