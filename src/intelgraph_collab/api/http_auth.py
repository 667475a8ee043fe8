"""Authentication of HTTP requests: the same tokens, revocations and graph
grants as the WebSocket handshake (`auth.Authenticator`).

A route calls `caller_claims` first (the REST routes through
`identity.rest_caller`): it returns the verified claims (None when auth is
off) or raises `HttpRefusal`: 401 (no, bad, expired or revoked token) or
403 (graph not granted).
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from ..auth import Claims, GraphForbidden, Unauthenticated, bearer_token
from ..service import Service


class HttpRefusal(HTTPException):
    """An HTTPException, so the REST error handlers render it like any other;
    a 401 says how to authenticate (RFC 6750)."""

    def __init__(self, status: int, message: str) -> None:
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        super().__init__(status, message, headers)
        self.status = status
        self.message = message


def caller_claims(request: Request, graph_id: str | None = None) -> Claims | None:
    """The verified claims of the request's token (`Authorization: Bearer` or
    `?token=`), checked against `graph_id` when given; None when auth is off."""
    service: Service = request.app.state.service
    token = bearer_token(request.headers.get("authorization"), request.query_params.get("token"))
    try:
        return service.auth.admit(token, graph_id)
    except Unauthenticated as exc:
        raise HttpRefusal(401, str(exc)) from None
    except GraphForbidden as exc:
        raise HttpRefusal(403, str(exc)) from None


def refusal_response(refusal: HttpRefusal) -> JSONResponse:
    """The REST error body (`{"error": {"code", "message"}}`)."""
    return error_json(refusal.status, "forbidden", refusal.message, dict(refusal.headers or {}))


def error_json(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )
