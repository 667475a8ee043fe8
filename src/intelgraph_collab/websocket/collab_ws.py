"""The WebSocket endpoint as an ASGI route: `/ws/collaborate/{graph_id}` (PROTOCOL.md).

`intelgraph-collab serve` answers this path on its fast path (`native.py`),
before the ASGI stack; this route serves it when the app runs elsewhere
(another ASGI server, Starlette's TestClient). Both admit with
`admission.admit` and run the connection with `CollabConnection`.
"""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from ..service import Service
from ..session import TaskSession
from .admission import Admitted, admit
from .collab_connection import CollabConnection

router = APIRouter()


@router.websocket("/ws/collaborate/{graph_id}")
async def collaborate(websocket: WebSocket, graph_id: str) -> None:
    service: Service = websocket.app.state.service
    decision = admit(service, graph_id, websocket.headers.get, websocket.query_params.get)
    if not isinstance(decision, Admitted):
        if not decision.before_accept:
            await websocket.accept()
        await websocket.close(decision.code, decision.reason)  # before accept: HTTP 403
        return
    await websocket.accept()
    session = TaskSession(
        decision.identity,
        websocket.send_text,
        websocket.close,
        batch=decision.batch,
        max_queue=service.config.send_queue_max,
    )
    connection = CollabConnection(service, decision, session)
    try:
        if not await connection.open():
            return
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            text = message.get("text")
            if text is not None:
                connection.receive_text(text)
            else:
                connection.receive_binary()
    finally:
        connection.finish()
