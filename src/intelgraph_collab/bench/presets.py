"""Named scenarios (`--preset`). Every figure here can be overridden by a flag."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    kind: str  # rate | ramp | slow-reader | reconnect | big-graph | idle | room-churn
    description: str
    rooms: int = 1
    clients: int = 10  # per room
    rate: float = 20.0  # writes/s per client
    duration: float = 5.0
    pad: int = 0
    count: int = 0  # missed writes / annotations / connections / graphs
    measure: int = 0  # clients per room that decode and measure; 0: all


PRESETS: dict[str, Preset] = {
    "small-room": Preset("rate", "1 graph x 10 clients x 20 writes/s", 1, 10, 20.0),
    "big-room": Preset(
        "rate",
        "1 graph x 50 clients x 4 writes/s (10 of them decode and measure)",
        1,
        50,
        4.0,
        measure=10,
    ),
    "many-rooms": Preset("rate", "25 graphs x 4 clients x 10 writes/s", 25, 4, 10.0),
    "ramp": Preset(
        "ramp",
        "1 graph x 10 clients (3 of them decode and measure), total rate raised"
        " until p99 > 100 ms or loss",
        1,
        10,
        duration=3.0,
        measure=3,
    ),
    "slow-reader": Preset(
        "slow-reader",
        "1 graph x 20 clients x 10 writes/s (4 KiB notes), one client stops reading;"
        " the others' p99 with vs without it",
        1,
        20,
        10.0,
        duration=8.0,
        pad=4096,
    ),
    "reconnect": Preset(
        "reconnect", "a client misses 10,000 writes and comes back: time to live", count=10_000
    ),
    "big-graph": Preset(
        "big-graph",
        "a graph of 100,000 annotations: connect to initial state applied",
        count=100_000,
    ),
    "idle": Preset("idle", "5,000 idle connections: server memory per connection", count=5000),
    "room-churn": Preset(
        "room-churn",
        "1,000 graphs opened (one write each) and closed: server memory after",
        count=1000,
    ),
}
