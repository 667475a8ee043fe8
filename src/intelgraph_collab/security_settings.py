"""The security part of the configuration: secret, origins, abuse limits.

Built from `COLLAB_*` environment variables, then the `serve` flags
(`--secret-file`, `--allowed-origins`). Auth is on exactly when a secret is
configured; with none, the server runs open only on a loopback address.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from .ratelimit import ConnectionSettings, RateSettings


@dataclass(frozen=True)
class SecuritySettings:
    secret: str | None = field(default=None, repr=False)
    """HS256 key of the tokens; None: auth off (loopback only)."""
    allowed_origins: tuple[str, ...] | None = None
    """Browser origins allowed to open a WebSocket (`*`: any); None: the
    server's own origin only."""
    revocations_db: str | None = None
    """SQLite file keeping revoked users; None: next to the SQLite store, in
    the PostgreSQL store's database, or in memory with `memory://`."""
    rate: RateSettings = field(default_factory=RateSettings)
    connections: ConnectionSettings = field(default_factory=ConnectionSettings)

    @property
    def auth_enabled(self) -> bool:
        return self.secret is not None

    @classmethod
    def from_env(
        cls, secret_file: str | None = None, allowed_origins: str | None = None
    ) -> SecuritySettings:
        """`COLLAB_*` variables; the arguments (flags) win over them."""
        env = os.environ
        secret = env.get("COLLAB_SECRET") or None
        secret_file = secret_file or env.get("COLLAB_SECRET_FILE") or None
        if secret_file is not None:
            secret = read_secret_file(secret_file)
        origins = (
            allowed_origins if allowed_origins is not None else env.get("COLLAB_ALLOWED_ORIGINS")
        )
        base_rate, base_conn = RateSettings(), ConnectionSettings()
        return cls(
            secret=secret,
            allowed_origins=parse_origins(origins) if origins else None,
            revocations_db=env.get("COLLAB_REVOCATIONS_DB") or None,
            rate=RateSettings(
                rate=float(env.get("COLLAB_RATE_LIMIT", base_rate.rate)),
                burst=int(env.get("COLLAB_RATE_BURST", base_rate.burst)),
                close_after=int(env.get("COLLAB_RATE_CLOSE_AFTER", base_rate.close_after)),
            ),
            connections=ConnectionSettings(
                per_user=int(env.get("COLLAB_MAX_CONNECTIONS_PER_USER", base_conn.per_user)),
                per_graph=int(env.get("COLLAB_MAX_CONNECTIONS_PER_GRAPH", base_conn.per_graph)),
            ),
        )


def read_secret_file(path: str) -> str:
    secret = Path(path).read_text().strip()
    if not secret:
        raise ValueError(f"secret file {path} is empty")
    return secret


def parse_origins(text: str) -> tuple[str, ...]:
    """`https://a.example, http://localhost:5173` -> a tuple; `*` allows any."""
    return tuple(origin.strip().rstrip("/") for origin in text.split(",") if origin.strip())


def is_loopback(host: str) -> bool:
    """Whether binding `host` keeps the server reachable from this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def open_mode_problem(host: str, settings: SecuritySettings) -> str | None:
    """Why the server must not start as configured, or None."""
    if settings.secret is None and not is_loopback(host):
        return (
            f"refusing to serve {host} without authentication: anyone who can reach it could "
            "read and write every graph. Set COLLAB_SECRET or --secret-file PATH, or bind "
            "to 127.0.0.1 for local development."
        )
    return None


def revocations_path(settings: SecuritySettings, store: str | None, db: str) -> str | None:
    """The SQLite file keeping revoked users: `revocations_db`, else beside
    the SQLite store (`collab.db` -> `collab.revocations.db`); None for other
    stores (see `revocations.make_revocations`)."""
    if settings.revocations_db is not None:
        return settings.revocations_db
    if store is None:
        path = db
    elif store.startswith("sqlite://"):
        path = store.removeprefix("sqlite://")
    else:
        return None
    if path == ":memory:":
        return None
    return str(Path(path).with_suffix(".revocations.db"))
