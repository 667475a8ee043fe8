"""Admin routes: `POST /api/admin/revoke` ends a user's access at once.

Body `{"user": "<sub>"}`, with an `admin` token. Every live session of that
user is closed with 4401, and every token of theirs issued until now is
refused from then on (kept across restarts); a token minted afterwards
works again.
"""

from __future__ import annotations

from typing import Any

import msgspec
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ..service import Service
from ..sync.annotation import iso_utc
from .http_auth import HttpRefusal, caller_claims, error_json, refusal_response

router = APIRouter()

MAX_BODY_BYTES = 4096
USER_MAX = 256


@router.post("/api/admin/revoke")
async def revoke(request: Request) -> JSONResponse:
    service: Service = request.app.state.service
    if not service.auth.enabled:
        return error_json(403, "forbidden", "authentication is off: there are no tokens to revoke")
    try:
        claims = caller_claims(request)
    except HttpRefusal as refusal:
        return refusal_response(refusal)
    assert claims is not None
    if claims.role != "admin":
        return error_json(403, "forbidden", "only an admin may revoke users")
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        return error_json(413, "too_large", f"request body exceeds {MAX_BODY_BYTES} bytes")
    user = _user_of(body)
    if user is None:
        return error_json(
            400, "bad_message", f'send {{"user": "<name>"}} with 1-{USER_MAX} characters'
        )
    revoked_at, closed = await service.revoke_user(user)
    return JSONResponse(
        {
            "user": user,
            "revoked_at": iso_utc(int(revoked_at * 1000)),
            "sessions_closed": closed,
        }
    )


def _user_of(body: bytes) -> str | None:
    try:
        document: Any = msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError):
        return None
    user = document.get("user") if isinstance(document, dict) else None
    return user if isinstance(user, str) and 1 <= len(user) <= USER_MAX else None
