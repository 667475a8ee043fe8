"""The embedded default store: one SQLite file in WAL mode.

Commits: with `synchronous=NORMAL` (the default) a commit is a write() to
the WAL, tens of microseconds, so it runs inline on the event loop: cheaper
than handing it to a thread, whose GIL hand-offs cost more than the commit.
With FULL (an fsync per commit), and for heavy writes (snapshots), commits go
to the writer thread; while thread work is queued, inline work goes there
too, so the write connection is only ever used by one thread at a time.
Checkpoints run on the reader thread, PASSIVE, so they never block a commit.
Reads (room loads, long catch-ups) use a second connection on their own
thread, which WAL lets run beside a commit. The room batches the writes that
arrive while a commit is in flight into the next one (group commit).

An exclusive lock on `<db>.lock` keeps a second server process off the same
file: sequencing is in-process, so two processes would fork the log.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import IO, TypeVar

from ..sync.records import OpRecord, record_decoder, record_encoder
from .base import BuildRecords, OpKey, Store, StoredGraph, StoreUnavailable

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS graphs (
    graph_id     TEXT PRIMARY KEY,
    head         INTEGER NOT NULL DEFAULT 0,  -- unused (the head is the last op)
    trimmed_upto INTEGER NOT NULL DEFAULT 0,
    snapshot_seq INTEGER NOT NULL DEFAULT 0,
    snapshot     BLOB
);
CREATE TABLE IF NOT EXISTS ops (
    graph_id TEXT NOT NULL,
    seq      INTEGER NOT NULL,
    data     BLOB NOT NULL,
    PRIMARY KEY (graph_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS op_ids (
    graph_id  TEXT NOT NULL,
    client_id TEXT NOT NULL,
    op_id     TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    PRIMARY KEY (graph_id, client_id, op_id)
) WITHOUT ROWID;
"""


