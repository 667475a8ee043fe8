"""The fan-out interface: how server nodes tell each other about a graph.

A node publishes every batch of records it commits and the presence of its
clients; every other node with a live room for that graph receives them.
Delivery is best effort (pub/sub may drop, its broker may restart): the
store stays the truth. A subscriber folds records in `seq` order, back-fills
from the store when it sees a gap, and back-fills again when told to
`on_resync` (the link was down, messages may be lost). Every implementation
passes tests/conformance/test_fanout_conformance.py.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Protocol

import msgspec

from ..sync.records import OpRecord


class PresenceEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One client's presence as another node relays it to its sessions."""

    client_id: str
    user: str | None
    state: dict[str, Any]


class Subscriber(Protocol):
    """What a fan-out calls, on the event loop, for a subscribed graph (a room).

    Each call must return at once (queue the work): it runs on the fan-out's
    own receiving task. Nothing a node publishes comes back to that node.
    """

    def on_records(self, records: list[OpRecord]) -> None:
        """Records another node committed, in its commit order (maybe with gaps)."""

    def on_resync(self) -> None:
        """Messages may have been lost (the link was down): back-fill from the store."""

    def on_presence(self, entry: PresenceEntry) -> None:
        """A client of another node set its presence."""

    def on_presence_leave(self, client_id: str) -> None:
        """A client of another node left, or its node stopped answering."""


class FanOut(ABC):
    """Publish and subscribe per graph. `publish`, `set_presence` and
    `clear_presence` never block: they queue, and keep per-graph order."""

    node_id: str

    @property
    def solo(self) -> bool:
        """True while no other node can receive anything: publishing is skipped."""
        return False

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Connect; raise if the broker cannot be reached."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Withdraw this node's presence and release every resource."""

    @abstractmethod
    def publish(self, graph_id: str, records: Sequence[OpRecord]) -> None:
        """Send committed records (one commit, in seq order) to the other nodes."""

    @abstractmethod
    async def subscribe(self, graph_id: str, subscriber: Subscriber) -> None:
        """Deliver what other nodes publish for `graph_id` to `subscriber`.

        Once this returns, every record published afterwards is delivered
        (or an `on_resync` follows): subscribe first, then read the store.
        """

    @abstractmethod
    async def unsubscribe(self, graph_id: str, subscriber: Subscriber) -> None:
        """Stop delivering to `subscriber`."""

    @abstractmethod
    def set_presence(self, graph_id: str, entry: PresenceEntry) -> None:
        """Announce (or update) the presence of one of this node's clients."""

    @abstractmethod
    def clear_presence(self, graph_id: str, client_id: str) -> None:
        """One of this node's clients left the graph."""

    @abstractmethod
    async def presence(self, graph_id: str) -> list[PresenceEntry]:
        """The live presence of other nodes' clients, for a room being loaded."""
