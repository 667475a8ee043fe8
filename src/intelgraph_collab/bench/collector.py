"""What a run records: delivery and ack latencies, counts, errors.

One `Collector` per generator process; every session of the process writes
into it from its message callback, synchronously (no locks: one event loop).
"""

from __future__ import annotations

import time
from array import array
from collections import Counter

_FAR = 1 << 62


class Collector:
    """Counts and latency samples for writes sent inside the measuring window.

    A write is measured when its embedded send time (microseconds of
    CLOCK_MONOTONIC) falls in [window_start_us, window_end_us): writes of the
    warm-up, and late ones after the window, are sent but not counted, on
    either side.
    """

    def __init__(self) -> None:
        self.window_start_us = _FAR
        self.window_end_us = _FAR
        self.delivery_ns = array("q")
        self.ack_ns = array("q")
        self.writes_sent = 0  # in the window
        self.deliveries_expected = 0
        self.deliveries_received = 0
        self.duplicates = 0
        self.writes_acked = 0
        self.acks_expected = 0
        self.errors: Counter[str] = Counter()
        self.closes: Counter[int] = Counter()

    def open_window(self, start_us: int, end_us: int) -> None:
        self.window_start_us = start_us
        self.window_end_us = end_us

    def in_window(self, t_us: int) -> bool:
        return self.window_start_us <= t_us < self.window_end_us

    def sent(self, t_us: int, receivers: int, ack: bool = False) -> None:
        """A write was sent at t_us; `receivers` measuring clients should get it
        (and, with `ack`, its writer an ack it will read)."""
        if self.window_start_us <= t_us < self.window_end_us:
            self.writes_sent += 1
            self.deliveries_expected += receivers
            if ack:
                self.acks_expected += 1

    def acked(self, t_us: int, now_ns: int) -> None:
        if self.window_start_us <= t_us < self.window_end_us:
            self.writes_acked += 1
            self.ack_ns.append(now_ns - t_us * 1000)

    def error(self, code: str) -> None:
        self.errors[code] += 1


class DeliveryTracker:
    """Per receiver: the write indexes seen from each writer.

    Order is not assumed: a Yjs server may merge several updates into one,
    whose map event lists its keys in any order. A write seen twice is a
    duplicate; one never seen is a loss, counted at the end as
    expected - received.
    """

    __slots__ = ("collector", "seen")

    def __init__(self, collector: Collector) -> None:
        self.collector = collector
        self.seen: dict[int, set[int]] = {}

    def deliver(self, writer: int, index: int, t_us: int, now_ns: int) -> None:
        col = self.collector
        if not (col.window_start_us <= t_us < col.window_end_us):
            return
        seen = self.seen.get(writer)
        if seen is None:
            seen = self.seen[writer] = set()
        if index in seen:
            col.duplicates += 1
            return
        seen.add(index)
        col.deliveries_received += 1
        col.delivery_ns.append(now_ns - t_us * 1000)


def now_us() -> int:
    return time.monotonic_ns() // 1000
