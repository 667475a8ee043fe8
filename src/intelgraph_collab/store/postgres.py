"""The shared store of a cluster: PostgreSQL, through an asyncpg pool.

Any node may append to any graph. Sequencing is per graph, inside one
transaction: lock the graph's row (`SELECT ... FOR UPDATE`), read the
records other nodes appended after the caller's head, let the caller fold
them and resolve its writes against the result (`build`), insert the new
records and their (client_id, op_id) rows, move the head, commit. So `seq`
stays contiguous with no gaps and no duplicates however many nodes write,
and every node resolves against the authoritative log.

Write ids are unique per graph: a write committed concurrently by another
node (a client that resent it there) fails this transaction, which then
appends nothing and raises StoreUnavailable; the room resets, its clients
reconnect and resend, and dedupe answers them. Any lost connection or
refused statement also raises StoreUnavailable; the pool reconnects by
itself on the next call. A commit whose outcome is unknown (the link broke
during COMMIT) is safe the same way: nothing was acked, and the resend is
deduplicated if it did commit.

The schema is created and migrated by the server itself, under an advisory
lock, so nodes starting together do it once. Tables are prefixed `collab_`
so the database can be shared with other applications.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from ..sync.records import OpRecord, record_decoder, record_encoder
from .base import BuildRecords, OpKey, Store, StoredGraph, StoreUnavailable

_MIGRATIONS: list[str] = [
    # 1: the log, snapshots and write ids.
    """
    CREATE TABLE collab_graphs (
        graph_id     TEXT PRIMARY KEY,
        head         BIGINT NOT NULL DEFAULT 0,
        trimmed_upto BIGINT NOT NULL DEFAULT 0,
        snapshot_seq BIGINT NOT NULL DEFAULT 0,
        snapshot     BYTEA
    );
    CREATE TABLE collab_ops (
        graph_id TEXT NOT NULL,
        seq      BIGINT NOT NULL,
        data     BYTEA NOT NULL,
        PRIMARY KEY (graph_id, seq)
    );
    CREATE TABLE collab_op_ids (
        graph_id  TEXT NOT NULL,
        client_id TEXT NOT NULL,
        op_id     TEXT NOT NULL,
        seq       BIGINT NOT NULL,
        PRIMARY KEY (graph_id, client_id, op_id)
    );
    """,
]

_SCHEMA_LOCK = 0x1C011AB5  # pg_advisory_xact_lock key: one migrator at a time

_FAILURES = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)

_LOCK_GRAPH = "SELECT head, trimmed_upto FROM collab_graphs WHERE graph_id = $1 FOR UPDATE"
_CREATE_GRAPH = "INSERT INTO collab_graphs (graph_id) VALUES ($1) ON CONFLICT DO NOTHING"
_READ = (
    "SELECT data FROM collab_ops WHERE graph_id = $1 AND seq > $2 AND seq <= $3 "
    "ORDER BY seq LIMIT $4"
)
_WRITE = """
WITH ops AS (
    INSERT INTO collab_ops (graph_id, seq, data)
    SELECT $1, seq, data FROM unnest($2::bigint[], $3::bytea[]) AS t (seq, data)
), op_ids AS (
    INSERT INTO collab_op_ids (graph_id, client_id, op_id, seq)
    SELECT $1, client_id, op_id, seq
    FROM unnest($4::text[], $5::text[], $6::bigint[]) AS t (client_id, op_id, seq)
)
UPDATE collab_graphs SET head = $7 WHERE graph_id = $1
"""
_FIND = """
SELECT o.client_id, o.op_id, o.seq FROM collab_op_ids o
JOIN unnest($2::text[], $3::text[]) AS k (client_id, op_id) USING (client_id, op_id)
WHERE o.graph_id = $1
"""
_WRITERS = """
SELECT DISTINCT client_id FROM collab_op_ids WHERE graph_id = $1 AND client_id = ANY($2::text[])
"""
_SNAPSHOT = """
INSERT INTO collab_graphs AS g (graph_id, head, snapshot_seq, snapshot, trimmed_upto)
VALUES ($1, $2, $2, $3, $4)
ON CONFLICT (graph_id) DO UPDATE SET
    snapshot = CASE WHEN excluded.snapshot_seq > g.snapshot_seq
                    THEN excluded.snapshot ELSE g.snapshot END,
    snapshot_seq = GREATEST(g.snapshot_seq, excluded.snapshot_seq),
    trimmed_upto = GREATEST(g.trimmed_upto, excluded.trimmed_upto)
