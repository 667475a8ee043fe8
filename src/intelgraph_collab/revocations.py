"""Revoked users: a token of a revoked user issued at or before the
revocation is refused, on every node, across restarts.

- `Revocations`: in memory, kept in a small SQLite table when given a path
  (the default beside the SQLite store). One node.
- `PostgresRevocations`: kept in the cluster's PostgreSQL; every node polls
  for revocations made on other nodes (a few times a second) and calls
  `on_revoked`, so the service closes that user's sessions there too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from typing import TYPE_CHECKING, Any

from .logs import log_event

if TYPE_CHECKING:
    from .auth import Claims

log = logging.getLogger(__name__)

Clock = Callable[[], float]
OnRevoked = Callable[[str], object]


class Revocations:
    """When each revoked user was revoked (seconds since the epoch, ms precision)."""

    def __init__(self, path: str | None = None, clock: Clock = time.time) -> None:
        self.path = path
        self.clock = clock
        self.on_revoked: OnRevoked | None = None
        """Called with a user revoked elsewhere (another node), once known here."""
        self._revoked_at: dict[str, float] = {}

    async def open(self) -> None:
        if self.path is not None:
            self._revoked_at = await asyncio.to_thread(self._load, self.path)

    async def close(self) -> None:
        """Release what `open` took."""

    def revoked(self, claims: Claims) -> bool:
        revoked_at = self._revoked_at.get(claims.user)
        if revoked_at is None:
            return False
        return claims.issued_at is None or claims.issued_at <= revoked_at

    async def revoke(self, user: str) -> float:
        """Revoke every token of `user` issued until now; durable when this returns."""
        at = round(self.clock(), 3)
        await self._save(user, at)
        self._learn(user, at)
        return at

    def _learn(self, user: str, at: float) -> None:
        self._revoked_at[user] = max(at, self._revoked_at.get(user, at))

    async def _save(self, user: str, at: float) -> None:
        if self.path is not None:
            await asyncio.to_thread(self._save_sqlite, self.path, user, at)

    # -- SQLite -------------------------------------------------------------

    @staticmethod
    def _connect(path: str) -> sqlite3.Connection:
        db = sqlite3.connect(path)
        db.execute(
            "CREATE TABLE IF NOT EXISTS revoked_users"
            " (user TEXT PRIMARY KEY, revoked_at REAL NOT NULL)"
        )
        return db

    @classmethod
    def _load(cls, path: str) -> dict[str, float]:
        if not os.path.exists(path):  # created by the first revocation
            return {}
        with closing(cls._connect(path)) as db:
            return dict(db.execute("SELECT user, revoked_at FROM revoked_users").fetchall())

    @classmethod
    def _save_sqlite(cls, path: str, user: str, at: float) -> None:
        with closing(cls._connect(path)) as db, db:
            db.execute(
                "INSERT INTO revoked_users (user, revoked_at) VALUES (?, ?) "
                "ON CONFLICT (user) DO UPDATE SET revoked_at = excluded.revoked_at",
                (user, at),
            )


_PG_SCHEMA = """
CREATE TABLE IF NOT EXISTS collab_revoked_users (
    id         BIGSERIAL PRIMARY KEY,
    user_name  TEXT NOT NULL,
    revoked_at DOUBLE PRECISION NOT NULL
)
"""


class PostgresRevocations(Revocations):
    """Revocations shared by every node of a cluster through PostgreSQL.

    Rows are only appended; each node remembers the last row id it has seen
    and polls for newer ones every `poll_seconds`. A node that cannot reach
    the database keeps what it knows and tries again at the next poll."""

    def __init__(self, url: str, clock: Clock = time.time, poll_seconds: float = 0.25) -> None:
        super().__init__(None, clock)
        self.url = url
        self.poll_seconds = poll_seconds
        self._conn: Any = None
        self._lock = asyncio.Lock()
        self._last_id = 0
        self._poller: asyncio.Task[None] | None = None

    async def open(self) -> None:
        import asyncpg  # type: ignore[import-untyped]

        self._conn = await asyncpg.connect(self.url, timeout=5.0, command_timeout=5.0)
        async with self._lock:
            await self._conn.execute(_PG_SCHEMA)
        await self._fetch_new(announce=False)
        self._poller = asyncio.get_running_loop().create_task(self._poll())

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None

    async def _save(self, user: str, at: float) -> None:
        async with self._lock:
            await self._conn.execute(
                "INSERT INTO collab_revoked_users (user_name, revoked_at) VALUES ($1, $2)",
                user,
                at,
            )

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            try:
                await self._fetch_new(announce=True)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is away: keep what we know, retry
                log_event(log, "revocations_poll_failed", logging.WARNING, error=type(exc).__name__)

    async def _fetch_new(self, *, announce: bool) -> None:
        async with self._lock:
            rows = await self._conn.fetch(
                "SELECT id, user_name, revoked_at FROM collab_revoked_users"
                " WHERE id > $1 ORDER BY id",
                self._last_id,
            )
        for row in rows:
            self._last_id = row["id"]
            user, at = row["user_name"], float(row["revoked_at"])
            known = self._revoked_at.get(user)
            self._learn(user, at)
            if announce and (known is None or known < at) and self.on_revoked is not None:
                self.on_revoked(user)


def make_revocations(path: str | None, store_url: str | None) -> Revocations:
    """PostgreSQL-backed when the store is PostgreSQL (every node shares them),
    else memory, kept in the SQLite file at `path` when there is one."""
    if (
        path is None
        and store_url is not None
        and store_url.startswith(("postgresql://", "postgres://"))
    ):
        return PostgresRevocations(store_url)
    return Revocations(path)
