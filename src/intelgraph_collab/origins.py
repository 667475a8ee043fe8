"""The Origin allowlist of the WebSocket handshake (cross-site WebSocket hijacking).

Browsers send `Origin` on every WebSocket handshake and let any page open
one to any server, so without this check a page on another site could
ride an analyst's browser into a graph. CORS middleware does not cover
WebSockets; the endpoint asks `OriginPolicy.allows` before accepting and
refuses with HTTP 403. Clients that are not browsers send no Origin and are
not refused for that (they still need a token when auth is on).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from .security_settings import is_loopback

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "[::]"})
_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")

Origin = tuple[str, str, int]
"""(scheme, host, port), normalised."""


def normalise(origin: str) -> Origin | None:
    """`https://Example.com` -> ("https", "example.com", 443); None if unparseable."""
    try:
        parts = urlsplit(origin.strip())
        scheme, host, port = parts.scheme.lower(), parts.hostname, parts.port
    except ValueError:
        return None
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    return scheme, host.lower(), port if port is not None else _DEFAULT_PORTS[scheme]


def _host_and_port(host_header: str, scheme: str) -> tuple[str, int] | None:
    parsed = normalise(f"{scheme}://{host_header}")
    return None if parsed is None else (parsed[1], parsed[2])


class OriginPolicy:
    def __init__(self, allowed: tuple[str, ...] | None, host: str, port: int) -> None:
        """`allowed`: the configured origins (`*`: any); None: the server's own
        origin, which is its bound address (and every loopback name when it is
        bound to loopback). Bound to every interface, the server cannot know its
        own name: then an Origin naming the same host as the `Host` header is
        its own (auth is always on there)."""
        self.any = allowed is not None and "*" in allowed
        self.same_host_as_request = allowed is None and host.strip() in _WILDCARD_HOSTS
        origins: set[Origin] = set()
        if allowed is not None:
            origins = {parsed for origin in allowed if (parsed := normalise(origin)) is not None}
        else:
            names = {host.strip("[]").lower()}
            if is_loopback(host):
                names.update(_LOOPBACK_NAMES)
            for name in names - _WILDCARD_HOSTS:
                for scheme in ("http", "https"):
                    origins.add((scheme, name, port))
        self.origins = frozenset(origins)

    def allows(self, origin: str | None, host_header: str | None) -> bool:
        if origin is None:  # not a browser
            return True
        if self.any:
            return True
        parsed = normalise(origin)
        if parsed is None:  # "null" (sandboxed frames, file://) or garbage
            return False
        if parsed in self.origins:
            return True
        if self.same_host_as_request and host_header:
            return _host_and_port(host_header, parsed[0]) == parsed[1:]
        return False
