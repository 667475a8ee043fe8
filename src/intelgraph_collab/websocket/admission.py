"""Who may open `/ws/collaborate/{graph_id}`, decided once for every transport.

The served fast path (`native.py`) and the ASGI route (`collab_ws.py`) both
ask `admit` and act on its answer, so the rules cannot drift apart: a bad
Origin or graph id is refused before the handshake completes (HTTP 403);
refused credentials, bad parameters and connection limits get the handshake
and then at once a close code (a browser cannot read the HTTP status of a
refused WebSocket, but it can read 4401/4403/1008/1013).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from ..auth import Claims, GraphForbidden, Unauthenticated, bearer_token, identity_for
from ..logs import log_event
from ..service import Service
from ..session import CLOSE_FORBIDDEN, CLOSE_POLICY, CLOSE_UNAUTHENTICATED, Identity

log = logging.getLogger(__name__)

GRAPH_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
CLIENT_ID_MAX = 64

Lookup = Callable[[str], str | None]
"""A header or query parameter by name (None when absent)."""


@dataclass(frozen=True, slots=True)
class Admitted:
    graph_id: str
    identity: Identity
    since: int | None
    claims: Claims | None
    batch: bool

    def release(self, service: Service) -> None:
        """Give back the connection-limit slot `admit` took."""
        service.connection_limits.release(self.claims.user if self.claims else None, self.graph_id)


@dataclass(frozen=True, slots=True)
class Refused:
    code: int
    reason: str
    before_accept: bool
    """Refuse the handshake itself (HTTP 403) rather than accept-then-close."""


def admit(service: Service, graph_id: str, header: Lookup, param: Lookup) -> Admitted | Refused:
    """Decide on one connection attempt. When admitted, a connection-limit
    slot is taken: the caller gives it back with `Admitted.release`."""
    if not service.origins.allows(header("origin"), header("host")):
        log_event(log, "origin_refused", logging.WARNING, origin=header("origin"))
        return Refused(CLOSE_POLICY, "origin not allowed", before_accept=True)
    if not GRAPH_ID.fullmatch(graph_id):
        return Refused(CLOSE_POLICY, "invalid graph id", before_accept=True)
    client_id = param("client_id") or uuid.uuid4().hex
    since_param = param("since")
    problem = None
    if not 1 <= len(client_id) <= CLIENT_ID_MAX:
        problem = f"client_id must be 1-{CLIENT_ID_MAX} characters"
    since: int | None = None
    if since_param not in (None, ""):
        if since_param.isascii() and since_param.isdigit() and len(since_param) <= 18:
            since = int(since_param)
        else:
            problem = "since must be a seq (a whole number >= 0)"
    # Credentials are judged before the other parameters: a refused caller
    # learns nothing else about what it sent.
    try:
        token = bearer_token(header("authorization"), param("token"))
        claims = service.auth.admit(token, graph_id)
    except (Unauthenticated, GraphForbidden) as exc:
        code = CLOSE_UNAUTHENTICATED if isinstance(exc, Unauthenticated) else CLOSE_FORBIDDEN
        log_event(log, "auth_refused", logging.WARNING, graph=graph_id, code=code)
        return Refused(code, close_reason(str(exc)), before_accept=False)
    if problem is not None:
        return Refused(CLOSE_POLICY, problem, before_accept=False)
    identity = identity_for(claims, client_id, param("user") or None)
    crowded = service.connection_limits.admit(claims.user if claims else None, graph_id)
    if crowded is not None:
        log_event(log, "connection_limit", logging.WARNING, graph=graph_id, code=crowded[0])
        return Refused(*crowded, before_accept=False)
    return Admitted(graph_id, identity, since, claims, batch=param("batch") == "1")


def close_reason(text: str) -> str:
    """A close reason fits in 123 bytes (RFC 6455 section 5.5)."""
    return text.encode()[:120].decode(errors="ignore")
