"""Records from other nodes, waiting for a room's sequencer.

The fan-out delivers what other nodes committed, best effort: a batch may
come twice, late, or not at all. The room's sequencer drains this inbox
between two commits and folds exactly the records that follow its head, in
`seq` order; a gap (or a resync request: the link was down) is filled from
the store first, so no session ever sees a gap or a reorder.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ..store.base import StoreUnavailable
from ..sync.records import OpRecord

ReadSince = Callable[[int], Awaitable[list[OpRecord]]]
"""The store's records after a seq, in order (`Store.records_since`)."""


class FellBehind(StoreUnavailable):
    """The records after the room's head were compacted away: reload the room."""


class RemoteInbox:
    def __init__(self) -> None:
        self._records: list[OpRecord] = []
        self._resync = False
        self.highest_heard = 0
        """The highest seq another node announced."""

    def __bool__(self) -> bool:
        return bool(self._records) or self._resync

    def add(self, records: list[OpRecord]) -> None:
        self._records.extend(records)
        if records:
            self.highest_heard = max(self.highest_heard, records[-1].seq)

    def want_resync(self) -> None:
        self._resync = True

    async def drain(self, head: int, read: ReadSince) -> list[OpRecord]:
        """The records to fold next: contiguous from `head + 1`, back-filled
        from `read` where the inbox has a gap or a resync was asked for.

        If `read` fails, what was queued stays queued (with the resync) and
        the error propagates: drain again later.
        """
        queued = sorted(self._records, key=lambda record: record.seq)
        resync = self._resync
        self._records, self._resync = [], False
        ready: list[OpRecord] = []
        expected = head + 1
        for record in queued:
            if record.seq < expected:
                continue  # already folded (our own commit's `missed`, or a repeat)
            if record.seq > expected:
                resync = True
                break
            ready.append(record)
            expected += 1
        if not resync:
            return ready
        try:
            fetched = await read(expected - 1)
        except Exception:
            self._records = [record for record in queued if record.seq >= expected] + self._records
            self._resync = True
            raise
        if fetched and fetched[0].seq != expected:
            raise FellBehind(f"the log after seq {expected - 1} was compacted away")
        ready.extend(fetched)
        return ready
