"""The store interface: what a room needs from durable storage, and nothing more.

A graph is an ordered log of records (seq 1, 2, ...), a snapshot of its
state at some seq, and the (client_id, op_id) -> seq index that makes
writes idempotent. Every implementation passes
tests/conformance/test_store_conformance.py.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..sync.records import OpRecord

OpKey = tuple[str, str]
"""(scoped client_id, op_id): a write's identity across resends (see records.op_key)."""

BuildRecords = Callable[[list[OpRecord]], list[OpRecord]]
"""Called by `append` with the records other writers appended after the
caller's head (empty for a single-node store); folds them, then returns the
new records, numbered on from the last of them."""


class StoreUnavailable(Exception):
    """The store could not be reached or refused the operation; nothing was appended."""


@dataclass
class StoredGraph:
    snapshot: bytes | None = None
    """Encoded state at `snapshot_seq` (None: start from the empty state)."""
    snapshot_seq: int = 0
    records: list[OpRecord] = field(default_factory=list)
    """Every retained record (seq > trimmed_upto), in seq order."""
    trimmed_upto: int = 0
    """Records with seq <= trimmed_upto are gone from the log (compacted)."""

    @property
    def head(self) -> int:
        return self.records[-1].seq if self.records else max(self.snapshot_seq, self.trimmed_upto)


class Store(ABC):
    """Durable, ordered storage of graph logs. All methods are safe to call concurrently."""

    # open/close/ping are optional hooks: a store that needs none of them
    # (the memory store) inherits these no-ops.
    async def open(self) -> None:  # noqa: B027
        """Create the schema if needed and connect."""

    async def close(self) -> None:  # noqa: B027
        """Flush and release every resource."""

    @abstractmethod
    async def load(self, graph_id: str) -> StoredGraph:
        """The graph's snapshot and retained log (an empty StoredGraph if new)."""

    @abstractmethod
    async def append(self, graph_id: str, head: int, build: BuildRecords) -> list[OpRecord]:
        """Durably append the records `build` returns, atomically, and return them.

        `head` is the caller's last seq. When this returns, the records are
        committed (they survive a crash). Raises StoreUnavailable when not.
        """

    @abstractmethod
    async def records_since(
        self, graph_id: str, since: int, upto: int | None = None, limit: int | None = None
    ) -> list[OpRecord]:
        """Retained records with since < seq <= upto, in order (at most `limit`)."""

    @abstractmethod
    async def trimmed_upto(self, graph_id: str) -> int:
        """The seq up to which the log was compacted away."""

    @abstractmethod
    async def find_ops(self, graph_id: str, keys: Sequence[OpKey]) -> dict[OpKey, int]:
        """The seqs of the writes among `keys` that were already accepted."""

    async def writers_with_ops(self, graph_id: str, writers: Sequence[str]) -> set[str]:
        """Which of `writers` (an OpKey's first part) have any accepted write in
        the graph. A room asks once per writer: for one with none, every later
        op id it sends is either in the room's cache or new, so `find_ops`
        need not be asked (room.py). This default answers "all of them"
        (always look up): correct for any store, only slower."""
        return set(writers)

    @abstractmethod
    async def save_snapshot(self, graph_id: str, seq: int, blob: bytes, trim_upto: int) -> None:
        """Store the state at `seq` and drop log records with seq <= trim_upto."""

    async def ping(self) -> None:  # noqa: B027
        """Raise StoreUnavailable unless the store answers (readiness)."""
