"""Who is calling a REST route: the identity every route reads and writes as.

The client id names the caller in the log and scopes its Idempotency-Keys
(dedupe is per (client_id, op_id), as on the WebSocket): `X-Client-Id` if
sent, else `rest:<user>` (`rest:anonymous` without a user).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..auth import identity_for, writer_for
from ..service import Service
from ..session import Identity
from ..sync.engine import Writer
from ..websocket.admission import CLIENT_ID_MAX
from .http_auth import caller_claims

USER_MAX = 128

_bearer_scheme = HTTPBearer(
    auto_error=False,
    description="A token from `intelgraph-collab token` (or your identity provider); "
    "required when the server runs with a secret.",
)
"""Documents the Bearer scheme in the OpenAPI schema (the docs' Authorize
button); the token itself is read and checked by `caller_claims`."""


def service_of(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


async def rest_caller(
    request: Request,
    _documented: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer_scheme)],
    x_client_id: Annotated[
        str | None,
        Header(
            min_length=1,
            max_length=CLIENT_ID_MAX,
            description="Your client id (default `rest:<user>`): scopes Idempotency-Keys.",
        ),
    ] = None,
    x_user: Annotated[
        str | None,
        Header(
            min_length=1,
            max_length=USER_MAX,
            description="Display name stamped as the author, when auth is off "
            "(the WebSocket's `user` parameter).",
        ),
    ] = None,
) -> Identity:
    # With auth on, the token decides who the caller is (401/403 otherwise):
    # its `sub` is the author whatever X-User says, its role and clearance
    # are what the room's write policy and the reads' filters check.
    claims = caller_claims(request, request.path_params.get("graph_id"))
    user = claims.user if claims is not None else x_user or None
    client_id = x_client_id or f"rest:{user or 'anonymous'}"
    return identity_for(claims, client_id, user)


Caller = Annotated[Identity, Depends(rest_caller)]
ServiceDep = Annotated[Service, Depends(service_of)]


def writer_of(caller: Identity) -> Writer:
    return writer_for(caller)