RETURNING trimmed_upto
"""
_NO_LIMIT = 2**62


class PostgresStore(Store):
    def __init__(
        self,
        url: str,
        *,
        max_connections: int = 10,
        connect_timeout: float = 5.0,
        command_timeout: float = 10.0,
    ) -> None:
        self.url = url
        self.max_connections = max_connections
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout
        self._pool: Any = None

    # -- lifecycle --------------------------------------------------------

    async def open(self) -> None:
        async with self._guard():
            self._pool = await asyncpg.create_pool(
                self.url,
                min_size=1,
                max_size=self.max_connections,
                timeout=self.connect_timeout,
                command_timeout=self.command_timeout,
            )
            async with self._pool.acquire() as conn:
                await migrate(conn)

    async def close(self) -> None:
        if self._pool is not None:
            with contextlib.suppress(*_FAILURES):
                await self._pool.close()
            self._pool = None

    @contextlib.asynccontextmanager
    async def _guard(self) -> AsyncIterator[None]:
        """Turn every database failure into StoreUnavailable."""
        try:
            yield
        except asyncpg.UniqueViolationError as exc:
            raise StoreUnavailable(
                f"postgresql: a write in this commit was committed concurrently elsewhere: {exc}"
            ) from exc
        except _FAILURES as exc:
            raise StoreUnavailable(f"postgresql: {exc!r}") from exc

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[Any]:
        if self._pool is None:
            raise StoreUnavailable("postgresql store not open")
        async with self._guard(), self._pool.acquire() as conn:
            yield conn

    # -- the interface ----------------------------------------------------

    async def load(self, graph_id: str) -> StoredGraph:
        async with (
            self._connection() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            row = await conn.fetchrow(
                "SELECT snapshot, snapshot_seq, trimmed_upto FROM collab_graphs "
                "WHERE graph_id = $1",
                graph_id,
            )
            if row is None:
                return StoredGraph()
            rows = await conn.fetch(_READ, graph_id, row["trimmed_upto"], _NO_LIMIT, None)
        return StoredGraph(
            snapshot=row["snapshot"],
            snapshot_seq=row["snapshot_seq"],
            trimmed_upto=row["trimmed_upto"],
            records=[record_decoder.decode(r["data"]) for r in rows],
        )

    async def append(self, graph_id: str, head: int, build: BuildRecords) -> list[OpRecord]:
        async with self._connection() as conn, conn.transaction():
            row = await conn.fetchrow(_LOCK_GRAPH, graph_id)
            if row is None:
                await conn.execute(_CREATE_GRAPH, graph_id)
                row = await conn.fetchrow(_LOCK_GRAPH, graph_id)
            log_head, trimmed_upto = int(row["head"]), int(row["trimmed_upto"])
            if head > log_head:
                raise StoreUnavailable(f"caller at seq {head} is ahead of the log ({log_head})")
            missed: list[OpRecord] = []
            if log_head > head:
                if head < trimmed_upto:
                    raise StoreUnavailable(
                        f"records after seq {head} were compacted away; reload the graph"
                    )
                # A statement of its own, after the lock: its snapshot sees
                # every record committed before the lock was granted.
                rows = await conn.fetch(_READ, graph_id, head, log_head, None)
                missed = [record_decoder.decode(r["data"]) for r in rows]
                if len(missed) != log_head - head:
                    raise StoreUnavailable(f"log of {graph_id} incomplete after seq {head}")
            records = build(missed)
            if not records:
                return records
            expected = log_head + 1
            for record in records:
                if record.seq != expected:
                    raise ValueError(f"record seq {record.seq} where {expected} was next")
                expected += 1
            keyed = [(record.op_key, record.seq) for record in records if record.op_key]
            await conn.execute(
                _WRITE,
                graph_id,
                [record.seq for record in records],
                [record_encoder.encode(record) for record in records],
                [_text(key[0]) for key, _ in keyed],
                [_text(key[1]) for key, _ in keyed],
                [seq for _, seq in keyed],
                records[-1].seq,
            )
        return records

    async def records_since(
        self, graph_id: str, since: int, upto: int | None = None, limit: int | None = None
    ) -> list[OpRecord]:
        async with self._connection() as conn:
            upper = upto if upto is not None else _NO_LIMIT
            rows = await conn.fetch(_READ, graph_id, since, upper, limit)
        return [record_decoder.decode(r["data"]) for r in rows]

    async def trimmed_upto(self, graph_id: str) -> int:
        async with self._connection() as conn:
            value = await conn.fetchval(
                "SELECT trimmed_upto FROM collab_graphs WHERE graph_id = $1", graph_id
            )
        return int(value or 0)

    async def find_ops(self, graph_id: str, keys: Sequence[OpKey]) -> dict[OpKey, int]:
        if not keys:
            return {}
        stored = {(_text(key[0]), _text(key[1])): key for key in keys}
        async with self._connection() as conn:
            rows = await conn.fetch(
                _FIND, graph_id, [key[0] for key in stored], [key[1] for key in stored]
            )
        return {stored[(r["client_id"], r["op_id"])]: int(r["seq"]) for r in rows}

    async def writers_with_ops(self, graph_id: str, writers: Sequence[str]) -> set[str]:
        if not writers:
            return set()
        stored = {_text(writer): writer for writer in writers}
        async with self._connection() as conn:
            rows = await conn.fetch(_WRITERS, graph_id, list(stored))
        return {stored[row["client_id"]] for row in rows}

    async def save_snapshot(self, graph_id: str, seq: int, blob: bytes, trim_upto: int) -> None:
        # Several nodes snapshot the same graph: the newest snapshot wins and
        # the trim point only moves forward.
        async with self._connection() as conn, conn.transaction():
            trimmed = await conn.fetchval(_SNAPSHOT, graph_id, seq, blob, trim_upto)
            await conn.execute(
                "DELETE FROM collab_ops WHERE graph_id = $1 AND seq <= $2", graph_id, trimmed
            )

    async def ping(self) -> None:
        async with self._connection() as conn:
            await conn.fetchval("SELECT 1")


def _text(value: str) -> str:
    """`value` as PostgreSQL TEXT, which cannot hold NUL (an op key scopes its
    client_id by the user with one): an escape that keeps distinct values distinct."""
    if "\x00" not in value and "\\" not in value:
        return value
    return value.replace("\\", "\\\\").replace("\x00", "\\0")


async def migrate(conn: Any) -> int:
    """Bring the schema to the latest version, idempotently; return that version."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _SCHEMA_LOCK)
        await conn.execute("CREATE TABLE IF NOT EXISTS collab_schema (version INTEGER NOT NULL)")
        version = await conn.fetchval("SELECT max(version) FROM collab_schema")
        current = int(version or 0)
        for number, statement in enumerate(_MIGRATIONS[current:], start=current + 1):
            await conn.execute(statement)
            await conn.execute("INSERT INTO collab_schema (version) VALUES ($1)", number)
        return len(_MIGRATIONS)
