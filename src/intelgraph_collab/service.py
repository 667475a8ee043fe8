"""The running service: configuration, store, rooms, metrics and open sessions.

Built once by `app.py` and shared by every transport through `app.state`.
"""

from __future__ import annotations

import asyncio
import logging

from .auth import Authenticator
from .config import Config
from .fanout.base import FanOut
from .fanout.local import LocalFanOut
from .logs import log_event
from .metrics import Metrics
from .origins import OriginPolicy
from .ratelimit import ConnectionLimiter
from .revocations import Revocations, make_revocations
from .rooms import Rooms
from .security_settings import revocations_path
from .session import CLOSE_GOING_AWAY, CLOSE_UNAUTHENTICATED, Session
from .store.base import Store

log = logging.getLogger(__name__)


def make_store(config: Config) -> Store:
    """The store named by the configuration (`--store` URL, else the SQLite `--db`)."""
    url = config.store
    if url is None:
        from .store.sqlite import SQLiteStore

        return SQLiteStore(config.db, synchronous=config.sqlite_synchronous)
    if url.startswith("sqlite://"):
        from .store.sqlite import SQLiteStore

        # sqlite:///abs/path.db or sqlite://relative/path.db
        return SQLiteStore(url.removeprefix("sqlite://"), synchronous=config.sqlite_synchronous)
    if url.startswith("memory://"):
        from .store.memory import MemoryStore

        return MemoryStore()
    if url.startswith(("postgresql://", "postgres://")):
        from .store.postgres import PostgresStore

        return PostgresStore(url)
    raise ValueError(f"unknown store URL {url!r}: use sqlite:///path, memory:// or postgresql://")


def make_fanout(config: Config) -> FanOut:
    """The fan-out named by `--fanout` (`redis://...`), else this node alone (in-process)."""
    url = config.fanout
    if url is None or url.startswith("local://"):
        return LocalFanOut()
    if url.startswith(("redis://", "rediss://", "unix://")):
        from .fanout.redis import RedisFanOut

        return RedisFanOut(url, presence_ttl=config.presence_ttl)
    raise ValueError(f"unknown fan-out URL {url!r}: use redis://host:port/db")


class Service:
    def __init__(
        self, config: Config, store: Store | None = None, fanout: FanOut | None = None
    ) -> None:
        """`store`, `fanout`: given instead of built from `config` (several
        in-process nodes in tests share one store and one LocalHub)."""
        self.config = config
        self.metrics = Metrics()
        self.store = store if store is not None else make_store(config)
        self.fanout = fanout if fanout is not None else make_fanout(config)
        self.rooms = Rooms(
            self.store,
            config.limits,
            config.rooms,
            self.metrics,
            idle_seconds=config.room_idle_seconds,
            fanout=self.fanout,
        )
        self.sessions: set[Session] = set()
        self.draining = False
        self.metrics.watch_send_queues(lambda: [s.queue_depth for s in self.sessions])
        security = config.security
        revocations = (
            make_revocations(revocations_path(security, config.store, config.db), config.store)
            if security.auth_enabled
            else Revocations()
        )
        revocations.on_revoked = self._close_sessions_of  # revoked on another node
        self.auth = Authenticator(security.secret, revocations)
        self.origins = OriginPolicy(security.allowed_origins, config.host, config.port)
        self.connection_limits = ConnectionLimiter(security.connections)

    async def start(self) -> None:
        await self.store.open()
        await self.fanout.open()
        await self.auth.revocations.open()

    async def stop(self) -> None:
        """Graceful shutdown: commit what is queued, send what is queued, close 1001.
        Idempotent (the signal handler and the lifespan both call it)."""
        if self.draining:
            return
        self.draining = True
        await self.rooms.close()
        sessions = list(self.sessions)
        await asyncio.gather(*(session.flush(within=2.0) for session in sessions))
        for session in sessions:
            session.close(CLOSE_GOING_AWAY, "server shutting down")
        await asyncio.sleep(0)
        await self.fanout.close()
        await self.auth.revocations.close()
        await self.store.close()

    def connected(self, session: Session) -> None:
        self.sessions.add(session)
        self.metrics.connections.set(len(self.sessions))
        session.on_slow_reader = self._slow_reader

    def _slow_reader(self, session: Session) -> None:
        self.metrics.slow_reader_closes.inc()
        log_event(log, "slow_reader_close", logging.WARNING, client=session.client_id, code=1013)

    def disconnected(self, session: Session) -> None:
        self.sessions.discard(session)
        self.metrics.connections.set(len(self.sessions))

    async def revoke_user(self, user: str) -> tuple[float, int]:
        """Refuse `user`'s tokens issued until now and close their live
        sessions with 4401. Returns (revoked_at, sessions closed)."""
        revoked_at = await self.auth.revocations.revoke(user)
        return revoked_at, self._close_sessions_of(user)

    def _close_sessions_of(self, user: str) -> int:
        closing = [s for s in self.sessions if s.identity.user == user and not s.closed]
        for session in closing:
            session.close(CLOSE_UNAUTHENTICATED, "revoked")
        log_event(log, "user_revoked", logging.WARNING, user=user, sessions=len(closing))
        return len(closing)
