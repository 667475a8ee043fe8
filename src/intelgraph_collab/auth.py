"""Who a caller is: signed tokens (HS256 JWT), their claims, and revoked users.

A token carries `sub` (the user), `role`, `graphs` (ids, or `["*"]`),
`clearance` (enclaves) and `exp`; `iat` (issued at) is what a revocation is
compared with. The server only verifies tokens; `mint_token` exists for the
`intelgraph-collab token` command (development, tests, demos) and for an
identity provider that shares the secret.

Every transport authenticates through one `Authenticator`, so the WebSocket
handshake and the HTTP routes accept and refuse exactly the same tokens.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, cast

import jwt

from .revocations import Revocations
from .session import Identity
from .sync.annotation import UNCLASSIFIED
from .sync.engine import Writer

ALGORITHM = "HS256"
ROLES: tuple[str, ...] = ("viewer", "commenter", "editor", "admin")
Role = Literal["viewer", "commenter", "editor", "admin"]
ALL_GRAPHS = "*"
MIN_SECRET_BYTES = 32
"""RFC 7518 section 3.2: an HS256 key at least as long as the hash (256 bits)."""

Clock = Callable[[], float]


class Unauthenticated(Exception):
    """No token, or one that is bad, expired or revoked: close 4401, HTTP 401."""


class GraphForbidden(Exception):
    """A valid token that does not name the graph: close 4403, HTTP 403."""


@dataclass(frozen=True, slots=True)
class Claims:
    """The verified content of a token."""

    user: str
    role: Role
    graphs: frozenset[str]
    clearance: frozenset[str]
    expires_at: float
    issued_at: float | None
    """None: the token has no `iat`, so no revocation can be told apart from it."""

    def may_open(self, graph_id: str) -> bool:
        return ALL_GRAPHS in self.graphs or graph_id in self.graphs


# -- minting (the `token` command) ----------------------------------------

_TTL = re.compile(r"(\d+(?:\.\d+)?)([smhd]?)")
_TTL_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_ttl(text: str) -> float:
    """`90`, `90s`, `15m`, `8h`, `7d` -> seconds."""
    match = _TTL.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"bad duration {text!r}: use e.g. 90s, 15m, 8h or 7d")
    return float(match.group(1)) * _TTL_UNITS[match.group(2)]


def mint_token(
    secret: str | bytes,
    *,
    user: str,
    role: str,
    graphs: Iterable[str],
    clearance: Iterable[str] = (),
    ttl_seconds: float,
    now: float | None = None,
) -> str:
    """A signed token. `iat` keeps milliseconds, so a token minted right after
    a revocation is told apart from one minted right before it."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if not user:
        raise ValueError("user must not be empty")
    issued = time.time() if now is None else now
    claims = {
        "sub": user,
        "role": role,
        "graphs": list(graphs),
        "clearance": list(clearance),
        "iat": round(issued, 3),
        "exp": math.ceil(issued + ttl_seconds),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


# -- verifying --------------------------------------------------------------


def check_secret(secret: str) -> bytes:
    """The secret as key bytes; refuses one too short to resist guessing."""
    key = secret.strip().encode()
    if len(key) < MIN_SECRET_BYTES:
        raise ValueError(
            f"the token secret must be at least {MIN_SECRET_BYTES} bytes; generate one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
        )
    return key


def decode_claims(secret: str | bytes, token: str, now: float | None = None) -> Claims:
    """Verify the signature (HS256 only: `none` and other algorithms are refused),
    the expiry and the shape of every claim."""
    try:
        payload: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            # Expiry is checked below, against the caller's clock; `iat` only
            # dates the token (for revocations), it does not bound its validity.
            options={"require": ["exp", "sub"], "verify_exp": False, "verify_iat": False},
        )
    except jwt.PyJWTError as exc:
        raise Unauthenticated(f"invalid token: {exc}") from None
    expires_at = _number(payload.get("exp"))
    if expires_at is None:
        raise Unauthenticated("invalid token: `exp` must be a number")
    if expires_at <= (time.time() if now is None else now):
        raise Unauthenticated("token expired")
    user, role = payload.get("sub"), payload.get("role")
    if not isinstance(user, str) or not user:
        raise Unauthenticated("invalid token: `sub` must be a non-empty string")
    if role not in ROLES:
        raise Unauthenticated(f"invalid token: `role` must be one of {', '.join(ROLES)}")
    graphs = _string_list(payload, "graphs", required=True)
    clearance = _string_list(payload, "clearance", required=False)
    return Claims(
        user=user,
        role=cast(Role, role),
        graphs=graphs,
        clearance=clearance,
        expires_at=expires_at,
        issued_at=_number(payload.get("iat")),
    )


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _string_list(payload: dict[str, Any], name: str, *, required: bool) -> frozenset[str]:
    value = payload.get(name)
    if value is None and not required:
        return frozenset()  # least privilege: UNCLASSIFIED only
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise Unauthenticated(f"invalid token: `{name}` must be a list of strings")
    return frozenset(value)


def bearer_token(authorization: str | None, query_token: str | None) -> str | None:
    """The token of a request: `Authorization: Bearer <t>` first, else `?token=`."""
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return query_token or None


class Authenticator:
    """The one place tokens are accepted or refused. Disabled (every caller
    anonymous, with every right) when no secret is configured."""

    def __init__(
        self, secret: str | None, revocations: Revocations, clock: Clock = time.time
    ) -> None:
        self._key = check_secret(secret) if secret is not None else None
        self.revocations = revocations
        self.clock = clock

    @property
    def enabled(self) -> bool:
        return self._key is not None

    def authenticate(self, token: str | None) -> Claims:
        """The claims of `token`, or Unauthenticated. Only call when enabled."""
        if self._key is None:
            raise RuntimeError("authentication is off")
        if not token:
            raise Unauthenticated("no token: send `Authorization: Bearer <token>` or `?token=`")
        claims = decode_claims(self._key, token, now=self.clock())
        if self.revocations.revoked(claims):
            raise Unauthenticated("token revoked")
        return claims

    def admit(self, token: str | None, graph_id: str | None) -> Claims | None:
        """The caller's claims (None when auth is off), checked against
        `graph_id` when given. Raises Unauthenticated or GraphForbidden."""
        if not self.enabled:
            return None
        claims = self.authenticate(token)
        if graph_id is not None and not claims.may_open(graph_id):
            raise GraphForbidden("the token does not grant this graph")
        return claims


# -- identities --------------------------------------------------------------


def identity_for(claims: Claims | None, client_id: str, display_name: str | None) -> Identity:
    """The session identity of a caller: from its token when auth is on (the
    user is the token's `sub`, whatever the connection parameters say); with
    auth off, the self-declared display name, every right, every enclave."""
    if claims is None:
        return Identity(client_id=client_id, user=display_name)
    # UNCLASSIFIED is in every clearance: leaving it out makes clearances that
    # see the same thing one audience (one encoding per broadcast).
    return Identity(
        client_id=client_id,
        user=claims.user,
        role=claims.role,
        clearance=claims.clearance - {UNCLASSIFIED},
        authenticated=True,
    )


def writer_for(identity: Identity) -> Writer:
    """The engine's view of who writes: author, role and clearance come from
    the identity (the token), never from the message."""
    return Writer(
        identity.client_id,
        identity.user,
        identity.role,
        identity.clearance,
        authenticated=identity.authenticated,
    )
