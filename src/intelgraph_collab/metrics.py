"""Prometheus metrics of one server: connections, rooms, writes, commits, fan-out.

Each app gets its own registry (several apps live in one test process);
`/metrics` exposes it. Recording is a counter bump: cheap on the hot path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.connections = Gauge("collab_connections", "Open WebSocket sessions", registry=r)
        self.rooms = Gauge("collab_rooms_live", "Graphs loaded in memory", registry=r)
        self.writes = Counter(
            "collab_writes_total", "Writes by type and outcome", ["type", "outcome"], registry=r
        )
        self.refusals = Counter(
            "collab_refused_total",
            "Refused messages by type (`message` when refused before it had one) and error code",
            ["type", "code"],
            registry=r,
        )
        self.commit_batch = Histogram(
            "collab_commit_batch_size",
            "Records per group commit",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
            registry=r,
        )
        self.commit_seconds = Histogram(
            "collab_commit_seconds", "Store append latency", buckets=_LATENCY_BUCKETS, registry=r
        )
        self.fanout_seconds = Histogram(
            "collab_fanout_seconds",
            "From a write's receipt by its room to its broadcast and ack enqueued",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.joins = Counter(
            "collab_joins_total", "First messages sent, by kind", ["kind"], registry=r
        )
        self.slow_reader_closes = Counter(
            "collab_slow_reader_closes_total", "Sessions closed 1013 for a full queue", registry=r
        )
        self._accepted: dict[str, Counter] = {}
        # Sampled when /metrics is scraped: nothing on the hot path.
        self.send_queue_max = Gauge(
            "collab_send_queue_depth_max", "Deepest send queue of any open session", registry=r
        )
        self.send_queue_total = Gauge(
            "collab_send_queue_messages", "Messages queued for all open sessions", registry=r
        )

    def watch_send_queues(self, depths: Callable[[], Iterable[int]]) -> None:
        """Sample the send-queue depths `depths()` returns at every scrape."""
        self.send_queue_max.set_function(lambda: float(max(depths(), default=0)))
        self.send_queue_total.set_function(lambda: float(sum(depths())))

    def commit(self, records: int, seconds: float) -> None:
        self.commit_batch.observe(records)
        self.commit_seconds.observe(seconds)

    def fanout(self, seconds: float) -> None:
        self.fanout_seconds.observe(seconds)

    def write_accepted(self, kind: str) -> None:
        # On every write: the labelled child is looked up once per kind
        # (`labels()` rebuilds its key each call; a few % of CPU at load).
        child = self._accepted.get(kind)
        if child is None:
            child = self._accepted[kind] = self.writes.labels(kind, "accepted")
        child.inc()

    def write_duplicate(self) -> None:
        self.writes.labels("any", "duplicate").inc()

    def write_refused(self, kind: str, code: str) -> None:
        self.writes.labels(kind, "refused").inc()
        self.refusals.labels(kind, code).inc()

    def refused(self, code: str, kind: str = "message") -> None:
        """A message refused before it reached a room (bad shape, too large...)."""
        self.refusals.labels(kind, code).inc()

    def joined(self, kind: str) -> None:
        self.joins.labels(kind).inc()
