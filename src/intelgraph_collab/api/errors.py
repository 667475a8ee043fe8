"""REST errors: the WebSocket `error` codes, as JSON bodies with HTTP statuses.

Every refusal is `{"error": {"code": ..., "message": ...}}` with a code of
PROTOCOL.md, whatever raised it: the engine or room (ProtocolError), request
validation (FastAPI), routing (404/405), the body size limit (413), or an
unavailable store (503). A refused request changed nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from ..logs import log_event
from ..room import PreconditionFailed, RoomClosed
from ..store.base import StoreUnavailable
from ..sync.errors import ErrorCode, ProtocolError

log = logging.getLogger(__name__)

STATUS_BY_CODE: dict[ErrorCode, int] = {
    "bad_message": 400,
    "unknown_type": 400,
    "too_large": 413,
    "rate_limited": 429,
    "forbidden": 403,
    "conflict": 409,
    "not_found": 404,
    "invalid_op": 422,
}

_CODE_BY_STATUS: dict[int, ErrorCode] = {
    401: "forbidden",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    412: "conflict",
    413: "too_large",
    429: "rate_limited",
}

_WRITE_TYPE_BY_METHOD = {
    "PUT": "annotation_update",
    "PATCH": "annotation_update",
    "DELETE": "annotation_delete",
}

PRECONDITION_FAILED = 412
UNAVAILABLE = 503


def error_response(
    status: int, code: ErrorCode, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )


def status_of(error: ProtocolError) -> int:
    if isinstance(error, PreconditionFailed):
        return PRECONDITION_FAILED
    return STATUS_BY_CODE[error.code]


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ProtocolError, _protocol_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(RoomClosed, _unavailable)
    app.add_exception_handler(StoreUnavailable, _unavailable)


def _logged(request: Request, response: JSONResponse, code: str) -> JSONResponse:
    # The route's template, not the raw path: ids stay out of this line.
    route = getattr(request.scope.get("route"), "path", None)
    log_event(
        log,
        "http_error",
        method=request.method,
        route=route,
        graph=request.path_params.get("graph_id"),
        status=response.status_code,
        code=code,
    )
    return response


async def _protocol_error(request: Request, error: ProtocolError) -> JSONResponse:
    response = error_response(status_of(error), error.code, error.message)
    return _logged(request, response, error.code)


async def _validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
    # Where and what, never the offending input itself.
    problems = [_describe(item) for item in error.errors()[:5]]
    response = error_response(400, "bad_message", "; ".join(problems) or "invalid request")
    _count_refused_write(request, "bad_message")
    return _logged(request, response, "bad_message")


def _count_refused_write(request: Request, code: ErrorCode) -> None:
    """A write refused before its route ran (shape, size) counts as a refused write."""
    kind = _WRITE_TYPE_BY_METHOD.get(request.method)
    if kind is not None and request.scope.get("route") is not None:
        request.app.state.service.metrics.refused(code, kind)


def _describe(item: Any) -> str:
    location = ".".join(str(part) for part in item.get("loc", ()))
    return f"{location}: {item.get('msg', 'invalid')}"


async def _http_error(request: Request, error: HTTPException) -> JSONResponse:
    code = _CODE_BY_STATUS.get(error.status_code, "bad_message")
    message = str(error.detail)
    if error.status_code == 413:
        _count_refused_write(request, code)
    response = error_response(error.status_code, code, message, dict(error.headers or {}))
    return _logged(request, response, code)


async def _unavailable(request: Request, error: Exception) -> JSONResponse:
    # The WebSocket path answers the same situation with `conflict` ("retry").
    response = error_response(
        UNAVAILABLE, "conflict", "graph storage unavailable; retry", {"Retry-After": "1"}
    )
    log_event(log, "store_unavailable", logging.WARNING, error=type(error).__name__)
    return _logged(request, response, "conflict")
