"""Server configuration: one frozen value built from flags and `COLLAB_*` env vars."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .room import RoomSettings
from .security_settings import SecuritySettings
from .sync.limits import Limits


def _env(name: str, default: str) -> str:
    return os.environ.get(f"COLLAB_{name}", default)


@dataclass(frozen=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 8000
    db: str = "./collab.db"
    """SQLite file of the embedded default store."""
    store: str | None = None
    """A store URL overriding `db`: `sqlite:///path`, `memory://`, `postgresql://...`."""
    fanout: str | None = None
    """Fan-out between server nodes: None (in-process) or `redis://...`."""
    sqlite_synchronous: str = "NORMAL"
    limits: Limits = field(default_factory=Limits)
    rooms: RoomSettings = field(default_factory=RoomSettings)
    room_idle_seconds: float = 30.0
    presence_ttl: float = 15.0
    """Cluster mode: a node not heard from for this long is dead and its
    clients' presence is dropped by the other nodes."""
    send_queue_max: int = 10_000
    """Messages queued for one client before it counts as a slow reader (1013)."""
    ws_ping_interval: float = 20.0
    ws_ping_timeout: float = 20.0
    ws_max_frame_bytes: int = 16 * 1024 * 1024
    """Frames larger than this are refused by the transport with close 1009;
    frames up to it but over `limits.max_frame_bytes` get a `too_large` error."""
    ws_fast_path: bool = True
    """Serve /ws/collaborate on the socket (`websocket/native.py`); False:
    through the ASGI route like any other endpoint (slower; for comparison)."""
    log_level: str = "info"
    security: SecuritySettings = field(default_factory=SecuritySettings)
    """Token secret (auth), Origin allowlist, rate and connection limits."""

    @classmethod
    def from_env(cls, **overrides: object) -> Config:
        """Defaults, then `COLLAB_*` environment variables, then `overrides` (flags)."""
        base = cls()
        values: dict[str, object] = {
            "host": _env("HOST", base.host),
            "port": int(_env("PORT", str(base.port))),
            "db": _env("DB", base.db),
            "store": os.environ.get("COLLAB_STORE") or None,
            "fanout": os.environ.get("COLLAB_FANOUT") or None,
            "sqlite_synchronous": _env("SQLITE_SYNCHRONOUS", base.sqlite_synchronous),
            "room_idle_seconds": float(_env("ROOM_IDLE_SECONDS", str(base.room_idle_seconds))),
            "presence_ttl": float(_env("PRESENCE_TTL", str(base.presence_ttl))),
            "send_queue_max": int(_env("SEND_QUEUE_MAX", str(base.send_queue_max))),
            "ws_ping_interval": float(_env("WS_PING_INTERVAL", str(base.ws_ping_interval))),
            "ws_ping_timeout": float(_env("WS_PING_TIMEOUT", str(base.ws_ping_timeout))),
            "ws_fast_path": _env("WS_FAST_PATH", "1") not in ("0", "false", "no", "off"),
            "log_level": _env("LOG_LEVEL", base.log_level),
            "ws_max_frame_bytes": int(_env("WS_MAX_FRAME_BYTES", str(base.ws_max_frame_bytes))),
            "security": SecuritySettings.from_env(),
            "limits": Limits(
                max_frame_bytes=int(_env("MAX_FRAME_BYTES", str(base.limits.max_frame_bytes))),
                max_message_bytes=int(
                    _env("MAX_MESSAGE_BYTES", str(base.limits.max_message_bytes))
                ),
            ),
            "rooms": RoomSettings(
                retention=int(_env("LOG_RETENTION", str(base.rooms.retention))),
                snapshot_every=int(_env("SNAPSHOT_EVERY", str(base.rooms.snapshot_every))),
            ),
        }
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)  # type: ignore[arg-type]
