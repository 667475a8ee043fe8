"""The WebSocket endpoint: `/ws/collaborate/{graph_id}` (PROTOCOL.md). It only moves data.

The handshake's parameters are checked, the session joins the graph's room,
and every frame read is handed to `inbound.handle_frame`; what goes out is
sent by the session's own writer task.
"""

from __future__ import annotations

import logging
import re
import uuid

from fastapi import APIRouter, WebSocket

from ..inbound import handle_frame, refuse
from ..logs import log_event
from ..service import Service
from ..session import CLOSE_POLICY, Identity, Session
from ..sync.errors import ProtocolError

log = logging.getLogger(__name__)

router = APIRouter()

GRAPH_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
CLIENT_ID_MAX = 64


@router.websocket("/ws/collaborate/{graph_id}")
async def collaborate(websocket: WebSocket, graph_id: str) -> None:
    service: Service = websocket.app.state.service
    params = websocket.query_params
    if not GRAPH_ID.fullmatch(graph_id):
        await websocket.close(CLOSE_POLICY, "invalid graph id")  # before accept: HTTP 403
        return
    client_id = params.get("client_id") or uuid.uuid4().hex
    since_param = params.get("since")
    problem = None
    if not 1 <= len(client_id) <= CLIENT_ID_MAX:
        problem = f"client_id must be 1-{CLIENT_ID_MAX} characters"
    since: int | None = None
    if since_param not in (None, ""):
        if since_param.isdigit() and len(since_param) <= 18:
            since = int(since_param)
        else:
            problem = "since must be a seq (a whole number >= 0)"
    await websocket.accept()
    if problem is not None:
        await websocket.close(CLOSE_POLICY, problem)
        return
    identity = Identity(client_id=client_id, user=params.get("user") or None)
    session = Session(
        identity,
        websocket.send_text,
        websocket.close,
        batch=params.get("batch") == "1",
        max_queue=service.config.send_queue_max,
    )
    await serve_session(websocket, service, graph_id, session, since)


async def serve_session(
    websocket: WebSocket, service: Service, graph_id: str, session: Session, since: int | None
) -> None:
    room = await service.rooms.acquire(graph_id)
    service.connected(session)
    log_event(log, "connect", graph=graph_id, client=session.client_id, user=session.identity.user)
    limits, metrics = service.config.limits, service.metrics
    try:
        room.join(session, since)
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            text = message.get("text")
            if text is not None:
                handle_frame(text, session, room, limits, metrics)
            else:
                refuse(session, ProtocolError("bad_message", "binary frames are not accepted"), metrics)
    finally:
        room.leave(session)
        service.disconnected(session)
        service.rooms.release(graph_id)
        log_event(
            log, "disconnect", graph=graph_id, client=session.client_id, code=session.close_code
        )
