"""A room's presence: who is here and what they selected. Ephemeral, never stored.

Local sessions' states are relayed to the others (bursts within one loop
turn coalesce), sent to a joining client, and withdrawn with
`presence_leave`; in cluster mode the states of other nodes' clients arrive
through the fan-out and are relayed here too. Every recipient gets the
state without the ids of annotations its clearance hides.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from .audiences import Audiences, encode
from .fanout.base import FanOut, PresenceEntry
from .session import Session
from .sync.annotation import Annotation
from .sync.errors import ProtocolError
from .sync.limits import Limits
from .sync.policy import hidden_from, redact_presence
from .sync.views import Clearance


class PresenceRelay:
    def __init__(
        self,
        graph_id: str,
        audiences: Audiences,
        annotations: Mapping[str, Annotation],
        limits: Limits,
        fanout: FanOut | None,
    ) -> None:
        self.graph_id = graph_id
        self._audiences = audiences
        self.annotations = annotations
        """The room's live annotations (to redact hidden ids); the room swaps
        it when it reloads. Not a callback into the room: that would be a
        reference cycle, and an unloaded room would wait for the cyclic GC."""
        self._limits = limits
        self._fanout = fanout if fanout is not None and not fanout.solo else None
        self._local: dict[Session, dict[str, Any]] = {}
        self._remote: dict[str, PresenceEntry] = {}
        self._dirty: set[Session] = set()
        self._flush_scheduled = False

    def set(self, session: Session, state: dict[str, Any]) -> None:
        """Relay `state` to the others; bursts within one loop turn coalesce."""
        size = len(encode(state))
        if size > self._limits.max_presence_bytes:
            raise ProtocolError(
                "too_large", f"presence of {size} bytes exceeds {self._limits.max_presence_bytes}"
            )
        self._local[session] = state
        self._dirty.add(session)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def leave(self, session: Session) -> None:
        if self._local.pop(session, None) is None:
            return
        self._dirty.discard(session)
        if any(s.client_id == session.client_id for s in self._local):
            return  # the same client is still here on another connection
        self._audiences.send_to_others(
            session.client_id, encode({"type": "presence_leave", "client_id": session.client_id})
        )
        if self._fanout is not None:
            self._fanout.clear_presence(self.graph_id, session.client_id)

    def send_snapshot(self, session: Session) -> None:
        """Everyone else's current presence, to a client that just joined."""
        clearance = session.identity.clearance
        local = {other.client_id for other in self._local}
        for other, state in self._local.items():
            if other.client_id != session.client_id:
                visible = self._visible(state, clearance)
                session.enqueue(encode(_message(other.client_id, other.identity.user, visible)))
        for client_id, entry in self._remote.items():
            if client_id != session.client_id and client_id not in local:
                session.enqueue(encode(self._entry_message(entry, clearance)))

    # -- other nodes (the fan-out calls these through the room) ----------

    def remember_remote(self, entries: list[PresenceEntry]) -> None:
        for entry in entries:
            self._remote[entry.client_id] = entry

    def on_remote(self, entry: PresenceEntry) -> None:
        self._remote[entry.client_id] = entry
        self._relay(entry)

    def on_remote_leave(self, client_id: str) -> None:
        if self._remote.pop(client_id, None) is None:
            return
        if any(s.client_id == client_id for s in self._local):
            return  # the same client is still here, on this node
        self._audiences.send_to_others(
            client_id, encode({"type": "presence_leave", "client_id": client_id})
        )

    # -- internals ----------------------------------------------------------

    def _flush(self) -> None:
        self._flush_scheduled = False
        dirty, self._dirty = self._dirty, set()
        for session in dirty:
            state = self._local.get(session)
            if state is None:
                continue
            entry = PresenceEntry(
                client_id=session.client_id, user=session.identity.user, state=state
            )
            self._relay(entry)
            if self._fanout is not None:
                self._fanout.set_presence(self.graph_id, entry)

    def _relay(self, entry: PresenceEntry) -> None:
        self._audiences.send_per_audience(
            entry.client_id, lambda clearance: self._entry_message(entry, clearance)
        )

    def _visible(self, state: dict[str, Any], clearance: Clearance) -> dict[str, Any]:
        if clearance is None:
            return state
        return redact_presence(state, hidden_from(self.annotations, clearance))

    def _entry_message(self, entry: PresenceEntry, clearance: Clearance) -> dict[str, Any]:
        return _message(entry.client_id, entry.user, self._visible(entry.state, clearance))


def _message(client_id: str, user: str | None, state: dict[str, Any]) -> dict[str, Any]:
    return {"type": "presence", "client_id": client_id, "user": user, "state": state}