class SQLiteStore(Store):
    def __init__(self, path: str, synchronous: str = "NORMAL") -> None:
        """`synchronous`: NORMAL survives a crash of the process (kill -9);
        FULL also survives power loss, at the price of an fsync per commit."""
        if synchronous.upper() not in {"NORMAL", "FULL"}:
            raise ValueError("synchronous must be NORMAL or FULL")
        self.path = path
        self.synchronous = synchronous.upper()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-reader")
        self._write_db: sqlite3.Connection | None = None
        self._read_db: sqlite3.Connection | None = None
        self._lock_file: IO[bytes] | None = None
        self._inline = self.synchronous == "NORMAL"
        self._thread_jobs = 0
        self._commits_since_checkpoint = 0
        self._checkpointing = False

    # -- lifecycle --------------------------------------------------------

    async def open(self) -> None:
        if self.path != ":memory:":
            await asyncio.to_thread(self._take_file_lock)
        self._write_db = await self._on(self._writer, self._connect)
        self._write_db.executescript(_SCHEMA)
        if self._inline:  # checkpoints are ours to run, off the loop (see _committed)
            self._write_db.execute("PRAGMA wal_autocheckpoint=0")
        self._read_db = await self._on(self._reader, self._connect)

    def _take_file_lock(self) -> None:
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        self._lock_file = open(self.path + ".lock", "wb")  # noqa: SIM115 - held until close
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            self._lock_file.close()
            self._lock_file = None
            raise StoreUnavailable(f"{self.path} is in use by another server process") from exc

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={self.synchronous}")
        db.execute("PRAGMA busy_timeout=5000")
        return db

    async def close(self) -> None:
        for db, pool in ((self._write_db, self._writer), (self._read_db, self._reader)):
            if db is not None:
                await self._on(pool, db.close)
        self._writer.shutdown(wait=True)
        self._reader.shutdown(wait=True)
        if self._lock_file is not None:
            self._lock_file.close()

    async def _on(self, pool: ThreadPoolExecutor, work: Callable[[], T]) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, work)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"sqlite: {exc}") from exc

    async def _write(self, work: Callable[[], T], *, heavy: bool = False) -> T:
        """Run `work` on the write connection: inline when that is cheap and
        nothing is queued on the writer thread, else on the writer thread."""
        if self._inline and not heavy and self._thread_jobs == 0:
            try:
                return work()
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"sqlite: {exc}") from exc
        self._thread_jobs += 1
        try:
            return await self._on(self._writer, work)
        finally:
            self._thread_jobs -= 1

    def _committed(self) -> None:
        """Every ~1,000 inline commits, fold the WAL back into the database
        on the reader thread (PASSIVE: it never waits for, nor blocks, a writer)."""
        if not self._inline:
            return
        self._commits_since_checkpoint += 1
        if self._commits_since_checkpoint < 1000 or self._checkpointing:
            return
        self._commits_since_checkpoint = 0
        self._checkpointing = True

        def checkpoint() -> None:
            self._r.execute("PRAGMA wal_checkpoint(PASSIVE)")

        future = asyncio.get_running_loop().run_in_executor(self._reader, checkpoint)
        future.add_done_callback(self._checkpoint_done)

    def _checkpoint_done(self, future: asyncio.Future[None]) -> None:
        self._checkpointing = False
        if not future.cancelled() and future.exception() is not None:
            self._commits_since_checkpoint = 1000  # try again at the next commit

    @property
    def _w(self) -> sqlite3.Connection:
        assert self._write_db is not None, "store not open"
        return self._write_db

    @property
    def _r(self) -> sqlite3.Connection:
        assert self._read_db is not None, "store not open"
        return self._read_db

    # -- the interface ----------------------------------------------------

    async def load(self, graph_id: str) -> StoredGraph:
        def work() -> StoredGraph:
            row = self._r.execute(
                "SELECT snapshot, snapshot_seq, trimmed_upto FROM graphs WHERE graph_id = ?",
                (graph_id,),
            ).fetchone()
            if row is None:
                return StoredGraph()
            return StoredGraph(
                snapshot=row[0],
                snapshot_seq=row[1],
                trimmed_upto=row[2],
                records=self._read_records(graph_id, row[2], None, None),
            )

        return await self._on(self._reader, work)

    async def append(self, graph_id: str, head: int, build: BuildRecords) -> list[OpRecord]:
        # One process owns the file (see the lock), so nobody else appends:
        # there is never anything missed to fold first.
        records = build([])
        if not records:
            return records
        rows = [(graph_id, record.seq, record_encoder.encode(record)) for record in records]
        keys = [
            (graph_id, *record.op_key, record.seq)
            for record in records
            if record.op_key is not None
        ]
        def work() -> None:
            db = self._w
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany("INSERT INTO ops (graph_id, seq, data) VALUES (?, ?, ?)", rows)
                db.executemany("INSERT OR IGNORE INTO op_ids VALUES (?, ?, ?, ?)", keys)
                # The graph's row must exist for `load`, but it is not
                # rewritten per commit (its page would be one more in every
                # commit's WAL write): the head is the last op. Once the row
                # exists this changes nothing, so it writes nothing.
                db.execute("INSERT OR IGNORE INTO graphs (graph_id) VALUES (?)", (graph_id,))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

        await self._write(work)
        self._committed()
        return records

    async def records_since(
        self, graph_id: str, since: int, upto: int | None = None, limit: int | None = None
    ) -> list[OpRecord]:
        return await self._on(
            self._reader, lambda: self._read_records(graph_id, since, upto, limit)
        )

    def _read_records(
        self, graph_id: str, since: int, upto: int | None, limit: int | None
    ) -> list[OpRecord]:
        rows = self._r.execute(
            "SELECT data FROM ops WHERE graph_id = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
            (graph_id, since, upto if upto is not None else 2**62, limit if limit else -1),
        ).fetchall()
        return [record_decoder.decode(row[0]) for row in rows]

    async def trimmed_upto(self, graph_id: str) -> int:
        def work() -> int:
            row = self._r.execute(
                "SELECT trimmed_upto FROM graphs WHERE graph_id = ?", (graph_id,)
            ).fetchone()
            return int(row[0]) if row else 0

        return await self._on(self._reader, work)

    async def find_ops(self, graph_id: str, keys: Sequence[OpKey]) -> dict[OpKey, int]:
        if not keys:
            return {}

        def work() -> dict[OpKey, int]:
            found: dict[OpKey, int] = {}
            for client_id, op_id in keys:
                row = self._w.execute(
                    "SELECT seq FROM op_ids WHERE graph_id = ? AND client_id = ? AND op_id = ?",
                    (graph_id, client_id, op_id),
                ).fetchone()
                if row is not None:
                    found[(client_id, op_id)] = int(row[0])
            return found

        # On the write connection: it must see every commit made before it.
        return await self._write(work)

    async def writers_with_ops(self, graph_id: str, writers: Sequence[str]) -> set[str]:
        def work() -> set[str]:
            db = self._w
            return {
                writer
                for writer in writers
                if db.execute(
                    "SELECT 1 FROM op_ids WHERE graph_id = ? AND client_id = ? LIMIT 1",
                    (graph_id, writer),
                ).fetchone()
            }

        # On the write connection, as find_ops: it sees every commit made before.
        return await self._write(work)

    async def save_snapshot(self, graph_id: str, seq: int, blob: bytes, trim_upto: int) -> None:
        def work() -> None:
            db = self._w
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute(
                    "INSERT INTO graphs (graph_id, head, snapshot_seq, snapshot, trimmed_upto) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (graph_id) DO UPDATE SET "
                    "snapshot_seq = excluded.snapshot_seq, snapshot = excluded.snapshot, "
                    "trimmed_upto = MAX(trimmed_upto, excluded.trimmed_upto)",
                    (graph_id, seq, seq, blob, trim_upto),
                )
                db.execute("DELETE FROM ops WHERE graph_id = ? AND seq <= ?", (graph_id, trim_upto))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

        await self._write(work, heavy=True)

    async def ping(self) -> None:
        await self._on(self._reader, lambda: self._r.execute("SELECT 1").fetchone())
