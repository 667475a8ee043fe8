"""The in-process fan-out: the default, and a hub of several nodes in one process.

A server alone uses its own private hub, with itself as the only node: it is
`solo`, so rooms never publish and the single-node path costs nothing. Tests
put several nodes (several services) on one shared `LocalHub`. Delivery is
synchronous: subscribers only queue what they receive.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from ..sync.records import OpRecord
from .base import FanOut, PresenceEntry, Subscriber


class LocalHub:
    """What the nodes of one process share: who is there, who listens, who is present."""

    def __init__(self) -> None:
        self.nodes: list[LocalFanOut] = []
        self.presence: dict[str, dict[tuple[str, str], PresenceEntry]] = {}
        """graph_id -> (node_id, client_id) -> entry."""


class LocalFanOut(FanOut):
    def __init__(self, hub: LocalHub | None = None) -> None:
        self.node_id = uuid.uuid4().hex
        self.hub = hub if hub is not None else LocalHub()
        self.hub.nodes.append(self)
        self._subscribers: dict[str, list[Subscriber]] = {}

    @property
    def solo(self) -> bool:
        return len(self.hub.nodes) == 1

    async def close(self) -> None:
        for graph_id, entries in list(self.hub.presence.items()):
            for node_id, client_id in list(entries):
                if node_id == self.node_id:
                    self.clear_presence(graph_id, client_id)
        if self in self.hub.nodes:
            self.hub.nodes.remove(self)
        self._subscribers.clear()

    def _others(self, graph_id: str) -> list[Subscriber]:
        return [
            subscriber
            for node in self.hub.nodes
            if node is not self
            for subscriber in node._subscribers.get(graph_id, ())
        ]

    def publish(self, graph_id: str, records: Sequence[OpRecord]) -> None:
        for subscriber in self._others(graph_id):
            subscriber.on_records(list(records))

    async def subscribe(self, graph_id: str, subscriber: Subscriber) -> None:
        self._subscribers.setdefault(graph_id, []).append(subscriber)

    async def unsubscribe(self, graph_id: str, subscriber: Subscriber) -> None:
        subscribers = self._subscribers.get(graph_id, [])
        if subscriber in subscribers:
            subscribers.remove(subscriber)
        if not subscribers:
            self._subscribers.pop(graph_id, None)

    def set_presence(self, graph_id: str, entry: PresenceEntry) -> None:
        self.hub.presence.setdefault(graph_id, {})[(self.node_id, entry.client_id)] = entry
        for subscriber in self._others(graph_id):
            subscriber.on_presence(entry)

    def clear_presence(self, graph_id: str, client_id: str) -> None:
        entries = self.hub.presence.get(graph_id, {})
        if entries.pop((self.node_id, client_id), None) is None:
            return
        if not entries:
            self.hub.presence.pop(graph_id, None)
        for subscriber in self._others(graph_id):
            subscriber.on_presence_leave(client_id)

    async def presence(self, graph_id: str) -> list[PresenceEntry]:
        return [
            entry
            for (node_id, _), entry in self.hub.presence.get(graph_id, {}).items()
            if node_id != self.node_id
        ]
