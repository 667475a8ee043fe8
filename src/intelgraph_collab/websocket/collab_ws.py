"""The WebSocket endpoint: `/ws/collaborate/{graph_id}` (PROTOCOL.md). It only moves data.

The handshake's parameters are checked, the session joins the graph's room,
and every frame read is handed to `inbound.handle_frame`; what goes out is
sent by the session's own writer task.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid

from fastapi import APIRouter, WebSocket

from ..auth import Claims, GraphForbidden, Unauthenticated, bearer_token, identity_for
from ..inbound import handle_binary, handle_frame
from ..logs import log_event
from ..ratelimit import MessageRateLimiter
from ..service import Service
from ..session import (
    CLOSE_FORBIDDEN,
    CLOSE_POLICY,
    CLOSE_TRY_AGAIN,
    CLOSE_UNAUTHENTICATED,
    Session,
)
from ..store.base import StoreUnavailable

log = logging.getLogger(__name__)

router = APIRouter()

GRAPH_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
CLIENT_ID_MAX = 64


@router.websocket("/ws/collaborate/{graph_id}")
async def collaborate(websocket: WebSocket, graph_id: str) -> None:
    service: Service = websocket.app.state.service
    params = websocket.query_params
    if not service.origins.allows(websocket.headers.get("origin"), websocket.headers.get("host")):
        log_event(log, "origin_refused", logging.WARNING, origin=websocket.headers.get("origin"))
        await websocket.close(CLOSE_POLICY, "origin not allowed")  # before accept: HTTP 403
        return
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
        if since_param.isascii() and since_param.isdigit() and len(since_param) <= 18:
            since = int(since_param)
        else:
            problem = "since must be a seq (a whole number >= 0)"
    # Refused credentials still get the handshake, then at once a 4401/4403
    # close (a browser cannot read the HTTP status of a refused WebSocket);
    # nothing else is sent, nothing is read.
    refusal: tuple[int, str] | None = None
    claims: Claims | None = None
    try:
        token = bearer_token(websocket.headers.get("authorization"), params.get("token"))
        claims = service.auth.admit(token, graph_id)
    except Unauthenticated as exc:
        refusal = CLOSE_UNAUTHENTICATED, _close_reason(str(exc))
    except GraphForbidden as exc:
        refusal = CLOSE_FORBIDDEN, _close_reason(str(exc))
    await websocket.accept()
    if refusal is not None:
        log_event(log, "auth_refused", logging.WARNING, graph=graph_id, code=refusal[0])
        await websocket.close(*refusal)
        return
    if problem is not None:
        await websocket.close(CLOSE_POLICY, problem)
        return
    identity = identity_for(claims, client_id, params.get("user") or None)
    crowded = service.connection_limits.admit(claims.user if claims else None, graph_id)
    if crowded is not None:
        log_event(log, "connection_limit", logging.WARNING, graph=graph_id, code=crowded[0])
        await websocket.close(*crowded)
        return
    try:
        session = Session(
            identity,
            websocket.send_text,
            websocket.close,
            batch=params.get("batch") == "1",
            max_queue=service.config.send_queue_max,
        )
        await serve_session(websocket, service, graph_id, session, since, claims)
    finally:
        service.connection_limits.release(claims.user if claims else None, graph_id)


async def serve_session(
    websocket: WebSocket,
    service: Service,
    graph_id: str,
    session: Session,
    since: int | None,
    claims: Claims | None = None,
) -> None:
    try:
        room = await service.rooms.acquire(graph_id)
    except StoreUnavailable as exc:  # e.g. PostgreSQL unreachable: the client retries
        log_event(log, "graph_unavailable", logging.WARNING, graph=graph_id, error=str(exc))
        await websocket.close(CLOSE_TRY_AGAIN, "storage unavailable; reconnect")
        return
    service.connected(session)
    expiry = _close_at_expiry(service, session, claims)
    rate = MessageRateLimiter(service.config.security.rate)
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
                handle_frame(text, session, room, limits, metrics, rate)
            else:
                handle_binary(session, metrics, rate)
    finally:
        if expiry is not None:
            expiry.cancel()
        session.detach()
        room.leave(session)
        service.disconnected(session)
        service.rooms.release(graph_id)
        log_event(
            log, "disconnect", graph=graph_id, client=session.client_id, code=session.close_code
        )


def _close_at_expiry(
    service: Service, session: Session, claims: Claims | None
) -> asyncio.TimerHandle | None:
    """Close the session with 4401 when its token expires. Also closes it now
    if its user was revoked while it was connecting (revocation closes only
    the sessions registered when it ran)."""
    if claims is None:
        return None
    if service.auth.revocations.revoked(claims):
        session.close(CLOSE_UNAUTHENTICATED, "token revoked")
        return None
    loop = asyncio.get_running_loop()
    delay = max(0.0, claims.expires_at - time.time())
    return loop.call_later(delay, session.close, CLOSE_UNAUTHENTICATED, "token expired")


def _close_reason(text: str) -> str:
    """A close reason fits in 123 bytes (RFC 6455 section 5.5)."""
    return text.encode()[:120].decode(errors="ignore")
