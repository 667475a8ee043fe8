"""The remote-record inbox (fanout/inbox.py) on its own: what a room folds next."""

from __future__ import annotations

import pytest

from intelgraph_collab.fanout.inbox import FellBehind, RemoteInbox
from intelgraph_collab.store.base import StoreUnavailable
from intelgraph_collab.sync.records import OpRecord


def rec(seq: int) -> OpRecord:
    return OpRecord(seq=seq, type="annotation_delete", id="a", client_id="c", author=None, ts=0)


class Log:
    """The store's log 1..head, counting reads."""

    def __init__(self, head: int) -> None:
        self.head = head
        self.reads: list[int] = []
        self.down = False

    async def read(self, since: int) -> list[OpRecord]:
        self.reads.append(since)
        if self.down:
            raise StoreUnavailable("down")
        return [rec(seq) for seq in range(since + 1, self.head + 1)]


def seqs(records: list[OpRecord]) -> list[int]:
    return [record.seq for record in records]


async def test_contiguous_records_fold_without_reading_the_store() -> None:
    inbox, log = RemoteInbox(), Log(12)
    inbox.add([rec(12), rec(11)])
    inbox.add([rec(9), rec(10), rec(11)])  # old, repeated and out of order
    assert seqs(await inbox.drain(10, log.read)) == [11, 12]
    assert log.reads == [] and not inbox


async def test_a_gap_is_back_filled_from_the_store() -> None:
    inbox, log = RemoteInbox(), Log(9)
    inbox.add([rec(6), rec(9)])  # 7 and 8 were dropped on the way
    assert seqs(await inbox.drain(5, log.read)) == [6, 7, 8, 9]
    assert log.reads == [6]


async def test_a_resync_reads_everything_after_the_head() -> None:
    inbox, log = RemoteInbox(), Log(4)
    inbox.want_resync()
    assert inbox
    assert seqs(await inbox.drain(1, log.read)) == [2, 3, 4]
    assert not inbox


async def test_a_failed_back_fill_keeps_the_queue_for_the_next_drain() -> None:
    inbox, log = RemoteInbox(), Log(8)
    inbox.add([rec(8)])
    log.down = True
    with pytest.raises(StoreUnavailable):
        await inbox.drain(5, log.read)
    assert inbox
    log.down = False
    assert seqs(await inbox.drain(5, log.read)) == [6, 7, 8]


async def test_a_log_compacted_past_the_head_means_reload() -> None:
    inbox = RemoteInbox()
    inbox.add([rec(30)])

    async def trimmed(since: int) -> list[OpRecord]:
        return [rec(20), rec(21)]

    with pytest.raises(FellBehind):
        await inbox.drain(5, trimmed)
